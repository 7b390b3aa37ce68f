/**
 * Worker thread of the parallel index build (parallel-build.ts): builds one condition's HNSW index at a time with
 * the same code as a single-threaded build (hnsw.ts) and writes it to the file it was given. Times are wall-clock
 * milliseconds (performance.timeOrigin + now, comparable across threads) so that the caller can tell where the
 * parallel build loses time.
 */
import { parentPort } from 'node:worker_threads';
import { buildIndex, type HnswParams } from './hnsw.ts';
import type { Metric } from './vectors.ts';

export interface BuildJob {
  id: number;
  rows: Float32Array;
  d: number;
  labels: Int32Array;
  metric: Metric;
  params: HnswParams;
  capacity?: number;
  file: string;
}

/** Stop after the current chunk of inserts (or now, when idle) and end the thread. */
export interface StopMessage {
  type: 'stop';
}

export type BuildReply =
  | { type: 'ready'; at: number }
  | { type: 'progress'; id: number; done: number; total: number }
  | { type: 'done'; id: number; received: number; built: number; written: number }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('hnsw-build-worker.ts must run in a worker thread');
const now = (): number => performance.timeOrigin + performance.now();

let busy = false;
let stopping = false;

// terminate() while the thread is inside hnswlib's addPoint aborts the whole process (napi fatal error, seen when
// one job failed and the other worker was stopped mid-build), so the thread ends itself between two chunks.
port.on('message', (message: BuildJob | StopMessage) => {
  if ('type' in message) {
    stopping = true;
    if (!busy) process.exit(0);
    return;
  }
  void build(message);
});

async function build(job: BuildJob): Promise<void> {
  const received = now();
  const reply = (message: BuildReply): void => port!.postMessage(message);
  busy = true;
  try {
    const index = await buildIndex(job.rows, job.d, Array.from(job.labels), job.metric, job.params, {
      capacity: job.capacity,
      onProgress: (done, total) => {
        if (stopping) throw new Error('stopped');
        reply({ type: 'progress', id: job.id, done, total });
      },
    });
    const built = now();
    await index.writeIndex(job.file);
    reply({ type: 'done', id: job.id, received, built, written: now() });
  } catch (error) {
    reply({ type: 'error', id: job.id, message: (error as Error).message });
  } finally {
    busy = false;
    if (stopping) process.exit(0);
  }
}
// Modules (and hnswlib's addon) are loaded: the caller measures start-up up to here.
port.postMessage({ type: 'ready', at: now() } satisfies BuildReply);
