/**
 * Evaluation reports: triplet accuracy and retrieval MAP of a model on one split, as JSON and as a table.
 */
import {
  deriveSeed,
  splitProducts,
  splitTriplets,
  type Catalogue,
  type ImageSource,
  type Split,
} from '../catalogue/index.ts';
import type { AccuracySummary } from '../checkpoint/index.ts';
import type { SimilarityModel } from '../model/index.ts';
import { Rng } from '../util/rng.ts';
import { formatTable } from '../util/table.ts';
import {
  embedProducts,
  productsOf,
  retrievalFromProducts,
  retrievalFromSet,
  retrievalMap,
  tripletAccuracy,
  type ConditionRetrieval,
  type RetrievalSummary,
} from './evaluate.ts';

export interface EvaluationReport {
  split: Split;
  model: { kind: string; id?: string; checkpoint?: string; epoch?: number };
  catalogue: string;
  conditions: string[];
  triplets: AccuracySummary;
  retrieval?: RetrievalSummary;
  /** Embedding throughput while evaluating (images per second, wall clock). */
  imagesPerSecond: number;
  time: string;
}

export interface EvaluateOptions {
  split: Split;
  /** Triplets to sample when the catalogue ships none for the split. */
  triplets: number;
  seed: number;
  margin: number;
  /** Compute retrieval MAP (default true). */
  retrieval?: boolean;
  /** Queries per condition for MAP when built from the split's products. */
  mapQueries?: number;
  onProgress?: (done: number, total: number) => void;
}

/** Evaluate `model` on `split` of `catalogue` (already restricted to the model's conditions). */
export async function evaluateModel(
  model: SimilarityModel,
  catalogue: Catalogue,
  images: ImageSource,
  options: EvaluateOptions,
): Promise<Omit<EvaluationReport, 'model'>> {
  const triplets = splitTriplets(catalogue, { split: options.split, count: options.triplets }, options.seed);
  let protocol: ConditionRetrieval[] = [];
  let source: RetrievalSummary['protocol'] = 'split';
  if (options.retrieval !== false) {
    const shipped = options.split === 'train' ? undefined : catalogue.retrieval?.[options.split];
    if (shipped && shipped.queries.length > 0) {
      protocol = retrievalFromSet(shipped, catalogue.conditions.length);
      source = 'catalogue';
    } else {
      protocol = retrievalFromProducts(catalogue, splitProducts(catalogue, options.split), {
        maxQueries: options.mapQueries,
        rng: new Rng(deriveSeed(options.seed, `map/${options.split}`)),
      });
    }
  }
  const products = productsOf(triplets, protocol);
  const started = performance.now();
  const vectors = await embedProducts(model, images, products, { onProgress: options.onProgress });
  const seconds = (performance.now() - started) / 1000;
  const report: Omit<EvaluationReport, 'model'> = {
    split: options.split,
    catalogue: catalogue.name,
    conditions: [...catalogue.conditions],
    triplets: tripletAccuracy(vectors, triplets, catalogue.conditions, options.margin),
    imagesPerSecond: seconds > 0 ? products.length / seconds : 0,
    time: new Date().toISOString(),
  };
  if (options.retrieval !== false) {
    report.retrieval = retrievalMap(vectors, protocol, catalogue.conditions, source);
  }
  return report;
}

const percent = (value: number) => `${(100 * value).toFixed(2)}%`;

/** Plain-text table: one row per condition, then overall. */
export function formatReport(
  report: Pick<EvaluationReport, 'conditions' | 'triplets' | 'retrieval' | 'split'>,
): string {
  const header = ['condition', 'triplets', 'accuracy'];
  if (report.retrieval) header.push('queries', 'MAP');
  const rows: string[][] = report.conditions.map((name) => {
    const acc = report.triplets.perCondition[name] ?? { accuracy: 0, triplets: 0 };
    const row = [name, String(acc.triplets), acc.triplets > 0 ? percent(acc.accuracy) : '-'];
    if (report.retrieval) {
      const map = report.retrieval.perCondition[name];
      row.push(String(map?.queries ?? 0), map && map.queries > 0 ? map.map.toFixed(4) : '-');
    }
    return row;
  });
  const overall = ['overall', String(report.triplets.triplets), percent(report.triplets.overall)];
  if (report.retrieval) {
    overall.push(String(report.retrieval.overall.queries), report.retrieval.overall.map.toFixed(4));
  }
  return formatTable(header, [...rows, overall], {
    title: `${report.split} split`,
    totalRow: true,
    align: 'first-left',
  });
}
