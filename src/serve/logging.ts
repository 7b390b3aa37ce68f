/**
 * Request logs: one line per request with its id (the client's X-Request-Id when well-formed, else a new UUID),
 * written when the response is finished. Errors (4xx at warn, 5xx at error) are always logged; successful requests
 * can be sampled (`--log-sample`). The service logs through an asynchronous destination (lines that arrive while a
 * write is in flight are written together) instead of a synchronous write per request (1.2 % of the CPU profile
 * under load, bench/results/serve-profile.md), and without pino-http's child logger per request.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import type { EdgeParts } from './edge.ts';

declare module 'node:http' {
  interface IncomingMessage {
    /** The request id (set by assignRequestId). */
    id?: string;
  }
}

/** Bytes of log lines gathered before one write, and the longest a line waits for one. */
const LOG_BATCH_BYTES = 4096;
const LOG_FLUSH_MS = 1000;

/**
 * The service's own logger: to stderr like every command's, but buffered and written off the request path, in
 * batches: one write per line was 5.6 % of the CPU profile of /healthz under load. Warnings and errors are written
 * at once (requestLogger flushes after them); every line is written when the process exits.
 */
export function createServeLogger(): Logger {
  const destination = pino.destination({ dest: 2, sync: false, minLength: LOG_BATCH_BYTES });
  const log = pino({ name: 'serve', level: process.env.LOG_LEVEL ?? 'info' }, destination);
  setInterval(() => destination.flush(), LOG_FLUSH_MS).unref();
  process.once('exit', () => destination.flushSync());
  return log;
}

/** The request id: the client's X-Request-Id when well-formed, else a new UUID; sent back and kept on the request. */
export function assignRequestId(request: IncomingMessage, response: ServerResponse): void {
  const given = request.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
  response.setHeader('X-Request-Id', id);
  request.id = id;
}

/**
 * Logs every request that fails and `sample` of those that succeed (1: all, 0.1: every tenth, 0: none). The line
 * keeps pino-http's shape: req {id, method, url}, res {statusCode}, responseTime in ms.
 */
export function requestLogger(log: Logger, sample = 1): EdgeParts['end'][number] {
  const every = sample > 0 ? Math.max(1, Math.round(1 / sample)) : 0;
  let successes = 0;
  return (request, response, { aborted, ms, url }) => {
    const status = response.statusCode;
    const failed = aborted || status >= 400;
    if (!failed && (every === 0 || successes++ % every !== 0)) return;
    const line = {
      req: { id: request.id, method: request.method, url },
      res: { statusCode: status },
      responseTime: Math.round(ms),
    };
    if (status >= 500) log.error(line, 'request errored');
    else if (aborted) log.warn(line, 'request aborted');
    else if (status >= 400) log.warn(line, 'request completed');
    else return log.info(line, 'request completed');
    log.flush();
  };
}
