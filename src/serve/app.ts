/**
 * The HTTP app, assembled: logs, metrics, security headers, the page and docs, validation against openapi.yaml, the
 * route modules in routes/, and problem+json errors. Every answer about products comes from the index version the
 * request leased.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import express from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Logger } from 'pino';
import type { BackendPreference } from '../model/index.ts';
import { createLogger } from '../util/log.ts';
import { createHeatmapCache } from './cache.ts';
import { SERVE_DEFAULTS, type ModelThread } from './defaults.ts';
import { requestLogger } from './logging.ts';
import { createMetrics, type ServeMetrics } from './metrics.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { registerCatalogueRoutes } from './routes/catalogue.ts';
import type { RouteContext } from './routes/context.ts';
import { registerHeatmapRoutes } from './routes/heatmap.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerPages } from './routes/pages.ts';
import { registerSimilarRoutes } from './routes/similar.ts';
import { securityHeaders } from './security.ts';
import { ServeState } from './state.ts';

const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

export interface CreateAppOptions {
  /** Index bundle directory (the one holding manifest.json). */
  indexDir: string;
  /** Model checkpoint the index was built with; needed for uploads and heat maps. */
  modelPath?: string;
  backend?: BackendPreference;
  /** Where the model runs: a worker thread (default) or the main thread. */
  modelThread?: ModelThread;
  /** Product images are relative to this directory instead of the catalogue root the bundle records. */
  imageRoot?: string;
  /** How often to look for a newly published index version (default: SERVE_DEFAULTS). */
  pollIntervalMs?: number;
  /** Largest accepted upload in bytes (default: SERVE_DEFAULTS). */
  maxUploadBytes?: number;
  /** Check every response against openapi.yaml too (tests turn this on; it costs time per request). */
  validateResponses?: boolean;
  logger?: Logger;
}

export interface ServeApp {
  app: express.Express;
  state: ServeState;
  metrics: ServeMetrics;
  /** Resolves once an index version is being served. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** Request validation (and optionally response validation) against the contract, uploads parsed on the way. */
function contractValidator(options: CreateAppOptions): express.RequestHandler[] {
  const maxUploadBytes = options.maxUploadBytes ?? SERVE_DEFAULTS.maxUploadBytes;
  return OpenApiValidator.middleware({
    apiSpec: SPEC_PATH,
    validateRequests: { allowUnknownQueryParameters: false },
    validateResponses: options.validateResponses ?? false,
    validateApiSpec: true,
    ignorePaths: /^\/docs(\/|$)/,
    fileUploader: { limits: { fileSize: maxUploadBytes, files: 1, fields: 4, parts: 5 } },
  });
}

export async function createApp(options: CreateAppOptions): Promise<ServeApp> {
  const log = options.logger ?? createLogger('serve');
  const metrics = createMetrics();
  const spec = await readFile(SPEC_PATH, 'utf8');
  const state = new ServeState({
    indexDir: options.indexDir,
    modelPath: options.modelPath,
    backend: options.backend,
    modelThread: options.modelThread,
    imageRoot: options.imageRoot,
    pollIntervalMs: options.pollIntervalMs ?? SERVE_DEFAULTS.pollIntervalMs,
    log,
    metrics,
  });
  await state.start();
  const context: RouteContext = { state, metrics, log, heatmaps: createHeatmapCache() };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  app.use(requestLogger(log));
  app.use(metrics.middleware);
  app.use(securityHeaders());
  registerPages(app);
  // HEAD is GET without a body (RFC 9110): Node already dropped the body for this response, so route it as GET
  // and let the contract's GET operations answer probes that use HEAD.
  app.use((request, _response, next) => {
    if (request.method === 'HEAD') request.method = 'GET';
    next();
  });
  app.use(contractValidator(options));
  registerOpsRoutes(app, context, spec);
  registerCatalogueRoutes(app, context);
  registerSimilarRoutes(app, context);
  registerHeatmapRoutes(app, context);
  app.use(notFoundHandler);
  app.use(problemHandler(log));
  return { app, state, metrics, ready: state.whenReady(), close: () => state.close() };
}
