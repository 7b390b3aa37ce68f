/**
 * Run-time choice of the tfjs backend. Native TensorFlow bindings are used where a deployment has them
 * installed; otherwise the wasm backend (XNNPACK, SIMD, one thread per core: wasm-threads.ts) with our training
 * kernels; the pure-JS cpu
 * backend is the last resort (about 30x slower to train).
 */
import * as tf from '@tensorflow/tfjs';
import { createLogger, type Logger } from '../util/log.ts';
import { BACKEND_PREFERENCES, type BackendPreference } from './defaults.ts';
import { registerWasmTrainingKernels } from './kernels/wasm-kernels.ts';
import { activeWasmThreads, startWasmBackend, wasmThreadCount } from './kernels/wasm-threads.ts';

export type BackendLog = Pick<Logger, 'info' | 'warn'>;

/** Native bindings, best first. Imported by a computed name: they are optional and absent here. */
const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackendError';
  }
}

function isPreference(value: string): value is BackendPreference {
  return (BACKEND_PREFERENCES as readonly string[]).includes(value);
}

/** The preference in force: an explicit argument wins, then DRESSMATCH_BACKEND, then 'auto'. */
export function resolvePreference(preference: BackendPreference = 'auto'): BackendPreference {
  if (preference !== 'auto') return preference;
  const fromEnv = process.env.DRESSMATCH_BACKEND?.trim().toLowerCase();
  if (!fromEnv) return 'auto';
  if (!isPreference(fromEnv)) {
    throw new BackendError(`DRESSMATCH_BACKEND=${fromEnv} is not one of ${BACKEND_PREFERENCES.join(', ')}`);
  }
  return fromEnv;
}

/** tfjs falls back to another backend silently when one fails to start: check what is really active. */
async function activate(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function tryNative(log: BackendLog): Promise<string | undefined> {
  for (const pkg of NATIVE_PACKAGES) {
    try {
      await import(pkg);
    } catch {
      continue;
    }
    if (await activate('tensorflow')) return `tensorflow (${pkg})`;
    log.warn({ package: pkg }, 'native TensorFlow package loaded but its backend did not start');
  }
  return undefined;
}

async function tryWasm(log: BackendLog, threads: number): Promise<string | undefined> {
  try {
    await import('@tensorflow/tfjs-backend-wasm');
  } catch (error) {
    log.warn({ err: error }, 'could not load @tensorflow/tfjs-backend-wasm');
    return undefined;
  }
  try {
    // Threads are decided when the backend first starts.
    if (!(await startWasmBackend(threads))) return undefined;
    await tf.ready();
  } catch (error) {
    log.warn({ err: error }, 'the wasm backend did not start');
    return undefined;
  }
  if (tf.getBackend() !== 'wasm') return undefined;
  registerWasmTrainingKernels();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const active = await activeWasmThreads();
  return `wasm (${simd ? 'simd, ' : ''}${active} thread${active === 1 ? '' : 's'})`;
}

/**
 * The cpu backend greets Node users with a banner on its first tensor. We log our own line instead;
 * the flag is private to tfjs-backend-cpu, so this is best-effort.
 */
function silenceCpuBanner(): void {
  try {
    const cpu = tf.engine().findBackend('cpu') as unknown as { firstUse?: boolean } | null;
    if (cpu && typeof cpu.firstUse === 'boolean') cpu.firstUse = false;
  } catch {
    // no cpu backend registered: nothing to silence
  }
}

/**
 * Choose and activate a backend; returns the name of the active one (tf.getBackend()).
 * 'auto' tries native TensorFlow (GPU, then CPU), then wasm, then the cpu backend. An explicit
 * preference that cannot be met is an error rather than a silent fallback. `wasmThreads` is how many XNNPACK
 * threads the wasm backend gets if it is chosen (default wasmThreadCount(): DRESSMATCH_WASM_THREADS or one per core).
 */
export async function selectBackend(
  preference: BackendPreference = 'auto',
  log?: BackendLog,
  wasmThreads = wasmThreadCount(),
): Promise<string> {
  const logger = log ?? createLogger('model');
  const wanted = resolvePreference(preference);
  silenceCpuBanner();
  let chosen: string | undefined;
  if (wanted === 'auto' || wanted === 'tensorflow') {
    chosen = await tryNative(logger);
    if (!chosen && wanted === 'tensorflow') {
      throw new BackendError(
        `backend 'tensorflow' requested but neither ${NATIVE_PACKAGES.join(' nor ')} works here`,
      );
    }
  }
  if (!chosen && (wanted === 'auto' || wanted === 'wasm')) {
    chosen = await tryWasm(logger, wasmThreads);
    if (!chosen && wanted === 'wasm') throw new BackendError(`backend 'wasm' requested but it did not start`);
  }
  if (!chosen) {
    if (!(await activate('cpu'))) throw new BackendError('not even the cpu backend could start');
    silenceCpuBanner();
    chosen = 'cpu';
    if (wanted === 'auto') {
      logger.warn('no native TensorFlow and no wasm backend: using the pure-JS cpu backend (slow to train)');
    }
  }
  logger.info({ backend: tf.getBackend(), detail: chosen, preference: wanted }, `tfjs backend: ${chosen}`);
  return tf.getBackend();
}
