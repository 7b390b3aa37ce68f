/**
 * Optional per-client rate limiting (express-rate-limit, in memory, per process): off by default, turned on with
 * `serve --rate-limit <requests per minute>`. Probes (/healthz, /readyz) and /metrics are never limited, so an
 * orchestrator or a scraper behind one address cannot lock itself out. Over the limit: 429 problem+json with
 * Retry-After and the RateLimit headers of the IETF draft.
 */
import type { RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpProblem } from './problem.ts';

const UNLIMITED = new Set(['/healthz', '/readyz', '/metrics']);
const WINDOW_MS = 60_000;

export function rateLimiter(perMinute: number): RequestHandler | undefined {
  if (perMinute <= 0) return undefined;
  return rateLimit({
    windowMs: WINDOW_MS,
    limit: perMinute,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    skip: (request) => UNLIMITED.has(request.path),
    handler: (_request, response, next) => {
      const reset = (response.getHeader('RateLimit') as string | undefined)?.match(/t=(\d+)/)?.[1];
      next(
        new HttpProblem(
          429,
          'too-many-requests',
          `This client sent more than ${perMinute} requests in a minute.`,
          {},
          { 'Retry-After': reset ?? String(WINDOW_MS / 1000) },
        ),
      );
    },
  });
}
