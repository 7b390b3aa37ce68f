/**
 * Model evaluation: triplet accuracy per condition and attribute-specific retrieval MAP.
 *
 * Every product of a split is embedded once (condition-space vectors [C, D] per product); triplets and retrieval
 * rankings are then scored on those vectors with L2 distance. L2 is the distance CSN and the unconditional baseline
 * train with, and ranks exactly like cosine for ASEN's L2-normalised vectors.
 */
import * as tf from '@tensorflow/tfjs';
import type { Catalogue, ImageSource, RetrievalSet, Triplet } from '../catalogue/index.ts';
import type { AccuracySummary } from '../checkpoint/index.ts';
import type { SimilarityModel } from '../model/index.ts';
import { Rng } from '../util/rng.ts';
import {
  meanAveragePrecision,
  queryAveragePrecision,
  sharesLabel,
  weightedMap,
  type MapResult,
} from './retrieval.ts';

/** Condition-space vectors of a set of products: row r holds C vectors of D values. */
export interface ProductVectors {
  /** Product index → row. */
  rows: Map<number, number>;
  data: Float32Array;
  conditions: number;
  dim: number;
}

export interface RetrievalSummary {
  overall: MapResult;
  perCondition: Record<string, MapResult>;
  /** Where the protocol came from: the catalogue's own query/candidate lists, or built from the split. */
  protocol: 'catalogue' | 'split';
}

/** Embed `products` (product indices; duplicates are embedded once) in batches of `batchSize`. */
export async function embedProducts(
  model: SimilarityModel,
  images: ImageSource,
  products: readonly number[],
  options: { batchSize?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<ProductVectors> {
  const distinct = [...new Set(products)];
  const batchSize = options.batchSize ?? 64;
  const rows = new Map(distinct.map((product, row) => [product, row]));
  let data = new Float32Array(0);
  let conditions = model.config.conditions.length;
  let dim = 0;
  for (let start = 0; start < distinct.length; start += batchSize) {
    const chunk = distinct.slice(start, start + batchSize);
    const vectors = tf.tidy(() => {
      const input = tf.tensor4d(images.batch(chunk), [chunk.length, images.size, images.size, 3]);
      return model.conditionVectors(input);
    });
    const values = (await vectors.data()) as Float32Array;
    if (dim === 0) {
      conditions = vectors.shape[1];
      dim = vectors.shape[2];
      data = new Float32Array(distinct.length * conditions * dim);
    }
    vectors.dispose();
    data.set(values, start * conditions * dim);
    options.onProgress?.(Math.min(start + batchSize, distinct.length), distinct.length);
  }
  return { rows, data, conditions, dim };
}

/** Vector of `product` under `condition`. */
export function vectorOf(vectors: ProductVectors, product: number, condition: number): Float32Array {
  const row = vectors.rows.get(product);
  if (row === undefined) throw new RangeError(`product ${product} was not embedded`);
  const start = (row * vectors.conditions + condition) * vectors.dim;
  return vectors.data.subarray(start, start + vectors.dim);
}

function squaredDistance(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = a[i] - b[i];
    sum += diff * diff;
  }
  return sum;
}

/**
 * A triplet is right when the anchor is strictly closer to `close` than to `far` (as upstream CSN counts it).
 * With `margin`, the mean margin ranking loss is reported too.
 */
export function tripletAccuracy(
  vectors: ProductVectors,
  triplets: readonly Triplet[],
  conditionNames: readonly string[],
  margin?: number,
): AccuracySummary {
  const right = new Array<number>(conditionNames.length).fill(0);
  const total = new Array<number>(conditionNames.length).fill(0);
  let lossSum = 0;
  for (const t of triplets) {
    const anchor = vectorOf(vectors, t.anchor, t.condition);
    const far = squaredDistance(anchor, vectorOf(vectors, t.far, t.condition));
    const close = squaredDistance(anchor, vectorOf(vectors, t.close, t.condition));
    total[t.condition]++;
    if (far > close) right[t.condition]++;
    if (margin !== undefined) lossSum += Math.max(0, margin + Math.sqrt(close) - Math.sqrt(far));
  }
  const summary = summarizeAccuracy(right, total, conditionNames);
  if (margin !== undefined) summary.loss = triplets.length > 0 ? lossSum / triplets.length : 0;
  return summary;
}

export function summarizeAccuracy(
  right: readonly number[],
  total: readonly number[],
  conditionNames: readonly string[],
): AccuracySummary {
  const perCondition: AccuracySummary['perCondition'] = {};
  conditionNames.forEach((name, c) => {
    perCondition[name] = { accuracy: total[c] > 0 ? right[c] / total[c] : 0, triplets: total[c] };
  });
  const triplets = total.reduce((a, b) => a + b, 0);
  const correct = right.reduce((a, b) => a + b, 0);
  return { overall: triplets > 0 ? correct / triplets : 0, triplets, perCondition };
}

/** One condition's retrieval protocol: who asks, who is ranked, and which label lists they carry. */
export interface ConditionRetrieval {
  condition: number;
  queries: { product: number; labels: readonly string[] }[];
  candidates: { product: number; labels: readonly string[] }[];
  /** Queries are also candidates: leave each query's own product out of its ranking. */
  leaveOneOut: boolean;
}

/** Protocol from a catalogue's shipped query/candidate lists (ASEN meta layout). */
export function retrievalFromSet(set: RetrievalSet, conditionCount: number): ConditionRetrieval[] {
  return Array.from({ length: conditionCount }, (_, condition) => ({
    condition,
    queries: set.queries
      .filter((q) => q.condition === condition)
      .map((q) => ({ product: q.product, labels: [q.value] })),
    candidates: set.candidates
      .filter((q) => q.condition === condition)
      .map((q) => ({ product: q.product, labels: [q.value] })),
    leaveOneOut: false,
  }));
}

/**
 * Protocol built from the products of a split: per condition every labelled product is a candidate, and (up to
 * `maxQueries`, drawn with `rng`) a query ranked against all the others.
 */
export function retrievalFromProducts(
  catalogue: Pick<Catalogue, 'conditions' | 'products'>,
  products: readonly number[],
  options: { maxQueries?: number; rng?: Rng } = {},
): ConditionRetrieval[] {
  return catalogue.conditions.map((name, condition) => {
    const candidates = products
      .filter((index) => (catalogue.products[index].attributes[name]?.length ?? 0) > 0)
      .map((index) => ({ product: index, labels: catalogue.products[index].attributes[name] }));
    let queries = candidates;
    const max = options.maxQueries;
    if (max !== undefined && queries.length > max) {
      const rng = options.rng ?? new Rng(0);
      queries = rng
        .shuffle([...queries])
        .slice(0, max)
        .sort((a, b) => a.product - b.product);
    }
    return { condition, queries, candidates, leaveOneOut: true };
  });
}

/** MAP per condition and overall (weighted by counted queries) for a retrieval protocol. */
export function retrievalMap(
  vectors: ProductVectors,
  protocol: readonly ConditionRetrieval[],
  conditionNames: readonly string[],
  source: RetrievalSummary['protocol'],
): RetrievalSummary {
  const perCondition: Record<string, MapResult> = {};
  for (const entry of protocol) {
    const candidateVectors = entry.candidates.map((c) => vectorOf(vectors, c.product, entry.condition));
    const positionOf = new Map(entry.candidates.map((c, i) => [c.product, i]));
    const aps = entry.queries.map((query) => {
      const q = vectorOf(vectors, query.product, entry.condition);
      const distances = candidateVectors.map((c) => squaredDistance(q, c));
      const relevant = entry.candidates.map((c) => sharesLabel(query.labels, c.labels));
      const own = entry.leaveOneOut ? positionOf.get(query.product) : undefined;
      const exclude = own !== undefined ? new Set([own]) : undefined;
      return queryAveragePrecision({ distances, relevant, exclude });
    });
    perCondition[conditionNames[entry.condition]] = meanAveragePrecision(aps);
  }
  return { overall: weightedMap(Object.values(perCondition)), perCondition, protocol: source };
}

/** Products a set of triplets and a retrieval protocol touch, for embedding them all at once. */
export function productsOf(
  triplets: readonly Triplet[],
  protocol: readonly ConditionRetrieval[] = [],
): number[] {
  const set = new Set<number>();
  for (const t of triplets) {
    set.add(t.anchor);
    set.add(t.far);
    set.add(t.close);
  }
  for (const entry of protocol) {
    for (const q of entry.queries) set.add(q.product);
    for (const c of entry.candidates) set.add(c.product);
  }
  return [...set].sort((a, b) => a - b);
}
