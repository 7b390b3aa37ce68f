/** Operations and documents, answered without leasing an index: health, readiness, metrics, the contract, problem pages. */
import { timingSafeEqual } from 'node:crypto';
import type { Express, RequestHandler } from 'express';
import type { EtagFunction } from '../answer-cache.ts';
import type { components } from '../generated/api-types.ts';
import { HttpProblem, PROBLEM_TYPES, type ProblemSlug } from '../problem.ts';
import { sendJsonBytes } from '../reply.ts';
import { provenanceOf } from '../served-index.ts';
import type { ServeState } from '../state.ts';
import { route, type RouteContext } from './context.ts';

type Schemas = components['schemas'];

function readiness(state: ServeState): Schemas['Readiness'] {
  const index = state.index;
  const model = index?.model;
  if (!index || (state.modelConfigured && !model)) {
    throw new HttpProblem(
      503,
      'not-ready',
      state.notReadyReason ? `No index is being served: ${state.notReadyReason}` : 'Still loading the index.',
      {},
      { 'Retry-After': '2' },
    );
  }
  return {
    status: 'ready',
    version: index.version,
    products: index.liveSlots.length,
    conditions: [...index.store.conditions],
    model: model
      ? {
          loaded: true,
          kind: model.description.kind,
          imageSize: model.description.imageSize,
          embedDim: model.description.embedDim,
          backend: model.description.backend,
        }
      : { loaded: false },
    provenance: provenanceOf(index.store),
  };
}

export interface MetricsAccess {
  /** False: /metrics is served on a port of its own, not here. */
  metricsRoute: boolean;
  /** When set, /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

/** A request handler for /metrics: the exposition, behind the token when there is one. */
export interface MetricsSource {
  contentType: string;
  exposition(): Promise<string>;
}

export function metricsHandler(metrics: MetricsSource, token: string | undefined): RequestHandler {
  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
  return route(async (request, response) => {
    if (expected) {
      const given = Buffer.from(request.headers.authorization ?? '');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new HttpProblem(
          401,
          'unauthorized',
          '/metrics needs a bearer token.',
          {},
          {
            'WWW-Authenticate': 'Bearer realm="metrics"',
          },
        );
      }
    }
    response.type(metrics.contentType).send(await metrics.exposition());
  });
}

const HEALTHY = Buffer.from(JSON.stringify({ status: 'ok' } satisfies Schemas['Health']));

/** `GET /healthz`: the same bytes every time, and their ETag computed once with the app's own ETag function. */
function healthProbe(etagOf: EtagFunction | undefined): RequestHandler {
  const etag = etagOf ? etagOf(HEALTHY) : '';
  return (request, response) => sendJsonBytes(request, response, HEALTHY, etag);
}

export function registerOpsRoutes(
  app: Express,
  context: RouteContext,
  spec: string,
  access: MetricsAccess,
): void {
  const { state, metrics } = context;
  app.get('/healthz', healthProbe(context.etagOf));
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
    response.json(readiness(state));
  });
  if (access.metricsRoute) {
    const source = { contentType: metrics.registry.contentType, exposition: metrics.exposition };
    app.get('/metrics', metricsHandler(source, access.metricsToken));
  }
}
