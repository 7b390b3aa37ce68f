/**
 * Prometheus metrics of one app instance (its own registry, so several apps in one process do not collide). Under
 * `serve --workers N` every worker keeps its own and /metrics answers the sum over all workers, which the primary
 * process collects (prom-client's AggregatorRegistry); see cluster.ts.
 */
import type { EdgeParts } from './edge.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Provenance } from './served-index.ts';

export interface ServeMetrics {
  registry: Registry;
  /** Records a finished request's duration by route template, method and status (a step of edge.ts). */
  observe: EdgeParts['end'][number];
  setIndexVersion(version: string): void;
  /** The served model: id, refresh and training time as labels of an info gauge, test accuracy as a value. */
  setProvenance(provenance: Provenance): void;
  swaps: Counter<'outcome'>;
  modelCalls: Histogram<'operation'>;
  /** Lookups in the caches by cache (answer, thumbnail, heatmap) and outcome (hit, miss). */
  cacheLookups: Counter<'cache' | 'outcome'>;
  /** The exposition text /metrics answers: this registry's, or all workers' when running as a cluster worker. */
  exposition(): Promise<string>;
}

/** What express' router and the validator leave on a request they handled. */
interface ExpressRouted {
  openapi?: { openApiRoute?: string };
  route?: { path?: unknown };
  baseUrl?: string;
}

export function createMetrics(source?: () => Promise<string>): ServeMetrics {
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
    // Across workers: 1 while any worker serves the version (a sum would say N).
    aggregator: 'max',
  });
  const swaps = new Counter({
    name: 'dressmatch_index_swaps_total',
    help: 'Index versions picked up (outcome=loaded) or refused (outcome=rejected) while running',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const modelCalls = new Histogram({
    name: 'dressmatch_model_call_duration_seconds',
    help: 'Time a model call (embedding an upload, rendering a heat map) takes, queueing included',
    labelNames: ['operation'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const cacheLookups = new Counter({
    name: 'dressmatch_image_cache_lookups_total',
    help: 'Lookups in the caches by cache (answer, thumbnail, heatmap) and outcome (hit, miss)',
    labelNames: ['cache', 'outcome'] as const,
    registers: [registry],
  });

  const observe: ServeMetrics['observe'] = (request, response, { aborted, ms }) => {
    if (aborted) return;
    // Route templates, not raw paths, keep label cardinality bounded. The contract's checks name the template even
    // of requests they reject (request-checks.ts), the validator those of the operations with a body.
    const routed = request as ExpressRouted;
    const template = routed.route?.path;
    const route =
      response.routeTemplate ??
      routed.openapi?.openApiRoute ??
      (typeof template === 'string'
        ? `${routed.baseUrl ?? ''}${template}`
        : response.statusCode === 404
          ? 'unmatched'
          : 'other');
    requests.observe({ method: request.method, route, status: String(response.statusCode) }, ms / 1000);
  };

  return {
    registry,
    observe,
    setIndexVersion(current: string) {
      version.reset();
      version.set({ version: current }, 1);
    },
    setProvenance: provenanceGauges(registry),
    swaps,
    modelCalls,
    cacheLookups,
    exposition: source ?? (() => registry.metrics()),
  };
}

/** Gauges of what is served (model id, trained at, refresh as info labels; test accuracy and training time). */
function provenanceGauges(registry: Registry): (provenance: Provenance) => void {
  const modelInfo = new Gauge({
    name: 'dressmatch_model_info',
    help: 'Model behind the served index version (value 1): its id, when it was trained, the refresh that published it',
    labelNames: ['model_id', 'trained_at', 'refresh'] as const,
    registers: [registry],
  });
  const testAccuracy = new Gauge({
    name: 'dressmatch_model_test_accuracy',
    help: 'Test triplet accuracy (0-1) recorded for the served model (no sample when unknown)',
    labelNames: ['model_id'] as const,
    registers: [registry],
  });
  const trainedAt = new Gauge({
    name: 'dressmatch_model_trained_timestamp_seconds',
    help: 'When the served model was trained, Unix time (no sample when unknown)',
    labelNames: ['model_id'] as const,
    registers: [registry],
  });
  return (provenance: Provenance) => {
    modelInfo.reset();
    modelInfo.set(
      {
        model_id: provenance.modelId,
        trained_at: provenance.trainedAt ?? '',
        refresh: provenance.refresh ?? '',
      },
      1,
    );
    testAccuracy.reset();
    const model = { model_id: provenance.modelId };
    if (provenance.testAccuracy !== null) testAccuracy.set(model, provenance.testAccuracy);
    trainedAt.reset();
    const time = provenance.trainedAt ? Date.parse(provenance.trainedAt) : NaN;
    if (Number.isFinite(time)) trainedAt.set(model, time / 1000);
  };
}
