/** POST /recommend: products like the positive examples and unlike the negative ones (see src/serve/neighbours.ts). */
import type { Express } from 'express';
import { recommendResponse, type RecommendRequest } from '../neighbours.ts';
import { leased, route, withIndex, type RouteContext } from './context.ts';

export function registerRecommendRoutes(app: Express, context: RouteContext): void {
  app.post(
    '/recommend',
    withIndex(context.state),
    route<unknown, unknown>(async (request, response) => {
      const index = leased(response);
      response.json(
        await recommendResponse(index, request.body as RecommendRequest, index.model !== undefined),
      );
    }),
  );
}
