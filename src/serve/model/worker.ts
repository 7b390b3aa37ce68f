/** Worker thread that owns the model, so that model calls never block the HTTP event loop. */
import { parentPort } from 'node:worker_threads';
import { lowerThreadPriority } from '../../util/thread-priority.ts';
import { SERVE_DEFAULTS } from '../defaults.ts';
import { ModelHost } from './host.ts';
import type { WorkerReply, WorkerRequest } from './runner.ts';

const port = parentPort;
if (!port) throw new Error('model/worker.ts must run in a worker thread');

// Model calls are the service's background work: requests for answers go first.
lowerThreadPriority(SERVE_DEFAULTS.modelThreadNiceness);
const host = new ModelHost();
// One call at a time, in arrival order: the runner already serialises, this keeps the worker safe on its own.
let queue: Promise<unknown> = Promise.resolve();

/** A reply plus the buffers to move (not copy) to the main thread. */
type Outgoing = WorkerReply & { transfer?: ArrayBuffer[] };

async function handle(request: WorkerRequest): Promise<Outgoing> {
  try {
    switch (request.op) {
      case 'load':
        return { id: request.id, ok: true, result: await host.load(request.load) };
      case 'vectors': {
        const result = await host.vectors(request.images, request.count);
        return { id: request.id, ok: true, result, transfer: [result.data.buffer as ArrayBuffer] };
      }
      case 'heatmap':
        return { id: request.id, ok: true, result: await host.heatmapPng(request.render) };
      case 'dispose':
        host.dispose();
        return { id: request.id, ok: true, result: null };
    }
  } catch (error) {
    const e = error as Error;
    return { id: request.id, ok: false, error: { name: e.name, message: e.message } };
  }
}

port.on('message', (request: WorkerRequest) => {
  queue = queue.then(async () => {
    const reply = await handle(request);
    const { transfer, ...message } = reply;
    port.postMessage(message, transfer ?? []);
  });
});
