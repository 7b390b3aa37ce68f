/**
 * The retrain path: the served model re-shaped for the updated conditions becomes the starting checkpoint of an
 * ordinary trainer run in the refresh's run folder (so the fine-tune has the trainer's every flag, metrics, plot,
 * Ctrl-C handling and resume), then the candidate and the served model are scored on the same test triplets and
 * the gate decides.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { deriveSeed, type Catalogue } from '../catalogue/index.ts';
import { readCheckpoint, writeCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import { restoreModel } from '../model/index.ts';
import { resolveTrainOptions } from '../train/cli.ts';
import { RUN_FILES, TRAIN_DEFAULTS, train, type TrainOptions } from '../train/index.ts';
import type { Logger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { scoreOnSharedTriplets, type SharedScores } from './compare.ts';
import { applyGate } from './gate.ts';
import type { ModelFile } from './inputs.ts';
import { REFRESH_DEFAULTS } from './options.ts';
import { warmStart, type WarmStart } from './warm-start.ts';
import { REFRESH_EXIT, RefreshError, type GateResult } from './types.ts';

/** The trainer's command-line values (commander's, before they are folded into TrainOptions). */
export type TrainFlags = Parameters<typeof resolveTrainOptions>[0];

export interface FineTuneInput {
  /** The refresh's run folder {logDir}/{name}: the fine-tune writes its trainer files there too. */
  logDir: string;
  name: string;
  dataDir: string;
  conditions: readonly string[];
  from: ModelFile;
  flags: TrainFlags;
  /** Whether a trainer flag was given on the command line (others come from the served model's own run). */
  explicit: (key: string) => boolean;
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
 * Write the warm start as a checkpoint at epoch 1 with no optimiser state: resuming from it is a fresh run
 * (fresh Adam, the seed's own triplet streams) that starts from the served weights. Returns the path.
 */
async function writeWarmStart(input: FineTuneInput, warm: WarmStart): Promise<string> {
  const saved = (input.from.checkpoint.args ?? {}) as Partial<TrainOptions>;
  const seed = input.explicit('seed') ? input.flags.seed : (saved.seed ?? input.flags.seed);
  const path = join(input.logDir, input.name, REFRESH_DEFAULTS.warmStartFile);
  await writeCheckpoint(path, {
    model: warm.snapshot,
    training: {
      epoch: 1,
      stepInEpoch: 0,
      globalStep: 0,
      rngState: new Rng(deriveSeed(seed ?? TRAIN_DEFAULTS.seed, 'train')).state(),
      bestValAccuracy: -1,
      bestEpoch: 0,
    },
    args: { ...saved, dataDir: input.dataDir, conditions: [...input.conditions] },
  });
  return path;
}

/** Warm start, then the trainer's loop on the updated catalogue. The candidate is the run's best checkpoint. */
export async function fineTune(input: FineTuneInput): Promise<FineTuned> {
  const warm = warmStart(input.from.checkpoint.model, input.conditions);
  const warmPath = await writeWarmStart(input, warm);
  // A fresh run from the warm start: epoch 1, never a test-only run, never over another run's folder.
  const flags = {
    ...input.flags,
    resume: warmPath,
    name: input.name,
    logDir: input.logDir,
    startEpoch: 1,
    test: false,
    overwrite: false,
  };
  const options = await resolveTrainOptions(flags, (key) =>
    ['dataDir', 'name', 'logDir'].includes(key) ? true : input.explicit(key),
  );
  options.dataDir = input.dataDir;
  options.test = false;
  const result = await train(options, { logger: input.log, signal: input.signal, out: input.out });
  if (result.interrupted) {
    throw new RefreshError(REFRESH_EXIT.error, 'the fine-tune was interrupted: nothing was published');
  }
  const best = join(result.runDir, RUN_FILES.best);
  const candidatePath = existsSync(best) ? best : join(result.runDir, RUN_FILES.latest);
  return { warm, options, candidatePath, candidate: await readCheckpoint(candidatePath) };
}

/** Score both models on the same held-out triplets and apply the gate. */
export async function judge(
  catalogue: Catalogue,
  tuned: FineTuned,
  served: ModelFile,
  tolerance: number,
): Promise<{ scores: SharedScores; gate: GateResult }> {
  const candidate = restoreModel(tuned.candidate.model);
  const old = restoreModel(served.checkpoint.model);
  try {
    const scores = await scoreOnSharedTriplets(
      catalogue,
      candidate.config.conditions,
      { candidate, served: old },
      { count: tuned.options.testTriplets, seed: tuned.options.seed, margin: tuned.options.margin },
    );
    return { scores, gate: applyGate(scores.candidate, scores.served, tolerance) };
  } finally {
    candidate.dispose();
    old.dispose();
  }
}
