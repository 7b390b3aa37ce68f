/**
 * Client side of the model: one call at a time, in a worker thread by default so that a saliency map computed for
 * one request does not stall every other request on the event loop. A bounded queue turns overload into 503s.
 */
import { Worker } from 'node:worker_threads';
import { SERVE_DEFAULTS, type ModelThread } from '../defaults.ts';
import {
  ModelHost,
  type HeatmapRender,
  type LoadRequest,
  type ModelDescription,
  type VectorsResult,
} from './host.ts';

export type WorkerRequest =
  | { id: number; op: 'load'; load: LoadRequest }
  | { id: number; op: 'vectors'; images: Float32Array; count: number }
  | { id: number; op: 'heatmap'; render: HeatmapRender }
  | { id: number; op: 'dispose' };

export type WorkerReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string } };

/** The kinds of model call; each has its own bounded queue, and uploads go first. */
export const MODEL_CALL_KINDS = ['embed', 'saliency'] as const;
export type ModelCallKind = (typeof MODEL_CALL_KINDS)[number];
export type QueueLimits = Record<ModelCallKind, number>;

/**
 * Calls of one kind waiting or running beyond which new ones of that kind are refused. Separate queues so that a
 * burst of heat maps (about 33 concurrent ones filled the old shared queue of 32) cannot starve uploads.
 */
export const DEFAULT_QUEUE_LIMITS: QueueLimits = {
  embed: SERVE_DEFAULTS.maxQueuedUploads,
  saliency: SERVE_DEFAULTS.maxQueuedHeatmaps,
};

export class ModelBusyError extends Error {
  constructor(
    readonly kind: ModelCallKind,
    pending: number,
  ) {
    super(`${pending} ${kind} calls are already waiting`);
    this.name = 'ModelBusyError';
  }
}

/** An error the model raised, re-created on this side of the thread boundary. */
/** The checkpoint given at start-up could not be loaded (missing, unreadable or not a checkpoint). */
export class ModelLoadError extends Error {
  override name = 'ModelLoadError';
  /** The file is not there at all. */
  readonly missing: boolean;

  constructor(
    readonly checkpoint: string,
    cause: unknown,
  ) {
    const message = cause instanceof Error ? cause.message : String(cause);
    super(message, { cause });
    this.missing =
      (cause as NodeJS.ErrnoException).code === 'ENOENT' ||
      /ENOENT|no such file|file not found/i.test(message);
  }
}

export class ModelCallError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export interface ModelRunner {
  readonly description: ModelDescription;
  vectors(images: Float32Array, count: number): Promise<VectorsResult>;
  /**
   * A heat map as PNG, rendered where the model runs (photos decoded there too). A full queue refuses it at once
   * with ModelBusyError.
   */
  heatmap(render: HeatmapRender): Promise<Uint8Array>;
  /** Calls queued or running. */
  readonly pending: number;
  close(): Promise<void>;
}

type Call = { op: 'vectors'; images: Float32Array; count: number } | { op: 'heatmap'; render: HeatmapRender };

interface Job {
  work: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

abstract class QueuedRunner {
  private readonly queues: Record<ModelCallKind, Job[]> = { embed: [], saliency: [] };
  /** Calls of each kind queued or running. */
  private readonly counts: Record<ModelCallKind, number> = { embed: 0, saliency: 0 };
  private busy = false;
  private closing = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly limits: QueueLimits) {}

  get pending(): number {
    return this.counts.embed + this.counts.saliency;
  }

  /** Run calls strictly one after another, uploads before heat maps; after close() new calls are refused. */
  protected enqueue<T>(kind: ModelCallKind, call: Call): Promise<T> {
    if (this.closing) return Promise.reject(new ModelCallError('ModelClosedError', 'the model was unloaded'));
    if (this.counts[kind] >= this.limits[kind])
      return Promise.reject(new ModelBusyError(kind, this.counts[kind]));
    this.counts[kind]++;
    const done = new Promise<T>((resolve, reject) => {
      const job = { work: () => this.perform(call), resolve: resolve as (value: unknown) => void, reject };
      this.queues[kind].push(job);
      this.pump();
    });
    return done.finally(() => {
      this.counts[kind]--;
    });
  }

  private pump(): void {
    if (this.busy) return;
    const job = this.queues.embed.shift() ?? this.queues.saliency.shift();
    if (!job) {
      for (const wake of this.idleWaiters.splice(0)) wake();
      return;
    }
    this.busy = true;
    void job
      .work()
      .then(job.resolve, job.reject)
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  vectors(images: Float32Array, count: number): Promise<VectorsResult> {
    return this.enqueue('embed', { op: 'vectors', images, count });
  }

  heatmap(render: HeatmapRender): Promise<Uint8Array> {
    return this.enqueue('saliency', { op: 'heatmap', render });
  }

  /** Carry out one model call, in this thread or another; calls reach it one at a time. */
  protected abstract perform<T>(call: Call): Promise<T>;

  /** Refuse new calls, let the queued ones finish, then run `shutdown`. */
  protected async drainAndClose(shutdown: () => Promise<void>): Promise<void> {
    this.closing = true;
    if (this.busy) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    await shutdown().catch(() => undefined);
  }
}

class InProcessRunner extends QueuedRunner implements ModelRunner {
  constructor(
    private readonly host: ModelHost,
    readonly description: ModelDescription,
    limits: QueueLimits,
  ) {
    super(limits);
  }

  protected perform<T>(call: Call): Promise<T> {
    const result =
      call.op === 'vectors' ? this.host.vectors(call.images, call.count) : this.host.heatmapPng(call.render);
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
    limits: QueueLimits,
  ) {
    super(limits);
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
  /** Per kind of call, how many may wait or run (default DEFAULT_QUEUE_LIMITS). */
  queueLimits?: Partial<QueueLimits>;
}

/** Load a checkpoint and return a runner for it; throws what loading throws (missing file, bad checkpoint...). */
export async function startModel(options: StartModelOptions): Promise<ModelRunner> {
  const limits = { ...DEFAULT_QUEUE_LIMITS, ...options.queueLimits };
  const load: LoadRequest = {
    checkpoint: options.checkpoint,
    backend: options.backend,
    coresKept: SERVE_DEFAULTS.coresKeptForRequests,
  };
  if (options.thread === 'main') {
    const host = new ModelHost();
    const description = await host.load(load);
    return new InProcessRunner(host, description, limits);
  }
  const entry = new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
  const worker = new Worker(new URL('../../util/ts-worker-entry.mjs', import.meta.url), {
    workerData: { entry: entry.href },
  });
  const runner = new WorkerRunner(worker, limits);
  try {
    runner.description = await runner.call<ModelDescription>({ op: 'load', load });
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return runner;
}
