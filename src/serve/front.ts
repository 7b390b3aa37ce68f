/**
 * The server's request listener: the layer every request passes through first (its id, the security headers, and,
 * once it has ended, its log line and its metrics), then the answers that need nothing of express, then the express
 * app for everything else.
 *
 * Why below express: on this machine a bare express app answering `/healthz` costs the server 153–175 µs of CPU per
 * request, and plain Node sending the same answer with this layer's work (request id, fourteen headers, a histogram
 * and a log line) 36–42 µs (bench/results/serve-profile.md, fourth round). The answers taken here (health probes,
 * answers held by the answer cache, plain GET /similar URLs) read nothing express adds; their bytes and headers are
 * the full path's (test/serve.hot-path.test.ts compares both).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';

declare module 'node:http' {
  interface ServerResponse {
    /** The route template metrics label the response with, when it was answered ahead of express' router. */
    routeTemplate?: string;
  }
}

export interface RequestEnd {
  /** The connection closed before the response was finished. */
  aborted: boolean;
  /** Milliseconds from the request's arrival at this layer to its end. */
  ms: number;
  /** The request target as it arrived (express rewrites `request.url` while routing). */
  url: string;
}

/** Work done on the way in (headers, ids) and on the way out (logs, metrics). */
export interface FrontParts {
  start: ((request: IncomingMessage, response: ServerResponse) => void)[];
  end: ((request: IncomingMessage, response: ServerResponse, end: RequestEnd) => void)[];
}

/**
 * An answer given without express: true when it took the request. It may still hand the request on to express later
 * (`handOn`), as long as it has sent nothing.
 */
export type FastAnswer = (request: IncomingMessage, response: ServerResponse, handOn: () => void) => boolean;

/** The path of a request target (`/docs?x` → `/docs`; an absolute-form target is parsed). */
export function pathOf(url: string): string {
  if (!url.startsWith('/')) return URL.canParse(url) ? new URL(url).pathname : url;
  const mark = url.indexOf('?');
  return mark < 0 ? url : url.slice(0, mark);
}

/**
 * `() => app(request, response)`, made by a function: tsx names a closure assigned to a name at run time (a
 * `defineProperty` per request). (`app.bind` is not Function's: express routes the HTTP method BIND.)
 */
function passTo(app: RequestListener, request: IncomingMessage, response: ServerResponse): () => void {
  return () => app(request, response);
}

export function frontDoor(parts: FrontParts, fast: FastAnswer[], app: RequestListener): RequestListener {
  return (request, response) => {
    const started = performance.now();
    const url = request.url ?? '/';
    for (const start of parts.start) start(request, response);
    // One listener per request: a response emits 'close' after 'finish' once it is sent, and on its own when the
    // client went away first (adding and removing listeners per request was 1.9 % of a profile).
    response.once('close', () => {
      const end = { aborted: !response.writableFinished, ms: performance.now() - started, url };
      for (const observe of parts.end) observe(request, response, end);
    });
    const handOn = passTo(app, request, response);
    try {
      for (const answer of fast) if (answer(request, response, handOn)) return;
    } catch {
      // A fast answer that failed before sending anything: the full path answers, and words any error.
      if (response.headersSent) return void response.destroy();
    }
    handOn();
  };
}

/** A fast answer as an express middleware (behind one that must run first, such as the rate limiter). */
export function asMiddleware(answer: FastAnswer): RequestHandler {
  return (request, response, next) => {
    if (!answer(request, response, () => next())) next();
  };
}
