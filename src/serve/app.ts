/**
 * The HTTP app, assembled: logs, metrics, security headers, the page and docs, validation against openapi.yaml, the
 * route modules in routes/, and problem+json errors. Every answer about products comes from the index version the
 * request leased.
 */
import { readFile } from 'node:fs/promises';
import express from 'express';
import type { Logger } from 'pino';
import type { StoreKind } from '../index/index.ts';
import type { BackendPreference } from '../model/index.ts';
import { createAnswerCache, type EtagFunction } from './answer-cache.ts';
import { createHeatmapCache, createThumbnailCache } from './cache.ts';
import {
  BODY_PATHS,
  SPEC_PATH,
  contractValidator,
  jsonBody,
  operationParameters,
  type OperationParameters,
  plainIntegers,
  uploadLimits,
} from './contract.ts';
import { SERVE_DEFAULTS, type ModelThread } from './defaults.ts';
import { requestEdge, type EdgeParts } from './edge.ts';
import { assignRequestId, createServeLogger, requestLogger } from './logging.ts';
import { createMetrics, type ServeMetrics } from './metrics.ts';
import { notFoundHandler, problemHandler } from './problem.ts';
import { registerCatalogueRoutes } from './routes/catalogue.ts';
import type { RouteContext } from './routes/context.ts';
import { registerHeatmapRoutes } from './routes/heatmap.ts';
import { registerOpsRoutes } from './routes/ops.ts';
import { registerPages } from './routes/pages.ts';
import { registerRecommendRoutes } from './routes/recommend.ts';
import { registerSimilarRoutes } from './routes/similar.ts';
import { rateLimiter } from './rate-limit.ts';
import { registerRequestChecks } from './request-checks.ts';
import { responseChecks } from './response-checks.ts';
import { securityHeaders } from './security.ts';
import { ServeState } from './state.ts';

export interface CreateAppOptions {
  /** Index bundle directory (the one holding manifest.json), or the LanceDB URI with `storeKind` lancedb. */
  indexDir: string;
  /** Which store serves the index (default hnswlib: the embedded bundle). */
  storeKind?: StoreKind;
  /** Model checkpoint the index was built with; needed for uploads and heat maps. */
  modelPath?: string;
  backend?: BackendPreference;
  /** Where the model runs: a worker thread (default) or the main thread. */
  modelThread?: ModelThread;
  /** Product images are relative to this directory instead of the catalogue root the bundle records. */
  imageRoot?: string;
  /** How often to look for a newly published index version (defaults of these options: SERVE_DEFAULTS). */
  pollIntervalMs?: number;
  /** Largest accepted upload in bytes. */
  maxUploadBytes?: number;
  /** Uploads, and heat maps, that may wait for the model before new ones get 503 (separate queues). */
  maxQueuedUploads?: number;
  maxQueuedHeatmaps?: number;
  /** Bytes of finished GET /similar answers kept (0: none). */
  answerCacheBytes?: number;
  /** Bytes of resized product images kept, and how many are resized at once. */
  thumbnailCacheBytes?: number;
  thumbnailConcurrency?: number;
  /** Requests per client per minute (0: no limit). */
  rateLimitPerMinute?: number;
  /** When set, /metrics answers only requests with `Authorization: Bearer <token>`. */
  metricsToken?: string;
  /** False when /metrics is served elsewhere (a port of its own): this app then has no /metrics. */
  metricsRoute?: boolean;
  /** Send Strict-Transport-Security on every response (TLS ends in front of the service). */
  hsts?: boolean;
  /** Where /metrics gets its text (cluster workers ask the primary for the total); default: this app's registry. */
  metricsSource?: () => Promise<string>;
  /** Share of successful requests logged (errors always are): 1 logs all. */
  logSample?: number;
  /** Check the bytes of every JSON answer against openapi.yaml too (tests turn this on; it costs time). */
  validateResponses?: boolean;
  logger?: Logger;
}

export interface ServeApp {
  /** The one router: the server's request listener. */
  app: express.Express;
  state: ServeState;
  metrics: ServeMetrics;
  /** Resolves once an index version is being served. */
  ready: Promise<void>;
  close(): Promise<void>;
}

function createState(options: CreateAppOptions, log: Logger, metrics: ServeMetrics): ServeState {
  return new ServeState({
    indexDir: options.indexDir,
    storeKind: options.storeKind,
    modelPath: options.modelPath,
    backend: options.backend,
    modelThread: options.modelThread,
    imageRoot: options.imageRoot,
    pollIntervalMs: options.pollIntervalMs ?? SERVE_DEFAULTS.pollIntervalMs,
    queueLimits: {
      embed: options.maxQueuedUploads ?? SERVE_DEFAULTS.maxQueuedUploads,
      saliency: options.maxQueuedHeatmaps ?? SERVE_DEFAULTS.maxQueuedHeatmaps,
    },
    log,
    metrics,
  });
}

/** Logs, metrics and headers every request passes through before anything else (edge.ts). */
function edgeParts(options: CreateAppOptions, log: Logger, metrics: ServeMetrics): EdgeParts {
  return {
    start: [assignRequestId, securityHeaders({ hsts: options.hsts })],
    end: [requestLogger(log, options.logSample ?? SERVE_DEFAULTS.logSample), metrics.observe],
  };
}

function routeContext(
  options: CreateAppOptions,
  { state, metrics, log }: Pick<RouteContext, 'state' | 'metrics' | 'log'>,
  etagOf: EtagFunction | undefined,
): RouteContext {
  return {
    state,
    metrics,
    log,
    answers: createAnswerCache(
      state,
      options.answerCacheBytes ?? SERVE_DEFAULTS.answerCacheBytes,
      metrics.cacheLookups,
      etagOf,
    ),
    heatmaps: createHeatmapCache(),
    thumbnails: createThumbnailCache(
      options.thumbnailCacheBytes ?? SERVE_DEFAULTS.thumbnailCacheBytes,
      options.thumbnailConcurrency ?? SERVE_DEFAULTS.thumbnailConcurrency,
      metrics.cacheLookups,
    ),
    etagOf,
  };
}

/**
 * In order: the page and the docs, the contract's checks (compiled per route for requests without a body; the
 * validator parses and checks uploads and JSON bodies, on their paths only, so an unknown path is a 404 before any
 * body is read), the routes and the error handlers.
 */
function registerRoutes(
  app: express.Express,
  context: RouteContext,
  spec: string,
  parameters: OperationParameters,
  options: CreateAppOptions,
): void {
  registerPages(app);
  // HEAD is GET without a body (RFC 9110): Node already dropped the body for this response, so route it as GET
  // and let the contract's GET operations answer probes that use HEAD.
  app.use((request, _response, next) => {
    if (request.method === 'HEAD') request.method = 'GET';
    next();
  });
  registerRequestChecks(app, spec, parameters, BODY_PATHS);
  // JSON bodies (POST /recommend) are parsed before the contract checks them.
  app.post('/recommend', ...jsonBody());
  const limits = uploadLimits(options.maxUploadBytes ?? SERVE_DEFAULTS.maxUploadBytes);
  // The validator and its checks run on the paths of the operations with a body only: on every other request
  // the validator would still look its route up in the contract.
  const withBody = express.Router();
  withBody.use(contractValidator(limits), plainIntegers(parameters));
  app.use((request, response, next) => {
    if (BODY_PATHS.has(request.path)) withBody(request, response, next);
    else next();
  });
  registerOpsRoutes(app, context, spec, {
    metricsRoute: options.metricsRoute ?? true,
    metricsToken: options.metricsToken,
  });
  registerCatalogueRoutes(app, context);
  registerSimilarRoutes(app, context);
  registerRecommendRoutes(app, context);
  registerHeatmapRoutes(app, context);
  app.use(notFoundHandler);
  app.use(problemHandler(context.log));
}

export async function createApp(options: CreateAppOptions): Promise<ServeApp> {
  const log = options.logger ?? createServeLogger();
  const metrics = createMetrics(options.metricsSource);
  const spec = await readFile(SPEC_PATH, 'utf8');
  const state = createState(options, log, metrics);
  await state.start();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  const etagOf = app.get('etag fn') as EtagFunction | undefined;
  const context = routeContext(options, { state, metrics, log }, etagOf);
  app.use(requestEdge(edgeParts(options, log, metrics)));
  if (options.validateResponses) app.use(responseChecks(spec));
  // The rate limit runs before everything it limits (it skips the probes and /metrics itself).
  const limiter = rateLimiter(options.rateLimitPerMinute ?? SERVE_DEFAULTS.rateLimitPerMinute);
  if (limiter) app.use(limiter);
  registerRoutes(app, context, spec, operationParameters(spec), options);
  return { app, state, metrics, ready: state.whenReady(), close: () => state.close() };
}
