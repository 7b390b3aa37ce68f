/**
 * Finished answers of `GET /similar/:productId`, kept as the bytes that were sent. An answer is a pure function of
 * the index version and the request URL, and serialising it is most of what it costs: for all six conditions of the
 * demo, building the body, `JSON.stringify`, the UTF-8 copy and hashing the ETag took about 45 % of the CPU profile
 * (118 KB per answer; bench/results/serve-profile.md). A repeated request (the same product page viewed again, the
 * page asking again after a re-render) is answered from memory: same bytes, same headers, same ETag, 304 when the
 * client already holds it.
 *
 * The cache sits ahead of request validation and routing on purpose: a URL is kept only after the full path
 * validated it and answered 200, and validation of a GET depends on nothing but its URL, so the same raw URL would
 * pass again. Entries belong to the version that produced them; the first lookup after a swap empties the cache.
 * Bounded by bytes (lru-cache); 0 turns it off.
 */
import type { Request, RequestHandler, Response } from 'express';
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { ServeState } from './state.ts';

/** The contract's template for the cached route (the label metrics use for it). */
const CACHED_ROUTE = '/similar/{productId}';

/** What the cache reads of a request (any route's typed request has it). */
type RequestLine = Pick<Request, 'method' | 'path' | 'originalUrl' | 'app'>;

interface Answer {
  version: string;
  body: Buffer;
  etag: string;
}

export interface AnswerCache {
  /** Answers a GET/HEAD of a URL it holds for the version being served; anything else goes on. */
  middleware: RequestHandler;
  /** Send `body` as JSON the way `response.json` would, and keep it when the request may be answered again. */
  send(request: RequestLine, response: Response, version: string, body: unknown): void;
}

/** Why express' own ETag function: the cached ETag is then the one `res.json` would have sent, byte for byte. */
type EtagFunction = (body: Buffer, encoding?: string) => string;

function reply(response: Response, answer: Answer): void {
  response.setHeader('Content-Type', 'application/json; charset=utf-8');
  if (answer.etag) response.setHeader('ETag', answer.etag);
  // res.send answers 304 when the client's If-None-Match matches, and drops the body for HEAD.
  response.send(answer.body);
}

function isCacheable(request: RequestLine): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && request.path.startsWith('/similar/');
}

export function createAnswerCache(
  state: ServeState,
  maxBytes: number,
  lookups: Counter<'cache' | 'outcome'>,
): AnswerCache {
  const answers = maxBytes > 0 ? new LRUCache<string, Answer>({ maxSize: maxBytes, sizeCalculation }) : null;
  let servedVersion: string | undefined;
  const middleware: RequestHandler = (request, response, next) => {
    if (!answers || !isCacheable(request)) return next();
    const current = state.index?.version;
    if (current !== servedVersion) {
      answers.clear();
      servedVersion = current;
    }
    const answer = answers.get(request.originalUrl);
    // An answer a request still computed on the previous version (it leased it before the swap) is not served.
    if (!answer || answer.version !== current) {
      lookups.inc({ cache: 'answer', outcome: 'miss' });
      return next();
    }
    lookups.inc({ cache: 'answer', outcome: 'hit' });
    response.locals.route = CACHED_ROUTE;
    response.setHeader('X-Index-Version', answer.version);
    reply(response, answer);
  };
  return {
    middleware,
    send(request, response, version, body) {
      const bytes = utf8Bytes(JSON.stringify(body));
      const etagOf = request.app.get('etag fn') as EtagFunction | undefined;
      const answer: Answer = { version, body: bytes, etag: etagOf ? etagOf(bytes) : '' };
      if (answers && isCacheable(request) && bytes.length <= maxBytes) {
        answers.set(request.originalUrl, answer);
      }
      reply(response, answer);
    },
  };
}

/**
 * The UTF-8 bytes of a string. Node 20's `Buffer.from(text)` took 450 µs for an all-conditions answer (115 KB) and
 * was a fifth of that request's profile; when every character is ASCII, as in nearly every answer, the Latin-1
 * encoding is the same bytes and took 11 µs, and checking that (`Buffer.byteLength`) 37 µs.
 */
export function utf8Bytes(text: string): Buffer {
  return Buffer.byteLength(text, 'utf8') === text.length
    ? Buffer.from(text, 'latin1')
    : Buffer.from(text, 'utf8');
}

function sizeCalculation(answer: Answer, key: string): number {
  return answer.body.length + key.length + 64;
}
