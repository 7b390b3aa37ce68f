/**
 * Training speed of the model stage: one Adam step on a TripletBatch, per backend / model / image size /
 * batch layout. Prints a table and writes bench/results/model-speed.{json,md}.
 *
 *   npx tsx bench/model-speed.ts            # reference rounds, then the full table (about 3 minutes on 2 cores)
 *   npx tsx bench/model-speed.ts --quick    # three rows
 *   npx tsx bench/model-speed.ts --rounds 5 # rounds of the reference comparison (default 3)
 *
 * Every measurement runs in its own child process, one at a time, while this process waits (the wasm backend
 * starts once per process, with its thread count). The reference comparison (48 px, 96 images, 384 triplets)
 * measures in each round: our step with one wasm thread, with one thread per core, and the PyTorch CPU twin of the
 * same network, loss and Adam step (bench/lib/model-speed-twin.py) with as many threads, with as many threads and
 * OMP_WAIT_POLICY=PASSIVE, and with one thread, when some python imports torch; odd rounds run in that order,
 * even rounds in the reverse order. Ratios are per round, against the faster of the twin's two threaded runs.
 *
 * Each side times every step and reports the median step (one descheduled step does not move it) and the CPU
 * that other processes used during its timed steps (from /proc/stat, in cores); ours also reports its main
 * thread's CPU per step, which other load does not inflate: about the step on an idle machine. Why: PyTorch's OpenMP threads
 * spin at every barrier, and one other runnable thread on the 2 cores, even at nice 19, drops the twin's
 * two-thread step from about 720 to 80–120 images/s (one thread: no collapse; OMP_WAIT_POLICY=PASSIVE: 360–440).
 * That, not this bench, made the twin "collapse inside the bench" (bench/results/model-speed.md).
 *
 * "images" is the number of distinct images in a batch (each embedded once); "triplets" the number of
 * triplets drawn among them. Independent triplets need about 3 images each; triplets drawn within a pool
 * of products share images, which is how the loss gets many more triplets for the same backbone work.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
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
  /** Median of the timed steps. */
  stepMs: number;
  meanStepMs: number;
  /** CPU used by other processes during the timed steps, in cores (null off Linux). */
  othersCores: number | null;
  /** CPU time of the main thread per timed step (null off Linux): about the step on an idle machine. */
  mainThreadMs: number | null;
  forwardMs: number;
  tripletsPerSecond: number;
  imagesPerSecond: number;
}

const CONDITIONS = ['color', 'sleeve', 'neckline', 'length', 'pattern', 'silhouette'];
const quick = process.argv.includes('--quick');
const roundsArg = process.argv.indexOf('--rounds');
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const workerArg = process.argv.indexOf('--worker');
/** Warm-up and timed steps of the reference case (the table's cases run 2 + 5). */
const REFERENCE_STEPS = [3, 12] as const;
/** The reference case: the demo's training step, small backbone, 48 px, 96 images, 384 triplets drawn among them. */
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

async function measure(c: Case, steps: readonly [number, number] = [2, 5]): Promise<Row> {
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
  const [warmup, timed] = c.backend === 'cpu' ? [1, 2] : steps;
  const timing = timeSteps(step, warmup, timed);
  const forwardStart = performance.now();
  const embedded = model.embed(batch.images);
  embedded.dataSync();
  const forwardMs = performance.now() - forwardStart;
  tf.dispose([embedded, ...Object.values(batch)]);
  optimizer.dispose();
  model.dispose();
  return {
    ...c,
    stepMs: Math.round(timing.stepMs),
    meanStepMs: Math.round(timing.meanStepMs),
    othersCores: timing.othersCores,
    mainThreadMs: timing.mainThreadMs,
    forwardMs: Math.round(forwardMs),
    tripletsPerSecond: Math.round((c.triplets / timing.stepMs) * 1000),
    imagesPerSecond: Math.round((c.images / timing.stepMs) * 1000),
  };
}

/** Busy CPU seconds of the whole machine since boot (/proc/stat, USER_HZ = 100), or null off Linux. */
function machineBusySeconds(): number | null {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + (fields[4] ?? 0);
    return (fields.reduce((sum, value) => sum + value, 0) - idle) / 100;
  } catch {
    return null;
  }
}

interface Timing {
  stepMs: number;
  meanStepMs: number;
  othersCores: number | null;
  mainThreadMs: number | null;
}

/**
 * CPU seconds of this process's main thread (/proc/self/task/<pid>/stat), or null off Linux. With a wasm thread
 * pool the main thread carries every serial part of the step and waits for the pool's thread in every XNNPACK
 * operator, so its CPU per step is about what the step takes when the pool's thread has a core to itself.
 */
function mainThreadSeconds(): number | null {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * Time each of `timed` steps after `warmup` ones: the median step, the mean, and how much CPU the rest of the
 * machine used meanwhile (busy CPU of /proc/stat minus this process's own, all its threads included).
 */
function timeSteps(step: () => void, warmup: number, timed: number): Timing {
  for (let i = 0; i < warmup; i++) step();
  const busyBefore = machineBusySeconds();
  const ownBefore = process.cpuUsage();
  const mainBefore = mainThreadSeconds();
  const start = performance.now();
  const times: number[] = [];
  for (let i = 0; i < timed; i++) {
    const stepStart = performance.now();
    step();
    times.push(performance.now() - stepStart);
  }
  const wallSeconds = (performance.now() - start) / 1000;
  const own = process.cpuUsage(ownBefore);
  const mainAfter = mainThreadSeconds();
  const busyAfter = machineBusySeconds();
  const othersCores =
    busyBefore === null || busyAfter === null
      ? null
      : Math.max(0, busyAfter - busyBefore - (own.user + own.system) / 1e6) / wallSeconds;
  return {
    stepMs: median(times),
    meanStepMs: times.reduce((sum, t) => sum + t, 0) / times.length,
    othersCores: othersCores === null ? null : Math.round(othersCores * 100) / 100,
    mainThreadMs:
      mainBefore === null || mainAfter === null
        ? null
        : Math.round(((mainAfter - mainBefore) * 1000) / timed),
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
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
    'others',
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
    r.othersCores === null ? 'n/a' : r.othersCores.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i])).join('  ');
  return [format(header), widths.map((w) => '-'.repeat(w)).join('  '), ...lines.map(format)].join('\n');
}

async function runCases(list: Case[], steps?: readonly [number, number]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const c of list) rows.push(await measure(c, steps));
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

/** One measurement of the reference step: ours or the twin's, in images/s (median step). */
interface Measurement {
  imagesPerSecond: number;
  stepMs: number;
  meanStepMs: number;
  othersCores: number | null;
  /** Ours only: the main thread's CPU per step (see mainThreadSeconds). */
  mainThreadMs?: number | null;
}

interface TwinOutput extends Measurement {
  threads: number;
  torch: string;
}

const TWIN = join(dirname(fileURLToPath(import.meta.url)), 'lib', 'model-speed-twin.py');

/** The first python that imports torch and torch's version, or null (PyTorch is never a dependency of ours). */
async function findTorchPython(): Promise<{ python: string; torch: string } | null> {
  // Debian's python3-torch lives in the system python, which a pyenv python3 on PATH may hide.
  const candidates = [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p);
  for (const python of candidates) {
    try {
      const { stdout } = await promisify(execFile)(python, ['-c', 'import torch; print(torch.__version__)']);
      return { python, torch: stdout.trim() };
    } catch {
      // no torch in this python: try the next one
    }
  }
  return null;
}

/** The PyTorch twin on the reference batch; `passive` makes OpenMP's idle threads sleep instead of spinning. */
async function torchTwin(python: string, threads: number, passive: boolean): Promise<TwinOutput> {
  const args = [TWIN, '--size', '48', '--images', '96', '--triplets', '384', '--width', '16'];
  args.push('--threads', String(threads), '--warmup', String(REFERENCE_STEPS[0]));
  args.push('--steps', String(REFERENCE_STEPS[1]));
  const env = { ...process.env };
  for (const name of ['OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS'])
    delete env[name];
  if (passive) env.OMP_WAIT_POLICY = 'PASSIVE';
  const { stdout } = await promisify(execFile)(python, args, { env });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as TwinOutput;
}

function fromRow(row: Row): Measurement {
  const { imagesPerSecond, stepMs, meanStepMs, othersCores, mainThreadMs } = row;
  return { imagesPerSecond, stepMs, meanStepMs, othersCores, mainThreadMs };
}

function fromTwin(twin: TwinOutput): Measurement {
  return {
    imagesPerSecond: Math.round(twin.imagesPerSecond),
    stepMs: Math.round(twin.stepMs),
    meanStepMs: Math.round(twin.meanStepMs),
    othersCores: twin.othersCores,
  };
}

type Side = 'ours1' | 'oursN' | 'twinN' | 'twinNPassive' | 'twin1';

interface Round {
  round: number;
  order: Side[];
  /** Load average (1 min) when the round started. */
  load: number;
  ours1: Measurement;
  oursN: Measurement;
  twinN: Measurement | null;
  twinNPassive: Measurement | null;
  twin1: Measurement | null;
  threadSpeedup: number;
  /** Ours with N threads / the faster of the twin's two N-thread runs. */
  ratioToTorch: number | null;
  /** One thread each. */
  ratioToTorchOneThread: number | null;
}

/** One round: every side in its own child process, one after the other; even rounds in the reverse order. */
async function runRound(round: number, threads: number, python: string | null): Promise<Round> {
  const sides: Side[] = python ? ['ours1', 'oursN', 'twinN', 'twinNPassive', 'twin1'] : ['ours1', 'oursN'];
  const order = round % 2 ? sides : [...sides].reverse();
  const load = Math.round(loadavg()[0] * 100) / 100;
  const got: Partial<Record<Side, Measurement>> = {};
  for (const side of order) {
    if (side === 'ours1' || side === 'oursN') {
      const [row] = await child('reference', side === 'ours1' ? 1 : threads);
      got[side] = fromRow(row);
    } else if (python) {
      got[side] = fromTwin(await torchTwin(python, side === 'twin1' ? 1 : threads, side === 'twinNPassive'));
    }
  }
  const { ours1, oursN } = got as Record<'ours1' | 'oursN', Measurement>;
  const twinBest = Math.max(got.twinN?.imagesPerSecond ?? 0, got.twinNPassive?.imagesPerSecond ?? 0);
  return {
    round,
    order,
    load,
    ours1,
    oursN,
    twinN: got.twinN ?? null,
    twinNPassive: got.twinNPassive ?? null,
    twin1: got.twin1 ?? null,
    threadSpeedup: round2(oursN.imagesPerSecond / ours1.imagesPerSecond),
    ratioToTorch: twinBest > 0 ? round2(oursN.imagesPerSecond / twinBest) : null,
    ratioToTorchOneThread: got.twin1 ? round2(ours1.imagesPerSecond / got.twin1.imagesPerSecond) : null,
  };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function range(values: number[], digits = 2): string {
  if (values.length === 0) return 'n/a';
  return `${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)}`;
}

/** The rounds as a markdown table: images/s (others' CPU in cores during that measurement) and the ratios. */
function roundsTable(rounds: Round[], threads: number): string {
  const cell = (m: Measurement | null) =>
    m ? `${m.imagesPerSecond} (${m.othersCores === null ? 'n/a' : m.othersCores.toFixed(2)})` : '–';
  const header = [
    'round',
    'load',
    'ours 1 thread',
    `ours ${threads} threads`,
    `twin ${threads} threads`,
    `twin ${threads} threads, passive`,
    'twin 1 thread',
    'threads gain',
    `ours / twin, ${threads} threads`,
    'ours / twin, 1 thread',
  ];
  const lines = rounds.map((r) =>
    [
      String(r.round),
      r.load.toFixed(2),
      cell(r.ours1),
      cell(r.oursN),
      cell(r.twinN),
      cell(r.twinNPassive),
      cell(r.twin1),
      `${r.threadSpeedup.toFixed(2)}×`,
      r.ratioToTorch?.toFixed(2) ?? '–',
      r.ratioToTorchOneThread?.toFixed(2) ?? '–',
    ].join(' | '),
  );
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---:').join('|')}|`,
    ...lines.map((l) => `| ${l} |`),
  ].join('\n');
}

function summary(rounds: Round[], threads: number): string {
  const ratios = rounds.flatMap((r) => (r.ratioToTorch === null ? [] : [r.ratioToTorch]));
  const ratiosOne = rounds.flatMap((r) =>
    r.ratioToTorchOneThread === null ? [] : [r.ratioToTorchOneThread],
  );
  const images = (pick: (r: Round) => Measurement | null) =>
    range(
      rounds.flatMap((r) => (pick(r) ? [pick(r)!.imagesPerSecond] : [])),
      0,
    );
  return (
    `reference step (48 px, 96 images, 384 triplets), ${rounds.length} rounds: ours 1 thread ` +
    `${images((r) => r.ours1)} images/s, ${threads} threads ${images((r) => r.oursN)} images/s ` +
    `(${range(rounds.map((r) => r.threadSpeedup))}×); PyTorch twin ${threads} threads ` +
    `${images((r) => r.twinN)} (passive ${images((r) => r.twinNPassive)}), 1 thread ${images((r) => r.twin1)} ` +
    `images/s; ours / PyTorch ${range(ratios)} (${threads} threads each), ${range(ratiosOne)} (1 thread each)`
  );
}

/** A measurement during which other processes used at most this many cores counts as quiet. */
const QUIET_CORES = 0.25;

/**
 * The same comparison from quiet measurements only, across rounds: the median of our quiet figures over the
 * median of the twin's (its faster threaded run per round), so that a disturbed run on either side drops out.
 */
function quietSummary(rounds: Round[], threads: number): string {
  const quiet = (m: Measurement | null): number[] =>
    m && m.othersCores !== null && m.othersCores <= QUIET_CORES ? [m.imagesPerSecond] : [];
  const oursN = rounds.flatMap((r) => quiet(r.oursN));
  const twinN = rounds.flatMap((r) => {
    const both = [...quiet(r.twinN), ...quiet(r.twinNPassive)];
    return both.length ? [Math.max(...both)] : [];
  });
  const ours1 = rounds.flatMap((r) => quiet(r.ours1));
  const twin1 = rounds.flatMap((r) => quiet(r.twin1));
  const ratio = (a: number[], b: number[]) =>
    a.length && b.length ? (median(a) / median(b)).toFixed(2) : 'n/a';
  const list = (values: number[]) => (values.length ? values.join(', ') : 'none');
  return (
    `quiet measurements only (others ≤ ${QUIET_CORES} cores), images/s: ours ${threads} threads ${list(oursN)}; ` +
    `twin ${threads} threads ${list(twinN)}; ours 1 thread ${list(ours1)}; twin 1 thread ${list(twin1)}. ` +
    `Ratio of medians: ${ratio(oursN, twinN)} (${threads} threads each), ${ratio(ours1, twin1)} (1 thread each)`
  );
}

/**
 * Our main thread's CPU per step, which does not grow when other processes take the cores (it is what the step
 * takes when the pool's thread has a core of its own), and the images/s it implies.
 */
function mainThreadSummary(rounds: Round[], threads: number): string {
  const ms = (pick: (r: Round) => Measurement) =>
    rounds.flatMap((r) => (typeof pick(r).mainThreadMs === 'number' ? [pick(r).mainThreadMs as number] : []));
  const [one, many] = [ms((r) => r.ours1), ms((r) => r.oursN)];
  if (many.length === 0) return 'main-thread CPU: n/a (no /proc)';
  const images = (values: number[]) => `${Math.round((REFERENCE.images / median(values)) * 1000)} images/s`;
  return (
    `our main thread's CPU per step (about the step on an idle machine): 1 thread ${range(one, 0)} ms, ` +
    `${threads} threads ${range(many, 0)} ms; medians give ${images(one)} and ${images(many)}`
  );
}

async function writeResults(
  rounds: Round[],
  rows: Row[],
  threads: number,
  torch: string | null,
): Promise<void> {
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  const date = new Date().toISOString();
  const json = {
    benchmark: 'model-speed',
    date,
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    loadAverage: loadavg(),
    torch: torch ? { version: torch, threads } : null,
    reference: { ...REFERENCE, warmup: REFERENCE_STEPS[0], steps: REFERENCE_STEPS[1], rounds },
    rows,
  };
  await writeFileAtomic(join(dir, 'model-speed.json'), `${JSON.stringify(json, null, 2)}\n`);
  const md = [
    '# Training step speed (bench/model-speed.ts)',
    '',
    `${date}, Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, PyTorch ${torch ?? 'not run'}; ` +
      `load average at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(', ')}.`,
    '',
    `Reference step: 48 px, 96 images, 384 triplets, small CSN, Adam; median of ${REFERENCE_STEPS[1]} timed steps ` +
      `after ${REFERENCE_STEPS[0]}, images/s, with the CPU other processes used meanwhile in cores in brackets ` +
      '(0.00 = the machine was ours). "passive": the twin with OMP_WAIT_POLICY=PASSIVE. Ratios use the faster ' +
      'of the twin’s two threaded runs. Load: 1-minute load average as the round started.',
    '',
    roundsTable(rounds, threads),
    '',
    summary(rounds, threads),
    '',
    quietSummary(rounds, threads),
    '',
    mainThreadSummary(rounds, threads),
    '',
    '## All cases (wasm unless noted; median of 5 steps after 2)',
    '',
    '```',
    table(rows),
    '```',
    '',
  ].join('\n');
  await writeFileAtomic(join(dir, 'model-speed.md'), md);
}

if (workerArg > 0) {
  const reference = process.argv[workerArg + 1] === 'reference';
  const list = reference
    ? [{ backend: 'wasm', kind: 'csn', backbone: 'small', ...REFERENCE } as Case]
    : cases();
  const rows = await runCases(list, reference ? REFERENCE_STEPS : undefined);
  process.stdout.write(`${JSON.stringify(rows)}\n`, () => process.exit(0));
} else {
  const threads = cpus().length;
  const found = await findTorchPython();
  const python = found?.python ?? null;
  const rounds: Round[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    rounds.push(await runRound(round, threads, python));
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
  console.log(`\n${roundsTable(rounds, threads)}\n\n${summary(rounds, threads)}`);
  console.log(`\n${quietSummary(rounds, threads)}\n\n${mainThreadSummary(rounds, threads)}`);
  await writeResults(rounds, rows, threads, found?.torch ?? null);
  console.log('\nwrote bench/results/model-speed.{json,md}');
}
