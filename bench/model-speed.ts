/**
 * Training speed of the model stage: one Adam step on a TripletBatch, per backend / model / image size /
 * batch layout. Prints a table and writes bench/results/model-speed.json.
 *
 *   npx tsx bench/model-speed.ts            # full table (about a minute on 2 cores)
 *   npx tsx bench/model-speed.ts --quick    # three rows
 *   npx tsx bench/model-speed.ts --rounds 3 # rounds of the reference comparison (default 3)
 *
 * Every table runs in a child process (the wasm backend starts once per process, with its thread count). The
 * reference comparison (48 px, 96 images, 384 triplets) alternates, in each round: our step with one wasm thread
 * (before), with one thread per core (after), and the PyTorch CPU twin of the same network, loss and Adam step
 * (bench/model-speed-twin.py, as many threads) when `python3 -c 'import torch'` works; ratios are per round.
 *
 * "images" is the number of distinct images in a batch (each embedded once); "triplets" the number of
 * triplets drawn among them. Independent triplets need about 3 images each; triplets drawn within a pool
 * of products share images, which is how the loss gets many more triplets for the same backbone work.
 */
import { execFile } from 'node:child_process';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {
  createModel,
  defaultModelConfig,
  selectBackend,
  type ModelConfig,
  type TripletBatch,
} from '../src/model/index.ts';
import { createAdam } from '../src/train/optimizer.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { Rng } from '../src/util/rng.ts';

interface Case {
  backend: 'wasm' | 'cpu';
  kind: ModelConfig['kind'];
  backbone: ModelConfig['backbone'];
  imageSize: number;
  width: number;
  triplets: number;
  images: number;
}

interface Row extends Case {
  stepMs: number;
  forwardMs: number;
  tripletsPerSecond: number;
  imagesPerSecond: number;
}

const CONDITIONS = ['color', 'sleeve', 'neckline', 'length', 'pattern', 'silhouette'];
const quick = process.argv.includes('--quick');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const workerArg = process.argv.indexOf('--worker');
/** The reference case of issue 13: small backbone, 48 px, 96 images, 384 triplets drawn among them. */
const REFERENCE = { images: 96, triplets: 384, imageSize: 48, width: 16 };

function cases(): Case[] {
  const base = { backend: 'wasm', kind: 'csn', backbone: 'small', width: 16 } as const;
  const independent = (imageSize: number, triplets: number): Case => ({
    ...base,
    imageSize,
    triplets,
    images: 3 * triplets,
  });
  if (quick)
    return [independent(32, 32), independent(48, 64), { ...base, imageSize: 48, triplets: 384, images: 96 }];
  return [
    ...[32, 48, 64].flatMap((size) => [independent(size, 32), independent(size, 64)]),
    { ...base, imageSize: 48, triplets: 384, images: 96 },
    { ...base, imageSize: 64, triplets: 384, images: 96 },
    { ...base, imageSize: 48, width: 24, triplets: 384, images: 96 },
    { ...base, kind: 'unconditional', imageSize: 48, triplets: 384, images: 96 },
    { ...base, kind: 'asen', imageSize: 48, triplets: 384, images: 96 },
    { ...base, backbone: 'resnet18', imageSize: 48, triplets: 384, images: 96 },
    // The pure-JS cpu backend on a batch small enough to finish, next to wasm on the same batch.
    { ...base, imageSize: 32, triplets: 4, images: 12 },
    { ...base, backend: 'cpu', imageSize: 32, triplets: 4, images: 12 },
  ];
}

function randomBatch(c: Case, rng: Rng): TripletBatch {
  const pixels = new Float32Array(c.images * c.imageSize * c.imageSize * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rng.next();
  const rows = (offset: number) =>
    tf.tensor1d(
      Array.from({ length: c.triplets }, (_, i) =>
        c.images === 3 * c.triplets ? 3 * i + offset : rng.int(0, c.images - 1),
      ),
      'int32',
    );
  return {
    images: tf.tensor4d(pixels, [c.images, c.imageSize, c.imageSize, 3]),
    anchor: rows(0),
    far: rows(1),
    close: rows(2),
    condition: tf.tensor1d(
      Array.from({ length: c.triplets }, (_, i) => i % CONDITIONS.length),
      'int32',
    ),
  };
}

async function measure(c: Case): Promise<Row> {
  await selectBackend(c.backend, { info: () => {}, warn: () => {} });
  const model = createModel(
    defaultModelConfig(CONDITIONS, {
      kind: c.kind,
      backbone: c.backbone,
      imageSize: c.imageSize,
      width: c.width,
      seed: 1,
    }),
  );
  const batch = randomBatch(c, new Rng(7));
  // The trainer's Adam (fused into one kernel per variable on wasm), as `dressmatch train` steps.
  const optimizer = createAdam(1e-3);
  const step = () => {
    const cost = optimizer.minimize(
      () => model.loss(batch, { margin: 0.2, embedLoss: 5e-3, maskLoss: 5e-4 }, true).total,
      true,
      model.trainableVariables(),
    );
    cost?.dataSync();
    cost?.dispose();
  };
  const [warmup, timed] = c.backend === 'cpu' ? [1, 2] : [2, 5];
  for (let i = 0; i < warmup; i++) step();
  const start = performance.now();
  for (let i = 0; i < timed; i++) step();
  const stepMs = (performance.now() - start) / timed;
  const forwardStart = performance.now();
  const embedded = model.embed(batch.images);
  embedded.dataSync();
  const forwardMs = performance.now() - forwardStart;
  tf.dispose([embedded, ...Object.values(batch)]);
  optimizer.dispose();
  model.dispose();
  return {
    ...c,
    stepMs: Math.round(stepMs),
    forwardMs: Math.round(forwardMs),
    tripletsPerSecond: Math.round((c.triplets / stepMs) * 1000),
    imagesPerSecond: Math.round((c.images / stepMs) * 1000),
  };
}

function table(rows: Row[]): string {
  const header = [
    'backend',
    'model',
    'backbone',
    'size',
    'width',
    'images',
    'triplets',
    'step ms',
    'fwd ms',
    'triplets/s',
    'images/s',
  ];
  const lines = rows.map((r) => [
    r.backend,
    r.kind,
    r.backbone,
    String(r.imageSize),
    String(r.width),
    String(r.images),
    String(r.triplets),
    String(r.stepMs),
    String(r.forwardMs),
    String(r.tripletsPerSecond),
    String(r.imagesPerSecond),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i])).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join('\n');
}

async function runCases(list: Case[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of list) rows.push(await measure(c));
  return rows;
}

/** Run `cases` (all or the reference one) in a child process with `threads` wasm threads. */
async function child(which: 'all' | 'reference', threads?: number): Promise<Row[]> {
  const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--worker', which];
  if (quick) args.push('--quick');
  const env = { ...process.env };
  if (threads) env.DRESSMATCH_WASM_THREADS = String(threads);
  else delete env.DRESSMATCH_WASM_THREADS;
  const { stdout } = await promisify(execFile)(process.execPath, args, { env, maxBuffer: 2 ** 24 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '[]') as Row[];
}

interface Twin {
  stepMs: number;
  imagesPerSecond: number;
  threads: number;
  torch: string;
}

/** The PyTorch twin, or null when no python3 here imports torch (it is never a dependency of the product). */
async function torchTwin(threads: number): Promise<Twin | null> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'model-speed-twin.py');
  const args = [script, '--size', '48', '--images', '96', '--triplets', '384', '--width', '16'];
  // Debian's python3-torch lives in the system python, which a pyenv python3 on PATH may hide.
  for (const python of [process.env.PYTHON ?? 'python3', '/usr/bin/python3']) {
    try {
      const { stdout } = await promisify(execFile)(python, [...args, '--threads', String(threads)]);
      return JSON.parse(stdout.trim().split('\n').pop() ?? '') as Twin;
    } catch {
      // no torch in this python: try the next one
    }
  }
  return null;
}

interface Round {
  round: number;
  oneThreadImagesPerSecond: number;
  threadedImagesPerSecond: number;
  torchImagesPerSecond: number | null;
  torchOneThreadImagesPerSecond: number | null;
  threadSpeedup: number;
  ratioToTorch: number | null;
  /** One thread each: per-core efficiency, the figure least moved by other load on the machine. */
  ratioToTorchOneThread: number | null;
}

function range(values: number[], digits = 2): string {
  if (values.length === 0) return 'n/a';
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

if (workerArg > 0) {
  const list =
    process.argv[workerArg + 1] === 'reference'
      ? [{ backend: 'wasm', kind: 'csn', backbone: 'small', ...REFERENCE } as Case]
      : cases();
  const rows = await runCases(list);
  process.stdout.write(`${JSON.stringify(rows)}\n`, () => process.exit(0));
} else {
  const threads = cpus().length;
  const rounds: Round[] = [];
  let twinInfo: Twin | null = null;
  for (let round = 1; round <= ROUNDS; round++) {
    const [one] = await child('reference', 1);
    const [many] = await child('reference');
    const twin = await torchTwin(threads);
    const twinOne = await torchTwin(1);
    twinInfo = twin ?? twinInfo;
    rounds.push({
      round,
      oneThreadImagesPerSecond: one.imagesPerSecond,
      threadedImagesPerSecond: many.imagesPerSecond,
      torchImagesPerSecond: twin ? Math.round(twin.imagesPerSecond) : null,
      torchOneThreadImagesPerSecond: twinOne ? Math.round(twinOne.imagesPerSecond) : null,
      threadSpeedup: many.imagesPerSecond / one.imagesPerSecond,
      ratioToTorch: twin ? many.imagesPerSecond / twin.imagesPerSecond : null,
      ratioToTorchOneThread: twinOne ? one.imagesPerSecond / twinOne.imagesPerSecond : null,
    });
    process.stderr.write(`round ${round}: ${JSON.stringify(rounds[rounds.length - 1])}\n`);
  }
  const rows = await child('all');
  console.log(table(rows));
  const wasmSmall = rows.find((r) => r.backend === 'wasm' && r.imageSize === 32 && r.triplets === 32);
  const cpuSmall = rows.find((r) => r.backend === 'cpu');
  if (wasmSmall && cpuSmall) {
    console.log(
      `\nwasm vs cpu, same batch (32 px, 32 triplets): ${(cpuSmall.stepMs / wasmSmall.stepMs).toFixed(1)}x faster`,
    );
  }
  const ratios = rounds.flatMap((r) => (r.ratioToTorch === null ? [] : [r.ratioToTorch]));
  const ratiosOne = rounds.flatMap((r) =>
    r.ratioToTorchOneThread === null ? [] : [r.ratioToTorchOneThread],
  );
  console.log(
    `\nreference step (48 px, 96 images, 384 triplets), ${ROUNDS} rounds: 1 thread ` +
      `${range(
        rounds.map((r) => r.oneThreadImagesPerSecond),
        0,
      )} images/s, ${threads} threads ` +
      `${range(
        rounds.map((r) => r.threadedImagesPerSecond),
        0,
      )} images/s ` +
      `(${range(rounds.map((r) => r.threadSpeedup))}x); PyTorch twin ` +
      (twinInfo
        ? `${range(
            rounds.flatMap((r) => (r.torchImagesPerSecond ? [r.torchImagesPerSecond] : [])),
            0,
          )} images/s, ` +
          `ours / PyTorch ${range(ratios)} (${threads} threads each), ${range(ratiosOne)} (1 thread each)`
        : 'not run (no python3 with torch)'),
  );
  const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'model-speed.json');
  await writeFileAtomic(
    out,
    `${JSON.stringify(
      {
        benchmark: 'model-speed',
        date: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        loadAverage: (await import('node:os')).loadavg(),
        torch: twinInfo ? { version: twinInfo.torch, threads: twinInfo.threads } : null,
        reference: { ...REFERENCE, rounds },
        rows,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${out}`);
}
