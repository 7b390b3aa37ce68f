/**
 * One HNSW index per condition, built in parallel: each condition's index is built by a worker thread (hnswlib
 * inserts are single-threaded and synchronous), written to a scratch file and read back by the caller. The graph
 * is the one a single-threaded build makes: same code, same insertion order, same seed, so the bundle does not
 * change. Small jobs stay in this thread, where starting workers would cost more than it saves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { BuildJob, BuildReply } from './hnsw-build-worker.ts';
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
}

/**
 * Below this many inserts in total, building in this thread is faster: a worker takes about 0.3 s to start (tsx
 * and hnswlib loaded again) and the index is read back from disk.
 */
export const PARALLEL_MIN_INSERTS = 50_000;

export function indexThreadCount(): number {
  const fromEnv = Number(process.env.DRESSMATCH_INDEX_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return Math.max(1, os.availableParallelism());
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

function startWorker(): Worker {
  const entry = new URL('./hnsw-build-worker.ts', import.meta.url);
  // Run the compiled .js next to this file when there is one (dist), the .ts source otherwise.
  const href = import.meta.url.endsWith('.js') ? entry.href.replace(/\.ts$/, '.js') : entry.href;
  return new Worker(new URL('../util/ts-worker-entry.mjs', import.meta.url), { workerData: { entry: href } });
}

/** Read an index a worker wrote and set the search-time ef, which the file does not keep. */
async function readBack(file: string, condition: ConditionRows, params: HnswParams): Promise<HnswIndex> {
  const index = createIndex(condition.metric, condition.d);
  await index.readIndex(file);
  index.setEf(params.efSearch);
  await rm(file, { force: true });
  return index;
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
  // hnswlib aborts the process on a row it cannot read: check the sizes before any insert.
  const largest = labels.reduce((max, label) => Math.max(max, label), -1);
  conditions.forEach(({ rows, d }, c) => {
    if (!(d >= 1) || rows.length < (largest + 1) * d) {
      throw new RangeError(`condition ${c}: ${rows.length} values cannot hold row ${largest} of ${d} dims`);
    }
  });
  const threads = Math.min(options.threads ?? indexThreadCount(), conditions.length);
  if (threads <= 1 || labels.length * conditions.length < (options.minInserts ?? PARALLEL_MIN_INSERTS)) {
    return buildHere(conditions, labels, params, options);
  }
  const scratch = await mkdtemp(join(os.tmpdir(), 'dressmatch-hnsw-'));
  const workers = Array.from({ length: threads }, startWorker);
  try {
    const order = conditions.map((_, c) => c).sort((a, b) => conditions[b].d - conditions[a].d || a - b);
    const labelArray = Int32Array.from(labels);
    const results = new Array<Promise<HnswIndex>>(conditions.length);
    let next = 0;
    await Promise.all(
      workers.map(async (worker) => {
        while (next < order.length) {
          const c = order[next++];
          const file = join(scratch, `${c}.hnsw`);
          await runJob(
            worker,
            {
              id: c,
              rows: conditions[c].rows,
              d: conditions[c].d,
              labels: labelArray,
              metric: conditions[c].metric,
              params,
              capacity: options.capacity,
              file,
            },
            options.onProgress,
          );
          // Read back while this worker builds the next one.
          results[c] = readBack(file, conditions[c], params);
          results[c].catch(() => undefined); // awaited below; no unhandled rejection meanwhile
        }
      }),
    );
    return await Promise.all(results);
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
    await rm(scratch, { recursive: true, force: true });
  }
}

function runJob(
  worker: Worker,
  job: BuildJob,
  onProgress: ParallelBuildOptions['onProgress'],
): Promise<void> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: BuildReply): void => {
      if (reply.id !== job.id) return;
      if (reply.type === 'progress') return onProgress?.(job.id, reply.done, reply.total);
      cleanup();
      if (reply.type === 'done') resolve();
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
