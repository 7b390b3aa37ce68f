/**
 * Multi-threaded XNNPACK for the tfjs wasm backend in Node. tfjs turns wasm threads off in Node, and two things
 * stand in the way of turning them on:
 * - the pthread workers are started from a blob: URL and read the main script from a Blob; Node's worker_threads
 *   load neither, so the worker script's blob URL is answered with `wasm-thread-worker.cjs`, which runs the same
 *   worker script pointed at the threaded module's file;
 * - the backend caps its thread pool at half the logical cores (it assumes 2 hyper-threads per core), which is
 *   1 on a 2-vCPU machine; the core count it reads at start-up is doubled while the backend starts.
 * Threads split each convolution's output tiles, each output is still summed in the same order by one thread:
 * results are identical to one thread (checked in test/model.kernels.test.ts). Measured on 2 cores (bench notes).
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import workerThreads from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';

const require = createRequire(import.meta.url);
const WORKER_MODULE = '@tensorflow/tfjs-backend-wasm/wasm-out/tfjs-backend-wasm-threaded-simd.worker.js';
const WORKER_FILE = fileURLToPath(new URL('./wasm-thread-worker.cjs', import.meta.url));

let urlPatched = false;

/** Answer tfjs's blob: URL for the pthread worker script with our bootstrap file (identified by its size). */
function patchWorkerUrl(): void {
  if (urlPatched) return;
  const { wasmWorkerContents } = require(WORKER_MODULE) as { wasmWorkerContents: string };
  // tfjs escapes newlines before making the Blob; the Blob's size tells it apart from any other.
  const workerBlobSize = Buffer.byteLength(wasmWorkerContents.replace(/\n/g, '\\n'));
  const original = URL.createObjectURL.bind(URL);
  URL.createObjectURL = (object: Blob): string =>
    object instanceof Blob && object.size === workerBlobSize ? WORKER_FILE : original(object);
  urlPatched = true;
}

/**
 * Threads the wasm backend should use: DRESSMATCH_WASM_THREADS, else one per logical core less `spare` cores left
 * to other work (at least 1, at most 4).
 */
export function wasmThreadCount(spare = 0): number {
  const fromEnv = Number(process.env.DRESSMATCH_WASM_THREADS);
  if (Number.isInteger(fromEnv) && fromEnv >= 1) return fromEnv;
  return Math.max(1, Math.min(4, os.cpus().length - spare));
}

/**
 * Start the wasm backend with `threads` XNNPACK threads (1: the single-threaded binary, as tfjs does in Node).
 * Must run before the wasm backend is first initialised; returns the thread count the backend reports.
 */
export async function startWasmBackend(threads: number): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  if (threads <= 1) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    return (await tf.setBackend('wasm')) && tf.getBackend() === 'wasm';
  }
  patchWorkerUrl();
  wasm.setThreadsCount(threads);
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  const cpus = os.cpus;
  const Worker = workerThreads.Worker;
  // The module reads the core count once, while it instantiates: show it twice as many (see the header).
  os.cpus = () => [...cpus(), ...cpus()];
  workerThreads.Worker = PlainWorker;
  let started: boolean;
  try {
    started = (await tf.setBackend('wasm')) && tf.getBackend() === 'wasm';
  } finally {
    os.cpus = cpus;
    workerThreads.Worker = Worker;
  }
  if (started) unrefThreads();
  return started;
}

/** Node flags that load modules before a script (a TypeScript loader, hooks): a worker inherits them by default. */
const PRELOAD_FLAGS = new Set(['--import', '--require', '-r', '--loader', '--experimental-loader']);

/** The parent's Node flags without the preloads: the pthread bootstrap is plain CommonJS and needs none. */
function flagsWithoutPreloads(flags: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < flags.length; i++) {
    const [name] = flags[i].split('=', 1);
    if (!PRELOAD_FLAGS.has(name)) kept.push(flags[i]);
    else if (!flags[i].includes('=')) i++;
  }
  return kept;
}

/**
 * The module starts its pool of pthread workers (8, whatever the thread count) while it instantiates. Run with a
 * TypeScript loader (`node --import tsx`), each worker would load the loader too, most of the CPU time of starting
 * the backend; started without the preloads, the pool costs a fraction of that. A process-wide flag (`--expose-gc`,
 * `--max-old-space-size`, …) cannot be given to a worker explicitly: with one, the workers inherit every flag as
 * before, preloads included.
 */
class PlainWorker extends workerThreads.Worker {
  constructor(filename: string | URL, options: workerThreads.WorkerOptions = {}) {
    if (String(filename) !== WORKER_FILE || options.execArgv !== undefined) {
      super(filename, options);
      return;
    }
    try {
      super(filename, { ...options, execArgv: flagsWithoutPreloads(process.execArgv) });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ERR_WORKER_INVALID_EXEC_ARGV') throw error;
      super(filename, options);
    }
  }
}

interface PthreadModule {
  PThread?: { runningWorkers: { unref(): void }[] };
}

/**
 * XNNPACK's pool threads wait for work for the life of the process; emscripten keeps their workers referenced,
 * which would keep Node from exiting when the program is done. Nothing is lost by letting the process end.
 */
function unrefThreads(): void {
  const module = (tf.backend() as unknown as { wasm?: PthreadModule }).wasm;
  for (const worker of module?.PThread?.runningWorkers ?? []) worker.unref();
}

/** XNNPACK threads of the running wasm backend. */
export async function activeWasmThreads(): Promise<number> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  return wasm.getThreadsCount();
}
