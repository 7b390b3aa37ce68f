/** Heat maps: where in one product's photo the model sees its similarity to another under a condition (cached). */
import type { Express } from 'express';
import sharp from 'sharp';
import { decodeImage } from '../../catalogue/index.ts';
import { overlaySaliency, resizeMap } from '../../explain/index.ts';
import type { ModelRunner } from '../model-runner.ts';
import { HttpProblem } from '../problem.ts';
import type { ServedCondition, ServedIndex } from '../served-index.ts';
import { requireSlot, resolveConditions } from '../similar.ts';
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
}

/** Render one heat map as PNG: saliency of the shown photo against the other, laid over the shown photo. */
async function renderHeatmap(context: RouteContext, request: HeatmapRequest): Promise<Buffer> {
  const { index, model, size } = request;
  const paths = [index.imagePath(request.shown), index.imagePath(request.other)];
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
  const saliency = await timedModelCall(context.metrics, 'saliency', () =>
    model.saliency(image, reference, 1, requireModelCondition(request.condition)),
  );
  const overlay = overlaySaliency(photo, resizeMap(saliency, imageSize, size), size);
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
      const [condition] = resolveConditions(index, request.query.condition);
      const query = requireSlot(index, request.params.productId);
      const neighbour = requireSlot(index, request.params.neighbourId);
      const model = requireModel(index);
      const side = request.query.side ?? 'neighbour';
      const size = Number(request.query.size ?? 224);
      const key = [index.version, model.description.id, query, neighbour, condition.index, side, size].join(
        '|',
      );
      let png = context.heatmaps.get(key);
      context.metrics.cacheLookups.inc({ cache: 'heatmap', outcome: png ? 'hit' : 'miss' });
      if (!png) {
        const [shown, other] = side === 'query' ? [query, neighbour] : [neighbour, query];
        png = await renderHeatmap(context, { index, model, condition, shown, other, size });
        context.heatmaps.set(key, png);
      }
      response.setHeader('Cache-Control', 'public, max-age=300');
      response.type('image/png').send(png);
    }),
  );
}
