/**
 * One HNSW index per condition, built in parallel: each condition's index is built by a worker thread (hnswlib
 * inserts are single-threaded and synchronous), written to a scratch file and read back by the caller. The graph
 * is the one a single-threaded build makes: same code, same insertion order, same seed, so the bundle does not
 * change. Small jobs stay in this thread, where starting workers would cost more than it saves. The index job
 * starts the workers before it embeds (IndexBuilders), and `onTimeline` tells where a build lost time.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { BuildJob, BuildReply, StopMessage } from './hnsw-build-worker.ts';
import { buildIndex, createIndex, type HnswIndex, type HnswParams } from './hnsw.ts';
import type { Metric } from './vectors.ts';

/** One condition's rows (n × d, row-major) and metric. */
export interface ConditionRows {
  rows: Float32Array;
  d: number;
  metric: Metric;
}

export interface ParallelBuildOptions {
  /** Worker threads; default DRESSMATCH_INDEX_THREADS, else one per core. 1 builds in this thread. */
  threads?: number;
  capacity?: number;
  /** Fewer inserts than this (labels × conditions) are built in this thread; default PARALLEL_MIN_INSERTS. */
  minInserts?: number;
  onProgress?: (condition: number, done: number, total: number) => void;
  /** Called once with the phases of a build made in worker threads (not for builds made in this thread). */
  onTimeline?: (timeline: BuildTimeline) => void;
  /**
   * Workers started beforehand (startIndexBuilders): used instead of starting `threads` new ones, and left running
   * for the caller to close.
   */
  builders?: IndexBuilders | null;
}

/**
 * Below this many inserts in total, building in this thread is about as fast: a worker takes about 0.3–0.5 s of
 * CPU to start (tsx and hnswlib loaded again; the index job overlaps it with embedding, which also wants the
 * cores) and the index is read back from disk. The demo catalogue (3000 products × 6 conditions) is above it.
 */
export const PARALLEL_MIN_INSERTS = 10_000;

export function indexThreadCount(): number {
  const fromEnv = Number(process.env.DRESSMATCH_INDEX_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return Math.max(1, os.availableParallelism());
}

/** Worker threads a build of `conditions` indexes over `labels` labels uses; 1 = this thread. */
export function buildThreads(
  conditions: number,
  labels: number,
  options: Pick<ParallelBuildOptions, 'threads' | 'minInserts'> = {},
): number {
  const threads = Math.min(options.threads ?? indexThreadCount(), conditions);
  return labels * conditions < (options.minInserts ?? PARALLEL_MIN_INSERTS) ? 1 : Math.max(1, threads);
}

/**
 * Build workers started ahead of the build. A worker needs 0.3–0.6 s (quiet machine; 0.6–1.3 s at load 4–6) to load
 * tsx, its modules and hnswlib, which at 20 000 products is a tenth of the whole parallel build: the index job
 * starts them before it embeds, so that they are ready when the vectors are.
 */
export class IndexBuilders {
  readonly workers: WorkerHandle[];

  constructor(threads: number) {
    this.workers = Array.from({ length: threads }, startWorker);
  }

  /** Wall-clock ms at which the last worker was ready. */
  async ready(): Promise<number> {
    return Math.max(...(await Promise.all(this.workers.map((handle) => handle.ready))));
  }

  /** Ask every worker to stop (between two chunks of inserts: see hnsw-build-worker.ts) and wait until it has. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map(stopWorker));
  }
}

/** Workers for a build of `conditions` indexes over `labels` labels, or null when it would run in this thread. */
export function startIndexBuilders(
  conditions: number,
  labels: number,
  options: Pick<ParallelBuildOptions, 'threads' | 'minInserts'> = {},
): IndexBuilders | null {
  const threads = buildThreads(conditions, labels, options);
  return threads > 1 ? new IndexBuilders(threads) : null;
}

async function buildHere(
  conditions: readonly ConditionRows[],
  labels: readonly number[],
  params: HnswParams,
  options: ParallelBuildOptions,
): Promise<HnswIndex[]> {
  const indexes: HnswIndex[] = [];
  for (const [c, { rows, d, metric }] of conditions.entries()) {
    indexes.push(
      await buildIndex(rows, d, labels, metric, params, {
        capacity: options.capacity,
        onProgress: (done, total) => options.onProgress?.(c, done, total),
      }),
    );
  }
  return indexes;
}

/** Wall-clock ms, comparable with the workers' (hnsw-build-worker.ts). */
const now = (): number => performance.timeOrigin + performance.now();

/** Where one condition's job spent its time, in seconds since the parallel build was called. */
export interface JobTimes {
  condition: number;
  worker: number;
  /** Handed to the worker (rows in a SharedArrayBuffer are shared, others copied). */
  posted: number;
  /** The worker has the rows and starts inserting. */
  received: number;
  built: number;
  /** The worker has written the index to its scratch file. */
  written: number;
  /** This thread has read it back. */
  read: number;
}

/** Phases of one parallel build: where it loses time against the ideal (the one-thread time / cores used). */
export interface BuildTimeline {
  threads: number;
  /** Seconds until each worker had loaded its modules and hnswlib (0 for workers started beforehand). */
  ready: number[];
  jobs: JobTimes[];
  /** Seconds until every index was back in this thread. */
  end: number;
}

interface WorkerHandle {
  worker: Worker;
  /** Wall-clock ms at which the worker said it was ready. */
  ready: Promise<number>;
  /** Set when the worker failed or stopped while it had no job (started beforehand, waiting for the vectors). */
  failure: Error | null;
  exited: Promise<void>;
}

function stopWorker(handle: WorkerHandle): Promise<void> {
  handle.worker.postMessage({ type: 'stop' } satisfies StopMessage);
  return handle.exited;
}

function startWorker(): WorkerHandle {
  const entry = new URL('./hnsw-build-worker.ts', import.meta.url);
  // Run the compiled .js next to this file when there is one (dist), the .ts source otherwise.
  const href = import.meta.url.endsWith('.js') ? entry.href.replace(/\.ts$/, '.js') : entry.href;
  const worker = new Worker(new URL('../util/ts-worker-entry.mjs', import.meta.url), {
    workerData: { entry: href },
  });
  const ready = new Promise<number>((resolve, reject) => {
    const onMessage = (reply: BuildReply): void => {
      if (reply.type !== 'ready') return;
      worker.off('message', onMessage).off('error', reject);
      resolve(reply.at);
    };
    worker.on('message', onMessage).on('error', reject);
  });
  ready.catch(() => undefined); // a worker that fails to start fails its first job
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  const handle: WorkerHandle = { worker, ready, failure: null, exited };
  // Kept for runJob; also keeps an error of an idle worker from becoming an uncaught exception.
  worker.on('error', (error) => (handle.failure ??= error));
  worker.on(
    'exit',
    (code) => (handle.failure ??= new Error(`the index build worker stopped (exit code ${code})`)),
  );
  return handle;
}

/** Read an index a worker wrote and set the search-time ef, which the file does not keep. */
async function readBack(file: string, condition: ConditionRows, params: HnswParams): Promise<HnswIndex> {
  const index = createIndex(condition.metric, condition.d);
  await index.readIndex(file);
  index.setEf(params.efSearch);
  await rm(file, { force: true });
  return index;
}

/** Check the sizes before any insert: hnswlib aborts the process on a row it cannot read. */
function checkRows(conditions: readonly ConditionRows[], labels: readonly number[]): void {
  const largest = labels.reduce((max, label) => Math.max(max, label), -1);
  conditions.forEach(({ rows, d }, c) => {
    if (!(d >= 1) || rows.length < (largest + 1) * d) {
      throw new RangeError(`condition ${c}: ${rows.length} values cannot hold row ${largest} of ${d} dims`);
    }
  });
}

/**
 * Build one index per condition over `labels` (row indices, label = row index), `threads` at a time; the result
 * is in the order of `conditions`. The largest jobs start first so that the threads finish together.
 */
export async function buildConditionIndexes(
  conditions: readonly ConditionRows[],
  labels: readonly number[],
  params: HnswParams,
  options: ParallelBuildOptions = {},
): Promise<HnswIndex[]> {
  checkRows(conditions, labels);
  const given = options.builders ?? null;
  const threads = given ? given.workers.length : buildThreads(conditions.length, labels.length, options);
  if (threads <= 1) return buildHere(conditions, labels, params, options);
  const origin = now();
  const scratch = await mkdtemp(join(os.tmpdir(), 'dressmatch-hnsw-'));
  const builders = given ?? new IndexBuilders(threads);
  const workers = builders.workers;
  try {
    const jobs = await runAll(workers, scratch, conditions, labels, params, options, origin);
    const indexes = await Promise.all(jobs.map((job) => job.index));
    // Workers started beforehand were ready at 0.
    const since = (ms: number): number => Math.max(0, ms - origin) / 1000;
    options.onTimeline?.({
      threads,
      ready: await Promise.all(workers.map(async (handle) => since(await handle.ready))),
      jobs: await Promise.all(jobs.map(async (job) => ({ ...job.times, read: since(await job.read) }))),
      end: since(now()),
    });
    return indexes;
  } finally {
    if (!given) await builders.close();
    await rm(scratch, { recursive: true, force: true });
  }
}

interface RunningJob {
  index: Promise<HnswIndex>;
  read: Promise<number>;
  times: Omit<JobTimes, 'read'>;
}

/** Hand the conditions to the workers, largest first, each worker taking the next when it is done. */
async function runAll(
  workers: WorkerHandle[],
  scratch: string,
  conditions: readonly ConditionRows[],
  labels: readonly number[],
  params: HnswParams,
  options: ParallelBuildOptions,
  origin: number,
): Promise<RunningJob[]> {
  const order = conditions.map((_, c) => c).sort((a, b) => conditions[b].d - conditions[a].d || a - b);
  // Shared, like the rows the index job keeps (build.ts): posting a job copies neither.
  const labelArray = new Int32Array(new SharedArrayBuffer(labels.length * Int32Array.BYTES_PER_ELEMENT));
  labelArray.set(labels);
  const jobs = new Array<RunningJob>(conditions.length);
  const since = (ms: number): number => (ms - origin) / 1000;
  let next = 0;
  await Promise.all(
    workers.map(async (handle, w) => {
      while (next < order.length) {
        const c = order[next++];
        const file = join(scratch, `${c}.hnsw`);
        const posted = now();
        const { rows, d, metric } = conditions[c];
        const job = { id: c, rows, d, labels: labelArray, metric, params, capacity: options.capacity, file };
        const done = await runJob(handle, job, options.onProgress);
        // Read back while this worker builds the next one.
        const index = readBack(file, conditions[c], params);
        index.catch(() => undefined); // awaited by the caller; no unhandled rejection meanwhile
        const read = index.then(now, () => now());
        const times = { condition: c, worker: w, posted: since(posted), received: since(done.received) };
        jobs[c] = {
          index,
          read,
          times: { ...times, built: since(done.built), written: since(done.written) },
        };
      }
    }),
  );
  return jobs;
}

function runJob(
  { worker, failure }: WorkerHandle,
  job: BuildJob,
  onProgress: ParallelBuildOptions['onProgress'],
): Promise<Extract<BuildReply, { type: 'done' }>> {
  if (failure) return Promise.reject(failure);
  return new Promise((resolve, reject) => {
    const onMessage = (reply: BuildReply): void => {
      if (reply.type === 'ready' || reply.id !== job.id) return;
      if (reply.type === 'progress') return onProgress?.(job.id, reply.done, reply.total);
      cleanup();
      if (reply.type === 'done') resolve(reply);
      else reject(new Error(`building the index of condition ${job.id} failed: ${reply.message}`));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onExit = (code: number): void => {
      cleanup();
      reject(new Error(`the index build worker stopped (exit code ${code})`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(job);
  });
}
