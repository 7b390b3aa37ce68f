/** Heat maps: where in one product's photo the model sees its similarity to another under a condition (cached). */
import type { Express } from 'express';
import { DEFAULT_HEATMAP_METHOD, methodsFor, type HeatmapMethod } from '../../explain/index.ts';
import type { ModelRunner } from '../model/runner.ts';
import { HttpProblem } from '../problem.ts';
import type { ServedCondition, ServedIndex } from '../served-index.ts';
import { requireSlot, servedCondition } from '../products.ts';
import {
  leased,
  requireModel,
  requireModelCondition,
  route,
  timedModelCall,
  withIndex,
  type PathOf,
  type QueryOf,
  type RouteContext,
} from './context.ts';

interface HeatmapRequest {
  index: ServedIndex;
  model: ModelRunner;
  condition: ServedCondition;
  /** Slot whose photo is shown, and the slot it is compared with. */
  shown: number;
  other: number;
  size: number;
  method: HeatmapMethod;
}

/** The asked method, or the model kind's default; a method the model does not offer is a 400. */
function chooseMethod(model: ModelRunner, asked: HeatmapMethod | undefined): HeatmapMethod {
  const kind = model.description.kind;
  const method = asked ?? DEFAULT_HEATMAP_METHOD[kind];
  if (!methodsFor(kind).includes(method)) {
    throw new HttpProblem(
      400,
      'invalid-request',
      `Heat-map method ${method} is not available for ${kind} models.`,
    );
  }
  return method;
}

/**
 * Render one heat map as PNG where the model runs: the photos are decoded there too, once the call has its place
 * in the model's queue, so a burst of heat maps is refused (503) before any work and takes no time from the thread
 * answering requests.
 */
async function renderHeatmap(context: RouteContext, request: HeatmapRequest): Promise<Buffer> {
  const { index, model, size, method } = request;
  const [shownPath, otherPath] = [index.imagePath(request.shown), index.imagePath(request.other)];
  if (!shownPath || !otherPath) {
    throw new HttpProblem(404, 'not-found', 'The product images are not available on this server.');
  }
  const condition = requireModelCondition(request.condition);
  const png = await timedModelCall(context.metrics, 'saliency', () =>
    model.heatmap({ shownPath, otherPath, size, condition, method }),
  );
  return Buffer.from(png.buffer, png.byteOffset, png.byteLength);
}

export function registerHeatmapRoutes(app: Express, context: RouteContext): void {
  app.get(
    '/similar/:productId/:neighbourId/heatmap.png',
    withIndex(context.state),
    route<PathOf<'getHeatmap'>, QueryOf<'getHeatmap'>>(async (request, response) => {
      const index = leased(response);
      const condition = servedCondition(index, request.query.condition);
      const query = requireSlot(index, request.params.productId);
      const neighbour = requireSlot(index, request.params.neighbourId);
      const model = requireModel(index);
      const side = request.query.side ?? 'neighbour';
      const size = Number(request.query.size ?? 224);
      const method = chooseMethod(model, request.query.method);
      const key = [
        index.version,
        model.description.id,
        query,
        neighbour,
        condition.index,
        side,
        size,
        method,
      ];
      let png = context.heatmaps.get(key.join('|'));
      context.metrics.cacheLookups.inc({ cache: 'heatmap', outcome: png ? 'hit' : 'miss' });
      if (!png) {
        const [shown, other] = side === 'query' ? [query, neighbour] : [neighbour, query];
        png = await renderHeatmap(context, { index, model, condition, shown, other, size, method });
        context.heatmaps.set(key.join('|'), png);
      }
      response.setHeader('Cache-Control', 'public, max-age=300');
      response.setHeader('X-Heatmap-Method', method);
      response.type('image/png').send(png);
    }),
  );
}
