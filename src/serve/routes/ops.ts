/** Operations and documents, answered without leasing an index: health, readiness, metrics, the contract, problem pages. */
import type { Express } from 'express';
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
      state.lastError ? `No index is being served: ${state.lastError}` : 'Still loading the index.',
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

export function registerOpsRoutes(app: Express, context: RouteContext, spec: string): void {
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
  app.get(
    '/metrics',
    route(async (_request, response) => {
      response.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );
}
