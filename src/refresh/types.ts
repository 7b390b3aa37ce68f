/**
 * The refresh stage: keep a published bundle in step with a changing catalogue. Its contracts live here: what
 * changed since the published version, what the run decided, the gate's comparison, the run report, and the exit
 * codes (their one home).
 */

import type { ModelProvenance } from '../index/index.ts';

/** Exit codes of `dressmatch refresh`: the only place they are defined (the READMEs list them). */
export const REFRESH_EXIT = {
  /** The catalogue is published (and the new model, when one was trained), or nothing changed (`outcome` says). */
  ok: 0,
  /**
   * Unexpected failure (a bug, a full disk, an interrupted fine-tune): no new model was published; the catalogue
   * may have been (the report's `reindexed` says).
   */
  error: 1,
  /** Bad input: a flag, a catalogue that lost a condition the served model needs, images that fail to decode. */
  badInput: 2,
  /**
   * The catalogue is published with the served model; the new model was refused by the gate (the comparison is in
   * the report's `gate`).
   */
  refused: 3,
  /** Another refresh of the same bundle is running: nothing was done (a scheduler can simply try again later). */
  busy: 4,
} as const;
export type RefreshExitCode = (typeof REFRESH_EXIT)[keyof typeof REFRESH_EXIT];

/** Why a product counts as changed. `image` is known exactly when the bundle recorded image hashes. */
export type ChangeKind = 'image' | 'labels' | 'title';

export interface ProductChange {
  id: string;
  what: ChangeKind[];
}

/** Label values of one condition that appeared in, or disappeared from, the catalogue. */
export interface LabelChange {
  condition: string;
  added: string[];
  removed: string[];
}

/** Everything that differs between the published version and the catalogue as it is now. */
export interface ChangeReport {
  /** The published version compared against. */
  servedVersion: string;
  servedProducts: number;
  catalogueProducts: number;
  added: string[];
  removed: string[];
  changed: ProductChange[];
  unchanged: number;
  /** (added + removed + changed) / served products (1 when nothing was served). */
  changedShare: number;
  /** Conditions the run trains for that the served model has no mask for. */
  conditionsAdded: string[];
  /** Conditions the served model has that the catalogue no longer labels (conditions.txt lost them). */
  conditionsRemoved: string[];
  /** Per condition of the target model, label values new or gone (only conditions with a difference). */
  labels: LabelChange[];
}

export type RefreshAction = 'nothing' | 'reindex' | 'retrain';

export interface RefreshDecision {
  action: RefreshAction;
  /** Human-readable reasons, one per rule that fired (or why nothing needs doing). */
  reasons: string[];
  /** The rule came from --retrain / --no-retrain rather than from the changes. */
  forced: boolean;
}

/** Two models on the same test triplets: accuracies, disagreements, and the difference with its interval. */
export interface PairedResult {
  triplets: number;
  candidate: number;
  served: number;
  /** Triplets only the candidate answered right, and only the served model. */
  onlyCandidate: number;
  onlyServed: number;
  /** candidate − served, as a fraction. */
  delta: number;
  /** Confidence interval of `delta` (paired bootstrap over anchor products, `GateResult.confidence`). */
  interval: [number, number];
}

/** One condition on the shared test triplets, candidate against served. */
export interface ConditionComparison {
  condition: string;
  triplets: number;
  /** The candidate's accuracy on this condition's triplets. */
  candidate: number;
  /** The comparison; null for a condition the served model has no mask for (new: reported, not gated). */
  paired: PairedResult | null;
  /** better / worse with the gate's confidence, or no difference it can tell; `new` or `untested` are not gated. */
  verdict: 'better' | 'worse' | 'no difference' | 'new' | 'untested';
  passed: boolean;
}

export interface GateResult {
  passed: boolean;
  /** Why it passed or refused, in one sentence. */
  reason: string;
  /** Overall accuracy points (as a fraction) the candidate may lose. */
  tolerance: number;
  /** How the intervals were made. */
  method: 'paired bootstrap over anchor products';
  confidence: number;
  resamples: number;
  seed: number;
  /** Over the conditions both models know, on the same triplets. */
  overall: PairedResult & { passed: boolean };
  conditions: ConditionComparison[];
  /** Each refusal (empty when it passed). */
  failures: string[];
}

export type RefreshOutcome = 'published' | 'nothing-to-do' | 'refused' | 'dry-run' | 'failed';

/** `refresh.json` in the run folder: one per run, rewritten as the run goes (status `running` until it ends). */
export interface RefreshReport {
  format: 'dressmatch-refresh';
  /** Run name (the run folder's name); also recorded in the version it publishes. */
  run: string;
  status: 'running' | 'finished' | 'abandoned';
  outcome: RefreshOutcome | null;
  exitCode: RefreshExitCode | null;
  startedAt: string;
  finishedAt: string | null;
  /** The process that runs it (a later run marks a `running` report whose process is gone as abandoned). */
  pid: number;
  bundle: string;
  dataDir: string;
  dryRun: boolean;
  served: { version: string; modelId: string } | null;
  changes: ChangeReport | null;
  decision: RefreshDecision | null;
  /** Warm start: where the weights came from, conditions kept, new (fresh mask), dropped. */
  warmStart: {
    from: string;
    modelId: string;
    kept: string[];
    added: string[];
    dropped: string[];
  } | null;
  /** The fine-tuned model; `testAccuracy`: overall on the shared test triplets, every condition it has. */
  candidate: { modelId: string; checkpoint: string; epochs: number; testAccuracy: number | null } | null;
  gate: GateResult | null;
  /**
   * The catalogue as it is now, published with the served model before any fine-tune (null: the catalogue had not
   * changed, or no condition of it is known to the served model). `notServable`: catalogue conditions the served
   * model has no mask for, left out until a model has learned them.
   */
  reindexed: {
    version: string;
    mode: 'full' | 'incremental';
    modelId: string;
    conditions: string[];
    notServable: string[];
  } | null;
  /** The version this run left served: the re-indexed one, or the accepted candidate's (null: none published). */
  published: { version: string; mode: 'full' | 'incremental'; modelId: string } | null;
  error: { code: RefreshExitCode; message: string; products?: string[] } | null;
  /** Seconds per phase. */
  timings: Record<string, number>;
}

/** Provenance of a version a refresh publishes: the index stage's, plus the label values its model has seen. */
export interface RefreshProvenance extends ModelProvenance {
  /** Per condition, the label values of the catalogue the model was trained on (carried while it stays served). */
  labelsSeen?: Record<string, string[]>;
}

/** A failure with its exit code (bad input, refused, busy); anything else is REFRESH_EXIT.error. */
export class RefreshError extends Error {
  constructor(
    readonly exitCode: RefreshExitCode,
    message: string,
    /** Products concerned (for example the ones whose images do not decode). */
    readonly products?: string[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RefreshError';
  }
}
