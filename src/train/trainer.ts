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
import type { LossCoefficients, ModelConfig, SimilarityModel } from '../model/index.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import { createLogger, type Logger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { embedProducts, productsOf, tripletAccuracy } from '../eval/evaluate.ts';
import { evaluateModel, formatReport, type EvaluationReport } from '../eval/report.ts';
import { PoolSampler, buildBatch, disposeBatch } from './data.ts';
import { MetricsLog, recordsBefore, type EpochRecord } from './metrics.ts';
import {
  createAdam,
  exportAdamState,
  importAdamState,
  learningRateForEpoch,
  setLearningRate,
} from './optimizer.ts';
import { OptionsError, validateOptions, type TrainOptions } from './options.ts';
import { renderMetricsPlot } from './plot.ts';

export const RUN_FILES = {
  latest: 'checkpoint_latest.dmck',
  best: 'model_best.dmck',
  metrics: 'metrics.jsonl',
  plot: 'metrics.png',
  args: 'args.json',
  testResults: 'test_results.json',
} as const;

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
): Promise<StepResult> {
  const batch = buildBatch(triplets, images, flipRng);
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

async function loadData(options: TrainOptions, requested: string[] | undefined, log: Logger) {
  const full = await loadCatalogue(options.dataDir);
  const conditions = resolveConditions(requested, full.conditions);
  const catalogue = restrictCatalogue(full, conditions);
  log.info(
    { catalogue: catalogue.name, products: catalogue.products.length, conditions },
    `catalogue ${catalogue.name}: ${catalogue.products.length} products`,
  );
  const started = performance.now();
  const images = await ImageCache.load(catalogue, options.imageSize);
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
  if (!enabled || !process.stderr.isTTY) return undefined;
  const { default: cliProgress } = await import('cli-progress');
  return new cliProgress.SingleBar(
    {
      format:
        'epoch {epoch} |{bar}| {value}/{total} steps | loss {loss} | acc {acc}% | {tps} triplets/s | eta {eta_formatted}',
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 50,
    },
    cliProgress.Presets.shades_classic,
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
  const out = hooks.out === undefined ? process.stdout : hooks.out;
  const runDir = join(options.logDir, options.name);
  const resumed = options.resume ? await readCheckpoint(options.resume) : undefined;

  if (options.test) {
    const test = await testOnly(options, resumed!, runDir, hooks);
    const epoch = resumed!.training?.epoch ?? 0;
    return {
      runDir,
      interrupted: false,
      epoch,
      globalStep: resumed!.training?.globalStep ?? 0,
      bestValAccuracy: resumed!.training?.bestValAccuracy ?? 0,
      bestEpoch: resumed!.training?.bestEpoch ?? 0,
      test,
      tripletsPerSecond: 0,
    };
  }
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

  const { selectBackend, createModel, restoreModel } = await import('../model/index.ts');
  const backend = await selectBackend(options.backend, log);
  const requestedConditions = resumed ? resumed.model.config.conditions : options.conditions;
  const { catalogue, images } = await loadData(options, requestedConditions, log);
  const config = modelConfigFor(options, catalogue.conditions, resumed);

  // Shipped triplet lists (imported upstream layouts) are the training data as given: no pools then.
  const shipped = (catalogue.triplets?.train?.length ?? 0) > 0;
  const batchMode = shipped ? 'triplets' : options.batchMode;
  if (shipped && options.batchMode === 'pool')
    log.info('the catalogue ships training triplets: training on them');
  const trainTriplets =
    batchMode === 'triplets' ? splitTriplets(catalogue, 'train', options.trainTriplets, options.seed) : [];
  const sampler =
    batchMode === 'pool'
      ? new PoolSampler(catalogue, splitProducts(catalogue, 'train'), options.poolSize)
      : undefined;
  const valTriplets = splitTriplets(catalogue, 'val', options.valTriplets, options.seed);
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

  const model = resumed ? restoreModel(resumed.model) : createModel(config);
  const variables = model.trainableVariables();
  const optimizer = createAdam(options.lr);
  // The model and optimiser hold backend memory: dispose of them however the run ends.
  try {
    return await runTraining();
  } finally {
    optimizer.dispose();
    model.dispose();
  }

  async function runTraining(): Promise<TrainResult> {
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
    if (resumed?.optimizer) await importAdamState(optimizer, resumed.optimizer, variables);

    await mkdir(runDir, { recursive: true });
    await removeStaleTempFiles(runDir, log);
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
    };
    const bar = await createBar(options.progress);
    const stepsPerEpoch = Math.ceil(tripletsPerEpoch / options.batchSize);
    let stepSecondsTotal = 0;
    let stepTripletsTotal = 0;
    let lastEpochDone = state.epoch - 1;

    const saveLatest = async (training: TrainingState, metricsSummary?: Checkpoint['metrics']) => {
      await writeCheckpoint(join(runDir, RUN_FILES.latest), {
        model: model.snapshot(),
        optimizer: await exportAdamState(optimizer, variables),
        training,
        args,
        metrics: metricsSummary,
      });
    };
    const redrawPlot = async () => {
      try {
        const png = await renderMetricsPlot(metrics.records, `${options.name} (${config.kind})`);
        await writeFileAtomic(join(runDir, RUN_FILES.plot), png);
      } catch (error) {
        log.warn({ err: error }, 'could not draw metrics.png');
      }
    };

    if (state.epoch > options.epochs) {
      log.warn(
        { epoch: state.epoch - 1, epochs: options.epochs },
        `the checkpoint has already finished epoch ${state.epoch - 1}: nothing to train (raise --epochs to continue)`,
      );
    }
    let interrupted = false;
    try {
      for (let epoch = state.epoch; epoch <= options.epochs && !interrupted; epoch++) {
        state.epoch = epoch;
        // The epoch's shuffle and flip seed are drawn from this state; a mid-epoch checkpoint stores it to redraw them.
        const epochStart = state.rngState;
        const rng = new Rng(0, epochStart);
        const order = rng.shuffle(trainTriplets.map((_, i) => i));
        const flipSeed = rng.int(0, 0x7fffffff);
        const poolSeed = rng.int(0, 0x7fffffff);
        const learningRate = learningRateForEpoch(options.lr, options.lrDecay, epoch);
        setLearningRate(optimizer, learningRate);
        const totals: EpochTotals =
          state.stepInEpoch > 0 && state.epochTotals
            ? { ...emptyTotals(), ...state.epochTotals }
            : emptyTotals();
        const firstStep = state.stepInEpoch;
        bar?.start(stepsPerEpoch, firstStep, { epoch, loss: '-', acc: '-', tps: '-' });

        for (let step = firstStep; step < stepsPerEpoch; step++) {
          const batchTriplets = sampler
            ? sampler.sample(
                Math.min(options.batchSize, tripletsPerEpoch - step * options.batchSize),
                new Rng(deriveSeed(poolSeed, `pool/${step}`)),
              )
            : order
                .slice(step * options.batchSize, (step + 1) * options.batchSize)
                .map((i) => trainTriplets[i]);
          if (batchTriplets.length === 0)
            throw new Error(`step ${step + 1} of epoch ${epoch} found no triplets`);
          const flipRng = options.augment ? new Rng(deriveSeed(flipSeed, `flip/${step}`)) : undefined;
          const started = performance.now();
          const result = await trainStep(
            model,
            optimizer,
            variables,
            batchTriplets,
            images,
            coefficients,
            flipRng,
          );
          const seconds = (performance.now() - started) / 1000;
          if (!Number.isFinite(result.loss)) {
            throw new Error(
              `loss became ${result.loss} at epoch ${epoch} step ${step + 1}: lower --lr (now ${options.lr}); ` +
                `the last good checkpoint is ${join(runDir, RUN_FILES.latest)}`,
            );
          }
          const n = batchTriplets.length;
          totals.steps++;
          totals.triplets += n;
          totals.correct += result.correct;
          totals.loss += result.loss * n;
          totals.tripletLoss += result.tripletLoss * n;
          totals.embedNorm += result.embedNorm * n;
          totals.maskNorm += result.maskNorm * n;
          totals.stepSeconds += seconds;
          stepSecondsTotal += seconds;
          stepTripletsTotal += n;
          state.globalStep++;
          state.stepInEpoch = step + 1;

          const tps = n / Math.max(seconds, 1e-9);
          bar?.update(step + 1, {
            epoch,
            loss: result.tripletLoss.toFixed(4),
            acc: ((100 * totals.correct) / totals.triplets).toFixed(1),
            tps: (totals.triplets / Math.max(totals.stepSeconds, 1e-9)).toFixed(0),
          });
          // Upstream logs at batch_idx % log_interval == 0: the first step and every log-interval after it.
          if (step % options.logInterval === 0 || step === stepsPerEpoch - 1) {
            metrics.append({
              type: 'step',
              epoch,
              step: step + 1,
              steps: stepsPerEpoch,
              globalStep: state.globalStep,
              learningRate,
              loss: result.loss,
              tripletLoss: result.tripletLoss,
              embedNorm: result.embedNorm,
              maskNorm: result.maskNorm,
              accuracy: result.correct / n,
              epochLoss: totals.tripletLoss / totals.triplets,
              epochAccuracy: totals.correct / totals.triplets,
              tripletsPerSecond: tps,
              time: new Date().toISOString(),
            });
          }
          hooks.onStep?.({
            epoch,
            step: step + 1,
            globalStep: state.globalStep,
            tripletLoss: result.tripletLoss,
          });
          // Let signal handlers run between steps (a step is synchronous work on the wasm/cpu backends).
          await new Promise((done) => setImmediate(done));
          const stop = hooks.signal?.aborted === true;
          const periodic = options.checkpointEvery > 0 && state.globalStep % options.checkpointEvery === 0;
          if (stop || (periodic && step < stepsPerEpoch - 1)) {
            await saveLatest({ ...state, rngState: epochStart, epochTotals: { ...totals } });
          }
          if (stop) {
            interrupted = true;
            break;
          }
        }
        bar?.stop();
        if (interrupted) break;

        // End of epoch: validate, keep the best, then the latest (best first: a crash in between re-runs the epoch).
        const validate =
          valTriplets.length > 0 &&
          ((epoch - options.startEpoch + 1) % options.valEvery === 0 || epoch === options.epochs);
        let val: (AccuracySummary & { loss: number }) | undefined;
        if (validate) {
          const vectors = await embedProducts(model, images, productsOf(valTriplets));
          const summary = tripletAccuracy(vectors, valTriplets, catalogue.conditions, options.margin);
          val = { ...summary, loss: summary.loss ?? 0 };
        }
        const isBest = val !== undefined && val.overall > state.bestValAccuracy;
        if (isBest && val) {
          state.bestValAccuracy = val.overall;
          state.bestEpoch = epoch;
        }
        const trainAccuracy = totals.correct / totals.triplets;
        const trainLoss = totals.tripletLoss / totals.triplets;
        const record: EpochRecord = {
          type: 'epoch',
          epoch,
          globalStep: state.globalStep,
          learningRate,
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
          rngState: rng.state(),
          bestValAccuracy: state.bestValAccuracy,
          bestEpoch: state.bestEpoch,
        };
        if (isBest) {
          await writeCheckpoint(join(runDir, RUN_FILES.best), {
            model: model.snapshot(),
            training: next,
            args,
            metrics: summary,
          });
        }
        await saveLatest(next, summary);
        Object.assign(state, next);
        delete state.epochTotals;
        lastEpochDone = epoch;
        log.info(
          {
            epoch,
            trainLoss: +trainLoss.toFixed(4),
            trainAccuracy: +trainAccuracy.toFixed(4),
            valAccuracy: val ? +val.overall.toFixed(4) : undefined,
            best: isBest,
            tripletsPerSecond: Math.round(record.tripletsPerSecond),
          },
          `epoch ${epoch}/${options.epochs}: train loss ${trainLoss.toFixed(4)}, acc ${(100 * trainAccuracy).toFixed(1)}%` +
            (val
              ? `; val acc ${(100 * val.overall).toFixed(1)}% (${accuracyText(val)})${isBest ? ' *best*' : ''}`
              : ''),
        );
        await redrawPlot();
        if (hooks.signal?.aborted) interrupted = epoch < options.epochs;
      }

      if (interrupted) {
        metrics.append({
          type: 'event',
          event: 'interrupted',
          globalStep: state.globalStep,
          detail: { epoch: state.epoch, stepInEpoch: state.stepInEpoch },
          time: new Date().toISOString(),
        });
        log.warn(
          { checkpoint: join(runDir, RUN_FILES.latest) },
          `interrupted: state saved; continue with --resume ${join(runDir, RUN_FILES.latest)}`,
        );
        return {
          runDir,
          interrupted,
          epoch: lastEpochDone,
          globalStep: state.globalStep,
          bestValAccuracy: state.bestValAccuracy,
          bestEpoch: state.bestEpoch,
          tripletsPerSecond: stepTripletsTotal / Math.max(stepSecondsTotal, 1e-9),
        };
      }

      // Test the best model (as upstream recommends), or the final one when nothing was validated.
      const bestPath = join(runDir, RUN_FILES.best);
      const fromBest = state.bestEpoch > 0 && existsSync(bestPath);
      const testModel = fromBest ? restoreModel((await readCheckpoint(bestPath)).model) : model;
      let test: EvaluationReport;
      try {
        const snapshot = testModel.snapshot();
        test = await runTest(
          testModel,
          catalogue,
          images,
          options,
          {
            checkpoint: resolve(fromBest ? bestPath : join(runDir, RUN_FILES.latest)),
            epoch: fromBest ? state.bestEpoch : lastEpochDone,
            id: modelId(snapshot),
          },
          runDir,
          out,
        );
      } finally {
        if (testModel !== model) testModel.dispose();
      }
      metrics.append({
        type: 'test',
        epoch: fromBest ? state.bestEpoch : lastEpochDone,
        test: { ...test.triplets, loss: test.triplets.loss ?? 0 },
        time: new Date().toISOString(),
      });
      metrics.append({
        type: 'event',
        event: 'finished',
        globalStep: state.globalStep,
        time: new Date().toISOString(),
      });
      return {
        runDir,
        interrupted: false,
        epoch: lastEpochDone,
        globalStep: state.globalStep,
        bestValAccuracy: state.bestValAccuracy,
        bestEpoch: state.bestEpoch,
        test,
        tripletsPerSecond: stepTripletsTotal / Math.max(stepSecondsTotal, 1e-9),
      };
    } finally {
      bar?.stop();
      metrics.close();
    }
  }
}
