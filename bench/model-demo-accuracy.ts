/**
 * How far a time-boxed training gets on the synthetic demo catalogue: validation triplet accuracy
 * (overall and per condition) against wall-clock time. This is what the model defaults were chosen
 * with. It trains with a minimal loop (Adam, no checkpoints): the real trainer lives in src/train.
 *
 *   npx tsx bench/model-demo-accuracy.ts --seconds 300 --mask prein
 *   npx tsx bench/model-demo-accuracy.ts --data /path/to/catalogue --kind asen --seconds 120
 *
 * Batches are drawn the way that makes a CPU step count: a pool of `--pool` training products is
 * embedded once and `--triplets` triplets are drawn among them (anchor and close share the condition's
 * label, far does not), spread evenly over the conditions.
 * Writes bench/results/model-demo-accuracy-<kind>-<mask>-<size>.json.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import {
  generateDemoCatalogue,
  ImageCache,
  loadCatalogue,
  productSplit,
  sampleTriplets,
  type Catalogue,
  type Triplet,
} from '../src/catalogue/index.ts';
import {
  createModel,
  defaultModelConfig,
  selectBackend,
  type ModelConfig,
  type ModelSnapshot,
  type SimilarityModel,
  type TripletBatch,
} from '../src/model/index.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { Rng } from '../src/util/rng.ts';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string' },
    count: { type: 'string', default: '3000' },
    seconds: { type: 'string', default: '300' },
    kind: { type: 'string', default: 'csn' },
    backbone: { type: 'string', default: 'small' },
    mask: { type: 'string', default: 'prein' },
    'image-size': { type: 'string', default: '48' },
    width: { type: 'string', default: '16' },
    pool: { type: 'string', default: '96' },
    triplets: { type: 'string', default: '384' },
    lr: { type: 'string', default: '1e-3' },
    seed: { type: 'string', default: '42' },
    'eval-every': { type: 'string', default: '30' },
    /** Seconds of CSN training whose backbone initialises the model under test (0: none). */
    'warm-start-seconds': { type: 'string', default: '0' },
    /** Comma-separated subset of the catalogue's conditions (default: all). */
    conditions: { type: 'string' },
  },
});

const seconds = Number(args.seconds);
const imageSize = Number(args['image-size']);
const poolSize = Number(args.pool);
const tripletsPerBatch = Number(args.triplets);
const evalEvery = Number(args['eval-every']);
const warmStartSeconds = Number(args['warm-start-seconds']);
const coefficients = { margin: 0.2, embedLoss: 5e-3, maskLoss: 5e-4 };

await selectBackend('auto', { info: () => {}, warn: () => {} });
console.log(`backend ${tf.getBackend()}`);

let scratchDir: string | undefined;
let catalogue: Catalogue;
if (args.data) {
  catalogue = await loadCatalogue(args.data);
} else {
  scratchDir = await mkdtemp(join(tmpdir(), 'dressmatch-demo-'));
  const started = performance.now();
  await generateDemoCatalogue(scratchDir, {
    count: Number(args.count),
    seed: 7,
    imageSize: 96,
    overwrite: true,
  });
  catalogue = await loadCatalogue(scratchDir);
  console.log(
    `demo catalogue: ${catalogue.products.length} products in ${Math.round(performance.now() - started)} ms`,
  );
}
if (args.conditions) {
  const wanted = args.conditions.split(',').map((c) => c.trim());
  const unknown = wanted.filter((c) => !catalogue.conditions.includes(c));
  if (unknown.length > 0) throw new Error(`unknown conditions ${unknown.join(', ')}`);
  catalogue = { ...catalogue, conditions: wanted, triplets: undefined };
}
const cacheStarted = performance.now();
const cache = await ImageCache.load(catalogue, imageSize);
console.log(
  `decoded ${cache.count} images at ${imageSize} px in ${Math.round(performance.now() - cacheStarted)} ms`,
);

const rng = new Rng(Number(args.seed));
const splits = productSplit(catalogue);
const trainProducts = splits.flatMap((split, i) => (split === 'train' ? [i] : []));
const validation = sampleTriplets(catalogue, 'val', 3000, rng);

/** First label of a product under a condition (undefined when it has none). */
const label = (product: number, condition: number): string | undefined =>
  catalogue.products[product].attributes[catalogue.conditions[condition]]?.[0];

function pooledTriplets(): Triplet[] {
  const pool = Array.from({ length: poolSize }, () => rng.pick(trainProducts));
  const out: Triplet[] = [];
  for (let attempt = 0; out.length < tripletsPerBatch && attempt < tripletsPerBatch * 20; attempt++) {
    const condition = out.length % catalogue.conditions.length;
    const anchor = rng.pick(pool);
    const value = label(anchor, condition);
    if (value === undefined) continue;
    const close = pool.filter((p) => p !== anchor && label(p, condition) === value);
    const far = pool.filter((p) => label(p, condition) !== undefined && label(p, condition) !== value);
    if (close.length === 0 || far.length === 0) continue;
    out.push({ anchor, close: rng.pick(close), far: rng.pick(far), condition });
  }
  return out;
}

function toBatch(triplets: Triplet[]): TripletBatch {
  const rows = new Map<number, number>();
  const row = (product: number) => {
    if (!rows.has(product)) rows.set(product, rows.size);
    return rows.get(product) as number;
  };
  const anchor = triplets.map((t) => row(t.anchor));
  const far = triplets.map((t) => row(t.far));
  const close = triplets.map((t) => row(t.close));
  const products = [...rows.keys()];
  return {
    images: tf.tensor4d(cache.batch(products), [products.length, imageSize, imageSize, 3]),
    anchor: tf.tensor1d(anchor, 'int32'),
    far: tf.tensor1d(far, 'int32'),
    close: tf.tensor1d(close, 'int32'),
    condition: tf.tensor1d(
      triplets.map((t) => t.condition),
      'int32',
    ),
  };
}

function evaluate(model: SimilarityModel): { overall: number; perCondition: Record<string, number> } {
  const hits = new Array<number>(catalogue.conditions.length).fill(0);
  const counts = new Array<number>(catalogue.conditions.length).fill(0);
  for (let start = 0; start < validation.length; start += 256) {
    const chunk = validation.slice(start, start + 256);
    const batch = toBatch(chunk);
    const correct = tf.tidy(() => model.loss(batch, coefficients, false).correct);
    correct.dataSync().forEach((hit, i) => {
      hits[chunk[i].condition] += hit;
      counts[chunk[i].condition] += 1;
    });
    tf.dispose([correct, ...Object.values(batch)]);
  }
  const perCondition = Object.fromEntries(
    catalogue.conditions.map((c, i) => [c, Math.round((1000 * hits[i]) / Math.max(1, counts[i])) / 1000]),
  );
  const overall = hits.reduce((a, b) => a + b, 0) / Math.max(1, validation.length);
  return { overall: Math.round(overall * 1000) / 1000, perCondition };
}

interface CurvePoint {
  seconds: number;
  step: number;
  triplets: number;
  loss: number;
  validation: number;
}

/** Train for `budget` seconds of training time (evaluation pauses the clock); returns the validation curve. */
function trainFor(model: SimilarityModel, budget: number, label: string): CurvePoint[] {
  const optimizer = tf.train.adam(Number(args.lr));
  const curve: CurvePoint[] = [];
  let trainingSeconds = 0;
  let step = 0;
  let seen = 0;
  let lossSum = 0;
  let lossCount = 0;
  let nextEval = evalEvery;
  console.log(`${label} t=0s validation ${evaluate(model).overall}`);
  while (trainingSeconds < budget) {
    const stepStarted = performance.now();
    const triplets = pooledTriplets();
    const batch = toBatch(triplets);
    const cost = optimizer.minimize(
      () => model.loss(batch, coefficients, true).total,
      true,
      model.trainableVariables(),
    );
    lossSum += cost?.dataSync()[0] ?? 0;
    lossCount++;
    cost?.dispose();
    tf.dispose(Object.values(batch));
    trainingSeconds += (performance.now() - stepStarted) / 1000;
    step++;
    seen += triplets.length;
    if (trainingSeconds >= nextEval || trainingSeconds >= budget) {
      nextEval += evalEvery;
      const { overall, perCondition } = evaluate(model);
      const loss = lossSum / lossCount;
      curve.push({ seconds: Math.round(trainingSeconds), step, triplets: seen, loss, validation: overall });
      console.log(
        `${label} t=${Math.round(trainingSeconds)}s step ${step} loss ${loss.toFixed(4)} validation ${overall} ${JSON.stringify(perCondition)}`,
      );
      lossSum = 0;
      lossCount = 0;
    }
  }
  optimizer.dispose();
  return curve;
}

const config: ModelConfig = defaultModelConfig(catalogue.conditions, {
  kind: args.kind as ModelConfig['kind'],
  backbone: args.backbone as ModelConfig['backbone'],
  maskMode: args.mask as ModelConfig['maskMode'],
  imageSize,
  width: Number(args.width),
  seed: Number(args.seed),
});

// Optional warm start: a CSN (prein masks) trained first, its backbone copied into the model under test.
let warmStart: { seconds: number; curve: CurvePoint[] } | undefined;
let initialWeights: ModelSnapshot | undefined;
if (warmStartSeconds > 0) {
  const teacher = createModel({ ...config, kind: 'csn', maskMode: 'prein' });
  warmStart = { seconds: warmStartSeconds, curve: trainFor(teacher, warmStartSeconds, 'warm-start csn') };
  initialWeights = teacher.snapshot();
  teacher.dispose();
}
const model = createModel(config, { initialWeights });
const curve = trainFor(model, seconds, config.kind);
const final = evaluate(model);
const subset = args.conditions ? `-${catalogue.conditions.join('+')}` : '';
const warm = warmStart ? `-warm${warmStartSeconds}` : '';
const name = `model-demo-accuracy-${config.kind}-${config.kind === 'csn' ? config.maskMode : 'nomask'}-${imageSize}${subset}${warm}`;
const out = join(dirname(fileURLToPath(import.meta.url)), 'results', `${name}.json`);
await writeFileAtomic(
  out,
  `${JSON.stringify(
    {
      benchmark: 'model-demo-accuracy',
      date: new Date().toISOString(),
      backend: tf.getBackend(),
      loadAverage: loadavg(),
      config,
      settings: {
        seconds,
        pool: poolSize,
        tripletsPerBatch,
        lr: Number(args.lr),
        products: catalogue.products.length,
      },
      note: 'seconds are training time (batch assembly + step); evaluation is not counted',
      warmStart,
      final,
      curve,
    },
    null,
    2,
  )}\n`,
);
console.log(`final validation ${final.overall} ${JSON.stringify(final.perCondition)}\nwrote ${out}`);
model.dispose();
if (scratchDir) await rm(scratchDir, { recursive: true, force: true });
