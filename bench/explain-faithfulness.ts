/**
 * How faithful each heat-map method is, per condition, on a trained model and the test split of a catalogue with
 * part masks (the demo catalogue has them). Prints a table and writes bench/results/explain-faithfulness.{json,md}.
 *
 *   npx tsx bench/explain-faithfulness.ts            # data/demo, models/demo/model_best.dmck, 40 pairs per condition
 *   npx tsx bench/explain-faithfulness.ts --quick    # 8 pairs per condition, 8 curve steps (under 3 minutes)
 *   npx tsx bench/explain-faithfulness.ts --data /tmp/demo --model models/demo-asen/model_best.dmck --pairs 60
 *   npx tsx bench/explain-faithfulness.ts --methods integrated-gradients --ig-steps 8
 *
 * A pair is a test product (the query, the reference) and its nearest other test product under the condition
 * (the neighbour, whose picture the heat map is drawn on), as the service shows them. Per condition and method:
 * - energyOnPart: mass of the map on the condition's parts over their share of the image, mean over pairs;
 * - deletionGain: grey out 3×3-pixel blocks, most salient first; the area under the distance curve minus the
 *   area under a random block order (the same random order for every method), summed over pairs and divided by
 *   the summed |distance(all grey) − distance(image)|: 0 = no better than random, 1 = the whole rise at once.
 *   With a 95 % bootstrap interval over pairs;
 * - insertionGain: the same, restoring blocks onto a grey image, where the distance should fall fastest;
 * - ms: median time of one heat map (one pair, batch of 1) on this machine; msMin: the fastest pair, the one
 *   least disturbed by other processes (the development machine is shared: the load average is recorded).
 *
 * The chosen default is the method meeting the goal (energy ≥ 2 and a deletion interval above 0) on the most
 * conditions among those whose fastest heat map takes under 200 ms on every condition.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import {
  conditionBits,
  decodeImage,
  loadCatalogue,
  partMaskPath,
  readPartRegion,
  readPartsManifest,
  type Catalogue,
} from '../src/catalogue/index.ts';
import {
  blockOrder,
  bootstrapInterval,
  curveArea,
  DEFAULT_HEATMAP_METHOD,
  deletionMasks,
  energyOnPart,
  loadAttribution,
  methodsFor,
  ratioOfSums,
  type HeatmapMethod,
} from '../src/explain/index.ts';
import { selectBackend, type SimilarityModel } from '../src/model/index.ts';
import { DEMO_CHECKPOINT, loadModelFromCheckpoint } from '../src/checkpoint/index.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { createLogger } from '../src/util/log.ts';
import { createProgress } from '../src/util/progress.ts';
import { Rng } from '../src/util/rng.ts';

const { values: args } = parseArgs({
  options: {
    data: { type: 'string', default: 'data/demo' },
    model: { type: 'string', default: DEMO_CHECKPOINT },
    pairs: { type: 'string' },
    steps: { type: 'string' },
    methods: { type: 'string' },
    seed: { type: 'string', default: '1' },
    'ig-steps': { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: 'explain-faithfulness' },
  },
});
const PAIRS = Number(args.pairs ?? (args.quick ? 8 : 40));
const STEPS = Number(args.steps ?? (args.quick ? 8 : 16));
const SEED = Number(args.seed);
/** Integrated-gradients steps (default: the method's own). */
const IG_STEPS = args['ig-steps'] === undefined ? undefined : Number(args['ig-steps']);
/** Deletion blocks: 3×3 pixels at 48 px (256 blocks). */
const BLOCK_FRACTION = 1 / 16;
/** The latency goal of a default method: a heat map is computed once per pair and then cached. */
const FAST_MS = 200;
const GOAL_ENERGY = 2;
const log = createLogger('explain-faithfulness');
const { heatMaps, conditionDistances, referenceTargets, GREY } = await loadAttribution();

interface Pair {
  query: number;
  neighbour: number;
  region: Uint8Array;
}

interface Sample {
  energy: number;
  deletionGap: number;
  insertionGap: number;
  scale: number;
  ms: number;
}

export interface MethodResult {
  energyOnPart: number;
  deletionGain: number;
  deletionInterval: [number, number];
  insertionGain: number;
  insertionInterval: [number, number];
  ms: number;
  msMin: number;
  pairs: number;
}

/** Test products with a part mask, their pixels at the model's size and their condition vectors. */
async function loadTestSet(catalogue: Catalogue, model: SimilarityModel) {
  const size = model.config.imageSize;
  const products = catalogue.products.filter(
    (p) => p.split === 'test' && existsSync(partMaskPath(catalogue.root, p.id)),
  );
  if (products.length < 2)
    throw new Error(`${catalogue.root}: fewer than two test products have a part mask`);
  const pixels = await Promise.all(products.map((p) => decodeImage(join(catalogue.root, p.image), size)));
  const images = tf.tensor4d(concat(pixels), [products.length, size, size, 3]);
  const chunks: tf.Tensor3D[] = [];
  for (let i = 0; i < products.length; i += 64) {
    const count = Math.min(64, products.length - i);
    chunks.push(tf.tidy(() => model.conditionVectors(tf.slice(images, [i, 0, 0, 0], [count, -1, -1, -1]))));
  }
  const vectors = tf.concat(chunks, 0);
  const [, conditions, dims] = vectors.shape;
  const data = (await vectors.data()) as Float32Array;
  tf.dispose([vectors, ...chunks]);
  return { products, images, vectors: data, conditions, dims };
}

function concat(arrays: Float32Array[]): Float32Array {
  const out = new Float32Array(arrays.reduce((s, a) => s + a.length, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(a, offset);
    offset += a.length;
  }
  return out;
}

type TestSet = Awaited<ReturnType<typeof loadTestSet>>;

/** `PAIRS` random queries and each one's nearest other test product under condition `c`. */
function nearestPairs(set: TestSet, c: number, rng: Rng): { query: number; neighbour: number }[] {
  const n = set.products.length;
  const row = (i: number) =>
    set.vectors.subarray((i * set.conditions + c) * set.dims, (i * set.conditions + c + 1) * set.dims);
  const queries = rng.shuffle(Array.from({ length: n }, (_, i) => i)).slice(0, PAIRS);
  return queries.map((query) => {
    let best = -1;
    let bestDistance = Infinity;
    const q = row(query);
    for (let j = 0; j < n; j++) {
      if (j === query) continue;
      const v = row(j);
      let d = 0;
      for (let k = 0; k < v.length; k++) d += (v[k] - q[k]) ** 2;
      if (d < bestDistance) [best, bestDistance] = [j, d];
    }
    return { query, neighbour: best };
  });
}

function single(images: tf.Tensor4D, i: number): tf.Tensor4D {
  return tf.slice(images, [i, 0, 0, 0], [1, -1, -1, -1]);
}

/** Distances to `target` along a deletion (from the image) or insertion (from grey) curve for block `order`. */
function curve(
  model: SimilarityModel,
  image: tf.Tensor4D,
  target: tf.Tensor2D,
  c: number,
  order: number[][],
  insertion: boolean,
): Float32Array {
  const size = model.config.imageSize;
  return tf.tidy(() => {
    const masks = deletionMasks(order, size * size, STEPS);
    let replaced = tf.tensor4d(masks, [STEPS + 1, size, size, 1]);
    if (insertion) replaced = tf.sub(1, replaced);
    const images = tf.add(tf.mul(image, tf.sub(1, replaced)), tf.mul(replaced, GREY)) as tf.Tensor4D;
    return conditionDistances(model, images, target, c).dataSync() as Float32Array;
  });
}

/** Random-order curves of a pair, shared by every method. */
interface Baseline {
  deletionArea: number;
  insertionArea: number;
  scale: number;
}

function baseline(
  model: SimilarityModel,
  image: tf.Tensor4D,
  target: tf.Tensor2D,
  c: number,
  rng: Rng,
): Baseline {
  const size = model.config.imageSize;
  const order = blockOrder(undefined, size, Math.round(size * BLOCK_FRACTION), rng);
  const deletion = curve(model, image, target, c, order, false);
  const insertion = curve(model, image, target, c, order, true);
  return {
    deletionArea: curveArea(deletion),
    insertionArea: curveArea(insertion),
    scale: Math.abs(deletion[STEPS] - deletion[0]),
  };
}

async function measure(
  model: SimilarityModel,
  method: HeatmapMethod,
  set: TestSet,
  pair: Pair,
  c: number,
  base: Baseline,
  rng: Rng,
): Promise<Sample> {
  const size = model.config.imageSize;
  const image = single(set.images, pair.neighbour);
  const reference = single(set.images, pair.query);
  const started = performance.now();
  const map = heatMaps(model, method, image, reference, c, { steps: IG_STEPS });
  const heat = (await map.data()) as Float32Array;
  const ms = performance.now() - started;
  map.dispose();
  const target = referenceTargets(model, reference, c);
  const order = blockOrder(heat, size, Math.round(size * BLOCK_FRACTION), rng);
  const deletion = curveArea(curve(model, image, target, c, order, false));
  const insertion = curveArea(curve(model, image, target, c, order, true));
  tf.dispose([image, reference, target]);
  return {
    energy: energyOnPart(heat, pair.region),
    deletionGap: deletion - base.deletionArea,
    insertionGap: base.insertionArea - insertion,
    scale: base.scale,
    ms,
  };
}

function summarise(samples: Sample[], seed: number): MethodResult {
  const energies = samples.map((s) => s.energy).filter(Number.isFinite);
  const scales = samples.map((s) => s.scale);
  const deletion = samples.map((s) => s.deletionGap);
  const insertion = samples.map((s) => s.insertionGap);
  const times = samples.map((s) => s.ms).sort((a, b) => a - b);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  const interval = (gaps: number[]) => bootstrapInterval(gaps, scales, seed).map(round) as [number, number];
  return {
    energyOnPart: round(energies.reduce((s, e) => s + e, 0) / energies.length),
    deletionGain: round(ratioOfSums(deletion, scales)),
    deletionInterval: interval(deletion),
    insertionGain: round(ratioOfSums(insertion, scales)),
    insertionInterval: interval(insertion),
    ms: Math.round(times[Math.floor(times.length / 2)] * 10) / 10,
    msMin: Math.round(times[0] * 10) / 10,
    pairs: samples.length,
  };
}

type Results = Record<string, Record<string, MethodResult>>;

/** How a method does against the goal: conditions meeting both parts of it, then mean deletion gain. */
function goalScore(results: Results, method: HeatmapMethod) {
  const rows = Object.values(results).map((r) => r[method]);
  const met = rows.filter((r) => r.energyOnPart >= GOAL_ENERGY && r.deletionInterval[0] > 0).length;
  const energyMet = rows.filter((r) => r.energyOnPart >= GOAL_ENERGY).length;
  const deletionMet = rows.filter((r) => r.deletionInterval[0] > 0).length;
  const meanDeletion = rows.reduce((s, r) => s + r.deletionGain, 0) / rows.length;
  const maxMs = Math.max(...rows.map((r) => r.msMin));
  return { met, energyMet, deletionMet, meanDeletion, maxMs, of: rows.length };
}

/** The fast method (fastest heat map < FAST_MS on every condition) that meets the goal on most conditions. */
function chooseDefault(results: Results, methods: HeatmapMethod[]): HeatmapMethod {
  const scored = methods.map((m) => ({ m, ...goalScore(results, m) })).filter((s) => s.maxMs < FAST_MS);
  scored.sort((a, b) => b.met - a.met || b.meanDeletion - a.meanDeletion);
  return scored[0]?.m ?? methods[0];
}

function markdown(results: Results, methods: HeatmapMethod[], chosen: HeatmapMethod, header: string): string {
  const conditions = Object.keys(results);
  const table = (title: string, cell: (r: MethodResult) => string) =>
    [
      `### ${title}`,
      '',
      `| method | ${conditions.join(' | ')} |`,
      `| --- | ${conditions.map(() => '---:').join(' | ')} |`,
      ...methods.map(
        (m) =>
          `| ${m === chosen ? `**${m}**` : m} | ${conditions.map((c) => cell(results[c][m])).join(' | ')} |`,
      ),
      '',
    ].join('\n');
  const interval = (g: number, [lo, hi]: [number, number]) =>
    `${g.toFixed(2)} [${lo.toFixed(2)}, ${hi.toFixed(2)}]`;
  return [
    header,
    table('Energy on part (1 = uniform; goal ≥ 2)', (r) => r.energyOnPart.toFixed(2)),
    table('Deletion gain [95 % bootstrap interval] (goal: interval above 0)', (r) =>
      interval(r.deletionGain, r.deletionInterval),
    ),
    table('Insertion gain [95 % bootstrap interval]', (r) => interval(r.insertionGain, r.insertionInterval)),
    table(
      'ms per heat map (one pair): median / fastest',
      (r) => `${r.ms.toFixed(0)} / ${r.msMin.toFixed(0)}`,
    ),
  ].join('\n');
}

/** Every method's faithfulness on one condition's test pairs (each pair: a product and its nearest neighbour). */
async function measureCondition(
  model: SimilarityModel,
  set: TestSet,
  manifest: Awaited<ReturnType<typeof readPartsManifest>>,
  root: string,
  methods: HeatmapMethod[],
  c: number,
  onSample: () => void,
): Promise<Record<string, MethodResult>> {
  const bits = conditionBits(manifest, model.config.conditions[c]);
  const rng = new Rng(SEED * 1000 + c);
  const pairs: Pair[] = await Promise.all(
    nearestPairs(set, c, rng).map(async (p) => ({
      ...p,
      region: await readPartRegion(
        partMaskPath(root, set.products[p.neighbour].id),
        bits,
        model.config.imageSize,
      ),
    })),
  );
  const samples = new Map<HeatmapMethod, Sample[]>(methods.map((m) => [m, []]));
  for (const [i, pair] of pairs.entries()) {
    const image = single(set.images, pair.neighbour);
    const target = referenceTargets(model, single(set.images, pair.query), c);
    const base = baseline(model, image, target, c, new Rng(SEED * 7919 + c * 131 + i));
    tf.dispose([image, target]);
    for (const m of methods) {
      samples.get(m)?.push(await measure(model, m, set, pair, c, base, new Rng(SEED + i)));
      onSample();
    }
  }
  return Object.fromEntries(methods.map((m, k) => [m, summarise(samples.get(m) ?? [], SEED + k)]));
}

async function run(): Promise<void> {
  const backend = await selectBackend('auto');
  const model = await loadModelFromCheckpoint(args.model);
  const catalogue = await loadCatalogue(args.data);
  const manifest = await readPartsManifest(catalogue.root).catch((error: Error) => {
    throw new Error(
      `${catalogue.root} has no part masks (${error.message}); regenerate it: npx tsx src/cli/main.ts demo-data --out ${args.data} --force`,
    );
  });
  const kind = model.config.kind;
  const methods = (args.methods?.split(',') as HeatmapMethod[] | undefined) ?? methodsFor(kind);
  const set = await loadTestSet(catalogue, model);
  const size = model.config.imageSize;
  log.info({ backend, kind, test: set.products.length, pairs: PAIRS, steps: STEPS, methods }, 'starting');
  const started = performance.now();
  const load = loadavg()[0];
  // Warm up every method once (kernels compile on first use).
  for (const m of methods) heatMaps(model, m, single(set.images, 0), single(set.images, 1), 0).dispose();
  const progress = await createProgress('heat maps', 'maps', log);
  const total = model.config.conditions.length * PAIRS * methods.length;
  let done = 0;
  const results: Results = {};
  for (const [c, condition] of model.config.conditions.entries()) {
    results[condition] = await measureCondition(model, set, manifest, catalogue.root, methods, c, () =>
      progress.update(++done, total),
    );
  }
  progress.stop();
  const seconds = (performance.now() - started) / 1000;
  const chosen = chooseDefault(results, methods);
  const goal = Object.fromEntries(methods.map((m) => [m, goalScore(results, m)]));
  const out = {
    model: resolve(args.model),
    data: resolve(args.data),
    kind,
    imageSize: size,
    backend,
    cpus: cpus().length,
    quick: args.quick,
    pairsPerCondition: PAIRS,
    steps: STEPS,
    integratedGradientSteps: IG_STEPS ?? 'default',
    block: Math.round(size * BLOCK_FRACTION),
    seconds: Math.round(seconds),
    loadAverage: { start: Math.round(load * 10) / 10, end: Math.round(loadavg()[0] * 10) / 10 },
    method: chosen,
    currentDefault: DEFAULT_HEATMAP_METHOD[kind],
    goal,
    perCondition: results,
  };
  const header = [
    `# Heat-map faithfulness (${kind}, ${size} px, ${PAIRS} test pairs per condition, ${STEPS} curve steps${args.quick ? ', --quick' : ''})`,
    '',
    `Chosen default for ${kind}: **${chosen}** (among methods whose fastest heat map took under ${FAST_MS} ms, the one meeting energy ≥ ${GOAL_ENERGY} and a deletion interval above 0 on most conditions). ${methods
      .map(
        (m) =>
          `${m}: ${goal[m].met}/${goal[m].of} conditions (energy ${goal[m].energyMet}, deletion ${goal[m].deletionMet})`,
      )
      .join(
        '; ',
      )}. Backend ${backend}, ${cpus().length} cores shared with other jobs (load average ${load.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end), ${Math.round(seconds)} s.`,
    '',
  ].join('\n');
  const md = markdown(results, methods, chosen, header);
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  await writeFileAtomic(join(dir, `${args.out}.json`), `${JSON.stringify(out, null, 2)}\n`);
  await writeFileAtomic(join(dir, `${args.out}.md`), md);
  process.stdout.write(`${md}\n`);
}

try {
  await run();
} catch (error) {
  // A plain message: an uncaught error would also print the wasm backend's source.
  process.stderr.write(`explain-faithfulness: ${(error as Error).message}\n`);
  process.exit(1);
}
