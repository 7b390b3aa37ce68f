/**
 * Client side of the model: one call at a time, in a worker thread by default so that a saliency map computed for
 * one request does not stall every other request on the event loop. A bounded queue turns overload into 503s.
 */
import { Worker } from 'node:worker_threads';
import type { ModelThread } from './defaults.ts';
import { ModelHost, type LoadRequest, type ModelDescription, type VectorsResult } from './model-host.ts';

export type WorkerRequest =
  | { id: number; op: 'load'; load: LoadRequest }
  | { id: number; op: 'vectors'; images: Float32Array; count: number }
  | {
      id: number;
      op: 'saliency';
      images: Float32Array;
      references: Float32Array;
      count: number;
      condition: number;
    }
  | { id: number; op: 'dispose' };

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string } };

/** More calls than this waiting for the model: reject new ones rather than queueing without bound. */
export const DEFAULT_MAX_PENDING = 32;

export class ModelBusyError extends Error {
  constructor(pending: number) {
    super(`${pending} model calls are already waiting`);
    this.name = 'ModelBusyError';
  }
}

/** An error the model raised, re-created on this side of the thread boundary. */
export class ModelCallError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export interface ModelRunner {
  readonly description: ModelDescription;
  vectors(images: Float32Array, count: number): Promise<VectorsResult>;
  saliency(
    images: Float32Array,
    references: Float32Array,
    count: number,
    condition: number,
  ): Promise<Float32Array>;
  /** Calls queued or running. */
  readonly pending: number;
  close(): Promise<void>;
}

type Call =
  { op: 'vectors'; images: Float32Array; count: number } | Omit<WorkerRequest & { op: 'saliency' }, 'id'>;

abstract class QueuedRunner {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private closing = false;

  constructor(private readonly maxPending: number) {}

  get pending(): number {
    return this.waiting;
  }

  /** Run calls strictly one after another; after close() new calls are refused. */
  protected enqueue<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new ModelCallError('ModelClosedError', 'the model was unloaded'));
    if (this.waiting >= this.maxPending) return Promise.reject(new ModelBusyError(this.waiting));
    return this.schedule(work);
  }

  private schedule<T>(work: () => Promise<T>): Promise<T> {
    this.waiting++;
    const run = this.tail.then(work, work);
    this.tail = run.catch(() => undefined);
    return run.finally(() => {
      this.waiting--;
    });
  }

  vectors(images: Float32Array, count: number): Promise<VectorsResult> {
    return this.enqueue(() => this.perform<VectorsResult>({ op: 'vectors', images, count }));
  }

  saliency(
    images: Float32Array,
    references: Float32Array,
    count: number,
    condition: number,
  ): Promise<Float32Array> {
    return this.enqueue(() =>
      this.perform<Float32Array>({ op: 'saliency', images, references, count, condition }),
    );
  }

  /** Carry out one model call, in this thread or another; calls reach it one at a time. */
  protected abstract perform<T>(call: Call): Promise<T>;

  /** Refuse new calls, let the queued ones finish, then run `shutdown`. */
  protected drainAndClose(shutdown: () => Promise<void>): Promise<void> {
    this.closing = true;
    return this.schedule(shutdown).catch(() => undefined);
  }
}

class InProcessRunner extends QueuedRunner implements ModelRunner {
  constructor(
    private readonly host: ModelHost,
    readonly description: ModelDescription,
    maxPending: number,
  ) {
    super(maxPending);
  }

  protected perform<T>(call: Call): Promise<T> {
    const result =
      call.op === 'vectors'
        ? this.host.vectors(call.images, call.count)
        : this.host.saliency(call.images, call.references, call.count, call.condition);
    return result as Promise<T>;
  }

  close(): Promise<void> {
    return this.drainAndClose(async () => this.host.dispose());
  }
}

class WorkerRunner extends QueuedRunner implements ModelRunner {
  private nextId = 1;
  private readonly waitingReplies = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (e: Error) => void }
  >();
  private failure: Error | undefined;
  description!: ModelDescription;

  constructor(
    private readonly worker: Worker,
    maxPending: number,
  ) {
    super(maxPending);
    worker.on('message', (reply: WorkerReply) => {
      const waiter = this.waitingReplies.get(reply.id);
      if (!waiter) return;
      this.waitingReplies.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new ModelCallError(reply.error.name, reply.error.message));
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiter of this.waitingReplies.values()) waiter.reject(this.failure);
      this.waitingReplies.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`model worker exited with code ${code}`)));
  }

  call<T>(request: Call | { op: 'load'; load: LoadRequest } | { op: 'dispose' }): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waitingReplies.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  protected perform<T>(call: Call): Promise<T> {
    return this.call<T>(call);
  }

  close(): Promise<void> {
    return this.drainAndClose(async () => {
      await this.call({ op: 'dispose' }).catch(() => undefined);
      this.failure ??= new ModelCallError('ModelClosedError', 'the model was unloaded');
      await this.worker.terminate();
    });
  }
}

export interface StartModelOptions extends LoadRequest {
  /** Run the model in a worker thread (default) or on the main thread. */
  thread?: ModelThread;
  maxPending?: number;
}

/** Load a checkpoint and return a runner for it; throws what loading throws (missing file, bad checkpoint...). */
export async function startModel(options: StartModelOptions): Promise<ModelRunner> {
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const load: LoadRequest = { checkpoint: options.checkpoint, backend: options.backend };
  if (options.thread === 'main') {
    const host = new ModelHost();
    const description = await host.load(load);
    return new InProcessRunner(host, description, maxPending);
  }
  const entry = new URL(
    import.meta.url.endsWith('.ts') ? './model-worker.ts' : './model-worker.js',
    import.meta.url,
  );
  const worker = new Worker(new URL('./model-worker-entry.mjs', import.meta.url), {
    workerData: { entry: entry.href },
  });
  const runner = new WorkerRunner(worker, maxPending);
  try {
    runner.description = await runner.call<ModelDescription>({ op: 'load', load });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return runner;
}
