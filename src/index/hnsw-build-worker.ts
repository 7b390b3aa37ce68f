/**
 * Worker thread of the parallel index build (parallel-build.ts): builds one condition's HNSW index at a time with
 * the same code as a single-threaded build (hnsw.ts) and writes it to the file it was given.
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

export type BuildReply =
  | { type: 'progress'; id: number; done: number; total: number }
  | { type: 'done'; id: number }
  | { type: 'error'; id: number; message: string };

const port = parentPort;
if (!port) throw new Error('hnsw-build-worker.ts must run in a worker thread');

port.on('message', (job: BuildJob) => {
  const reply = (message: BuildReply): void => port.postMessage(message);
  void (async () => {
    try {
      const index = await buildIndex(job.rows, job.d, Array.from(job.labels), job.metric, job.params, {
        capacity: job.capacity,
        onProgress: (done, total) => reply({ type: 'progress', id: job.id, done, total }),
      });
      await index.writeIndex(job.file);
      reply({ type: 'done', id: job.id });
    } catch (error) {
      reply({ type: 'error', id: job.id, message: (error as Error).message });
    }
  })();
});
