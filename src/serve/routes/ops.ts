/** Operations and documents, answered without leasing an index: health, readiness, metrics, the contract, problem pages. */
import { timingSafeEqual } from 'node:crypto';
import type { Express, RequestHandler } from 'express';
import type { components } from '../generated/api-types.ts';
import { HttpProblem, PROBLEM_TYPES, type ProblemSlug } from '../problem.ts';
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
}

export interface MetricsAccess {
  /** False: /metrics is served on a port of its own, not here. */
  metricsRoute: boolean;
  /** When set, /metrics needs `Authorization: Bearer <token>`. */
  metricsToken?: string;
}

/** A request handler for /metrics: the exposition, behind the token when there is one. */
export function metricsHandler(metrics: RouteContext['metrics'], token: string | undefined): RequestHandler {
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
    response.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
}

export function registerOpsRoutes(
  app: Express,
  context: RouteContext,
  spec: string,
  access: MetricsAccess,
): void {
  const { state, metrics } = context;
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
    response.json(readiness(state));
  });
  if (access.metricsRoute) app.get('/metrics', metricsHandler(metrics, access.metricsToken));
}
