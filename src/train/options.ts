/**
 * Trainer options: types, defaults (and why), and validation that needs no tensors.
 */
import { EVAL_DEFAULTS } from '../eval/defaults.ts';
import {
  BACKBONES,
  BACKEND_PREFERENCES,
  MODEL_DEFAULTS,
  MODEL_KINDS,
  type BackendPreference,
} from '../model/defaults.ts';
import type { Backbone, MaskMode, ModelKind } from '../model/index.ts';

export type BatchMode = 'pool' | 'triplets';
export const BATCH_MODES: readonly BatchMode[] = ['pool', 'triplets'];

/** The validation metric that decides which epoch is model_best. */
export const SELECT_ON = ['accuracy', 'map'] as const;
export type SelectOn = (typeof SELECT_ON)[number];

/** As upstream: ASEN keeps the epoch with the best validation MAP (Maryeon/asen), CSN the best triplet accuracy. */
export function defaultSelectOn(kind: ModelKind): SelectOn {
  return kind === 'asen' ? 'map' : 'accuracy';
}

export interface TrainOptions {
  dataDir: string;
  batchSize: number;
  /**
   * How training batches are made. 'triplets' (upstream): a fixed list of --train-triplets unique triplets,
   * shuffled every epoch. 'pool': every step draws --batch-size triplets among --pool-size random train products,
   * so images are shared between triplets; an epoch is --train-triplets triplets. Catalogues that ship their own
   * triplet lists always train on those ('triplets').
   */
  batchMode: BatchMode;
  /** Products per pool in 'pool' mode. */
  poolSize: number;
  /** Last epoch to run (inclusive, upstream semantics: epochs run from startEpoch to epochs). */
  epochs: number;
  startEpoch: number;
  lr: number;
  /** Per-epoch decay: lr × (1 − lrDecay)^epoch (upstream CSN uses 0.015). */
  lrDecay: number;
  seed: number;
  logInterval: number;
  margin: number;
  resume?: string;
  name: string;
  embedLossCoeff: number;
  maskLossCoeff: number;
  trainTriplets: number;
  valTriplets: number;
  testTriplets: number;
  embedDim: number;
  /** Only evaluate a checkpoint on the test split. */
  test: boolean;
  maskMode: MaskMode;
  logDir: string;
  /** Condition names (or indices into the catalogue's list); all when absent. */
  conditions?: string[];
  backend: BackendPreference;
  model: ModelKind;
  backbone: Backbone;
  imageSize: number;
  /** Channels of the first backbone layer (the model stage's default when absent). */
  width?: number;
  /** Safetensors file with torchvision resnet18 names to start the backbone from. */
  initWeights?: string;
  /** Validation metric that picks model_best (defaultSelectOn(model) when absent). */
  selectOn?: SelectOn;
  /** ASEN: tanh on the spatial attention logits as upstream V1 (default true; false = V2-style logits). */
  attentionTanh?: boolean;
  /** Validate every N epochs (the last epoch is always validated). */
  valEvery: number;
  /** Also write checkpoint_latest every N steps inside an epoch (0 = only at epoch ends). */
  checkpointEvery: number;
  /** Random horizontal flips of training images (upstream: RandomHorizontalFlip). */
  augment: boolean;
  /** Retrieval MAP queries per condition at test time (subsampled beyond this). */
  mapQueries: number;
  /** Replace an existing run folder of the same name. */
  overwrite: boolean;
  /** Draw the cli-progress bar (only when stderr is a terminal). */
  progress: boolean;
  /** Colour-histogram channels beside the backbone (model stage colour.ts). */
  colourHistogram: boolean;
  /** Weight of the in-batch label loss (model stage label-loss.ts); 0: triplets only. */
  labelLoss: number;
  /** Extra weight of in-batch negatives that share every other condition's label with the anchor. */
  controlled: number;
}

/**
 * Defaults. Upstream's numbers are for fine-tuning a pretrained ResNet-18 on a GPU; ours train a small CNN from
 * scratch on two CPU cores, so some differ (measured on the 3000-product demo catalogue, 48 px, wasm backend):
 * - batch mode 'pool' with 96 products per batch: 384 triplets share 96 images, about 10x more triplets per second
 *   than independent triplets (which need ~3 images each);
 * - batch size 384 (upstream 512): costs about the same as 512 in pool mode (the images dominate), slightly more
 *   updates per epoch;
 * - lr 3e-3 (upstream 5e-5): a randomly initialised network needs a large rate; 3e-3 reached 71% validation
 *   accuracy after 3 epochs where 1e-3 reached 67%, without instability;
 * - 36000 training triplets drawn per epoch (upstream 100000 unique ones), 10 epochs (upstream 30), 2000 val and
 *   4000 test triplets (upstream 20000/40000): the demo model trains in a few minutes on two cores;
 * - lr decay 0.015 per epoch and everything else as upstream.
 */
export const TRAIN_DEFAULTS = {
  dataDir: EVAL_DEFAULTS.dataDir,
  batchSize: 384,
  batchMode: 'pool' as BatchMode,
  poolSize: 96,
  epochs: 10,
  startEpoch: 1,
  lr: 3e-3,
  lrDecay: 0.015,
  seed: EVAL_DEFAULTS.seed,
  logInterval: 20,
  margin: EVAL_DEFAULTS.margin,
  embedLossCoeff: 5e-3,
  maskLossCoeff: 5e-4,
  trainTriplets: 36000,
  valTriplets: 2000,
  testTriplets: EVAL_DEFAULTS.testTriplets,
  embedDim: 64,
  test: false,
  maskMode: 'learned' as MaskMode,
  logDir: 'runs',
  backend: EVAL_DEFAULTS.backend,
  model: 'csn' as ModelKind,
  backbone: 'small' as Backbone,
  /** The model stage's default. */
  imageSize: MODEL_DEFAULTS.imageSize as number,
  valEvery: 1,
  checkpointEvery: 0,
  augment: true,
  mapQueries: EVAL_DEFAULTS.mapQueries,
  overwrite: false,
  progress: true,
  colourHistogram: false,
  labelLoss: 0,
  controlled: 0,
} satisfies Omit<TrainOptions, 'name' | 'resume' | 'conditions'>;

/**
 * Default learning rate per model kind: ASEN's attention branches and L2-normalised embeddings learn faster at
 * 1e-3 (65.8% vs 54.6% validation accuracy after 3 demo epochs at 3e-3); CSN and the baseline at 3e-3.
 */
export function defaultLearningRate(kind: ModelKind): number {
  return kind === 'asen' ? 1e-3 : TRAIN_DEFAULTS.lr;
}

/** Upstream's default run name: `csn_yyyymmdd_hhmmss` (local time); other model kinds use their own prefix. */
export function defaultRunName(kind: ModelKind = 'csn', now = new Date()): string {
  const two = (n: number) => String(n).padStart(2, '0');
  const date = `${now.getFullYear()}${two(now.getMonth() + 1)}${two(now.getDate())}`;
  const time = `${two(now.getHours())}${two(now.getMinutes())}${two(now.getSeconds())}`;
  return `${kind}_${date}_${time}`;
}

/** A flag combination or value that cannot work, reported as one clear line. */
export class OptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionsError';
  }
}

/** Checks that do not need the catalogue. */
export function validateOptions(options: TrainOptions): void {
  const positive: (keyof TrainOptions)[] = [
    'batchSize',
    'epochs',
    'startEpoch',
    'logInterval',
    'embedDim',
    'valEvery',
  ];
  for (const key of positive) {
    const value = options[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new OptionsError(`--${kebab(key)} must be a positive integer, got ${String(value)}`);
    }
  }
  if (options.startEpoch > options.epochs) {
    throw new OptionsError(
      `--start-epoch ${options.startEpoch} is after --epochs ${options.epochs}: nothing to train`,
    );
  }
  if (!(options.lr > 0) || !Number.isFinite(options.lr))
    throw new OptionsError(`--lr must be positive, got ${options.lr}`);
  if (!(options.lrDecay >= 0 && options.lrDecay < 1)) {
    throw new OptionsError(`--lr-decay must be in [0, 1), got ${options.lrDecay}`);
  }
  if (!(options.margin >= 0)) throw new OptionsError(`--margin must be >= 0, got ${options.margin}`);
  for (const key of ['embedLossCoeff', 'maskLossCoeff'] as const) {
    if (!(options[key] >= 0)) throw new OptionsError(`--${kebab(key)} must be >= 0, got ${options[key]}`);
  }
  for (const key of ['trainTriplets', 'valTriplets', 'testTriplets', 'checkpointEvery'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 0) {
      throw new OptionsError(`--${kebab(key)} must be a non-negative integer, got ${options[key]}`);
    }
  }
  if (options.trainTriplets < 1 && !options.test)
    throw new OptionsError('--train-triplets must be at least 1');
  if (!BATCH_MODES.includes(options.batchMode)) {
    throw new OptionsError(
      `--batch-mode must be one of ${BATCH_MODES.join(', ')}, got "${options.batchMode}"`,
    );
  }
  if (options.batchMode === 'pool' && options.poolSize < 3) {
    throw new OptionsError(
      `--pool-size must be at least 3 (an anchor, a close and a far product), got ${options.poolSize}`,
    );
  }
  if (!MODEL_KINDS.includes(options.model)) {
    throw new OptionsError(`--model must be one of ${MODEL_KINDS.join(', ')}, got "${options.model}"`);
  }
  if (!BACKBONES.includes(options.backbone)) {
    throw new OptionsError(`--backbone must be one of ${BACKBONES.join(', ')}, got "${options.backbone}"`);
  }
  if (!BACKEND_PREFERENCES.includes(options.backend)) {
    throw new OptionsError(
      `--backend must be one of ${BACKEND_PREFERENCES.join(', ')}, got "${options.backend}"`,
    );
  }
  if (!Number.isInteger(options.imageSize) || options.imageSize < 16 || options.imageSize > 512) {
    throw new OptionsError(`--image-size must be an integer from 16 to 512, got ${options.imageSize}`);
  }
  if (
    options.width !== undefined &&
    (!Number.isInteger(options.width) || options.width < 1 || options.width > 512)
  ) {
    throw new OptionsError(`--width must be an integer from 1 to 512, got ${options.width}`);
  }
  if (!/^[A-Za-z0-9._-]+$/.test(options.name) || options.name === '.' || options.name === '..') {
    throw new OptionsError(`--name "${options.name}" must be a plain folder name (letters, digits, . _ -)`);
  }
  if (options.selectOn !== undefined && !SELECT_ON.includes(options.selectOn)) {
    throw new OptionsError(`--select-on must be one of ${SELECT_ON.join(', ')}, got "${options.selectOn}"`);
  }
  if (options.initWeights !== undefined && options.resume) {
    throw new OptionsError('--init-weights starts a new run; a resumed run continues from its own weights');
  }
  if (options.test && !options.resume) {
    throw new OptionsError('--test evaluates a trained model: give it with --resume <checkpoint>');
  }
}

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}
