/** Defaults of the service: the one home the CLI flags, createApp and the README read them from. */
import type { BackendPreference } from '../model/index.ts';

export const SERVE_DEFAULTS = {
  indexDir: 'indexes/demo',
  host: '127.0.0.1',
  port: 8080,
  backend: 'auto' as BackendPreference,
  /** How often the bundle's manifest is checked for a new version. */
  pollIntervalMs: 2000,
  /** Largest accepted upload (a phone photo is 2-5 MiB). */
  maxUploadBytes: 8 * 1024 * 1024,
  modelThread: 'worker' as 'worker' | 'main',
};

/** Where the model may run. */
export const MODEL_THREADS = ['worker', 'main'] as const;
export type ModelThread = (typeof MODEL_THREADS)[number];
