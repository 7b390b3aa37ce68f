/** Defaults of the service: the one home the CLI flags, createApp, startServer and the README read them from. */
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
  /**
   * Cores the model's wasm threads leave to the HTTP event loop, so that a heat map rendering on every core does
   * not hold up GET /similar (bench/results/serve-load.md, heat-map burst).
   */
  coresKeptForRequests: 1,
  /**
   * Nice steps the model's worker thread runs below the threads answering requests: a burst of heat maps then takes
   * the cores only when the request path leaves them idle (bench/results/serve-load.md, heat-map burst).
   */
  modelThreadNiceness: 10,
  /** Uploads waiting for or in the model beyond which new ones get 503 (an upload takes about 20 ms there). */
  maxQueuedUploads: 16,
  /** The same for heat maps, in a queue of their own so that they cannot starve uploads. */
  maxQueuedHeatmaps: 16,
  /** A request whose body has not arrived after this long is cut off (Node's own default is 300 s). */
  requestTimeoutMs: 30_000,
  /** A client must have sent its headers within this long. */
  headersTimeoutMs: 10_000,
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: 5_000,
  /** Open connections beyond this are refused. */
  maxConnections: 1024,
  /** On SIGTERM/SIGINT, running requests get this long to finish before their connections are closed. */
  drainTimeoutMs: 10_000,
  /** Bytes of resized product images kept in memory (a 1024 px WebP thumbnail is about 30-80 KiB). */
  thumbnailCacheBytes: 32 * 1024 * 1024,
  /** Thumbnails resized at once: sharp uses libuv's 4 threads, and file reads need some of them too. */
  thumbnailConcurrency: 2,
  /**
   * Bytes of finished `GET /similar` answers kept (answer-cache.ts): 64 MiB holds about 3,200 one-condition answers
   * of the demo (20 KB each) or 550 of all six conditions (118 KB).
   */
  answerCacheBytes: 64 * 1024 * 1024,
  /** Share of successful requests logged (errors always are); 1 logs every request. */
  logSample: 1,
  /** Worker processes (node:cluster); 1 runs the service in this process. */
  workers: 1,
  /** Requests per client per minute; 0 turns rate limiting off (the default). */
  rateLimitPerMinute: 0,
};

/** Where the model may run. */
export const MODEL_THREADS = ['worker', 'main'] as const;
export type ModelThread = (typeof MODEL_THREADS)[number];
