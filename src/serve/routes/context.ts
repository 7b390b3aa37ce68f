/**
 * What every route module shares: the service state, metrics, the lease of an index version per request, and small
 * helpers that turn missing things (no index, no model, a busy model) into problems.
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { AnswerCache, EtagFunction } from '../answer-cache.ts';
import type { ImageCache, RenderedImageCache } from '../cache.ts';
import type { operations } from '../generated/api-types.ts';
import type { ServeMetrics } from '../metrics.ts';
import { ModelBusyError, type ModelRunner } from '../model/runner.ts';
import { HttpProblem } from '../problem.ts';
import type { ServedCondition, ServedIndex } from '../served-index.ts';
import type { ServeState } from '../state.ts';

export interface RouteContext {
  state: ServeState;
  metrics: ServeMetrics;
  log: Logger;
  answers: AnswerCache;
  heatmaps: ImageCache;
  thumbnails: RenderedImageCache;
  /** The app's ETag function (express' `etag fn`), for answers sent as finished bytes. */
  etagOf: EtagFunction | undefined;
}

export type QueryOf<K extends keyof operations> = operations[K]['parameters'] extends { query?: infer Q }
  ? NonNullable<Q>
  : never;
export type PathOf<K extends keyof operations> = operations[K]['parameters'] extends { path: infer P }
  ? P
  : never;

/** Request carrying the index version it leased (see withIndex). */
interface Leased {
  index: ServedIndex;
}

export function leased(response: Response): ServedIndex {
  return (response.locals as Leased).index;
}

/** Handlers may be async: forward rejections to the error handler (Express 5 does too; this keeps types simple). */
export function route<P, Q>(
  handler: (request: Request<P, unknown, unknown, Q>, response: Response) => Promise<void> | void,
) {
  return ((request: Request<P, unknown, unknown, Q>, response: Response, next: NextFunction) => {
    Promise.resolve()
      .then(() => handler(request, response))
      .catch(next);
  }) as unknown as RequestHandler;
}

/** Lease the current index version for the whole request (released when the response closes, however it ends). */
export function withIndex(state: ServeState): RequestHandler {
  return (_request, response, next) => {
    const lease = state.lease();
    if (!lease) {
      throw new HttpProblem(503, 'not-ready', 'No index version is loaded yet.', {}, { 'Retry-After': '2' });
    }
    (response.locals as Leased).index = lease.index;
    response.setHeader('X-Index-Version', lease.index.version);
    response.once('close', lease.release);
    next();
  };
}

export function requireModel(index: ServedIndex): ModelRunner {
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

/** A model call timed in the metrics; a full model queue becomes a 503 the client may retry. */
export async function timedModelCall<T>(
  metrics: ServeMetrics,
  operation: string,
  call: () => Promise<T>,
): Promise<T> {
  const end = metrics.modelCalls.startTimer({ operation });
  try {
    return await call();
  } catch (error) {
    if (error instanceof ModelBusyError) {
      // Only the kind whose queue is full is refused: heat maps never fill the uploads' queue.
      const what = error.kind === 'embed' ? 'uploads' : 'heat maps';
      throw new HttpProblem(
        503,
        'model-unavailable',
        `Too many ${what} are waiting for the model; retry shortly.`,
        {},
        { 'Retry-After': '1' },
      );
    }
    throw error;
  } finally {
    end();
  }
}

/** Where the loaded model keeps a condition of the index; a 503 when the model lacks it. */
export function requireModelCondition(condition: ServedCondition): number {
  if (condition.modelIndex === undefined) {
    throw new HttpProblem(503, 'model-unavailable', `The loaded model has no condition ${condition.name}.`);
  }
  return condition.modelIndex;
}
