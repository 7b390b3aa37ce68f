/**
 * Trainer options: the one table of `train`'s flags (type, default, help, upstream value, whether a resumed run
 * inherits it), the option types and defaults it gives, and validation that needs no tensors. Adding a flag is
 * one row in TRAIN_OPTIONS: commander, TRAIN_DEFAULTS, TrainOptions, the resume rules, validateOptions and the
 * flag table in src/train/README.md (`npm run options:readme`) all follow.
 */
import { ANCHOR_DRAWS, type AnchorDraw } from '../catalogue/index.ts';
import { EVAL_DEFAULTS } from '../eval/defaults.ts';
import { BACKBONE_DEFAULTS, BACKBONES, BACKEND_PREFERENCES, MODEL_KINDS } from '../model/defaults.ts';
import type { Backbone, MaskMode, ModelKind } from '../model/index.ts';
import {
  absentValues,
  defaultsOf,
  firstProblem,
  inheritedKeys,
  type OptionTable,
  type ValuesOf,
} from '../util/options-table.ts';

export type BatchMode = 'pool' | 'triplets';
export const BATCH_MODES: readonly BatchMode[] = ['pool', 'triplets'];

/** The validation metric that decides which epoch is model_best. */
export const SELECT_ON = ['accuracy', 'map'] as const;
export type SelectOn = (typeof SELECT_ON)[number];

/** As upstream: ASEN keeps the epoch with the best validation MAP (Maryeon/asen), CSN the best triplet accuracy. */
export function defaultSelectOn(kind: ModelKind): SelectOn {
  return kind === 'asen' ? 'map' : 'accuracy';
}

/**
 * Default learning rate per model kind. A randomly initialised network needs a large rate: 3e-3 reached 71%
 * validation accuracy after 3 demo epochs where 1e-3 reached 67%, without instability (upstream's 5e-5 fine-tunes
 * a pretrained ResNet). ASEN's attention branches and L2-normalised embeddings learn faster at 1e-3 (65.8% vs
 * 54.6% validation accuracy after 3 demo epochs at 3e-3).
 */
export const LEARNING_RATES = { csn: 3e-3, unconditional: 3e-3, asen: 1e-3 } satisfies Record<
  ModelKind,
  number
>;

export function defaultLearningRate(kind: ModelKind): number {
  return LEARNING_RATES[kind];
}

const atLeastZero = { check: (n: number) => n >= 0, rule: '>= 0' };

/**
 * Input side per backbone when --image-size is not given. The small CNN trains at 64 px: on real catalogue photos
 * (60×80, padded to squares) it scored 82.3 % test triplet accuracy at 64 px against 81.5 % at 48 px
 * (bench/results/real-photos.md); the demo keeps 48 px (its dresses are drawn for it).
 */
export const TRAIN_IMAGE_SIZES: Record<Backbone, number> = {
  small: 64,
  resnet18: BACKBONE_DEFAULTS.resnet18.imageSize,
  'resnet18-skipinit': BACKBONE_DEFAULTS['resnet18-skipinit'].imageSize,
};
const d = EVAL_DEFAULTS;

/**
 * `train`'s flags, in --help order. Upstream's numbers are for fine-tuning a pretrained ResNet-18 on a GPU; ours
 * train a small CNN from scratch on two CPU cores, so some differ (measured on the 3000-product demo catalogue,
 * 48 px, wasm backend):
 * - batch mode 'pool' with 96 products per batch: 384 triplets share 96 images, about 10x more triplets per second
 *   than independent triplets (which need ~3 images each);
 * - batch size 384 (upstream 512): costs about the same as 512 in pool mode (the images dominate), slightly more
 *   updates per epoch;
 * - lr: see LEARNING_RATES;
 * - 36000 training triplets drawn per epoch (upstream 100000 unique ones), 10 epochs (upstream 30), 2000 val and
 *   4000 test triplets (upstream 20000/40000): the demo model trains in a few minutes on two cores;
 * - lr decay 0.015 per epoch and everything else as upstream.
 * On real catalogue photos (bench/results/real-photos.md, 3000 products, the test split's fixed triplets) the best
 * model measured is ASEN at 64 px with the colour channels and the in-batch label loss (negatives alike on the other
 * conditions weighted 1 + 8): 84.7 % test triplet accuracy against 82.3 % for the CSN trained the same way and
 * 63.4 % for the unconditional baseline, with colour neighbours that share the query's type 2.4× as often as
 * random pairs (the CSN before these settings: 4.8×). Those are the defaults; the demo keeps settings of its own.
 */
export const TRAIN_OPTIONS = {
  dataDir: {
    type: 'string',
    arg: 'dir',
    help: 'catalogue folder (any supported layout)',
    default: d.dataDir,
    upstream: { default: 'data/farfetch' },
    inherit: true,
  },
  batchSize: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'triplets per batch',
    default: 384,
    upstream: { default: '512' },
    inherit: true,
  },
  batchMode: {
    type: 'choice',
    arg: 'mode',
    choices: BATCH_MODES,
    help:
      'pool: each batch draws its triplets among --pool-size random products, so images are shared (fast on a ' +
      "CPU); triplets: upstream's fixed list of --train-triplets unique triplets",
    default: 'pool' as BatchMode,
    inherit: true,
  },
  anchors: {
    type: 'choice',
    arg: 'draw',
    choices: ANCHOR_DRAWS,
    help:
      'how training and validation triplets draw their anchor: labels (each label as often as another) or ' +
      "products (each product as often as another, as a shop's queries come)",
    default: 'labels' as AnchorDraw,
    inherit: true,
    absent: 'labels' as AnchorDraw,
  },
  poolSize: {
    type: 'integer',
    arg: 'n',
    min: 3,
    help: 'products per batch in pool mode (an anchor, a close and a far product at least)',
    default: 96,
    inherit: true,
  },
  epochs: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'last epoch to train',
    default: 10,
    upstream: { default: '30' },
    inherit: true,
  },
  startEpoch: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'number of the first epoch (sets the lr decay position)',
    default: 1,
    upstream: { default: '1' },
  },
  lr: {
    type: 'number',
    arg: 'x',
    check: (n: number) => n > 0,
    rule: 'a positive number',
    help: 'Adam learning rate (we train from scratch; upstream fine-tunes a pretrained ResNet)',
    defaultText: `${LEARNING_RATES.csn} for csn and unconditional, ${LEARNING_RATES.asen} for asen`,
    upstream: { default: '5e-5' },
    inherit: true,
  },
  lrDecay: {
    type: 'number',
    arg: 'x',
    check: (n: number) => n >= 0 && n < 1,
    rule: 'in [0, 1)',
    help: "per-epoch decay: lr × (1 − x)^epoch, as the original code's adjust_learning_rate",
    default: 0.015,
    upstream: { default: 'no flag; compounded: lr × 0.985^(e(e+1)/2)' },
    inherit: true,
  },
  seed: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'random seed: same seed, same triplets, weights and metrics',
    default: d.seed,
    upstream: { default: '42' },
    inherit: true,
  },
  logInterval: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'steps between metrics lines',
    default: 20,
    upstream: { default: '20' },
    inherit: true,
  },
  margin: {
    type: 'number',
    arg: 'x',
    ...atLeastZero,
    help: 'margin of the triplet loss',
    default: d.margin,
    upstream: { default: '0.2' },
    inherit: true,
  },
  resume: {
    type: 'string',
    arg: 'path',
    help: 'continue from a checkpoint (weights, optimiser, epoch, rng, best so far)',
    upstream: { default: '–' },
  },
  name: {
    type: 'string',
    arg: 'name',
    help: 'run name',
    defaultText: "{model}_yyyymmdd_hhmmss; the checkpoint's run when resuming",
    upstream: { default: 'csn_yyyymmdd_hhmmss' },
  },
  embedLossCoeff: {
    type: 'number',
    arg: 'x',
    ...atLeastZero,
    help: 'weight of the embedding norm loss',
    default: 5e-3,
    upstream: { default: '5e-3' },
    inherit: true,
  },
  maskLossCoeff: {
    type: 'number',
    arg: 'x',
    ...atLeastZero,
    help: 'weight of the mask L1 norm loss',
    default: 5e-4,
    upstream: { default: '5e-4' },
    inherit: true,
  },
  trainTriplets: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'unique training triplets; in pool mode, triplets drawn per epoch',
    default: 36000,
    upstream: { default: '100000' },
    inherit: true,
  },
  valTriplets: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'unique validation triplets (0 = no validation)',
    default: 2000,
    upstream: { default: '20000' },
    inherit: true,
  },
  testTriplets: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'unique test triplets',
    default: d.testTriplets,
    upstream: { default: '40000' },
    inherit: true,
  },
  embedDim: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'embedding dimensions',
    default: 64,
    upstream: { default: '64' },
    inherit: true,
  },
  test: {
    type: 'switch',
    help: "only evaluate the --resume checkpoint (or --name's model_best) on the test split",
    default: false,
    upstream: { default: 'false' },
  },
  learned: {
    type: 'switch',
    help: 'learn masks from a random initialisation (default)',
    sets: 'maskMode',
    upstream: { default: 'on' },
    inherit: true,
  },
  prein: {
    type: 'switch',
    help: 'initialise masks to disjoint blocks (still trained)',
    sets: 'maskMode',
    conflicts: ['fixedMasks'],
    upstream: { default: 'off' },
    inherit: true,
  },
  fixedMasks: {
    type: 'switch',
    help: 'disjoint 0/1 masks, not trained (the paper\'s "fixed" CSN)',
    sets: 'maskMode',
    conflicts: ['learned'],
    inherit: true,
  },
  logDir: {
    type: 'string',
    arg: 'dir',
    help: 'folder that holds run folders',
    default: 'runs',
    upstream: { default: 'runs' },
  },
  conditions: {
    type: 'list',
    arg: 'names',
    help: 'similarity notions to train (names or upstream indices)',
    defaultText: 'all',
    upstream: { default: 'all' },
    inherit: true,
  },
  backend: {
    type: 'choice',
    arg: 'name',
    choices: BACKEND_PREFERENCES,
    help: 'tfjs backend: auto tries tfjs-node-gpu, tfjs-node, wasm, cpu',
    default: d.backend,
    upstream: { flag: '--cuda', default: 'true' },
  },
  model: {
    type: 'choice',
    arg: 'kind',
    choices: MODEL_KINDS,
    help: 'csn, asen, or the unconditional baseline (one shared embedding, no masks)',
    default: 'asen' as ModelKind,
    inherit: true,
  },
  backbone: {
    type: 'choice',
    arg: 'name',
    choices: BACKBONES,
    help: 'image network',
    default: 'small' as (typeof BACKBONES)[number],
    inherit: true,
  },
  imageSize: {
    type: 'integer',
    arg: 'px',
    min: 16,
    max: 512,
    help: 'square input side',
    default: TRAIN_IMAGE_SIZES.small,
    defaultText: 'per backbone: small 64, resnet18 112 as upstream',
    inherit: true,
  },
  width: {
    type: 'integer',
    arg: 'n',
    min: 1,
    max: 512,
    help: 'channels of the first backbone layer',
    defaultText: 'per backbone: small 16, resnet18 64 as upstream',
    inherit: true,
  },
  initWeights: {
    type: 'string',
    arg: 'file',
    help: 'start the backbone from a safetensors file with torchvision resnet18 names (conv1.weight, bn1.*, layer1.0…)',
  },
  attentionTanh: {
    type: 'switch',
    form: 'off',
    help: 'ASEN: no tanh on the spatial attention logits (upstream V2 style)',
    inherit: true,
  },
  selectOn: {
    type: 'choice',
    arg: 'metric',
    choices: SELECT_ON,
    help: 'validation metric that picks model_best',
    defaultText: 'map for asen as upstream, accuracy otherwise',
    inherit: true,
  },
  valEvery: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'validate every n epochs (the last epoch always)',
    default: 1,
    inherit: true,
  },
  checkpointEvery: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'also write checkpoint_latest every n steps (0 = at epoch ends only)',
    default: 0,
    inherit: true,
  },
  augment: {
    type: 'switch',
    form: 'off',
    help: 'no random horizontal flips of training images',
    default: true,
    inherit: true,
  },
  mapQueries: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'retrieval MAP queries per condition at test time',
    default: d.mapQueries,
    inherit: true,
  },
  overwrite: {
    type: 'switch',
    help: 'replace an existing run folder of the same name',
    default: false,
  },
  progress: { type: 'switch', form: 'off', help: 'no progress bar', default: true },
  colourHistogram: {
    type: 'switch',
    form: 'both',
    help: 'colour-histogram channels beside the backbone: a shape-free view of colour (model stage colour.ts)',
    default: true,
    inherit: true,
    absent: false,
  },
  labelLoss: {
    type: 'number',
    arg: 'x',
    ...atLeastZero,
    help: 'weight of the in-batch label loss: every image of a batch against every other, per condition (0 = off)',
    default: 1,
    inherit: true,
    absent: 0,
  },
  controlled: {
    type: 'number',
    arg: 'x',
    ...atLeastZero,
    help: "label loss: extra weight of negatives that share every other condition's label with the anchor",
    default: 8,
    inherit: true,
    absent: 0,
  },
  cuda: {
    type: 'switch',
    form: 'both',
    help: 'upstream flag: --cuda is --backend auto (tries tfjs-node-gpu first), --no-cuda is --backend wasm',
    hidden: true,
    upstream: { default: 'true' },
  },
  tensorboard: {
    type: 'switch',
    help: 'upstream flag, ignored: metrics.jsonl and metrics.png are always written',
    hidden: true,
    upstream: { default: 'off' },
  },
  visdom: {
    type: 'switch',
    help: 'upstream flag, ignored: metrics.jsonl and metrics.png are always written',
    hidden: true,
    upstream: { default: 'off' },
  },
} satisfies OptionTable;

/** Raw command-line values of `train` (mask flags and upstream aliases not yet folded into TrainOptions). */
export type TrainFlags = ValuesOf<typeof TRAIN_OPTIONS>;

/** Upstream flags that only alias an option of ours (folded into maskMode and backend by the resolver). */
type AliasFlag = 'learned' | 'prein' | 'fixedMasks' | 'cuda' | 'tensorboard' | 'visdom';

/** What the trainer runs with: every flag resolved (mask flags folded into maskMode, lr and name worked out). */
export type TrainOptions = Omit<TrainFlags, AliasFlag | 'name' | 'lr'> & {
  name: string;
  lr: number;
  maskMode: MaskMode;
};

/** Every default, including the ones the resolver works out (lr and mask mode of the default model). */
export const TRAIN_DEFAULTS = {
  ...defaultsOf(TRAIN_OPTIONS),
  lr: LEARNING_RATES.asen,
  maskMode: 'learned' as MaskMode,
};

/** Option keys a resumed run takes from its checkpoint unless they are given on the command line. */
export const INHERITED = inheritedKeys(TRAIN_OPTIONS) as (keyof TrainOptions)[];

/**
 * What a run continued from a checkpoint takes from the args it saved: every inherited option it recorded, and for
 * options the checkpoint predates, the behaviour before they existed (their `absent` value).
 */
export function inheritedFrom(saved: Partial<TrainOptions>): Partial<TrainOptions> {
  const absent = absentValues(TRAIN_OPTIONS) as Partial<TrainOptions>;
  const values = INHERITED.flatMap((key) =>
    saved[key] !== undefined ? [[key, saved[key]]] : key in absent ? [[key, absent[key]]] : [],
  );
  return Object.fromEntries(values) as Partial<TrainOptions>;
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

/** Checks that do not need the catalogue: each value against its row's rule, then the combinations. */
export function validateOptions(options: TrainOptions): void {
  // A test-only run trains nothing, so it may carry no training triplets.
  const values = options.test ? { ...options, trainTriplets: undefined } : options;
  const problem = firstProblem(TRAIN_OPTIONS, values);
  if (problem) throw new OptionsError(problem);
  if (options.startEpoch > options.epochs) {
    throw new OptionsError(
      `--start-epoch ${options.startEpoch} is after --epochs ${options.epochs}: nothing to train`,
    );
  }
  if (!/^[A-Za-z0-9._-]+$/.test(options.name) || options.name === '.' || options.name === '..') {
    throw new OptionsError(`--name "${options.name}" must be a plain folder name (letters, digits, . _ -)`);
  }
  if (options.initWeights !== undefined && options.resume) {
    throw new OptionsError('--init-weights starts a new run; a resumed run continues from its own weights');
  }
  if (options.test && !options.resume) {
    throw new OptionsError('--test evaluates a trained model: give it with --resume <checkpoint>');
  }
}
