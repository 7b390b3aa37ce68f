/** Heat maps: where in one product's photo the model sees its similarity to another under a condition (cached). */
import type { Express } from 'express';
import sharp from 'sharp';
import { decodeImage } from '../../catalogue/index.ts';
import {
  DEFAULT_HEATMAP_METHOD,
  methodsFor,
  overlaySaliency,
  resizeMap,
  type HeatmapMethod,
} from '../../explain/index.ts';
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

/** Render one heat map as PNG: saliency of the shown photo against the other, laid over the shown photo. */
async function renderHeatmap(context: RouteContext, request: HeatmapRequest): Promise<Buffer> {
  const { index, model, size } = request;
  const [shownPath, otherPath] = [index.imagePath(request.shown), index.imagePath(request.other)];
  if (!shownPath || !otherPath) {
    throw new HttpProblem(404, 'not-found', 'The product images are not available on this server.');
  }
  const imageSize = model.description.imageSize;
  let photo: Float32Array | undefined;
  // The photos are decoded only once the call has its place in the model's queue: a burst of heat maps is
  // refused (503) before any decoding, so it cannot take the CPU from the other requests.
  const saliency = await timedModelCall(context.metrics, 'saliency', () =>
    model.saliency(
      async () => {
        const [image, reference, shown] = await Promise.all([
          decodeImage(shownPath, imageSize, model.description.preprocess),
          decodeImage(otherPath, imageSize, model.description.preprocess),
          // The photo shown is decoded at the output size with the same fit and padding, so the map lines up.
          decodeImage(shownPath, size, model.description.preprocess),
        ]);
        photo = shown;
        return { images: image, references: reference };
      },
      1,
      requireModelCondition(request.condition),
      request.method,
    ),
  );
  const overlay = overlaySaliency(photo as Float32Array, resizeMap(saliency, imageSize, size), size);
  return sharp(overlay, { raw: { width: size, height: size, channels: 3 } })
    .png()
    .toBuffer();
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
