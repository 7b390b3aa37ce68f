/**
 * What a checkpoint holds: the model, optionally the optimiser and training state, the run's flags and its
 * metrics. Every stage from train on reads these types; only the trainer writes optimiser and training state.
 */
import type { ModelSnapshot, NamedWeight } from '../model/index.ts';

/** Triplet accuracy overall and per condition (written by eval, stored in checkpoints and metrics.jsonl). */
export interface AccuracySummary {
  overall: number;
  triplets: number;
  perCondition: Record<string, { accuracy: number; triplets: number }>;
  /** Mean margin ranking loss max(0, margin + d(anchor, close) − d(anchor, far)) on L2 distances, when asked for. */
  loss?: number;
}

/** Adam state: iteration count, bias-correction products and one first/second moment per trainable variable. */
export interface OptimizerState {
  kind: 'adam';
  iterations: number;
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  /** beta1^(t+1) and beta2^(t+1) exactly as the optimiser carried them (float32 running products). */
  accBeta1: number;
  accBeta2: number;
  /** First moments then second moments, in trainable-variable order. */
  slots: NamedWeight[];
}

/** Where training stands, so that `--resume` continues the same run. */
export interface TrainingState {
  /** Epoch the run is in or about to start (1-based). */
  epoch: number;
  /** Steps of `epoch` already done (0 when the checkpoint was written at an epoch boundary). */
  stepInEpoch: number;
  /** Optimisation steps done since the start of the run. */
  globalStep: number;
  /** Trainer RNG state at the start of `epoch` (the epoch's shuffle is drawn from it). */
  rngState: number[];
  /** Best validation triplet accuracy so far, and the epoch it came from (0 = none yet). */
  bestValAccuracy: number;
  /** Best validation MAP so far, when the run selects model_best on MAP (`--select-on map`). */
  bestValMap?: number;
  bestEpoch: number;
  /** Partial sums of the epoch in progress (only when stepInEpoch > 0), so the epoch summary stays exact. */
  epochTotals?: Record<string, number>;
}

export interface MetricsSummary {
  val?: AccuracySummary;
  /** Test triplet accuracy of this checkpoint (the best one carries it once the run's test is done). */
  test?: AccuracySummary;
  /** Test retrieval MAP, overall and per condition, beside `test`. */
  testMap?: { overall: number; perCondition: Record<string, number> };
  trainLoss?: number;
  trainAccuracy?: number;
}

/** The run flags that readers other than the trainer rely on (a subset of the trainer's options). */
export interface RunArgs {
  dataDir?: string;
  seed?: number;
  margin?: number;
  trainTriplets?: number;
  valTriplets?: number;
  testTriplets?: number;
}

export interface Checkpoint {
  model: ModelSnapshot;
  optimizer?: OptimizerState;
  training?: TrainingState;
  /** Flags the run was started with (plain JSON). */
  args?: Record<string, unknown>;
  metrics?: MetricsSummary;
  /** ISO time the checkpoint was written (filled in by writeCheckpoint when absent). */
  createdAt?: string;
  /** modelId(model), filled in when a checkpoint is read (ignored when writing: always recomputed). */
  modelId?: string;
}

/** A checkpoint file that cannot be used, always naming the file. */
export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`checkpoint ${file}: ${message}`, options);
    this.name = 'CheckpointError';
  }
}
