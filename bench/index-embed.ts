/**
 * Embedding speed of the index job: product images decoded and run through the model, images/s. Compares, in the
 * same run and alternating, the pipeline as it was (reference copy below: decode each image from its path, 4 at a
 * time, sharp's operation cache on, batches of 64, one wasm thread) with the index job's pipeline now
 * (createModelSource + the bundle build's batch loop, wasm threads on), twice: cold (no decoded pixels kept beside
 * the catalogue: every image is decoded, and kept) and warm (the pixels training or an earlier run kept are read
 * back). All embed the same rendered demo catalogue with the same seeded model and must give the same vectors.
 * Each measurement runs in its own process and records the load average when it ends.
 *
 *   npx tsx bench/index-embed.ts [--count 1200] [--rounds 3]
 *
 * Writes bench/results/index-embed.{json,md}.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { generateDemoCatalogue, loadCatalogue, PIXEL_DIR } from '../src/catalogue/index.ts';
import { mapWithConcurrency } from '../src/catalogue/pool.ts';
import { createModelSource, fingerprintProducts, type BundleSource } from '../src/index/index.ts';
import { createModel, defaultModelConfig, selectBackend, type SimilarityModel } from '../src/model/index.ts';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : fallback;
};
const COUNT = Number(flag('--count', '1200'));
const ROUNDS = Number(flag('--rounds', '3'));
const BATCH = 64;

type Pipeline = 'before' | 'cold' | 'warm';
const PIPELINES: Pipeline[] = ['before', 'cold', 'warm'];

interface Measurement {
  pipeline: Pipeline;
  threads: number;
  images: number;
  seconds: number;
  imagesPerSecond: number;
  /** CPU time of the whole process (all threads) per image: the work, whatever the load. */
  cpuMsPerImage: number;
  vectorsSha256: string;
  /** os.loadavg() when the measurement ended. */
  loadAverage: number[];
}

function hash(vectors: Float32Array): string {
  return createHash('sha256')
    .update(Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength))
    .digest('hex');
}

/**
 * decodeImage as it was: libvips opens the path itself. The demo images are square RGB JPEGs, so its padding and
 * channel steps do nothing and are left out here (the vectors are compared with the new pipeline's).
 */
async function decodeFromPath(path: string, size: number): Promise<Float32Array> {
  const bytes = await sharp(path)
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(size, size, { fit: 'inside', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return Float32Array.from(bytes, (value) => value / 255);
}

/** The reference pipeline (src/index/model-source.ts at 3a63e51), kept here to measure the current one against. */
async function embedBefore(model: SimilarityModel, root: string, images: string[]): Promise<Float32Array> {
  const size = model.config.imageSize;
  const length = size * size * 3;
  const out = new Float32Array(images.length * model.config.embedDim);
  const decode = (batch: string[]) =>
    mapWithConcurrency(batch, 4, (image) => decodeFromPath(join(root, image), size)).then((decoded) => {
      const pixels = new Float32Array(batch.length * length);
      decoded.forEach((pixelsOfOne, row) => pixels.set(pixelsOfOne, row * length));
      return pixels;
    });
  let pending = decode(images.slice(0, BATCH));
  for (let begin = 0; begin < images.length; begin += BATCH) {
    const pixels = await pending;
    const end = Math.min(images.length, begin + BATCH);
    if (end < images.length) pending = decode(images.slice(end, end + BATCH));
    const output = tf.tidy(() => model.embed(tf.tensor4d(pixels, [end - begin, size, size, 3])));
    out.set((await output.data()) as Float32Array, begin * model.config.embedDim);
    output.dispose();
  }
  return out;
}

/** The index job now: its model source, driven as the bundle build drives it (batch after batch, prefetching). */
async function embedAfter(source: BundleSource, count: number, embedDim: number): Promise<Float32Array> {
  const all = Array.from({ length: count }, (_, i) => i);
  const out = new Float32Array(count * embedDim);
  for (let begin = 0; begin < count; begin += BATCH) {
    const end = Math.min(count, begin + BATCH);
    const pending = source.embed(all.slice(begin, end));
    if (end < count) source.prefetch?.(all.slice(end, end + BATCH));
    const rows = await pending;
    out.set(rows.embeddings!, begin * embedDim);
  }
  // The build calls finish() after its loop: a cold run writes the pixels it decoded (timed, as in the job).
  await source.finish?.();
  return out;
}

async function worker(pipeline: Pipeline, dataDir: string): Promise<Measurement> {
  // src/catalogue switches libvips' operation cache off on import; the reference ran with sharp's defaults.
  if (pipeline === 'before') sharp.cache({ memory: 50, files: 20, items: 100 });
  await selectBackend('wasm', { info: () => {}, warn: () => {} });
  const catalogue = await loadCatalogue(dataDir, { checkImages: false });
  const model = createModel(
    defaultModelConfig(catalogue.conditions, { kind: 'csn', backbone: 'small', imageSize: 48, seed: 1 }),
  );
  const images = catalogue.products.map((p) => p.image);
  // Products and fingerprints come before embedding in the index job: not timed.
  const source = await createModelSource({
    model,
    modelId: 'bench',
    catalogue,
    products: await fingerprintProducts(catalogue),
    keepPixels: pipeline !== 'before',
  });
  // Warm up the model (first calls compile and allocate) on one batch.
  await embedBefore(model, catalogue.root, images.slice(0, BATCH));
  const cpu = process.cpuUsage();
  const start = performance.now();
  const vectors =
    pipeline === 'before'
      ? await embedBefore(model, catalogue.root, images)
      : await embedAfter(source, images.length, model.config.embedDim);
  const seconds = (performance.now() - start) / 1000;
  const { user, system } = process.cpuUsage(cpu);
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return {
    pipeline,
    threads: wasm.getThreadsCount(),
    images: images.length,
    seconds,
    imagesPerSecond: images.length / seconds,
    cpuMsPerImage: (user + system) / 1000 / images.length,
    vectorsSha256: hash(vectors),
    loadAverage: os.loadavg(),
  };
}

async function child(pipeline: Pipeline, dataDir: string): Promise<Measurement> {
  const env = { ...process.env };
  delete env.DRESSMATCH_PIXEL_CACHE;
  if (pipeline === 'before') env.DRESSMATCH_WASM_THREADS = '1';
  else delete env.DRESSMATCH_WASM_THREADS;
  // Cold: nothing kept beside the catalogue (the run keeps what it decodes, so the warm one after it reads back).
  if (pipeline === 'cold') await rm(join(dataDir, PIXEL_DIR), { recursive: true, force: true });
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', pipeline, '--data', dataDir];
  const { stdout } = await promisify(execFile)(process.execPath, args, { env, maxBuffer: 2 ** 24 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Measurement;
}

interface Round {
  round: number;
  before: Measurement;
  cold: Measurement;
  warm: Measurement;
  coldSpeedup: number;
  warmSpeedup: number;
  sameVectors: boolean;
}

const loads = (r: Round): string =>
  [r.before, r.cold, r.warm].map((m) => m.loadAverage[0].toFixed(1)).join(', ');

/** Rounds of before, cold and warm, each in its own process, alternating. */
async function measureRounds(dataDir: string): Promise<Round[]> {
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const [before, cold, warm] = [
      await child('before', dataDir),
      await child('cold', dataDir),
      await child('warm', dataDir),
    ];
    const r: Round = {
      round,
      before,
      cold,
      warm,
      coldSpeedup: cold.imagesPerSecond / before.imagesPerSecond,
      warmSpeedup: warm.imagesPerSecond / before.imagesPerSecond,
      sameVectors: cold.vectorsSha256 === before.vectorsSha256 && warm.vectorsSha256 === before.vectorsSha256,
    };
    rounds.push(r);
    process.stderr.write(
      `round ${round}: before ${before.imagesPerSecond.toFixed(0)}, cold ${cold.imagesPerSecond.toFixed(0)} ` +
        `(${r.coldSpeedup.toFixed(2)}x), warm ${warm.imagesPerSecond.toFixed(0)} (${r.warmSpeedup.toFixed(2)}x) ` +
        `images/s, load ${loads(r)}, same vectors: ${r.sameVectors}\n`,
    );
  }
  return rounds;
}

type Summary = {
  date: string;
  machine: string;
  loadAverage: number[];
  rounds: Round[];
  coldSpeedupRange: [number, number];
  warmSpeedupRange: [number, number];
};

function report(summary: Summary): string {
  const { rounds } = summary;
  const x = (value: number) => `${value.toFixed(2)}x`;
  return [
    '# Index job embedding speed',
    '',
    `Run ${summary.date} on ${summary.machine} (load average at the end ${summary.loadAverage.map((l) => l.toFixed(1)).join(' ')}). ` +
      `${COUNT} rendered demo products (128 px JPEG) embedded at 48 px by a seeded CSN (small backbone), batches of ${BATCH}. ` +
      'Before = the reference pipeline (libvips opens each path with its operation cache on, 4 decodes at a time, ' +
      "one wasm thread). Cold = the index job's model source now on a catalogue with no decoded pixels kept beside it " +
      '(every image decoded from its bytes with the operation cache off, a whole batch in flight, wasm threads on; ' +
      'the run keeps the pixels it decoded, time included). Warm = the same source when training or an earlier run ' +
      'kept them (read back, nothing decoded). Rounds alternate the three; each runs in its own process; the load ' +
      'average (1 min) is taken as each one ends.',
    '',
    `Reproduce: \`npx tsx bench/index-embed.ts ${argv.join(' ')}\``,
    '',
    '| round | load (before, cold, warm) | before images/s | cold images/s | warm images/s | cold / before | warm / before | CPU ms/image (before, cold, warm) | same vectors |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rounds.map(
      (r) =>
        `| ${r.round} | ${loads(r)} | ${r.before.imagesPerSecond.toFixed(0)} | ${r.cold.imagesPerSecond.toFixed(0)} | ` +
        `${r.warm.imagesPerSecond.toFixed(0)} | ${x(r.coldSpeedup)} | ${x(r.warmSpeedup)} | ` +
        `${[r.before, r.cold, r.warm].map((m) => m.cpuMsPerImage.toFixed(2)).join(', ')} | ${r.sameVectors ? 'yes' : 'NO'} |`,
    ),
    '',
    `Cold / before: ${x(summary.coldSpeedupRange[0])} – ${x(summary.coldSpeedupRange[1])}; ` +
      `warm / before: ${x(summary.warmSpeedupRange[0])} – ${x(summary.warmSpeedupRange[1])}. ` +
      'CPU ms/image is the whole process (all threads) over the timed loop: the work done, which load changes less ' +
      'than images/s (it still grows on a busy machine).',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const workerPipeline = flag('--worker', '') as Pipeline;
  if (PIPELINES.includes(workerPipeline)) {
    const result = await worker(workerPipeline, flag('--data', ''));
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const scratch = await mkdtemp(join(os.tmpdir(), 'dressmatch-embed-bench-'));
  try {
    const dataDir = join(scratch, 'catalogue');
    process.stderr.write(`rendering ${COUNT} demo products ...\n`);
    await generateDemoCatalogue(dataDir, { count: COUNT, seed: 7 });
    const rounds = await measureRounds(dataDir);
    const range = (values: number[]): [number, number] => [Math.min(...values), Math.max(...values)];
    const summary = {
      benchmark: 'index-embed',
      date: new Date().toISOString(),
      machine: `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`,
      loadAverage: os.loadavg(),
      images: COUNT,
      imageSize: 48,
      batch: BATCH,
      rounds,
      coldSpeedupRange: range(rounds.map((r) => r.coldSpeedup)),
      warmSpeedupRange: range(rounds.map((r) => r.warmSpeedup)),
      sameVectors: rounds.every((r) => r.sameVectors),
    };
    const md = report(summary);
    const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'index-embed');
    await writeFile(`${out}.json`, `${JSON.stringify(summary, null, 2)}\n`);
    await writeFile(`${out}.md`, md);
    process.stdout.write(`${md}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
