/**
 * The HTTP layer: routes, validation against openapi.yaml, problem+json errors, logs, metrics, security headers,
 * the web page and the docs. Every answer about products comes from the index version the request leased.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import sharp from 'sharp';
import swaggerUi from 'swagger-ui-express';
import { decodeImage } from '../catalogue/index.ts';
import { overlaySaliency, resizeMap } from '../explain/index.ts';
import type { BackendPreference } from '../model/index.ts';
import { createLogger } from '../util/log.ts';
import type { components, operations } from './api-types.ts';
import { createMetrics, type ServeMetrics } from './metrics.ts';
import { ModelBusyError, type ModelRunner } from './model-runner.ts';
import { HttpProblem, PROBLEM_TYPES, notFoundHandler, problemHandler, type ProblemSlug } from './problem.ts';
import type { ServedIndex } from './served-index.ts';
import {
  conditionList,
  neighbourGroups,
  productPage,
  requireConditions,
  requireSlot,
  toProduct,
  type SimilarResponse,
} from './similar.ts';
import { ServeState } from './state.ts';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));
const PUBLIC_DIR = fileURLToPath(new URL('./public/', import.meta.url));

/** Formats an upload may have (read from its bytes, not from what the client claims). */
const IMAGE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);
/** Uploads with more pixels than this are refused before decoding (decompression bombs). */
const MAX_UPLOAD_PIXELS = 40_000_000;
const HEATMAP_CACHE_ENTRIES = 256;

export interface CreateAppOptions {
  /** Index bundle directory (the one holding manifest.json). */
  indexDir: string;
  /** Model checkpoint the index was built with; needed for uploads and heat maps. */
  modelPath?: string;
  backend?: BackendPreference;
  /** Where the model runs: a worker thread (default) or the main thread. */
  modelThread?: 'worker' | 'main';
  /** Product images are relative to this directory instead of the catalogue root the bundle records. */
  imageRoot?: string;
  /** How often to look for a newly published index version (default 2000 ms). */
  pollIntervalMs?: number;
  /** Largest accepted upload in bytes (default 8 MiB). */
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

type Schemas = components['schemas'];
type QueryOf<K extends keyof operations> = operations[K]['parameters'] extends { query?: infer Q }
  ? NonNullable<Q>
  : never;
type PathOf<K extends keyof operations> = operations[K]['parameters'] extends { path: infer P } ? P : never;

/** Request carrying the index version it leased (see withIndex). */
interface Leased {
  index: ServedIndex;
}

function leased(response: Response): ServedIndex {
  return (response.locals as Leased).index;
}

/** Handlers may be async: forward rejections to the error handler (Express 5 does too; this keeps types simple). */
function route<P, Q>(
  handler: (request: Request<P, unknown, unknown, Q>, response: Response) => Promise<void> | void,
) {
  return ((request: Request<P, unknown, unknown, Q>, response: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => handler(request, response))
      .catch(next);
  }) as unknown as RequestHandler;
}

class LruCache<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly capacity: number) {}
  get(key: string): V | undefined {
    const value = this.entries.get(key);
    if (value !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }
}

function requestId(request: Request, response: Response): string {
  const given = request.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
  response.setHeader('X-Request-Id', id);
  return id;
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
    pollIntervalMs: options.pollIntervalMs ?? 2000,
    log,
    metrics,
  });
  await state.start();
  const heatmaps = new LruCache<Buffer>(HEATMAP_CACHE_ENTRIES);
  const maxUploadBytes = options.maxUploadBytes ?? 8 * 1024 * 1024;

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', 'strong');
  app.use(
    pinoHttp({
      logger: log,
      genReqId: requestId,
      customLogLevel: (_request, response, error) =>
        error || response.statusCode >= 500 ? 'error' : response.statusCode >= 400 ? 'warn' : 'info',
      serializers: {
        req: (request: { id: unknown; method: string; url: string }) => ({
          id: request.id,
          method: request.method,
          url: request.url,
        }),
        res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
      },
    }),
  );
  app.use(metrics.middleware);

  const csp = {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'", 'data:', 'blob:'],
    connectSrc: ["'self'"],
    fontSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
    // Served over plain HTTP on a private network as often as behind TLS: do not force https sub-requests.
    upgradeInsecureRequests: null,
  };
  // Swagger UI's page carries an inline <style> block and inline style attributes: the docs get their own policy.
  const docsHeaders = helmet({
    contentSecurityPolicy: { directives: { ...csp, styleSrc: ["'self'", "'unsafe-inline'"] } },
  });
  const headers = helmet({ contentSecurityPolicy: { directives: csp } });
  app.use((request, response, next) =>
    (request.path === '/docs' || request.path.startsWith('/docs/') ? docsHeaders : headers)(
      request,
      response,
      next,
    ),
  );

  // The page and the rendered docs (outside the contract).
  app.use('/docs', swaggerUi.serveFiles(undefined, { swaggerOptions: { url: '/openapi.yaml' } }));
  app.get(
    '/docs',
    swaggerUi.setup(undefined, {
      swaggerOptions: { url: '/openapi.yaml' },
      customSiteTitle: 'dressmatch API',
    }),
  );
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m' }));

  // HEAD is GET without a body (RFC 9110): Node already dropped the body for this response, so route it as GET
  // and let the contract's GET operations answer probes that use HEAD.
  app.use((request, _response, next) => {
    if (request.method === 'HEAD') request.method = 'GET';
    next();
  });
  app.use(
    OpenApiValidator.middleware({
      apiSpec: SPEC_PATH,
      validateRequests: { allowUnknownQueryParameters: false },
      validateResponses: options.validateResponses ?? false,
      validateApiSpec: true,
      ignorePaths: /^\/docs(\/|$)/,
      fileUploader: { limits: { fileSize: maxUploadBytes, files: 1, fields: 4, parts: 5 } },
    }),
  );

  // Operations and documents: no index needed.
  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' } satisfies Schemas['Health']);
  });
  app.get('/openapi.yaml', (_request, response) => {
    response.type('application/yaml').send(spec);
  });
  app.get('/problems/:slug', (request, response, next) => {
    const slug = request.params.slug;
    if (!Object.hasOwn(PROBLEM_TYPES, slug)) return next();
    const about = PROBLEM_TYPES[slug as ProblemSlug];
    response
      .type('text/html')
      .send(`<!doctype html><title>${about.title}</title><h1>${about.title}</h1><p>${about.about}</p>`);
  });
  app.get('/readyz', (_request, response) => {
    const index = state.index;
    const model = index?.model;
    if (!index || (state.modelConfigured && !model)) {
      throw new HttpProblem(
        503,
        'not-ready',
        state.lastError ? `No index is being served: ${state.lastError}` : 'Still loading the index.',
        {},
        { 'Retry-After': '2' },
      );
    }
    const body: Schemas['Readiness'] = {
      status: 'ready',
      version: index.version,
      products: index.liveSlots.length,
      conditions: [...index.bundle.conditions],
      model: model
        ? {
            loaded: true,
            kind: model.description.kind,
            imageSize: model.description.imageSize,
            embedDim: model.description.embedDim,
            backend: model.description.backend,
          }
        : { loaded: false },
    };
    response.json(body);
  });

  app.get(
    '/metrics',
    route(async (_request, response) => {
      response.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );

  /** Lease the current index version for the whole request (released when the response closes, however it ends). */
  const withIndex: RequestHandler = (_request, response, next) => {
    const lease = state.lease();
    if (!lease) {
      throw new HttpProblem(503, 'not-ready', 'No index version is loaded yet.', {}, { 'Retry-After': '2' });
    }
    (response.locals as Leased).index = lease.index;
    response.setHeader('X-Index-Version', lease.index.version);
    response.once('close', lease.release);
    next();
  };

  function requireModel(index: ServedIndex): ModelRunner {
    const model = index.model;
    if (!model) {
      throw new HttpProblem(
        503,
        'model-unavailable',
        'This server runs without a model (start it with --model).',
      );
    }
    return model;
  }

  function modelCondition(model: ModelRunner, condition: string): number {
    const c = model.description.conditions.indexOf(condition);
    if (c < 0)
      throw new HttpProblem(503, 'model-unavailable', `The loaded model has no condition ${condition}.`);
    return c;
  }

  async function timedModelCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const end = metrics.modelCalls.startTimer({ operation });
    try {
      return await call();
    } catch (error) {
      if (error instanceof ModelBusyError) {
        throw new HttpProblem(
          503,
          'model-unavailable',
          'The model is busy; retry shortly.',
          {},
          { 'Retry-After': '1' },
        );
      }
      throw error;
    } finally {
      end();
    }
  }

  app.get('/conditions', withIndex, (_request, response) => {
    response.json(conditionList(leased(response)));
  });

  app.get(
    '/products',
    withIndex,
    route<unknown, QueryOf<'listProducts'>>((request, response) => {
      const { q, offset = 0, limit = 48 } = request.query;
      response.json(productPage(leased(response), q, Number(offset), Number(limit)));
    }),
  );

  app.get(
    '/products/:productId',
    withIndex,
    route<PathOf<'getProduct'>, unknown>((request, response) => {
      const index = leased(response);
      response.json(toProduct(index, requireSlot(index, request.params.productId)));
    }),
  );

  app.get(
    '/products/:productId/image',
    withIndex,
    route<PathOf<'getProductImage'>, QueryOf<'getProductImage'>>(async (request, response) => {
      const index = leased(response);
      const slot = requireSlot(index, request.params.productId);
      const path = index.imagePath(slot);
      if (!path)
        throw new HttpProblem(404, 'not-found', 'The image of this product is not available on this server.');
      response.setHeader('Cache-Control', 'public, max-age=300');
      const size = request.query.size === undefined ? undefined : Number(request.query.size);
      let image: Buffer;
      try {
        image =
          size === undefined
            ? await readFile(path)
            : await sharp(path)
                .rotate()
                .resize(size, size, { fit: 'contain', background: '#ffffff' })
                .flatten({ background: '#ffffff' })
                .webp({ quality: 85 })
                .toBuffer();
      } catch {
        throw new HttpProblem(404, 'not-found', 'The image of this product cannot be read on this server.');
      }
      if (size !== undefined) response.type('image/webp');
      else {
        const format = (
          await sharp(image)
            .metadata()
            .catch(() => undefined)
        )?.format;
        response.type(
          format === 'jpeg' ? 'image/jpeg' : format ? `image/${format}` : 'application/octet-stream',
        );
      }
      response.send(image);
    }),
  );

  app.get(
    '/similar/:productId',
    withIndex,
    route<PathOf<'getSimilar'>, QueryOf<'getSimilar'>>((request, response) => {
      const index = leased(response);
      const k = Number(request.query.k ?? 10);
      const conditions = requireConditions(index, request.query.condition);
      const slot = requireSlot(index, request.params.productId);
      const { bundle } = index;
      const body: SimilarResponse = {
        version: index.version,
        k,
        query: { source: 'product', product: toProduct(index, slot) },
        groups: neighbourGroups(
          index,
          { slot, vector: (c) => bundle.vector(bundle.conditions[c], slot) },
          conditions,
          k,
          index.model !== undefined,
        ),
      };
      response.json(body);
    }),
  );

  app.post(
    '/similar',
    withIndex,
    route<unknown, QueryOf<'postSimilar'>>(async (request, response) => {
      const index = leased(response);
      const k = Number(request.query.k ?? 10);
      const conditions = requireConditions(index, request.query.condition);
      const model = requireModel(index);
      const files = (request.files ?? []) as Express.Multer.File[];
      const upload = files.find((file) => file.fieldname === 'image');
      if (!upload)
        throw new HttpProblem(400, 'invalid-request', 'The form has no file in its "image" field.');
      const metadata = await sharp(upload.buffer)
        .metadata()
        .catch(() => undefined);
      if (!metadata?.format || !IMAGE_FORMATS.has(metadata.format)) {
        throw new HttpProblem(
          415,
          'unsupported-media-type',
          `The upload is not an image in a supported format (${[...IMAGE_FORMATS].join(', ')}).`,
        );
      }
      if ((metadata.width ?? 0) * (metadata.height ?? 0) > MAX_UPLOAD_PIXELS) {
        throw new HttpProblem(
          413,
          'upload-too-large',
          `The image has more than ${MAX_UPLOAD_PIXELS} pixels.`,
        );
      }
      let pixels: Float32Array;
      try {
        pixels = await decodeImage(upload.buffer, model.description.imageSize);
      } catch {
        throw new HttpProblem(415, 'unsupported-media-type', 'The upload could not be decoded as an image.');
      }
      const vectors = await timedModelCall('embed', () => model.vectors(pixels, 1));
      const { bundle } = index;
      const rows = bundle.conditions.map((name) => {
        const m = modelCondition(model, name);
        const row = vectors.data.subarray(m * vectors.dims, (m + 1) * vectors.dims);
        return bundle.fromConditionVector(name, row);
      });
      const body: SimilarResponse = {
        version: index.version,
        k,
        query: { source: 'upload' },
        groups: neighbourGroups(index, { vector: (c) => rows[c] }, conditions, k, false),
      };
      response.json(body);
    }),
  );

  app.get(
    '/similar/:productId/:neighbourId/heatmap.png',
    withIndex,
    route<PathOf<'getHeatmap'>, QueryOf<'getHeatmap'>>(async (request, response) => {
      const index = leased(response);
      const [c] = requireConditions(index, request.query.condition);
      const query = requireSlot(index, request.params.productId);
      const neighbour = requireSlot(index, request.params.neighbourId);
      const model = requireModel(index);
      const side = request.query.side ?? 'neighbour';
      const size = Number(request.query.size ?? 224);
      const condition = index.bundle.conditions[c];
      const key = [index.version, model.description.id, query, neighbour, c, side, size].join('|');
      let png = heatmaps.get(key);
      if (!png) {
        const [shown, other] = side === 'query' ? [query, neighbour] : [neighbour, query];
        const paths = [index.imagePath(shown), index.imagePath(other)];
        if (!paths[0] || !paths[1]) {
          throw new HttpProblem(404, 'not-found', 'The product images are not available on this server.');
        }
        const imageSize = model.description.imageSize;
        const [image, reference, photo] = await Promise.all([
          decodeImage(paths[0], imageSize),
          decodeImage(paths[1], imageSize),
          // The photo shown is decoded at the output size with the same fit and padding, so the map lines up.
          decodeImage(paths[0], size),
        ]);
        const saliency = await timedModelCall('saliency', () =>
          model.saliency(image, reference, 1, modelCondition(model, condition)),
        );
        const overlay = overlaySaliency(photo, resizeMap(saliency, imageSize, size), size);
        png = await sharp(overlay, { raw: { width: size, height: size, channels: 3 } })
          .png()
          .toBuffer();
        heatmaps.set(key, png);
      }
      response.setHeader('Cache-Control', 'public, max-age=300');
      response.type('image/png').send(png);
    }),
  );

  app.use(notFoundHandler);
  app.use(problemHandler(log));

  return {
    app,
    state,
    metrics,
    ready: state.whenReady(),
    close: () => state.close(),
  };
}
