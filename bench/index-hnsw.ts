/**
 * HNSW benchmark of the index stage: build time, memory, query latency and recall@k against brute force, for
 * synthetic catalogues of 10k, 100k and 1M products, in the full 64-dim embedding and in a 16-dim masked subspace.
 *
 *   npx tsx bench/index-hnsw.ts [--sizes 10000,100000,1000000] [--dims 64,16] [--m 16] [--ef-construction 200]
 *                               [--ef-search 16,32,64,128] [--queries 200] [--latency-queries 2000] [--k 10]
 *                               [--data clustered|gaussian] [--out bench/results/index-hnsw]
 *
 * Each (size, dims) case runs in its own child process, so the memory figures are not polluted by earlier cases.
 * Vectors: 64-dim embeddings drawn around 1000 random cluster centres (like learned embeddings, which cluster by
 * attribute); the 16-dim case is the same data seen through a CSN-like mask that keeps 16 dims with weights in
 * [0.5, 1]. Queries are fresh draws from the same distribution (not indexed items). Brute force is the index
 * stage's own exact search (src/index/vectors.ts), timed in the same run, so the speed-up is a same-run ratio.
 *
 *   npx tsx bench/index-hnsw.ts --parallel 100000 [--conditions 6] [--parallel-dims 16] [--repeat 3]
 *
 * builds one index per condition the way the index job does, one condition after another in one thread (before)
 * and in worker threads (src/index/parallel-build.ts, after), alternating within the run, and checks that both
 * give the same neighbours, and splits each parallel build into phases. Writes bench/results/index-parallel.{json,md}
 * (or --out <path>.{json,md}).
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { buildIndex, searchIndex, type HnswIndex, type HnswParams } from '../src/index/hnsw.ts';
import {
  buildConditionIndexes,
  IndexBuilders,
  indexThreadCount,
  type BuildTimeline,
  type ConditionRows,
} from '../src/index/parallel-build.ts';
import { exactSearch, projectRows, recallAtK, type Neighbour } from '../src/index/vectors.ts';
import { Rng } from '../src/util/rng.ts';

const FULL_DIM = 64;
type Data = 'clustered' | 'gaussian';
const CLUSTERS = 1000;

interface Options {
  sizes: number[];
  dims: number[];
  m: number;
  efConstruction: number;
  efSearch: number[];
  queries: number;
  latencyQueries: number;
  k: number;
  data: ('clustered' | 'gaussian')[];
  seed: number;
  out: string;
  worker?: string;
  parallel?: number;
  conditions: number;
  parallelDims: number;
  repeat: number;
}

interface EfResult {
  efSearch: number;
  recall: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  qps: number;
  speedup: number;
}

interface CaseResult {
  size: number;
  dims: number;
  data: string;
  m: number;
  efConstruction: number;
  generateSeconds: number;
  buildSeconds: number;
  insertsPerSecond: number;
  /** RSS growth while building (the graph plus hnswlib's copy of the vectors), MiB. */
  buildRssMiB: number;
  /** The float32 vectors the bundle keeps next to the index, MiB. */
  vectorsMiB: number;
  indexFileMiB: number;
  bruteForceMs: number;
  results: EfResult[];
}

const list = (value: string): number[] => value.split(',').map((v) => Number(v.trim()));

function parseOptions(argv: string[]): Options {
  const program = new Command('index-hnsw')
    .option('--sizes <list>', 'catalogue sizes', '10000,100000,1000000')
    .option('--dims <list>', 'index dimensions (64 = full embedding, fewer = masked subspace)', '64,16')
    .option('--m <n>', 'HNSW M', '16')
    .option('--ef-construction <n>', 'HNSW efConstruction', '200')
    .option('--ef-search <list>', 'efSearch values to measure', '16,32,64,128')
    .option('--queries <n>', 'queries for recall (each also searched by brute force)', '200')
    .option('--latency-queries <n>', 'queries timed per efSearch', '2000')
    .option('--k <n>', 'neighbours', '10')
    .option(
      '--data <list>',
      'data kinds: clustered (1000 clusters) and/or gaussian (iid, the hardest case)',
      'clustered,gaussian',
    )
    .option('--seed <n>', 'seed', '1')
    .option('--out <path>', 'results path without extension', 'bench/results/index-hnsw')
    .option('--worker <case>', 'internal: run one size:dims case and print its JSON')
    .option('--parallel <size>', 'only compare one-thread and parallel per-condition builds at this size')
    .option('--conditions <n>', 'conditions in the parallel comparison', '6')
    .option('--parallel-dims <n>', 'dims of each condition subspace in the parallel comparison', '16')
    .option('--repeat <n>', 'rounds of the parallel comparison', '3')
    .parse(argv);
  const o = program.opts();
  return {
    sizes: list(o.sizes),
    dims: list(o.dims),
    m: Number(o.m),
    efConstruction: Number(o.efConstruction),
    efSearch: list(o.efSearch),
    queries: Number(o.queries),
    latencyQueries: Number(o.latencyQueries),
    k: Number(o.k),
    data: String(o.data)
      .split(',')
      .map((kind) => {
        if (kind !== 'clustered' && kind !== 'gaussian') throw new Error(`--data: unknown kind ${kind}`);
        return kind;
      }),
    seed: Number(o.seed),
    out: o.out,
    worker: o.worker,
    parallel: o.parallel === undefined ? undefined : Number(o.parallel),
    conditions: Number(o.conditions),
    parallelDims: Number(o.parallelDims),
    repeat: Number(o.repeat),
  };
}

/** n x 64 vectors: cluster centre + noise (clustered) or iid N(0, 1) (gaussian). */
function generate(n: number, data: Data, rng: Rng, centres: Float32Array): Float32Array {
  const out = new Float32Array(n * FULL_DIM);
  for (let i = 0; i < n; i++) {
    const base = data === 'clustered' ? rng.int(0, CLUSTERS - 1) * FULL_DIM : -1;
    for (let d = 0; d < FULL_DIM; d++) {
      out[i * FULL_DIM + d] = (base >= 0 ? centres[base + d] : 0) + rng.normal() * (base >= 0 ? 0.6 : 1);
    }
  }
  return out;
}

function percentile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

interface CaseData {
  rows: Float32Array;
  queries: Float32Array;
  generateSeconds: number;
}

/** Clustered vectors and queries; the masked case keeps `dims` of the 64 dims, each scaled by its weight (CSN-like). */
function generateCase(size: number, dims: number, data: Data, options: Options): CaseData {
  const rng = new Rng(options.seed);
  const centres = Float32Array.from({ length: CLUSTERS * FULL_DIM }, () => rng.normal() * 2);
  const start = performance.now();
  const full = generate(size, data, rng, centres);
  const queryCount = Math.max(options.queries, options.latencyQueries);
  const fullQueries = generate(queryCount, data, rng, centres);
  const kept = rng
    .shuffle(Array.from({ length: FULL_DIM }, (_, d) => d))
    .slice(0, dims)
    .sort((a, b) => a - b);
  const space = {
    dims: kept,
    weights: kept.map(() => (dims === FULL_DIM ? 1 : rng.range(0.5, 1))),
    metric: 'l2' as const,
  };
  const rows = dims === FULL_DIM ? full : projectRows(full, FULL_DIM, space);
  const queries = dims === FULL_DIM ? fullQueries : projectRows(fullQueries, FULL_DIM, space);
  return { rows, queries, generateSeconds: (performance.now() - start) / 1000 };
}

/** Build the HNSW index, timing it and measuring the memory it took and the size of its file. */
async function buildCaseIndex(size: number, dims: number, rows: Float32Array, options: Options) {
  const labels = Array.from({ length: size }, (_, i) => i);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const start = performance.now();
  let lastReport = 0;
  const index = await buildIndex(
    rows,
    dims,
    labels,
    'l2',
    { m: options.m, efConstruction: options.efConstruction, efSearch: 64, seed: options.seed },
    {
      onProgress: (done, total) => {
        if (performance.now() - lastReport > 10_000) {
          lastReport = performance.now();
          process.stderr.write(`  ${size}x${dims}: ${done}/${total} inserted\n`);
        }
      },
    },
  );
  const buildSeconds = (performance.now() - start) / 1000;
  const buildRss = process.memoryUsage().rss - rssBefore;
  const file = join(tmpdir(), `bench-hnsw-${process.pid}.hnsw`);
  await index.writeIndex(file);
  const indexFileMiB = (await stat(file)).size / 2 ** 20;
  await rm(file, { force: true });
  return { index, buildSeconds, buildRss, indexFileMiB };
}

type BuiltIndex = Awaited<ReturnType<typeof buildCaseIndex>>['index'];

/** Recall against the exact neighbours and latency over the latency queries, at one efSearch. */
function measureEf(
  index: BuiltIndex,
  ef: number,
  size: number,
  dims: number,
  queries: Float32Array,
  exact: Neighbour[][],
  bruteForceMs: number,
  options: Options,
): EfResult {
  const query = (q: number) => Array.from(queries.subarray(q * dims, (q + 1) * dims));
  let recall = 0;
  for (let q = 0; q < options.queries; q++) {
    recall += recallAtK(
      searchIndex(index, 'l2', query(q), options.k, { ef, live: size }),
      exact[q],
      options.k,
    );
  }
  const times = new Float64Array(options.latencyQueries);
  const total = performance.now();
  for (let q = 0; q < options.latencyQueries; q++) {
    const t = performance.now();
    searchIndex(index, 'l2', query(q), options.k, { ef, live: size });
    times[q] = performance.now() - t;
  }
  const elapsed = performance.now() - total;
  times.sort();
  const meanMs = elapsed / options.latencyQueries;
  return {
    efSearch: ef,
    recall: recall / options.queries,
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
    meanMs,
    qps: 1000 / meanMs,
    speedup: bruteForceMs / meanMs,
  };
}

async function runCase(size: number, dims: number, data: Data, options: Options): Promise<CaseResult> {
  const { rows, queries, generateSeconds } = generateCase(size, dims, data, options);
  const { index, buildSeconds, buildRss, indexFileMiB } = await buildCaseIndex(size, dims, rows, options);
  // Brute force on the recall queries: the ground truth and the baseline speed.
  const exact: Neighbour[][] = [];
  const start = performance.now();
  for (let q = 0; q < options.queries; q++) {
    exact.push(exactSearch(rows, dims, queries.subarray(q * dims, (q + 1) * dims), options.k, 'l2'));
  }
  const bruteForceMs = (performance.now() - start) / options.queries;
  const results = options.efSearch.map((ef) =>
    measureEf(index, ef, size, dims, queries, exact, bruteForceMs, options),
  );
  return {
    size,
    dims,
    data,
    m: options.m,
    efConstruction: options.efConstruction,
    generateSeconds,
    buildSeconds,
    insertsPerSecond: size / buildSeconds,
    buildRssMiB: buildRss / 2 ** 20,
    vectorsMiB: rows.byteLength / 2 ** 20,
    indexFileMiB,
    bruteForceMs,
    results,
  };
}

function runWorker(size: number, dims: number, data: Data, argv: string[]): Promise<CaseResult> {
  const script = fileURLToPath(import.meta.url);
  const args = ['--expose-gc', '--import', 'tsx', script, ...argv, '--worker', `${size}:${dims}:${data}`];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`case ${size}x${dims} failed with exit code ${code}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as CaseResult);
      } catch (error) {
        reject(error as Error);
      }
    });
  });
}

const fmt = (x: number, digits = 2): string => x.toFixed(digits);

function table(results: CaseResult[], markdown: boolean): string {
  const header = [
    'data',
    'size',
    'dims',
    'build s',
    'inserts/s',
    'build RSS MiB',
    'index MiB',
    'efSearch',
    'recall@10',
    'p50 ms',
    'p99 ms',
    'queries/s',
    'brute force ms',
    'speed-up',
  ];
  const rows = results.flatMap((r) =>
    r.results.map((e) => [
      r.data,
      String(r.size),
      String(r.dims),
      fmt(r.buildSeconds, 1),
      fmt(r.insertsPerSecond, 0),
      fmt(r.buildRssMiB, 0),
      fmt(r.indexFileMiB, 1),
      String(e.efSearch),
      fmt(e.recall, 3),
      fmt(e.p50Ms, 3),
      fmt(e.p99Ms, 3),
      fmt(e.qps, 0),
      fmt(r.bruteForceMs, 2),
      `${fmt(e.speedup, 0)}x`,
    ]),
  );
  if (markdown) {
    return [
      `| ${header.join(' | ')} |`,
      `|${header.map(() => '---').join('|')}|`,
      ...rows.map((row) => `| ${row.join(' | ')} |`),
    ].join('\n');
  }
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j].length)));
  const line = (cells: string[]) =>
    cells.map((c, j) => (j === 0 ? c.padEnd(widths[j]) : c.padStart(widths[j]))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function writeResults(results: CaseResult[], options: Options, argv: string[]): Promise<void> {
  const machine = `${(await import('node:os')).cpus()[0]?.model ?? 'unknown CPU'}, ${(await import('node:os')).cpus().length} cores, Node ${process.version}`;
  const summary = {
    benchmark: 'index-hnsw',
    date: new Date().toISOString(),
    machine,
    options: { ...options, worker: undefined },
    results,
  };
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(`${options.out}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  const md = [
    '# HNSW index benchmark',
    '',
    `Run ${summary.date} on ${machine}. Data: synthetic 64-dim embeddings, clustered (${CLUSTERS} cluster centres + noise) or gaussian (iid N(0,1), the hardest case for any ANN index); ` +
      `16-dim rows are a masked subspace of the same data. M ${options.m}, efConstruction ${options.efConstruction}, ` +
      `k ${options.k}, ${options.queries} recall queries (not indexed items), ${options.latencyQueries} timed queries per efSearch, ` +
      'one thread. Brute force = exact search over all rows in the same process; speed-up = brute-force time / mean HNSW time. ' +
      "Build RSS = resident memory growth while building (graph + hnswlib's copy of the vectors).",
    '',
    `Reproduce: \`npx tsx bench/index-hnsw.ts ${argv.join(' ')}\``,
    '',
    table(results, true),
    '',
  ].join('\n');
  await writeFile(`${options.out}.md`, md);
}

interface ParallelRound {
  round: number;
  sequentialSeconds: number;
  /** From the vectors to every index back, workers started beforehand (as the index job does). */
  parallelSeconds: number;
  speedup: number;
  /** Starting the workers (before the timer above; the index job overlaps it with embedding). */
  startSeconds: number;
  /** One thread / (start + parallel): the speed-up where nothing overlaps the start. */
  speedupWithStart: number;
  sameNeighbours: boolean;
  /** Load average (1 min) at the end of the round. */
  load: number;
  phases: Phases;
  /** Per-job timestamps of the parallel build (JSON only): which condition ran where, and how long. */
  timeline: BuildTimeline;
}

/** Where the parallel build lost time against the ideal (one-thread time / threads), seconds. */
interface Phases {
  ideal: number;
  /** Handing the rows over: posted → received, beyond waiting for the worker to start. */
  handover: number;
  /** Inserting in the workers, summed over jobs, and that sum / the one-thread inserting time. */
  build: number;
  buildVsOneThread: number;
  /** Writing the scratch files, summed over jobs. */
  write: number;
  /** After the last file was written until every index was read back. */
  readTail: number;
  /** Last worker done − first worker done: the threads did not finish together. */
  imbalance: number;
}

function phases(timeline: BuildTimeline, sequentialSeconds: number): Phases {
  const { jobs, ready, threads } = timeline;
  const sum = (f: (job: BuildTimeline['jobs'][number]) => number): number =>
    jobs.reduce((total, job) => total + f(job), 0);
  const lastWritten = Array.from({ length: threads }, (_, w) =>
    Math.max(...jobs.filter((job) => job.worker === w).map((job) => job.written)),
  );
  const build = sum((job) => job.built - job.received);
  return {
    ideal: sequentialSeconds / Math.min(threads, availableParallelism()),
    handover: sum((job) => job.received - Math.max(job.posted, ready[job.worker])),
    build,
    buildVsOneThread: build / sequentialSeconds,
    write: sum((job) => job.written - job.built),
    readTail: timeline.end - Math.max(...lastWritten),
    imbalance: Math.max(...lastWritten) - Math.min(...lastWritten),
  };
}

/** k nearest labels of a few queries in every index: a parallel build must answer exactly as a sequential one. */
function fingerprint(
  indexes: HnswIndex[],
  conditions: { rows: Float32Array; d: number }[],
  k: number,
): string {
  return indexes
    .map((index, c) => {
      const { rows, d } = conditions[c];
      const out: number[] = [];
      for (let q = 0; q < 20; q++) {
        const query = Array.from(rows.subarray(q * 997 * d, q * 997 * d + d));
        out.push(
          ...searchIndex(index, 'l2', query, k, { ef: 64, live: rows.length / d }).map((h) => h.index),
        );
      }
      return out.join(',');
    })
    .join('|');
}

/** Sequential (the index job before) against parallel (after) per-condition builds, alternating, same data. */
async function runParallel(options: Options, argv: string[]): Promise<void> {
  const size = options.parallel ?? 0;
  const rng = new Rng(options.seed);
  const centres = Float32Array.from({ length: CLUSTERS * FULL_DIM }, () => rng.normal() * 2);
  const full = generate(size, 'clustered', rng, centres);
  const conditions = Array.from({ length: options.conditions }, () => {
    const dims = rng
      .shuffle(Array.from({ length: FULL_DIM }, (_, d) => d))
      .slice(0, options.parallelDims)
      .sort((a, b) => a - b);
    const space = { dims, weights: dims.map(() => rng.range(0.5, 1)), metric: 'l2' as const };
    // In shared memory, as the index job keeps them (build.ts), so that the workers read them without a copy.
    const projected = projectRows(full, FULL_DIM, space);
    const rows = new Float32Array(new SharedArrayBuffer(projected.byteLength));
    rows.set(projected);
    return { rows, d: dims.length, metric: 'l2' as const };
  });
  const labels = Array.from({ length: size }, (_, i) => i);
  const params = { m: options.m, efConstruction: options.efConstruction, efSearch: 64, seed: options.seed };
  const threads = indexThreadCount();
  const rounds: ParallelRound[] = [];
  for (let round = 1; round <= options.repeat; round++) {
    const start = performance.now();
    const sequential: HnswIndex[] = [];
    for (const c of conditions) sequential.push(await buildIndex(c.rows, c.d, labels, c.metric, params));
    const sequentialSeconds = (performance.now() - start) / 1000;
    const { parallel, parallelSeconds, startSeconds, timeline } = await timeParallel(
      conditions,
      labels,
      params,
      threads,
    );
    const sameNeighbours =
      fingerprint(sequential, conditions, options.k) === fingerprint(parallel, conditions, options.k);
    rounds.push({
      round,
      sequentialSeconds,
      parallelSeconds,
      speedup: sequentialSeconds / parallelSeconds,
      startSeconds,
      speedupWithStart: sequentialSeconds / (startSeconds + parallelSeconds),
      sameNeighbours,
      load: loadavg()[0],
      phases: phases(timeline, sequentialSeconds),
      timeline,
    });
    await writeParallel(rounds, options, argv, threads);
    process.stderr.write(
      `round ${round}: one thread ${fmt(sequentialSeconds, 1)} s, ${threads} threads ${fmt(parallelSeconds, 1)} s, ` +
        `${fmt(sequentialSeconds / parallelSeconds)}x, same neighbours: ${sameNeighbours}\n`,
    );
  }
}

/**
 * The parallel build as the index job makes it: workers started first (the job starts them before it embeds, so
 * their start overlaps embedding), then timed from the vectors to every index back in this thread.
 */
async function timeParallel(
  conditions: ConditionRows[],
  labels: number[],
  params: HnswParams,
  threads: number,
) {
  let start = performance.now();
  const builders = new IndexBuilders(threads);
  await builders.ready();
  const startSeconds = (performance.now() - start) / 1000;
  try {
    start = performance.now();
    let timeline: BuildTimeline | undefined;
    const parallel = await buildConditionIndexes(conditions, labels, params, {
      builders,
      onTimeline: (t) => (timeline = t),
    });
    const parallelSeconds = (performance.now() - start) / 1000;
    if (!timeline) throw new Error('the parallel build did not run in worker threads');
    return { parallel, parallelSeconds, startSeconds, timeline };
  } finally {
    await builders.close();
  }
}

/** Results so far (written after every round, so that an interrupted run keeps them). */
async function writeParallel(
  rounds: ParallelRound[],
  options: Options,
  argv: string[],
  threads: number,
): Promise<void> {
  const size = options.parallel ?? 0;
  const os = await import('node:os');
  const machine = `${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.cpus().length} cores, Node ${process.version}`;
  const speedups = rounds.map((r) => r.speedup);
  const summary = {
    benchmark: 'index-parallel',
    date: new Date().toISOString(),
    machine,
    loadAverage: os.loadavg(),
    size,
    conditions: options.conditions,
    dims: options.parallelDims,
    m: options.m,
    efConstruction: options.efConstruction,
    threads,
    rounds,
    speedupRange: [Math.min(...speedups), Math.max(...speedups)],
  };
  const header =
    '| round | load | one thread s | parallel s | speed-up | start s | speed-up counting start | same neighbours | ' +
    'ideal s | hand-over s | ' +
    'worker build s (÷ one thread) | write s | read-back tail s | imbalance s |';
  const lines = rounds.map((r) => {
    const p = r.phases;
    return (
      `| ${r.round} | ${fmt(r.load, 1)} | ${fmt(r.sequentialSeconds, 1)} | ${fmt(r.parallelSeconds, 1)} | ` +
      `${fmt(r.speedup)}x | ${fmt(r.startSeconds)} | ${fmt(r.speedupWithStart)}x | ` +
      `${r.sameNeighbours ? 'yes' : 'NO'} | ${fmt(p.ideal, 1)} | ` +
      `${fmt(p.handover, 3)} | ${fmt(p.build, 1)} (${fmt(p.buildVsOneThread)}) | ${fmt(p.write)} | ` +
      `${fmt(p.readTail)} | ${fmt(p.imbalance)} |`
    );
  });
  const md = [
    '# Parallel per-condition HNSW build',
    '',
    `Run ${summary.date} on ${machine} (load average ${summary.loadAverage.map((l) => l.toFixed(1)).join(' ')}). ` +
      `${size} clustered products, ${options.conditions} conditions of ${options.parallelDims} masked dims each, ` +
      `M ${options.m}, efConstruction ${options.efConstruction}. One thread = the conditions built one after ` +
      `another in the main thread (the index job before); parallel = src/index/parallel-build.ts with ${threads} ` +
      'worker threads, from the vectors to every index read back; its workers are started first, as the index ' +
      'job starts them before it embeds (start s: until they had loaded tsx, their modules and hnswlib; speed-up ' +
      'counting start = one thread / (start + parallel)). Rounds alternate the two. ' +
      'Phases of the parallel build (from its own timestamps): ideal = one thread / min(threads, cores); ' +
      'hand-over = copying the rows to the workers; worker build = ' +
      'inserting, summed over jobs (÷ one thread: above 1 when the threads slow each other down or other jobs take CPU); write = ' +
      'writing the scratch files, summed; read-back tail = after the last file until every index was back; ' +
      'imbalance = last worker done − first worker done.',
    '',
    `Reproduce: \`npx tsx bench/index-hnsw.ts ${argv.join(' ')}\``,
    '',
    header,
    `|${header
      .split('|')
      .slice(1, -1)
      .map(() => '---')
      .join('|')}|`,
    ...lines,
    '',
    `Speed-up range: ${fmt(summary.speedupRange[0])}x – ${fmt(summary.speedupRange[1])}x.`,
    '',
  ].join('\n');
  // --out names the files of a parallel run too, except the default (index-hnsw), which becomes index-parallel.
  const out =
    basename(options.out) === 'index-hnsw' ? join(dirname(options.out), 'index-parallel') : options.out;
  await mkdir(dirname(out), { recursive: true });
  await writeFile(`${out}.json`, `${JSON.stringify(summary, null, 2)}\n`);
  await writeFile(`${out}.md`, md);
  process.stdout.write(`${md}\n`);
  process.stderr.write(`wrote ${out}.json and ${out}.md\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const options = parseOptions(process.argv);
  if (options.parallel !== undefined) return runParallel(options, argv);
  if (options.worker) {
    const [size, dims, data] = options.worker.split(':');
    const result = await runCase(Number(size), Number(dims), data as Data, options);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  const results: CaseResult[] = [];
  for (const data of options.data) {
    for (const size of options.sizes) {
      for (const dims of options.dims) {
        process.stderr.write(`case ${data} ${size} x ${dims} dims ...\n`);
        const result = await runWorker(size, dims, data, argv);
        process.stderr.write(
          `  built in ${fmt(result.buildSeconds, 1)} s, recall@${options.k} ${result.results.map((r) => `${r.efSearch}:${fmt(r.recall, 3)}`).join(' ')}\n`,
        );
        results.push(result);
        // Partial results survive an interrupted run.
        await writeResults(results, options, argv);
      }
    }
  }
  process.stdout.write(`${table(results, false)}\n`);
  await writeResults(results, options, argv);
  process.stderr.write(`wrote ${options.out}.json and ${options.out}.md\n`);
}

await main();
