/** Prometheus metrics of one app instance (its own registry, so several apps in one process do not collide). */
import type { RequestHandler } from 'express';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServeMetrics {
  registry: Registry;
  /** Records every request's duration by route template, method and status. */
  middleware: RequestHandler;
  setIndexVersion(version: string): void;
  swaps: Counter<'outcome'>;
  modelCalls: Histogram<'operation'>;
  /** Lookups in the image caches by cache (thumbnail, heatmap) and outcome (hit, miss). */
  cacheLookups: Counter<'cache' | 'outcome'>;
}

export function createMetrics(): ServeMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Histogram({
    name: 'dressmatch_http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status code',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const version = new Gauge({
    name: 'dressmatch_index_version_info',
    help: 'Index bundle version being served (value 1 on the current version)',
    labelNames: ['version'] as const,
    registers: [registry],
  });
  const swaps = new Counter({
    name: 'dressmatch_index_swaps_total',
    help: 'Index versions picked up (outcome=loaded) or refused (outcome=rejected) while running',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const modelCalls = new Histogram({
    name: 'dressmatch_model_call_duration_seconds',
    help: 'Time a model call (embedding an upload, computing a saliency map) takes, queueing included',
    labelNames: ['operation'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const cacheLookups = new Counter({
    name: 'dressmatch_image_cache_lookups_total',
    help: 'Lookups in the resized-image caches by cache (thumbnail, heatmap) and outcome (hit, miss)',
    labelNames: ['cache', 'outcome'] as const,
    registers: [registry],
  });

  const middleware: RequestHandler = (request, response, next) => {
    const end = requests.startTimer({ method: request.method });
    response.on('finish', () => {
      // Route templates, not raw paths, keep label cardinality bounded. The validator knows the template even for
      // requests it rejects before any route handler runs.
      const openapi = (request as { openapi?: { openApiRoute?: string } }).openapi;
      const template = request.route?.path;
      const route =
        openapi?.openApiRoute ??
        (typeof template === 'string'
          ? `${request.baseUrl}${template}`
          : response.statusCode === 404
            ? 'unmatched'
            : 'other');
      end({ route, status: String(response.statusCode) });
    });
    next();
  };

  return {
    registry,
    middleware,
    setIndexVersion(current: string) {
      version.reset();
      version.set({ version: current }, 1);
    },
    swaps,
    modelCalls,
    cacheLookups,
  };
}
