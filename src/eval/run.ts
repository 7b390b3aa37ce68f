/**
 * The `eval` command: load a checkpoint, evaluate it on a split, print the table and optionally write JSON.
 */
import { resolve } from 'node:path';
import { ImageCache, loadCatalogue, resolveConditions, restrictCatalogue } from '../catalogue/index.ts';
import { readCheckpoint, modelId, type RunArgs } from '../checkpoint/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { createLogger } from '../util/log.ts';
import type { BackendPreference } from '../model/index.ts';
import { EVAL_DEFAULTS } from './defaults.ts';
import { evaluateModel, formatReport, type EvaluationReport } from './report.ts';

/** The `eval` command's flags (src/eval/cli.ts). */
export interface EvalFlags {
  model: string;
  dataDir?: string;
  split: 'train' | 'val' | 'test';
  out?: string;
  triplets?: number;
  seed?: number;
  mapQueries: number;
  map: boolean;
  backend: BackendPreference;
}

export async function runEval(
  flags: EvalFlags,
  out: NodeJS.WritableStream = process.stdout,
): Promise<EvaluationReport> {
  const log = createLogger('eval');
  const checkpoint = await readCheckpoint(flags.model);
  const args = (checkpoint.args ?? {}) as RunArgs;
  const config = checkpoint.model.config;
  const dataDir = flags.dataDir ?? args.dataDir ?? EVAL_DEFAULTS.dataDir;
  const countForSplit =
    flags.split === 'train'
      ? args.trainTriplets
      : flags.split === 'val'
        ? args.valTriplets
        : args.testTriplets;
  const triplets = flags.triplets ?? countForSplit ?? EVAL_DEFAULTS.testTriplets;
  const seed = flags.seed ?? args.seed ?? EVAL_DEFAULTS.seed;

  const { selectBackend, restoreModel } = await import('../model/index.ts');
  await selectBackend(flags.backend, log);
  const full = await loadCatalogue(dataDir);
  const catalogue = restrictCatalogue(full, resolveConditions(config.conditions, full.conditions));
  const images = await ImageCache.load(catalogue, config.imageSize);
  const model = restoreModel(checkpoint.model);
  try {
    const partial = await evaluateModel(model, catalogue, images, {
      split: flags.split,
      triplets,
      seed,
      margin: args.margin ?? EVAL_DEFAULTS.margin,
      retrieval: flags.map,
      mapQueries: flags.mapQueries,
    });
    const report: EvaluationReport = {
      ...partial,
      model: {
        kind: config.kind,
        id: checkpoint.modelId ?? modelId(checkpoint.model),
        checkpoint: resolve(flags.model),
        epoch: checkpoint.training ? checkpoint.training.epoch - 1 : undefined,
      },
    };
    out.write(`${formatReport(report)}\n`);
    if (flags.out) await writeFileAtomic(flags.out, `${JSON.stringify(report, null, 2)}\n`);
    log.info({ split: flags.split, triplets: report.triplets.triplets, seed, dataDir }, 'evaluation done');
    return report;
  } finally {
    model.dispose();
  }
}
