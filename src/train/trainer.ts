/**
 * The training loop: triplet batches → Adam steps, validation each epoch, best and latest checkpoints, metrics log
 * and plot, and a final test from the best checkpoint. Deterministic for a seed, and resumable bit-for-bit.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import {
  ImageCache,
  deriveSeed,
  loadCatalogue,
  resolveConditions,
  restrictCatalogue,
  splitProducts,
  splitTriplets,
  type Catalogue,
  type ImageFit,
  type Triplet,
} from '../catalogue/index.ts';
import {
  readCheckpoint,
  writeCheckpoint,
  modelId,
  type AccuracySummary,
  type Checkpoint,
  type TrainingState,
} from '../checkpoint/index.ts';
import { BACKBONE_DEFAULTS, MODEL_DEFAULTS, preprocessOf } from '../model/defaults.ts';
import type { LossCoefficients, ModelConfig, SimilarityModel } from '../model/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { terminalBar } from '../util/progress.ts';
import { BEST_CHECKPOINT, LATEST_CHECKPOINT } from '../checkpoint/defaults.ts';
import {
  embedProducts,
  evaluateModel,
  formatReport,
  productsOf,
  retrievalFromProducts,
  retrievalMap,
  tripletAccuracy,
  type EvaluationReport,
} from '../eval/index.ts';
import { PoolSampler, buildBatch, disposeBatch, labelIdsOf } from './data.ts';
import { modelFromInitWeights } from './init-weights.ts';
import { MetricsLog, recordsBefore, type EpochRecord } from './metrics.ts';
import {
  createAdam,
  exportAdamState,
  importAdamState,
  learningRateForEpoch,
  setLearningRate,
} from './optimizer.ts';
import {
  OptionsError,
  defaultSelectOn,
  validateOptions,
  type SelectOn,
  type TrainOptions,
} from './options.ts';

/** The validation metric that picks model_best. */
function selectOn(options: TrainOptions): SelectOn {
  return options.selectOn ?? defaultSelectOn(options.model);
}
import { renderMetricsPlot } from './plot.ts';

export const RUN_FILES = {
  latest: LATEST_CHECKPOINT,
  best: BEST_CHECKPOINT,
  metrics: 'metrics.jsonl',
  plot: 'metrics.png',
  args: 'args.json',
  testResults: 'test_results.json',
} as const;

/** The loss stopped being a finite number: the settings (usually --lr) cannot train this model. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

export interface TrainHooks {
  logger?: Logger;
  /** Abort = stop request (SIGINT/SIGTERM): finish the current step, write checkpoint_latest, return. */
  signal?: AbortSignal;
  /** Where tables go (stdout by default); null for none. */
  out?: NodeJS.WritableStream | null;
  /** Called after every optimisation step (before the stop check, so a hook may request a stop). */
  onStep?: (progress: { epoch: number; step: number; globalStep: number; tripletLoss: number }) => void;
}

export interface TrainResult {
  runDir: string;
  interrupted: boolean;
  /** Last fully finished epoch. */
  epoch: number;
  globalStep: number;
  bestValAccuracy: number;
  bestEpoch: number;
  /** Test report (absent when interrupted). */
  test?: EvaluationReport;
  /** Training throughput over the whole run, triplets per second of step time. */
  tripletsPerSecond: number;
}

/** Running sums over an epoch (kept in checkpoints written mid-epoch so the epoch summary stays exact). */
interface EpochTotals {
  steps: number;
  triplets: number;
  correct: number;
  loss: number;
  tripletLoss: number;
  embedNorm: number;
  maskNorm: number;
  stepSeconds: number;
}

const emptyTotals = (): EpochTotals => ({
  steps: 0,
  triplets: 0,
  correct: 0,
  loss: 0,
  tripletLoss: 0,
  embedNorm: 0,
  maskNorm: 0,
  stepSeconds: 0,
});

interface StepResult {
  loss: number;
  tripletLoss: number;
  embedNorm: number;
  maskNorm: number;
  correct: number;
}

/** One optimisation step; returns the batch's loss parts. Tensors never outlive the call. */
async function trainStep(
  model: SimilarityModel,
  optimizer: tf.AdamOptimizer,
  variables: tf.Variable[],
  triplets: readonly Triplet[],
  images: ImageCache,
  coefficients: LossCoefficients,
  flipRng: Rng | undefined,
  labelIds: Int32Array[] | undefined,
): Promise<StepResult> {
  const batch = buildBatch(triplets, images, flipRng, labelIds);
  try {
    const outputs = tf.tidy(() => {
      let kept: tf.Tensor[] = [];
      const { value, grads } = tf.variableGrads(() => {
        const parts = model.loss(batch, coefficients, true);
        kept = [parts.triplet, parts.embedNorm, parts.maskNorm, tf.sum(parts.correct)].map((t) => tf.keep(t));
        return parts.total;
      }, variables);
      // Adam keys its moments by position: always pass the gradients in the same variable order.
      optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      return [value, ...kept];
    });
    const values = await Promise.all(outputs.map(async (t) => (await t.data())[0]));
    tf.dispose(outputs);
    const [loss, tripletLoss, embedNorm, maskNorm, correct] = values;
    return { loss, tripletLoss, embedNorm, maskNorm, correct };
  } finally {
    disposeBatch(batch);
  }
}

/** Merge a run's model settings with the checkpoint it resumes from; a conflicting explicit flag is an error. */
function modelConfigFor(options: TrainOptions, conditions: string[], checkpoint?: Checkpoint): ModelConfig {
  const wanted: ModelConfig = {
    kind: options.model,
    backbone: options.backbone,
    imageSize: options.imageSize,
    embedDim: options.embedDim,
    conditions,
    maskMode: options.model === 'csn' ? options.maskMode : 'learned',
    seed: options.seed,
    ...(options.width !== undefined ? { width: options.width } : {}),
    attentionTanh: options.attentionTanh ?? MODEL_DEFAULTS.attentionTanh,
    colourHistogram: options.colourHistogram,
  };
  if (!checkpoint) return wanted;
  const saved = checkpoint.model.config;
  const clashes = (['kind', 'backbone', 'imageSize', 'embedDim', 'maskMode', 'width'] as const).filter(
    (key) => wanted[key] !== undefined && wanted[key] !== saved[key],
  );
  if (saved.conditions.join(',') !== conditions.join(',')) {
    throw new OptionsError(
      `--conditions ${conditions.join(' ')} differ from the checkpoint's conditions (${saved.conditions.join(' ')})`,
    );
  }
  if (clashes.length > 0) {
    throw new OptionsError(
      `the checkpoint was trained with ${clashes.map((k) => `${k}=${saved[k]}`).join(', ')}; ` +
        `it cannot continue with ${clashes.map((k) => `${k}=${wanted[k]}`).join(', ')}`,
    );
  }
  return saved;
}

async function loadData(options: TrainOptions, requested: string[] | undefined, log: Logger, fit: ImageFit) {
  const full = await loadCatalogue(options.dataDir);
  const conditions = resolveConditions(requested, full.conditions);
  const catalogue = restrictCatalogue(full, conditions);
  log.info(
    { catalogue: catalogue.name, products: catalogue.products.length, conditions },
    `catalogue ${catalogue.name}: ${catalogue.products.length} products`,
  );
  const started = performance.now();
  const images = await ImageCache.load(catalogue, options.imageSize, { fit });
  log.info(
    {
      images: images.count,
      size: options.imageSize,
      seconds: +((performance.now() - started) / 1000).toFixed(1),
    },
    'images decoded',
  );
  return { catalogue, images };
}

function accuracyText(summary: AccuracySummary): string {
  return Object.entries(summary.perCondition)
    .map(([name, entry]) => `${name} ${(100 * entry.accuracy).toFixed(1)}%`)
    .join(', ');
}

async function createBar(enabled: boolean) {
  if (!enabled) return undefined;
  return terminalBar(
    'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | acc {acc}% | {tps} triplets/s | eta {eta_formatted}',
  );
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove temp files of atomic writes that a killed trainer left in the run folder (their writer is gone). */
async function removeStaleTempFiles(runDir: string, log: Logger): Promise<void> {
  const names = new Set<string>(Object.values(RUN_FILES));
  for (const entry of await readdir(runDir)) {
    const match = /^\.(.+)\.(\d+)\.\d+\.tmp$/.exec(entry);
    if (!match || !names.has(match[1]) || processAlive(Number(match[2]))) continue;
    await rm(join(runDir, entry), { force: true });
    log.info({ file: entry }, 'removed a temp file left by an interrupted write');
  }
}

/** Evaluate a finished model on the test split and write `test_results.json`. */
async function runTest(
  model: SimilarityModel,
  catalogue: Catalogue,
  images: ImageCache,
  options: TrainOptions,
  source: { checkpoint: string; epoch?: number; id: string },
  runDir: string,
  out: NodeJS.WritableStream | null,
): Promise<EvaluationReport> {
  const partial = await evaluateModel(model, catalogue, images, {
    split: 'test',
    triplets: options.testTriplets,
    seed: options.seed,
    margin: options.margin,
    mapQueries: options.mapQueries,
  });
  const report: EvaluationReport = {
    ...partial,
    model: { kind: model.config.kind, id: source.id, checkpoint: source.checkpoint, epoch: source.epoch },
  };
  await writeFileAtomic(join(runDir, RUN_FILES.testResults), `${JSON.stringify(report, null, 2)}\n`);
  out?.write(`${formatReport(report)}\n`);
  return report;
}

/** `train --test`: evaluate the checkpoint given with --resume on the test split. */
async function testOnly(options: TrainOptions, checkpoint: Checkpoint, runDir: string, hooks: TrainHooks) {
  const log = hooks.logger ?? createLogger('train');
  const { selectBackend, restoreModel } = await import('../model/index.ts');
  await selectBackend(options.backend, log);
  const config = checkpoint.model.config;
  const { catalogue, images } = await loadData(
    { ...options, imageSize: config.imageSize },
    config.conditions,
    log,
    preprocessOf(config),
  );
  const model = restoreModel(checkpoint.model);
  try {
    await mkdir(runDir, { recursive: true });
    const test = await runTest(
      model,
      catalogue,
      images,
      options,
      {
        checkpoint: resolve(options.resume!),
        epoch: checkpoint.training?.bestEpoch,
        id: modelId(checkpoint.model),
      },
      runDir,
      hooks.out === undefined ? process.stdout : hooks.out,
    );
    return test;
  } finally {
    model.dispose();
  }
}

/** Train (or with options.test, only evaluate). See TrainOptions for every setting. */
export async function train(options: TrainOptions, hooks: TrainHooks = {}): Promise<TrainResult> {
  validateOptions(options);
  const log = hooks.logger ?? createLogger('train');
  const runDir = join(options.logDir, options.name);
  const resumed = options.resume ? await readCheckpoint(options.resume) : undefined;
  if (options.test) return testResult(options, resumed!, runDir, hooks);
  checkCanStart(options, runDir, resumed);
  const run = await prepareRun(options, hooks, log, runDir, resumed);
  // The model and optimiser hold backend memory: dispose of them however the run ends.
  try {
    return await runTraining(run);
  } finally {
    run.optimizer.dispose();
    run.model.dispose();
  }
}

/** `train --test`: the test report of the --resume checkpoint, with the training state it carries. */
async function testResult(
  options: TrainOptions,
  resumed: Checkpoint,
  runDir: string,
  hooks: TrainHooks,
): Promise<TrainResult> {
  const test = await testOnly(options, resumed, runDir, hooks);
  return {
    runDir,
    interrupted: false,
    epoch: resumed.training?.epoch ?? 0,
    globalStep: resumed.training?.globalStep ?? 0,
    bestValAccuracy: resumed.training?.bestValAccuracy ?? 0,
    bestEpoch: resumed.training?.bestEpoch ?? 0,
    test,
    tripletsPerSecond: 0,
  };
}

/** A resumed checkpoint must carry training state; a new run must not overwrite another one by accident. */
function checkCanStart(options: TrainOptions, runDir: string, resumed: Checkpoint | undefined): void {
  if (resumed && !resumed.training) {
    throw new OptionsError(
      `${options.resume} holds no training state (a model export?): it cannot be resumed`,
    );
  }
  if (!resumed && !options.overwrite && existsSync(join(runDir, RUN_FILES.latest))) {
    throw new OptionsError(
      `run folder ${runDir} already holds a run: continue it with --resume ${join(runDir, RUN_FILES.latest)}, ` +
        'choose another --name, or pass --overwrite',
    );
  }
}

/** The triplets a run trains and validates on, and how its batches are drawn. */
interface TrainingData {
  batchMode: TrainOptions['batchMode'];
  /** The fixed training list ('triplets' mode; empty in 'pool' mode). */
  trainTriplets: Triplet[];
  /** Draws each batch among a pool of products ('pool' mode only). */
  sampler?: PoolSampler;
  valTriplets: Triplet[];
  tripletsPerEpoch: number;
  /** Label ids per condition and product, when the label loss is on. */
  labelIds?: Int32Array[];
}

/** What a run holds from start to end: settings, data, model and optimiser. */
interface Run {
  options: TrainOptions;
  hooks: TrainHooks;
  log: Logger;
  out: NodeJS.WritableStream | null;
  runDir: string;
  resumed?: Checkpoint;
  /** The tfjs backend really in use. */
  backend: string;
  catalogue: Catalogue;
  images: ImageCache;
  config: ModelConfig;
  data: TrainingData;
  model: SimilarityModel;
  variables: tf.Variable[];
  optimizer: tf.AdamOptimizer;
}

type ProgressBar = Awaited<ReturnType<typeof createBar>>;

/** A run once its folder is open: the state checkpoints save, the metrics log and running throughput sums. */
interface Session extends Run {
  state: TrainingState;
  /** The run's flags as written to args.json and into every checkpoint. */
  args: Record<string, unknown>;
  metrics: MetricsLog;
  coefficients: LossCoefficients;
  bar: ProgressBar;
  stepsPerEpoch: number;
  stepSecondsTotal: number;
  stepTripletsTotal: number;
  lastEpochDone: number;
}

/** One epoch in progress: its random draws (all from the state at its start), learning rate and sums. */
interface EpochRun {
  epoch: number;
  /** Trainer RNG state at the start of the epoch; a mid-epoch checkpoint stores it to redraw the same batches. */
  epochStart: number[];
  rng: Rng;
  order: number[];
  flipSeed: number;
  poolSeed: number;
  learningRate: number;
  totals: EpochTotals;
  firstStep: number;
}

async function prepareRun(
  options: TrainOptions,
  hooks: TrainHooks,
  log: Logger,
  runDir: string,
  resumed: Checkpoint | undefined,
): Promise<Run> {
  const { selectBackend, createModel, restoreModel } = await import('../model/index.ts');
  const backend = await selectBackend(options.backend, log);
  const requestedConditions = resumed ? resumed.model.config.conditions : options.conditions;
  const fit = resumed ? preprocessOf(resumed.model.config) : BACKBONE_DEFAULTS[options.backbone].preprocess;
  const { catalogue, images } = await loadData(options, requestedConditions, log, fit);
  const config = modelConfigFor(options, catalogue.conditions, resumed);
  const data = prepareTriplets(options, catalogue, log);
  const model = resumed
    ? restoreModel(resumed.model)
    : options.initWeights
      ? (await modelFromInitWeights(config, options.initWeights, log)).model
      : createModel(config);
  const variables = model.trainableVariables();
  const optimizer = createAdam(options.lr);
  const out = hooks.out === undefined ? process.stdout : hooks.out;
  return {
    options,
    hooks,
    log,
    out,
    runDir,
    resumed,
    backend,
    catalogue,
    images,
    config,
    data,
    model,
    variables,
    optimizer,
  };
}

function prepareTriplets(options: TrainOptions, catalogue: Catalogue, log: Logger): TrainingData {
  // Shipped triplet lists (imported upstream layouts) are the training data as given: no pools then.
  const shipped = (catalogue.triplets?.train?.length ?? 0) > 0;
  const batchMode = shipped ? 'triplets' : options.batchMode;
  if (shipped && options.batchMode === 'pool')
    log.info('the catalogue ships training triplets: training on them');
  const trainTriplets =
    batchMode === 'triplets'
      ? splitTriplets(
          catalogue,
          { split: 'train', count: options.trainTriplets, anchors: options.anchors },
          options.seed,
        )
      : [];
  const sampler =
    batchMode === 'pool'
      ? new PoolSampler(catalogue, splitProducts(catalogue, 'train'), options.poolSize, {
          anchors: options.anchors,
        })
      : undefined;
  const valTriplets = splitTriplets(
    catalogue,
    { split: 'val', count: options.valTriplets, anchors: options.anchors },
    options.seed,
  );
  if (batchMode === 'triplets' ? trainTriplets.length === 0 : !sampler!.usable()) {
    throw new OptionsError(
      `no training triplets in ${options.dataDir}: the train split needs a condition with a label shared by two ` +
        'products and another label',
    );
  }
  const tripletsPerEpoch = batchMode === 'triplets' ? trainTriplets.length : options.trainTriplets;
  log.info(
    {
      batchMode,
      trainPerEpoch: tripletsPerEpoch,
      val: valTriplets.length,
      poolSize: sampler ? options.poolSize : undefined,
    },
    'triplets ready',
  );
  const labelIds = options.labelLoss > 0 ? labelIdsOf(catalogue) : undefined;
  return { batchMode, trainTriplets, sampler, valTriplets, tripletsPerEpoch, labelIds };
}

/** The epochs from the state on, then the test (or the record of an interruption). */
async function runTraining(run: Run): Promise<TrainResult> {
  const session = await openSession(run);
  const { options, state } = session;
  if (state.epoch > options.epochs) {
    run.log.warn(
      { epoch: state.epoch - 1, epochs: options.epochs },
      `the checkpoint has already finished epoch ${state.epoch - 1}: nothing to train (raise --epochs to continue)`,
    );
  }
  let interrupted = false;
  try {
    for (let epoch = state.epoch; epoch <= options.epochs && !interrupted; epoch++) {
      interrupted = await runEpoch(session, epoch);
    }
    return interrupted ? finishInterrupted(session) : await finishRun(session);
  } finally {
    session.bar?.stop();
    session.metrics.close();
  }
}

/** Training state (fresh or resumed), the run folder with args.json, and the metrics log with its first event. */
async function openSession(run: Run): Promise<Session> {
  const { options, resumed, runDir, backend } = run;
  const state: TrainingState = resumed?.training
    ? { ...resumed.training }
    : {
        epoch: options.startEpoch,
        stepInEpoch: 0,
        globalStep: 0,
        rngState: new Rng(deriveSeed(options.seed, 'train')).state(),
        bestValAccuracy: -1,
        bestEpoch: 0,
      };
  if (resumed?.optimizer) await importAdamState(run.optimizer, resumed.optimizer, run.variables);

  await mkdir(runDir, { recursive: true });
  await removeStaleTempFiles(runDir, run.log);
  const args = {
    ...options,
    resume: options.resume ?? null,
    backend: options.backend,
    activeBackend: backend,
  };
  await writeFileAtomic(join(runDir, RUN_FILES.args), `${JSON.stringify(args, null, 2)}\n`);
  const metrics = await MetricsLog.open(join(runDir, RUN_FILES.metrics), (records) =>
    resumed ? recordsBefore(records, state.globalStep, state.epoch) : [],
  );
  metrics.append({
    type: 'event',
    event: resumed ? 'resume' : 'start',
    globalStep: state.globalStep,
    detail: { backend, epoch: state.epoch, stepInEpoch: state.stepInEpoch, from: options.resume ?? null },
    time: new Date().toISOString(),
  });
  const coefficients: LossCoefficients = {
    margin: options.margin,
    embedLoss: options.embedLossCoeff,
    maskLoss: options.maskLossCoeff,
    labelLoss: options.labelLoss,
    controlled: options.controlled,
  };
  return {
    ...run,
    state,
    args,
    metrics,
    coefficients,
    bar: await createBar(options.progress),
    stepsPerEpoch: Math.ceil(run.data.tripletsPerEpoch / options.batchSize),
    stepSecondsTotal: 0,
    stepTripletsTotal: 0,
    lastEpochDone: state.epoch - 1,
  };
}

/** One epoch's steps and, when it completes, its end (validation, checkpoints). Returns whether the run stops. */
async function runEpoch(session: Session, epoch: number): Promise<boolean> {
  const run = beginEpoch(session, epoch);
  session.bar?.start(session.stepsPerEpoch, run.firstStep, { epoch, loss: '-', acc: '-', tps: '-' });
  for (let step = run.firstStep; step < session.stepsPerEpoch; step++) {
    if (await runStep(session, run, step)) {
      session.bar?.stop();
      return true;
    }
  }
  session.bar?.stop();
  await endEpoch(session, run);
  return session.hooks.signal?.aborted === true && epoch < session.options.epochs;
}

function beginEpoch(session: Session, epoch: number): EpochRun {
  const { state, options } = session;
  state.epoch = epoch;
  // The epoch's shuffle and flip seed are drawn from this state; a mid-epoch checkpoint stores it to redraw them.
  const epochStart = state.rngState;
  const rng = new Rng(0, epochStart);
  const order = rng.shuffle(session.data.trainTriplets.map((_, i) => i));
  const flipSeed = rng.int(0, 0x7fffffff);
  const poolSeed = rng.int(0, 0x7fffffff);
  const learningRate = learningRateForEpoch(options.lr, options.lrDecay, epoch);
  setLearningRate(session.optimizer, learningRate);
  const totals: EpochTotals =
    state.stepInEpoch > 0 && state.epochTotals ? { ...emptyTotals(), ...state.epochTotals } : emptyTotals();
  return {
    epoch,
    epochStart,
    rng,
    order,
    flipSeed,
    poolSeed,
    learningRate,
    totals,
    firstStep: state.stepInEpoch,
  };
}

/** The triplets of one step: drawn from a pool, or the next slice of the epoch's shuffled list. */
function batchFor(session: Session, run: EpochRun, step: number): Triplet[] {
  const { options, data } = session;
  const batch = data.sampler
    ? data.sampler.sample(
        Math.min(options.batchSize, data.tripletsPerEpoch - step * options.batchSize),
        new Rng(deriveSeed(run.poolSeed, `pool/${step}`)),
      )
    : run.order
        .slice(step * options.batchSize, (step + 1) * options.batchSize)
        .map((i) => data.trainTriplets[i]);
  if (batch.length === 0) throw new Error(`step ${step + 1} of epoch ${run.epoch} found no triplets`);
  return batch;
}

/** One step: the Adam update, its sums and reports, then a checkpoint when stopping or due. Returns whether to stop. */
async function runStep(session: Session, run: EpochRun, step: number): Promise<boolean> {
  const { options, state } = session;
  const batchTriplets = batchFor(session, run, step);
  const flipRng = options.augment ? new Rng(deriveSeed(run.flipSeed, `flip/${step}`)) : undefined;
  const started = performance.now();
  const result = await trainStep(
    session.model,
    session.optimizer,
    session.variables,
    batchTriplets,
    session.images,
    session.coefficients,
    flipRng,
    session.data.labelIds,
  );
  const seconds = (performance.now() - started) / 1000;
  if (!Number.isFinite(result.loss)) {
    throw new TrainingDivergedError(
      `loss became ${result.loss} at epoch ${run.epoch} step ${step + 1}: lower --lr (now ${options.lr}); ` +
        `the last good checkpoint is ${join(session.runDir, RUN_FILES.latest)}`,
    );
  }
  addStep(session, run, result, batchTriplets.length, seconds);
  state.stepInEpoch = step + 1;
  reportStep(session, run, step, result, batchTriplets.length, seconds);
  // Let signal handlers run between steps (a step is synchronous work on the wasm/cpu backends).
  await new Promise((done) => setImmediate(done));
  const stop = session.hooks.signal?.aborted === true;
  const periodic = options.checkpointEvery > 0 && state.globalStep % options.checkpointEvery === 0;
  if (stop || (periodic && step < session.stepsPerEpoch - 1)) {
    await saveLatest(session, { ...state, rngState: run.epochStart, epochTotals: { ...run.totals } });
  }
  return stop;
}

function addStep(session: Session, run: EpochRun, result: StepResult, n: number, seconds: number): void {
  const totals = run.totals;
  totals.steps++;
  totals.triplets += n;
  totals.correct += result.correct;
  totals.loss += result.loss * n;
  totals.tripletLoss += result.tripletLoss * n;
  totals.embedNorm += result.embedNorm * n;
  totals.maskNorm += result.maskNorm * n;
  totals.stepSeconds += seconds;
  session.stepSecondsTotal += seconds;
  session.stepTripletsTotal += n;
  session.state.globalStep++;
}

/** The progress bar, a metrics line every --log-interval steps, and the onStep hook. */
function reportStep(
  session: Session,
  run: EpochRun,
  step: number,
  result: StepResult,
  n: number,
  seconds: number,
): void {
  const { options, state, stepsPerEpoch } = session;
  const { epoch, totals } = run;
  session.bar?.update(step + 1, {
    epoch,
    loss: result.tripletLoss.toFixed(4),
    acc: ((100 * totals.correct) / totals.triplets).toFixed(1),
    tps: (totals.triplets / Math.max(totals.stepSeconds, 1e-9)).toFixed(0),
  });
  // Upstream logs at batch_idx % log_interval == 0: the first step and every log-interval after it.
  if (step % options.logInterval === 0 || step === stepsPerEpoch - 1) {
    session.metrics.append({
      type: 'step',
      epoch,
      step: step + 1,
      steps: stepsPerEpoch,
      globalStep: state.globalStep,
      learningRate: run.learningRate,
      loss: result.loss,
      tripletLoss: result.tripletLoss,
      embedNorm: result.embedNorm,
      maskNorm: result.maskNorm,
      accuracy: result.correct / n,
      epochLoss: totals.tripletLoss / totals.triplets,
      epochAccuracy: totals.correct / totals.triplets,
      tripletsPerSecond: n / Math.max(seconds, 1e-9),
      time: new Date().toISOString(),
    });
  }
  session.hooks.onStep?.({
    epoch,
    step: step + 1,
    globalStep: state.globalStep,
    tripletLoss: result.tripletLoss,
  });
}

async function saveLatest(
  session: Session,
  training: TrainingState,
  metricsSummary?: Checkpoint['metrics'],
): Promise<void> {
  await writeCheckpoint(join(session.runDir, RUN_FILES.latest), {
    model: session.model.snapshot(),
    optimizer: await exportAdamState(session.optimizer, session.variables),
    training,
    args: session.args,
    metrics: metricsSummary,
  });
}

async function redrawPlot(session: Session): Promise<void> {
  try {
    const png = await renderMetricsPlot(
      session.metrics.records,
      `${session.options.name} (${session.config.kind})`,
    );
    await writeFileAtomic(join(session.runDir, RUN_FILES.plot), png);
  } catch (error) {
    session.log.warn({ err: error }, 'could not draw metrics.png');
  }
}

/** Validation triplet accuracy at the end of an epoch, when this epoch validates (every --val-every, and the last). */
async function validateEpoch(
  session: Session,
  epoch: number,
): Promise<(AccuracySummary & { loss: number; map?: number }) | undefined> {
  const { options, data } = session;
  const validate =
    data.valTriplets.length > 0 &&
    ((epoch - options.startEpoch + 1) % options.valEvery === 0 || epoch === options.epochs);
  if (!validate) return undefined;
  // Selecting on MAP (ASEN, as upstream) ranks the val products too; accuracy needs only the triplets' images.
  const protocol =
    selectOn(options) === 'map'
      ? retrievalFromProducts(session.catalogue, splitProducts(session.catalogue, 'val'), {
          maxQueries: options.mapQueries,
          rng: new Rng(deriveSeed(options.seed, 'map/val')),
        })
      : [];
  const vectors = await embedProducts(session.model, session.images, productsOf(data.valTriplets, protocol));
  const summary = tripletAccuracy(vectors, data.valTriplets, session.catalogue.conditions, options.margin);
  if (protocol.length === 0) return { ...summary, loss: summary.loss ?? 0 };
  const map = retrievalMap(vectors, protocol, session.catalogue.conditions, 'split').overall.map;
  return { ...summary, loss: summary.loss ?? 0, map };
}

/** End of epoch: validate, keep the best, then the latest (best first: a crash in between re-runs the epoch). */
async function endEpoch(session: Session, run: EpochRun): Promise<void> {
  const { state, metrics, runDir } = session;
  const { epoch, totals } = run;
  const val = await validateEpoch(session, epoch);
  const isBest =
    val !== undefined &&
    (val.map !== undefined ? val.map > (state.bestValMap ?? -1) : val.overall > state.bestValAccuracy);
  if (isBest && val) {
    state.bestValAccuracy = val.overall;
    if (val.map !== undefined) state.bestValMap = val.map;
    state.bestEpoch = epoch;
  }
  const trainAccuracy = totals.correct / totals.triplets;
  const trainLoss = totals.tripletLoss / totals.triplets;
  const record: EpochRecord = {
    type: 'epoch',
    epoch,
    globalStep: state.globalStep,
    learningRate: run.learningRate,
    trainLoss: totals.loss / totals.triplets,
    trainTripletLoss: trainLoss,
    trainAccuracy,
    embedNorm: totals.embedNorm / totals.triplets,
    maskNorm: totals.maskNorm / totals.triplets,
    ...(val ? { val } : {}),
    best: isBest,
    bestValAccuracy: state.bestValAccuracy,
    seconds: totals.stepSeconds,
    tripletsPerSecond: totals.triplets / Math.max(totals.stepSeconds, 1e-9),
    time: new Date().toISOString(),
  };
  metrics.append(record);
  metrics.sync();
  const summary = { val, trainLoss, trainAccuracy };
  const next: TrainingState = {
    epoch: epoch + 1,
    stepInEpoch: 0,
    globalStep: state.globalStep,
    rngState: run.rng.state(),
    bestValAccuracy: state.bestValAccuracy,
    ...(state.bestValMap !== undefined ? { bestValMap: state.bestValMap } : {}),
    bestEpoch: state.bestEpoch,
  };
  if (isBest) {
    await writeCheckpoint(join(runDir, RUN_FILES.best), {
      model: session.model.snapshot(),
      training: next,
      args: session.args,
      metrics: summary,
    });
  }
  await saveLatest(session, next, summary);
  Object.assign(state, next);
  delete state.epochTotals;
  session.lastEpochDone = epoch;
  logEpoch(session, record, val);
  await redrawPlot(session);
}

function logEpoch(session: Session, record: EpochRecord, val: AccuracySummary | undefined): void {
  const { epoch, trainTripletLoss: trainLoss, trainAccuracy, best: isBest } = record;
  session.log.info(
    {
      epoch,
      trainLoss: +trainLoss.toFixed(4),
      trainAccuracy: +trainAccuracy.toFixed(4),
      valAccuracy: val ? +val.overall.toFixed(4) : undefined,
      best: isBest,
      tripletsPerSecond: Math.round(record.tripletsPerSecond),
    },
    `epoch ${epoch}/${session.options.epochs}: train loss ${trainLoss.toFixed(4)}, acc ${(100 * trainAccuracy).toFixed(1)}%` +
      (val
        ? `; val acc ${(100 * val.overall).toFixed(1)}% (${accuracyText(val)})${isBest ? ' *best*' : ''}`
        : ''),
  );
}

function resultOf(session: Session, interrupted: boolean, test?: EvaluationReport): TrainResult {
  const { state } = session;
  return {
    runDir: session.runDir,
    interrupted,
    epoch: session.lastEpochDone,
    globalStep: state.globalStep,
    bestValAccuracy: state.bestValAccuracy,
    bestEpoch: state.bestEpoch,
    ...(test ? { test } : {}),
    tripletsPerSecond: session.stepTripletsTotal / Math.max(session.stepSecondsTotal, 1e-9),
  };
}

function finishInterrupted(session: Session): TrainResult {
  const { state, runDir } = session;
  session.metrics.append({
    type: 'event',
    event: 'interrupted',
    globalStep: state.globalStep,
    detail: { epoch: state.epoch, stepInEpoch: state.stepInEpoch },
    time: new Date().toISOString(),
  });
  session.log.warn(
    { checkpoint: join(runDir, RUN_FILES.latest) },
    `interrupted: state saved; continue with --resume ${join(runDir, RUN_FILES.latest)}`,
  );
  return resultOf(session, true);
}

/** Test the best model (as upstream recommends), or the final one when nothing was validated. */
/** The best checkpoint carries its own test scores, so that whoever serves it can say how good each condition is. */
async function recordTestInBest(bestPath: string, test: EvaluationReport): Promise<void> {
  const best = await readCheckpoint(bestPath);
  const retrieval = test.retrieval;
  const testMap = retrieval && {
    overall: retrieval.overall.map,
    perCondition: Object.fromEntries(Object.entries(retrieval.perCondition).map(([c, r]) => [c, r.map])),
  };
  await writeCheckpoint(bestPath, {
    ...best,
    metrics: { ...best.metrics, test: test.triplets, ...(testMap ? { testMap } : {}) },
  });
}

async function finishRun(session: Session): Promise<TrainResult> {
  const { state, runDir, model, metrics } = session;
  const { restoreModel } = await import('../model/index.ts');
  const bestPath = join(runDir, RUN_FILES.best);
  const fromBest = state.bestEpoch > 0 && existsSync(bestPath);
  const testModel = fromBest ? restoreModel((await readCheckpoint(bestPath)).model) : model;
  const epoch = fromBest ? state.bestEpoch : session.lastEpochDone;
  let test: EvaluationReport;
  try {
    const snapshot = testModel.snapshot();
    test = await runTest(
      testModel,
      session.catalogue,
      session.images,
      session.options,
      {
        checkpoint: resolve(fromBest ? bestPath : join(runDir, RUN_FILES.latest)),
        epoch,
        id: modelId(snapshot),
      },
      runDir,
      session.out,
    );
  } finally {
    if (testModel !== model) testModel.dispose();
  }
  if (fromBest) await recordTestInBest(bestPath, test);
  metrics.append({
    type: 'test',
    epoch,
    test: { ...test.triplets, loss: test.triplets.loss ?? 0 },
    time: new Date().toISOString(),
  });
  metrics.append({
    type: 'event',
    event: 'finished',
    globalStep: state.globalStep,
    time: new Date().toISOString(),
  });
  return resultOf(session, false, test);
}
