/**
 * The retrain path: the served model re-shaped for the updated conditions becomes the starting checkpoint of an
 * ordinary trainer run in the refresh's run folder (so the fine-tune has the trainer's metrics, plot, Ctrl-C
 * handling and resume), then the candidate and the served model answer the same test triplets and the gate
 * decides. The trainer is called as a library, with a TrainOptions object.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed, type Catalogue } from '../catalogue/index.ts';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import { restoreModel } from '../model/index.ts';
import {
  inheritedFrom,
  RUN_FILES,
  TRAIN_DEFAULTS,
  defaultLearningRate,
  train,
  type TrainOptions,
} from '../train/index.ts';
import type { Logger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { answerSharedTriplets } from './compare.ts';
import { applyGate } from './gate.ts';
import type { ModelFile } from './inputs.ts';
import { REFRESH_DEFAULTS } from './options.ts';
import { warmStart, type WarmStart } from './warm-start.ts';
import { REFRESH_EXIT, RefreshError, type GateResult } from './types.ts';

/** Trainer settings given to refresh; the others come from the served model's own run, then the trainer's defaults. */
export type FineTuneSettings = Partial<TrainOptions>;

export interface FineTuneInput {
  /** The refresh's run folder {logDir}/{name}: the fine-tune writes its trainer files there too. */
  logDir: string;
  name: string;
  dataDir: string;
  conditions: readonly string[];
  from: ModelFile;
  given: FineTuneSettings;
  log: Logger;
  out: NodeJS.WritableStream | null;
  signal?: AbortSignal;
}

export interface FineTuned {
  warm: WarmStart;
  options: TrainOptions;
  candidatePath: string;
  candidate: Checkpoint;
}

/**
 * The fine-tune's options: the given settings, else the served model's run's (the options a continued training
 * run inherits), else the trainer's defaults. The network is the warm start's; the run starts at epoch 1 from the
 * warm-start checkpoint, in the refresh's folder, on the updated catalogue and conditions.
 */
export function fineTuneOptions(input: FineTuneInput, warmPath: string): TrainOptions {
  const saved = (input.from.checkpoint.args ?? {}) as Partial<TrainOptions>;
  const config = input.from.checkpoint.model.config;
  const inherited = inheritedFrom(saved);
  return {
    ...TRAIN_DEFAULTS,
    lr: defaultLearningRate(config.kind),
    ...inherited,
    ...input.given,
    model: config.kind,
    backbone: config.backbone,
    imageSize: config.imageSize,
    embedDim: config.embedDim,
    maskMode: config.maskMode,
    ...(config.width !== undefined ? { width: config.width } : {}),
    attentionTanh: config.attentionTanh,
    colourHistogram: config.colourHistogram ?? false,
    conditions: [...input.conditions],
    dataDir: input.dataDir,
    logDir: input.logDir,
    name: input.name,
    resume: warmPath,
    startEpoch: 1,
    test: false,
    overwrite: false,
  };
}

/**
 * Write the warm start as a checkpoint at epoch 1 with no optimiser state: resuming from it is a fresh run
 * (fresh Adam, the seed's own triplet streams) that starts from the served weights. `args` records the options.
 */
async function writeWarmStart(path: string, warm: WarmStart, options: TrainOptions): Promise<void> {
  await writeCheckpoint(path, {
    model: warm.snapshot,
    training: {
      epoch: 1,
      stepInEpoch: 0,
      globalStep: 0,
      rngState: new Rng(deriveSeed(options.seed, 'train')).state(),
      bestValAccuracy: -1,
      bestEpoch: 0,
    },
    args: { ...options },
  });
}

/**
 * Warm start, then the trainer's loop on the updated catalogue. The candidate is the run's best checkpoint; with
 * 0 epochs it is the warm start itself (the served weights under the updated conditions).
 */
export async function fineTune(input: FineTuneInput): Promise<FineTuned> {
  const warm = warmStart(input.from.checkpoint.model, input.conditions);
  const warmPath = join(input.logDir, input.name, REFRESH_DEFAULTS.warmStartFile);
  const options = fineTuneOptions(input, warmPath);
  await writeWarmStart(warmPath, warm, options);
  if (options.epochs === 0)
    return { warm, options, candidatePath: warmPath, candidate: await readCheckpoint(warmPath) };
  const result = await train(options, { logger: input.log, signal: input.signal, out: input.out });
  if (result.interrupted) {
    throw new RefreshError(
      REFRESH_EXIT.error,
      'the fine-tune was interrupted: the new model was not published',
    );
  }
  const best = join(result.runDir, RUN_FILES.best);
  const candidatePath = existsSync(best) ? best : join(result.runDir, RUN_FILES.latest);
  return { warm, options, candidatePath, candidate: await readCheckpoint(candidatePath) };
}

/** Both models answer the same held-out triplets; the gate compares them paired. */
export async function judge(
  catalogue: Catalogue,
  tuned: FineTuned,
  served: ModelFile,
  settings: { tolerance: number; gateTriplets: number },
): Promise<GateResult> {
  const candidate = restoreModel(tuned.candidate.model);
  const old = restoreModel(served.checkpoint.model);
  try {
    const answers = await answerSharedTriplets(
      catalogue,
      candidate.config.conditions,
      { candidate, served: old },
      { count: settings.gateTriplets, seed: tuned.options.seed },
    );
    return applyGate(answers, {
      tolerance: settings.tolerance,
      confidence: REFRESH_DEFAULTS.confidence,
      resamples: REFRESH_DEFAULTS.resamples,
      seed: deriveSeed(tuned.options.seed, 'gate'),
    });
  } finally {
    candidate.dispose();
    old.dispose();
  }
}
