/**
 * Sending finished JSON bytes on a plain Node response, the way express' `res.send` sends a Buffer whose type and
 * ETag are already chosen: Content-Length, 304 when the client already holds the ETag (the `fresh` package, which
 * express itself uses), no body for HEAD. The answer cache and the health probe send their stored bytes through it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import fresh from 'fresh';

const JSON_TYPE = 'application/json; charset=utf-8';

export function sendJsonBytes(
  request: IncomingMessage,
  response: ServerResponse,
  body: Buffer,
  etag: string,
): void {
  response.setHeader('Content-Type', JSON_TYPE);
  if (etag) response.setHeader('ETag', etag);
  response.setHeader('Content-Length', String(body.length));
  const status = response.statusCode;
  const conditional = request.method === 'GET' || request.method === 'HEAD';
  if (
    conditional &&
    ((status >= 200 && status < 300) || status === 304) &&
    fresh(request.headers, { etag })
  ) {
    response.statusCode = 304;
    response.removeHeader('Content-Type');
    response.removeHeader('Content-Length');
    response.removeHeader('Transfer-Encoding');
    response.end();
    return;
  }
  if (request.method === 'HEAD') response.end();
  else response.end(body);
}
