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
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import { pathOf, type FastAnswer } from './front.ts';
import { sendJsonBytes } from './reply.ts';
import type { ServeState } from './state.ts';

/** The contract's template for the cached route, which the hot path answers too (the label metrics use for it). */
export const SIMILAR_ROUTE = '/similar/{productId}';

interface Answer {
  version: string;
  body: Buffer;
  etag: string;
}

export interface AnswerCache {
  /** Answers a GET/HEAD of a URL it holds for the version being served (ahead of express); else takes nothing. */
  lookup: FastAnswer;
  /**
   * Send `body` as JSON the way `response.json` would, and keep it under `url` (the request target as it arrived)
   * when the request may be answered again.
   */
  send(request: IncomingMessage, response: ServerResponse, url: string, version: string, body: unknown): void;
}

/** express' ETag function (`app.get('etag fn')`): the cached ETag is then the one `res.json` would have sent. */
export type EtagFunction = (body: Buffer, encoding?: string) => string;

function reply(request: IncomingMessage, response: ServerResponse, answer: Answer): void {
  response.setHeader('X-Index-Version', answer.version);
  sendJsonBytes(request, response, answer.body, answer.etag);
}

function isCacheable(method: string | undefined, url: string): boolean {
  return (method === 'GET' || method === 'HEAD') && pathOf(url).startsWith('/similar/');
}

export function createAnswerCache(
  state: ServeState,
  maxBytes: number,
  lookups: Counter<'cache' | 'outcome'>,
  etagOf: EtagFunction | undefined,
): AnswerCache {
  const answers = maxBytes > 0 ? new LRUCache<string, Answer>({ maxSize: maxBytes, sizeCalculation }) : null;
  let servedVersion: string | undefined;
  const lookup: FastAnswer = (request, response) => {
    const url = request.url ?? '/';
    if (!answers || !isCacheable(request.method, url)) return false;
    const current = state.index?.version;
    if (current !== servedVersion) {
      answers.clear();
      servedVersion = current;
    }
    const answer = answers.get(url);
    // An answer a request still computed on the previous version (it leased it before the swap) is not served.
    if (!answer || answer.version !== current) {
      lookups.inc({ cache: 'answer', outcome: 'miss' });
      return false;
    }
    lookups.inc({ cache: 'answer', outcome: 'hit' });
    response.routeTemplate = SIMILAR_ROUTE;
    reply(request, response, answer);
    return true;
  };
  return {
    lookup,
    send(request, response, url, version, body) {
      const bytes = utf8Bytes(JSON.stringify(body));
      const answer: Answer = { version, body: bytes, etag: etagOf ? etagOf(bytes) : '' };
      if (answers && isCacheable(request.method, url) && bytes.length <= maxBytes) answers.set(url, answer);
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
