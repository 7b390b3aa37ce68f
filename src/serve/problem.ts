/**
 * RFC 9457 problem details: every error the service returns, and the one place that turns thrown errors into them.
 * Clients never see stack traces or internal messages, only a documented problem type and a plain sentence.
 */
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { QueryError } from '../index/index.ts';
import type { components } from './generated/api-types.ts';

export type Problem = components['schemas']['Problem'];

/** Problem types, each documented at GET /problems/{slug}. */
export const PROBLEM_TYPES = {
  'invalid-request': {
    title: 'Invalid request',
    about: 'A parameter or the body does not match the API contract.',
  },
  'unknown-condition': {
    title: 'Unknown condition',
    about: 'The condition is not one the loaded index knows; validConditions lists the ones it does.',
  },
  'unknown-product': {
    title: 'Unknown product',
    about: 'No product with that id is in the loaded index (unknownProducts lists the missing example ids).',
  },
  'malformed-filter': {
    title: 'Malformed filter',
    about: 'A filter is not name:value, name<n, name<=n, name>n or name>=n; valid lists the operators.',
  },
  'unknown-filter-name': {
    title: 'Unknown filter name',
    about: 'A filter names neither a condition nor a product field; valid lists the names.',
  },
  'unknown-label': {
    title: 'Unknown label',
    about:
      'A filter asks for a label no indexed product carries under that condition; valid lists the labels.',
  },
  'not-numeric': {
    title: 'Comparison on a field that is not a number',
    about: '<, <=, > and >= compare number fields only; valid lists them.',
  },
  'invalid-filter-value': {
    title: 'Invalid filter value',
    about: 'The value does not fit the field (true/false for booleans, a decimal number for numbers).',
  },
  'malformed-condition': {
    title: 'Malformed condition',
    about:
      'A combined condition is name,name or name:weight,name:weight with positive weights, each name once.',
  },
  'invalid-examples': {
    title: 'Invalid examples',
    about:
      'A recommendation needs at least one positive example, at most 20 in all, none both positive and negative.',
  },
  'not-found': { title: 'Not found', about: 'No such resource.' },
  'method-not-allowed': {
    title: 'Method not allowed',
    about: 'The resource does not support that HTTP method.',
  },
  'upload-too-large': { title: 'Upload too large', about: 'The request body exceeds the size limit.' },
  'unsupported-media-type': {
    title: 'Unsupported media type',
    about: 'The upload is not a decodable image, or the body is not in a format the endpoint accepts.',
  },
  'not-ready': { title: 'Not ready', about: 'No valid index bundle is loaded yet; retry shortly.' },
  'model-unavailable': {
    title: 'Model unavailable',
    about: 'The endpoint needs the similarity model and none is loaded (or it does not match the index).',
  },
  unauthorized: {
    title: 'Unauthorized',
    about: 'The resource needs a bearer token (the server was started with one for it).',
  },
  'too-many-requests': {
    title: 'Too many requests',
    about:
      'This client sent more requests than the per-client rate limit allows; retry after Retry-After seconds.',
  },
  'not-acceptable': {
    title: 'Not acceptable',
    about: 'The endpoint cannot produce a representation you accept.',
  },
  'request-timeout': {
    title: 'Request timeout',
    about: 'The request (its headers or its body) did not arrive within the time the server gives it.',
  },
  'headers-too-large': {
    title: 'Request header fields too large',
    about: 'The request line and headers are larger than the server accepts (16 KiB, Node.js).',
  },
  'bad-request': {
    title: 'Bad request',
    about: 'The request is not well-formed HTTP (request line, headers or framing).',
  },
  internal: {
    title: 'Internal error',
    about: 'Something failed on our side; the request id identifies it in the logs.',
  },
} as const;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

/** Throw this from a handler to answer with a problem. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: ProblemSlug,
    readonly detail: string,
    readonly extensions: Partial<
      Pick<Problem, 'validConditions' | 'errors' | 'valid' | 'expression' | 'unknownProducts'>
    > = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

export function problemBody(
  status: number,
  slug: ProblemSlug,
  detail: string,
  request: Request,
  extensions: Partial<Problem> = {},
): Problem {
  return {
    type: `/problems/${slug}`,
    title: PROBLEM_TYPES[slug].title,
    status,
    detail,
    instance: request.originalUrl.split('?')[0],
    ...(typeof request.id === 'string' || typeof request.id === 'number'
      ? { requestId: String(request.id) }
      : {}),
    ...extensions,
  };
}

/** Shape of the errors express-openapi-validator, multer and body-parser throw (only the fields we read). */
interface LibraryError {
  status?: number;
  statusCode?: number;
  type?: string;
  code?: string;
  errors?: { path?: string; message?: string }[];
  headers?: Record<string, string>;
}

/** A 405's Allow header (RFC 9110): the validator lists the contract's methods; HEAD works wherever GET does. */
function allowHeader(allow: string | undefined): Record<string, string> {
  if (allow === undefined) return {};
  const methods = allow
    .split(',')
    .map((method) => method.trim().toUpperCase())
    .filter(Boolean);
  if (methods.includes('GET') && !methods.includes('HEAD')) methods.push('HEAD');
  return { Allow: methods.join(', ') };
}

function slugForStatus(status: number): ProblemSlug {
  switch (status) {
    case 400:
      return 'invalid-request';
    case 404:
      return 'not-found';
    case 405:
      return 'method-not-allowed';
    case 406:
      return 'not-acceptable';
    case 413:
      return 'upload-too-large';
    case 415:
      return 'unsupported-media-type';
    default:
      return status >= 500 ? 'internal' : 'invalid-request';
  }
}

function libraryDetail(status: number, error: LibraryError): string {
  if (status === 413) return 'The request body is larger than the limit.';
  if (status === 415) return 'The request body is not in a media type this endpoint accepts.';
  if (status === 404) return 'No such resource.';
  if (status === 405) return 'This resource does not support that method.';
  if (error.errors?.length)
    return error.errors.map((e) => `${e.path ?? ''} ${e.message ?? ''}`.trim()).join('; ');
  return 'The request does not match the API contract.';
}

export interface ProblemLogger {
  error(object: object, message: string): void;
}

/** Final error handler: known problems as they are, library errors mapped by status, anything else a bare 500. */
export function problemHandler(log: ProblemLogger): ErrorRequestHandler {
  return (error: unknown, request, response, next) => {
    if (response.headersSent) {
      next(error);
      return;
    }
    let body: Problem;
    let headers: Record<string, string> = {};
    if (error instanceof QueryError) error = queryProblem(error);
    if (error instanceof HttpProblem) {
      body = problemBody(error.status, error.slug, error.detail, request, error.extensions);
      headers = error.headers;
    } else {
      const known = (error ?? {}) as LibraryError;
      const status = known.status ?? known.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        if (status === 405) headers = allowHeader(known.headers?.Allow);
        const errors = known.errors?.map((e) => ({ path: e.path ?? '', message: e.message ?? '' }));
        body = problemBody(status, slugForStatus(status), libraryDetail(status, known), request, {
          ...(status === 400 && errors?.length ? { errors } : {}),
        });
      } else {
        log.error({ err: error, requestId: request.id }, 'request failed');
        body = problemBody(500, 'internal', 'The request could not be completed.', request);
      }
    }
    response.status(body.status).set(headers).type('application/problem+json').send(JSON.stringify(body));
  };
}

/** A caller error found by the index stage (filter, combined condition, examples): a 400 listing what is valid. */
export function queryProblem(error: QueryError): HttpProblem {
  const extensions = { expression: error.expression, valid: [...error.valid] };
  return new HttpProblem(
    400,
    error.code,
    error.message,
    error.code === 'unknown-condition' ? { ...extensions, validConditions: [...error.valid] } : extensions,
  );
}

/** Unmatched routes: a 404 problem rather than Express's HTML page. */
export const notFoundHandler: RequestHandler = (request, _response, next) => {
  next(new HttpProblem(404, 'not-found', `Nothing at ${request.method} ${request.path}.`));
};

/** Node's own errors of a connection before any request exists: the status each one answers. */
function clientErrorStatus(code: string | undefined): number {
  if (code === 'HPE_HEADER_OVERFLOW') return 431;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 408;
  return 400;
}

const CLIENT_ERROR_SLUGS: Record<number, ProblemSlug> = {
  400: 'bad-request',
  408: 'request-timeout',
  431: 'headers-too-large',
};

/**
 * The server's `clientError` listener: what Node answers itself (a request line it cannot parse, headers over its
 * limit, a request that timed out) as RFC 9457 problem details instead of a bare status line; then the connection
 * closes, as Node's default does.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const pending = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || pending?.headersSent) {
    socket.destroy();
    return;
  }
  const status = clientErrorStatus(error.code);
  const slug = CLIENT_ERROR_SLUGS[status];
  const body = JSON.stringify({
    type: `/problems/${slug}`,
    title: PROBLEM_TYPES[slug].title,
    status,
    detail: PROBLEM_TYPES[slug].about,
  } satisfies Problem);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/problem+json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
