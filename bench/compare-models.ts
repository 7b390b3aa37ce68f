/**
 * Compare CSN, ASEN and the unconditional baseline trained with the same budget on the same triplets.
 *
 *   npx tsx bench/compare-models.ts [--data-dir data/demo] [--epochs 6] [--models csn,asen,unconditional]
 *
 * Reports test triplet accuracy (overall and per condition), retrieval MAP, training triplets/s and embedding
 * images/s as tables on stdout and in bench/results/compare-models.{json,md}. The demo catalogue is generated
 * first when it is missing. Run folders go to a temporary directory unless --keep-runs is given.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import * as tf from '@tensorflow/tfjs';
import {
  generateDemoCatalogue,
  ImageCache,
  loadCatalogue,
  restrictCatalogue,
} from '../src/catalogue/index.ts';
import type { ModelKind, SimilarityModel } from '../src/model/types.ts';
import type { EvaluationReport } from '../src/eval/report.ts';
import { loadModelFromCheckpoint } from '../src/checkpoint/index.ts';
import { MODEL_KINDS } from '../src/model/index.ts';
import { TRAIN_DEFAULTS, defaultLearningRate, type TrainOptions } from '../src/train/options.ts';
import { RUN_FILES, train } from '../src/train/trainer.ts';
import { integer } from '../src/util/cli.ts';
import { createLogger } from '../src/util/log.ts';
import { formatTable } from '../src/util/table.ts';

interface BenchFlags {
  dataDir: string;
  models: ModelKind[];
  epochs: number;
  trainTriplets: number;
  valTriplets: number;
  testTriplets: number;
  batchSize: number;
  imageSize: number;
  seed: number;
  backend: TrainOptions['backend'];
  out: string;
  keepRuns?: string;
}

interface ModelResult {
  model: ModelKind;
  error?: string;
  test?: EvaluationReport;
  bestEpoch?: number;
  trainSeconds?: number;
  trainTripletsPerSecond?: number;
  embedImagesPerSecond?: number;
}

const program = new Command('compare-models')
  .description('Train CSN, ASEN and the unconditional baseline with one budget and compare them')
  .option('--data-dir <dir>', 'catalogue (the demo catalogue is generated here when missing)', 'data/demo')
  .option(
    '--models <kinds>',
    'comma-separated model kinds',
    (value: string) =>
      value.split(',').map((kind) => {
        if (!MODEL_KINDS.includes(kind as ModelKind)) {
          throw new InvalidArgumentError(`unknown model "${kind}" (valid: ${MODEL_KINDS.join(', ')})`);
        }
        return kind as ModelKind;
      }),
    [...MODEL_KINDS],
  )
  .option(
    '--epochs <n>',
    'epochs per model (the trainer default is 10; 6 keeps the whole comparison near 10 minutes)',
    integer('--epochs', 1),
    6,
  )
  .option(
    '--train-triplets <n>',
    'training triplets',
    integer('--train-triplets', 1),
    TRAIN_DEFAULTS.trainTriplets,
  )
  .option(
    '--val-triplets <n>',
    'validation triplets',
    integer('--val-triplets', 1),
    TRAIN_DEFAULTS.valTriplets,
  )
  .option('--test-triplets <n>', 'test triplets', integer('--test-triplets', 1), TRAIN_DEFAULTS.testTriplets)
  .option('--batch-size <n>', 'triplets per batch', integer('--batch-size', 1), TRAIN_DEFAULTS.batchSize)
  .option('--image-size <px>', 'input side', integer('--image-size', 1), TRAIN_DEFAULTS.imageSize)
  .option(
    '--seed <n>',
    'seed (same triplets and initialisation seed for every model)',
    (v: string) => Number(v),
    TRAIN_DEFAULTS.seed,
  )
  .option('--backend <name>', 'tfjs backend', TRAIN_DEFAULTS.backend)
  .option('--out <dir>', 'results folder', 'bench/results')
  .option('--keep-runs <dir>', 'keep the run folders here instead of a temporary directory');

/** Embedding throughput: images per second through conditionVectors in batches of 64, after one warm-up batch. */
async function embeddingSpeed(model: SimilarityModel, images: ImageCache, count: number): Promise<number> {
  const batch = 64;
  const indices = Array.from({ length: count }, (_, i) => i % images.count);
  const run = async (subset: number[]) => {
    const out = tf.tidy(() =>
      model.conditionVectors(tf.tensor4d(images.batch(subset), [subset.length, images.size, images.size, 3])),
    );
    await out.data();
    out.dispose();
  };
  await run(indices.slice(0, batch));
  const started = performance.now();
  for (let i = 0; i < indices.length; i += batch) await run(indices.slice(i, i + batch));
  return count / ((performance.now() - started) / 1000);
}

const pct = (value: number | undefined) => (value === undefined ? '-' : `${(100 * value).toFixed(1)}%`);
const fixed = (value: number | undefined, digits: number) =>
  value === undefined ? '-' : value.toFixed(digits);

function summaryTable(results: ModelResult[]): string {
  return formatTable(
    ['model', 'test acc', 'MAP', 'best epoch', 'wall s', 'train triplets/s', 'embed images/s'],
    results.map((r) =>
      r.error
        ? [r.model, 'failed (see below)', '', '', '', '', '']
        : [
            r.model,
            pct(r.test?.triplets.overall),
            fixed(r.test?.retrieval?.overall.map, 4),
            String(r.bestEpoch ?? '-'),
            fixed(r.trainSeconds, 0),
            fixed(r.trainTripletsPerSecond, 0),
            fixed(r.embedImagesPerSecond, 0),
          ],
    ),
    { align: 'first-left' },
  );
}

function conditionTable(results: ModelResult[], conditions: string[]): string {
  const ok = results.filter((r) => r.test);
  const header = ['condition', ...ok.flatMap((r) => [`${r.model} acc`, `${r.model} MAP`])];
  const rows = conditions.map((name) => [
    name,
    ...ok.flatMap((r) => [
      pct(r.test!.triplets.perCondition[name]?.accuracy),
      fixed(r.test!.retrieval?.perCondition[name]?.map, 4),
    ]),
  ]);
  rows.push([
    'overall',
    ...ok.flatMap((r) => [pct(r.test!.triplets.overall), fixed(r.test!.retrieval?.overall.map, 4)]),
  ]);
  return formatTable(header, rows, { totalRow: true, align: 'first-left' });
}

async function main(): Promise<void> {
  program.parse();
  const flags = program.opts<BenchFlags>();
  const log = createLogger('bench');
  if (!existsSync(join(flags.dataDir, 'products.jsonl'))) {
    log.info({ dataDir: flags.dataDir }, 'demo catalogue missing: generating it');
    await generateDemoCatalogue(flags.dataDir);
  }
  // Every model gets the same data, triplets, budget and seed: the comparison is only fair that way.
  const budget = {
    dataDir: flags.dataDir,
    epochs: flags.epochs,
    trainTriplets: flags.trainTriplets,
    valTriplets: flags.valTriplets,
    testTriplets: flags.testTriplets,
    batchSize: flags.batchSize,
    imageSize: flags.imageSize,
    seed: flags.seed,
  };
  const logDir = flags.keepRuns ?? (await mkdtemp(join(tmpdir(), 'dressmatch-bench-')));
  const results: ModelResult[] = [];
  let conditions: string[] = [];
  try {
    for (const kind of flags.models) {
      log.info({ model: kind }, `training ${kind}`);
      const options: TrainOptions = {
        ...TRAIN_DEFAULTS,
        ...budget,
        logDir,
        name: kind,
        model: kind,
        lr: defaultLearningRate(kind),
        backend: flags.backend,
        overwrite: true,
      };
      const started = performance.now();
      try {
        const result = await train(options, { logger: log, out: null });
        const trainSeconds = (performance.now() - started) / 1000;
        conditions = result.test?.conditions ?? conditions;
        const model = await loadModelFromCheckpoint(join(result.runDir, RUN_FILES.best));
        let embedImagesPerSecond: number;
        try {
          const full = await loadCatalogue(flags.dataDir);
          const images = await ImageCache.load(
            restrictCatalogue(full, model.config.conditions),
            model.config.imageSize,
          );
          embedImagesPerSecond = await embeddingSpeed(model, images, 512);
        } finally {
          model.dispose();
        }
        results.push({
          model: kind,
          test: result.test,
          bestEpoch: result.bestEpoch,
          trainSeconds,
          trainTripletsPerSecond: result.tripletsPerSecond,
          embedImagesPerSecond,
        });
      } catch (error) {
        log.error({ err: error, model: kind }, `${kind} failed`);
        results.push({ model: kind, error: error instanceof Error ? error.message : String(error) });
      }
    }
  } finally {
    if (!flags.keepRuns) await rm(logDir, { recursive: true, force: true });
  }

  const failures = results.filter((r) => r.error).map((r) => `${r.model} failed: ${r.error}`);
  const summary = [summaryTable(results), ...failures].join('\n');
  const perCondition = conditionTable(results, conditions);
  process.stdout.write(`\n${summary}\n\nper condition (test split)\n${perCondition}\n`);

  const setup = {
    ...budget,
    backend: tf.getBackend(),
    cpus: cpus().length,
    loadAverage: loadavg().map((v) => +v.toFixed(2)),
    node: process.version,
    time: new Date().toISOString(),
  };
  await mkdir(flags.out, { recursive: true });
  await writeFile(join(flags.out, 'compare-models.json'), `${JSON.stringify({ setup, results }, null, 2)}\n`);
  const markdown = [
    '# Model comparison (same data, triplets, budget and seed)',
    '',
    `Setup: ${Object.entries(setup)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}. Test accuracy is from each run's best-validation checkpoint; chance is 50%.`,
    '',
    '```',
    summary,
    '```',
    '',
    'Per condition (test split):',
    '',
    '```',
    perCondition,
    '```',
    '',
  ].join('\n');
  await writeFile(join(flags.out, 'compare-models.md'), markdown);
  log.info({ out: flags.out }, 'results written');
}

await main();
