/**
 * Finished answers of `GET /similar/:productId`, kept as the bytes that were sent. An answer is a pure function of
 * the index version and the request URL, and serialising it is most of what it costs: for all six conditions of the
 * demo, building the body, `JSON.stringify`, the UTF-8 copy and hashing the ETag took about 45 % of the CPU profile
 * (118 KB per answer; bench/results/serve-profile.md). A repeated request (the same product page viewed again, the
 * page asking again after a re-render) is answered from memory: same bytes, same headers, same ETag, 304 when the
 * client already holds it.
 *
 * The lookup is a step of the route, after the request was checked against the contract: a URL is kept only once
 * it was answered 200, and a GET's check depends on nothing but its URL. Entries belong to the version that
 * produced them; the first lookup after a swap empties the cache. Bounded by bytes (lru-cache); 0 turns it off.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Request, RequestHandler } from 'express';
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import { sendJsonBytes } from './reply.ts';
import type { ServeState } from './state.ts';

interface Answer {
  version: string;
  body: Buffer;
  etag: string;
}

export interface AnswerCache {
  /** Answers a GET/HEAD of a URL it holds for the version being served; else hands on to the route. */
  lookup: RequestHandler;
  /** Send `body` as JSON the way `response.json` would, and keep its bytes under the request's URL. */
  send(
    request: IncomingMessage & Pick<Request, 'originalUrl'>,
    response: ServerResponse,
    version: string,
    body: unknown,
  ): void;
}

/** express' ETag function (`app.get('etag fn')`): the cached ETag is then the one `res.json` would have sent. */
export type EtagFunction = (body: Buffer, encoding?: string) => string;

function reply(request: IncomingMessage, response: ServerResponse, answer: Answer): void {
  response.setHeader('X-Index-Version', answer.version);
  sendJsonBytes(request, response, answer.body, answer.etag);
}

export function createAnswerCache(
  state: ServeState,
  maxBytes: number,
  lookups: Counter<'cache' | 'outcome'>,
  etagOf: EtagFunction | undefined,
): AnswerCache {
  const answers = maxBytes > 0 ? new LRUCache<string, Answer>({ maxSize: maxBytes, sizeCalculation }) : null;
  let servedVersion: string | undefined;
  const lookup: RequestHandler = (request, response, next) => {
    if (!answers) return next();
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
    reply(request, response, answer);
  };
  return {
    lookup,
    send(request, response, version, body) {
      const bytes = utf8Bytes(JSON.stringify(body));
      const answer: Answer = { version, body: bytes, etag: etagOf ? etagOf(bytes) : '' };
      if (answers && bytes.length <= maxBytes) answers.set(request.originalUrl, answer);
      reply(request, response, answer);
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
