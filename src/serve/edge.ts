/**
 * The first step of the express app, which every request passes through: its id and the security headers on the
 * way in, its log line and its metrics once the response has closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';

export interface RequestEnd {
  /** The connection closed before the response was finished. */
  aborted: boolean;
  /** Milliseconds from the request's arrival at the app to its end. */
  ms: number;
  /** The request target as it arrived (express rewrites `request.url` while routing). */
  url: string;
}

/** Work done on the way in (headers, ids) and on the way out (logs, metrics). */
export interface EdgeParts {
  start: ((request: IncomingMessage, response: ServerResponse) => void)[];
  end: ((request: IncomingMessage, response: ServerResponse, end: RequestEnd) => void)[];
}

/** The path of a request target (`/docs?x` → `/docs`; an absolute-form target is parsed). */
export function pathOf(url: string): string {
  if (!url.startsWith('/')) return URL.canParse(url) ? new URL(url).pathname : url;
  const mark = url.indexOf('?');
  return mark < 0 ? url : url.slice(0, mark);
}

export function requestEdge(parts: EdgeParts): RequestHandler {
  return (request, response, next) => {
    const started = performance.now();
    const url = request.url;
    for (const start of parts.start) start(request, response);
    // One listener per request: a response emits 'close' after 'finish' once it is sent, and on its own when the
    // client went away first (adding and removing listeners per request was 1.9 % of a profile).
    response.once('close', () => {
      const end = { aborted: !response.writableFinished, ms: performance.now() - started, url };
      for (const observe of parts.end) observe(request, response, end);
    });
    next();
  };
}
