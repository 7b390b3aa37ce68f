/**
 * What a shop sees on real catalogue photos: every candidate trained on the same split, budget and seed, scored on
 * the test split's fixed triplets and products.
 *
 *   npx tsx bench/real-photos.ts --data-dir ../shared/data/shop-photos [--candidates 'csn, 64 px'] [--epochs N]
 *       [--variant 'name={"labelLoss":1}'] [--out bench/results] [--name real-photos] [--continue]
 *
 * Any catalogue works: on one without fixed test triplets (the demo) the trainer's own test triplets are used, e.g.
 *   npx tsx bench/real-photos.ts --data-dir data/demo --name compare-models --candidates '' \
 *       --variant 'csn={"epochs":6}' --variant 'asen={"epochs":6,"model":"asen","lr":0.001}' \
 *       --variant 'unconditional={"epochs":6,"model":"unconditional"}'
 *
 * Per candidate and condition: test triplet accuracy (the catalogue's fixed test triplets), MAP (every labelled
 * test product a query against the others), precision@10 and leakage (src/eval/neighbours.ts), training wall and
 * CPU seconds. A colour histogram of the product pixels, with no learning, is scored the same way. Writes
 * bench/results/real-photos.{json,md}. Run folders go to a temporary directory unless --keep-runs is given.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import {
  ImageCache,
  loadCatalogue,
  restrictCatalogue,
  splitProducts,
  splitTriplets,
  type Catalogue,
} from '../src/catalogue/index.ts';
import { loadModelFromCheckpoint } from '../src/checkpoint/index.ts';
import {
  embedProducts,
  retrievalFromProducts,
  retrievalMap,
  tripletAccuracy,
  type ProductVectors,
} from '../src/eval/evaluate.ts';
import { neighbourAgreement, type NeighbourAgreement } from '../src/eval/neighbours.ts';
import { colourBinMap, histogramOf } from '../src/model/colour.ts';
import { selectBackend } from '../src/model/index.ts';
import { TRAIN_DEFAULTS, defaultLearningRate, type TrainOptions } from '../src/train/options.ts';
import { RUN_FILES, train } from '../src/train/trainer.ts';
import { integer } from '../src/util/cli.ts';
import { createLogger, type Logger } from '../src/util/log.ts';
import { formatTable } from '../src/util/table.ts';

/** The trainer's settings before real photos were measured: the baseline the new defaults must beat. */
const BEFORE: Partial<TrainOptions> = {
  model: 'csn',
  lr: defaultLearningRate('csn'),
  imageSize: 48,
  colourHistogram: false,
  labelLoss: 0,
  controlled: 0,
  epochs: 10,
};
/** Colour channels and the in-batch label loss with controlled negatives (the trainer's defaults since). */
const REAL: Partial<TrainOptions> = { colourHistogram: true, labelLoss: 1, controlled: 8, epochs: 10 };
const CSN: Partial<TrainOptions> = { model: 'csn', lr: defaultLearningRate('csn') };
const ASEN: Partial<TrainOptions> = { model: 'asen', lr: defaultLearningRate('asen') };

/** Named candidates, in the order they are trained: option overrides on top of the trainer's defaults. */
const CANDIDATES: Record<string, Partial<TrainOptions>> = {
  'csn, 64 px': { ...REAL, ...CSN, imageSize: 64 },
  'unconditional, before': { ...BEFORE, model: 'unconditional' },
  'csn, 48 px': { ...REAL, ...CSN, imageSize: 48 },
  'asen, 64 px': { ...REAL, ...ASEN, imageSize: 64 },
  'csn, before': BEFORE,
};

const HISTOGRAM = 'colour histogram';

interface BenchFlags {
  dataDir: string;
  candidates: string[];
  variant: string[];
  epochs?: number;
  out: string;
  name: string;
  keepRuns?: string;
  continue?: boolean;
}

interface Scores {
  accuracy: Record<string, number>;
  overall: number;
  map: Record<string, number>;
  neighbours: Record<string, NeighbourAgreement>;
}

interface CandidateResult extends Partial<Scores> {
  name: string;
  options?: Partial<TrainOptions>;
  trainSeconds?: number;
  trainCpuSeconds?: number;
  bestEpoch?: number;
  /** Validation triplet accuracy of the kept epoch: what a candidate may be chosen on (test only confirms). */
  bestValAccuracy?: number;
  error?: string;
}

const program = new Command('real-photos')
  .description('Train candidates on a real-photo catalogue and score them as a shop sees them')
  .requiredOption(
    '--data-dir <dir>',
    'native catalogue with fixed test triplets (e.g. ../shared/data/shop-photos)',
  )
  .option('--candidates <names>', `comma-separated, from: ${Object.keys(CANDIDATES).join(', ')}`, (v) =>
    v.split(',').filter(Boolean),
  )
  .option('--variant <name=json>', 'an extra candidate: name=JSON option overrides', collect, [])
  .option('--epochs <n>', 'epochs for every candidate (default: each its own)', integer('--epochs', 1))
  .option('--out <dir>', 'results folder', 'bench/results')
  .option('--name <name>', 'results file name: <out>/<name>.{md,json}', 'real-photos')
  .option('--keep-runs <dir>', 'keep the run folders here instead of a temporary directory')
  .option('--continue', 'keep the rows of the results file in --out and train only the candidates it lacks');

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function candidateList(flags: BenchFlags): [string, Partial<TrainOptions>][] {
  const named = (flags.candidates ?? Object.keys(CANDIDATES)).map((name): [string, Partial<TrainOptions>] => {
    const options = CANDIDATES[name];
    if (!options)
      throw new Error(`unknown candidate "${name}" (valid: ${Object.keys(CANDIDATES).join(', ')})`);
    return [name, options];
  });
  const variants = flags.variant.map((entry): [string, Partial<TrainOptions>] => {
    const at = entry.indexOf('=');
    return [entry.slice(0, at), JSON.parse(entry.slice(at + 1)) as Partial<TrainOptions>];
  });
  return [...named, ...variants];
}

/** Test products, fixed test triplets and the scores of one set of condition vectors. */
function score(vectors: ProductVectors, catalogue: Catalogue, products: number[]): Scores {
  // The catalogue's fixed test triplets; a catalogue without them (the demo) is scored on the trainer's own.
  const fixed = splitTriplets(
    catalogue,
    { split: 'test', count: TRAIN_DEFAULTS.testTriplets },
    TRAIN_DEFAULTS.seed,
  );
  const triplets = tripletAccuracy(vectors, fixed, catalogue.conditions);
  const protocol = retrievalFromProducts(catalogue, products);
  const retrieval = retrievalMap(vectors, protocol, catalogue.conditions, 'split');
  return {
    accuracy: Object.fromEntries(catalogue.conditions.map((c) => [c, triplets.perCondition[c].accuracy])),
    overall: triplets.overall,
    map: Object.fromEntries(catalogue.conditions.map((c) => [c, retrieval.perCondition[c].map])),
    neighbours: neighbourAgreement(vectors, catalogue, products),
  };
}

/** Hellinger-ready colour histograms (square roots of the bin shares), one vector for every condition. */
async function histogramVectors(catalogue: Catalogue, products: number[]): Promise<ProductVectors> {
  const size = 64;
  const images = await ImageCache.load(catalogue, size);
  const conditions = catalogue.conditions.length;
  const pixels = tf.tensor4d(images.batch(products), [products.length, size, size, 3]);
  const histograms = tf.tidy(() => tf.sqrt(histogramOf(colourBinMap(pixels, 8))));
  const values = (await histograms.data()) as Float32Array;
  const dim = histograms.shape[1];
  tf.dispose([pixels, histograms]);
  const data = new Float32Array(products.length * conditions * dim);
  products.forEach((_, row) => {
    for (let c = 0; c < conditions; c++) {
      data.set(values.subarray(row * dim, (row + 1) * dim), (row * conditions + c) * dim);
    }
  });
  return { rows: new Map(products.map((p, row) => [p, row])), data, conditions, dim };
}

async function trainCandidate(
  name: string,
  overrides: Partial<TrainOptions>,
  flags: BenchFlags,
  logDir: string,
  log: Logger,
): Promise<CandidateResult> {
  const options: TrainOptions = {
    ...TRAIN_DEFAULTS,
    ...overrides,
    ...(flags.epochs ? { epochs: flags.epochs } : {}),
    dataDir: flags.dataDir,
    logDir,
    name: name.replace(/[^A-Za-z0-9._-]+/g, '-'),
    overwrite: true,
    progress: false,
  };
  const wall = performance.now();
  const cpu = process.cpuUsage();
  const result = await train(options, { logger: log, out: null });
  const used = process.cpuUsage(cpu);
  const model = await loadModelFromCheckpoint(join(result.runDir, RUN_FILES.best));
  try {
    const catalogue = restrictCatalogue(await loadCatalogue(flags.dataDir), model.config.conditions);
    const images = await ImageCache.load(catalogue, model.config.imageSize);
    const products = splitProducts(catalogue, 'test');
    const vectors = await embedProducts(model, images, products);
    return {
      name,
      options: overrides,
      trainSeconds: (performance.now() - wall) / 1000,
      trainCpuSeconds: (used.user + used.system) / 1e6,
      bestEpoch: result.bestEpoch,
      bestValAccuracy: result.bestValAccuracy,
      ...score(vectors, catalogue, products),
    };
  } finally {
    model.dispose();
  }
}

const pct = (v: number | undefined) => (v === undefined ? '-' : (100 * v).toFixed(1));
const num = (v: number | undefined, digits = 2) => (v === undefined ? '-' : v.toFixed(digits));

function summaryTable(results: CandidateResult[], conditions: string[]): string {
  const header = [
    'test split',
    'val',
    'overall',
    ...conditions,
    'MAP colour',
    'P@10 colour',
    'type leak. colour',
    'train s',
    'train CPU s',
  ];
  const colour = conditions.find((c) => c.startsWith('colo')) ?? conditions[0];
  const type = conditions.find((c) => c !== colour) ?? colour;
  const rows = results.map((r) =>
    r.error
      ? [r.name, '', `failed: ${r.error}`, ...conditions.map(() => ''), '', '', '', '', '']
      : [
          r.name,
          pct(r.bestValAccuracy),
          pct(r.overall),
          ...conditions.map((c) => pct(r.accuracy?.[c])),
          num(r.map?.[colour]),
          num(r.neighbours?.[colour].precision),
          num(r.neighbours?.[colour].leakage[type], 1),
          r.trainSeconds === undefined ? '0' : r.trainSeconds.toFixed(0),
          r.trainCpuSeconds === undefined ? '0' : r.trainCpuSeconds.toFixed(0),
        ],
  );
  return formatTable(header, rows, { align: 'first-left' });
}

function conditionTable(results: CandidateResult[], conditions: string[]): string {
  const header = [
    'candidate',
    'condition',
    'accuracy',
    'MAP',
    'P@10',
    ...conditions.map((o) => `leak. ${o}`),
  ];
  const rows = results
    .filter((r) => !r.error)
    .flatMap((r) =>
      conditions.map((c) => [
        r.name,
        c,
        pct(r.accuracy?.[c]),
        num(r.map?.[c]),
        num(r.neighbours?.[c].precision),
        ...conditions.map((o) => (o === c ? '-' : num(r.neighbours?.[c].leakage[o], 1))),
      ]),
    );
  return formatTable(header, rows, { align: 'first-left' });
}

/** The rows of an earlier run's results file (none when there is no such file). */
async function earlierResults(flags: BenchFlags): Promise<CandidateResult[]> {
  const path = join(flags.out, `${flags.name}.json`);
  if (!existsSync(path)) return [];
  return (JSON.parse(await readFile(path, 'utf8')) as { results: CandidateResult[] }).results;
}

/** Train and score every candidate; the results files are rewritten after each, so a stopped run keeps its rows. */
async function runAll(flags: BenchFlags, log: Logger): Promise<void> {
  const catalogue = await loadCatalogue(flags.dataDir);
  const products = splitProducts(catalogue, 'test');
  const results = flags.continue ? await earlierResults(flags) : [];
  if (!results.some((r) => r.name === HISTOGRAM)) {
    results.unshift({
      name: HISTOGRAM,
      ...score(await histogramVectors(catalogue, products), catalogue, products),
    });
  }
  const logDir = flags.keepRuns ?? (await mkdtemp(join(tmpdir(), 'dressmatch-real-')));
  try {
    for (const [name, overrides] of candidateList(flags)) {
      if (results.some((r) => r.name === name && !r.error)) continue;
      log.info({ candidate: name, overrides }, `training ${name}`);
      try {
        results.push(await trainCandidate(name, overrides, flags, logDir, log));
      } catch (error) {
        log.error({ err: error, candidate: name }, `${name} failed`);
        results.push({
          name,
          options: overrides,
          error: error instanceof Error ? error.message : String(error),
        });
      }
      await report(flags, results, catalogue.conditions, log);
    }
    // With nothing left to train (--continue on a finished file), the files are still written from the rows.
    await report(flags, results, catalogue.conditions, log);
  } finally {
    if (!flags.keepRuns) await rm(logDir, { recursive: true, force: true });
  }
}

async function report(
  flags: BenchFlags,
  results: CandidateResult[],
  conditions: string[],
  log: Logger,
): Promise<void> {
  const summary = summaryTable(results, conditions);
  const detail = conditionTable(results, conditions);
  process.stdout.write(`\n${summary}\n`);
  const setup = {
    dataDir: flags.dataDir,
    epochs: flags.epochs ?? 'per candidate',
    defaults: TRAIN_DEFAULTS,
    backend: tf.getBackend(),
    cpus: cpus().length,
    loadAverage: loadavg().map((v) => +v.toFixed(2)),
    node: process.version,
    time: new Date().toISOString(),
  };
  await mkdir(flags.out, { recursive: true });
  await writeFile(join(flags.out, `${flags.name}.json`), `${JSON.stringify({ setup, results }, null, 2)}\n`);
  await writeFile(join(flags.out, `${flags.name}.md`), markdown(setup, summary, detail));
  log.info({ out: flags.out }, 'results written');
}

function markdown(setup: Record<string, unknown>, summary: string, detail: string): string {
  const { defaults, ...shown } = setup;
  void defaults;
  return [
    `# ${String(setup.dataDir)}: accuracy, precision@10 and leakage per condition (test split)`,
    '',
    `Setup: ${Object.entries(shown)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(', ')}. Accuracy: the catalogue's fixed test triplets (chance 50 %). MAP: every labelled test`,
    'product a query against the other test products. P@10: share of the 10 nearest under a condition that share',
    "the query's label of it. Leakage of o: share of the 10 nearest that share the query's o label, divided by",
    "o's share over all test product pairs (1.0 = no more alike on o than random products). Trainer defaults",
    'in the .json file beside this one.',
    '',
    '```',
    summary,
    '```',
    '',
    'Per condition:',
    '',
    '```',
    detail,
    '```',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  program.parse();
  const flags = program.opts<BenchFlags>();
  if (!existsSync(join(flags.dataDir, 'products.jsonl'))) {
    throw new Error(`${flags.dataDir} holds no catalogue (products.jsonl): give --data-dir`);
  }
  // Decoded pixels stay in memory: the catalogue folder may be shared or read-only.
  process.env.DRESSMATCH_PIXEL_CACHE ??= 'off';
  const log = createLogger('bench');
  await selectBackend(TRAIN_DEFAULTS.backend, log);
  await runAll(flags, log);
}

await main();
