/**
 * Security headers (helmet): a strict Content-Security-Policy for the page and the API, and a looser one for the
 * rendered docs, whose Swagger UI page carries an inline <style> block and inline style attributes. HSTS means
 * nothing over plain HTTP (RFC 6797 tells browsers to ignore it there): it is sent only on requests that came over
 * TLS, or on all of them when the operator says TLS ends in front of the service (--hsts).
 */
import type { Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import { pathOf, type EdgeParts } from './edge.ts';

const CSP = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  baseUri: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  // Served over plain HTTP on a private network as often as behind TLS: do not force https sub-requests.
  upgradeInsecureRequests: null,
};

function isDocs(path: string): boolean {
  return path === '/docs' || path.startsWith('/docs/');
}

/** What helmet sends by default: a year, subdomains included. */
const HSTS = 'max-age=31536000; includeSubDomains';

/**
 * The headers a helmet middleware sets, captured once: they do not depend on the request, and setting them from a
 * list costs a fraction of running helmet's twelve middlewares per request.
 */
function headersOf(middleware: RequestHandler): [string, string][] {
  const headers: [string, string][] = [];
  const response = {
    setHeader: (name: string, value: string) => headers.push([name, String(value)]),
    removeHeader: () => undefined,
  };
  middleware({} as Request, response as unknown as Response, () => undefined);
  return headers;
}

export function securityHeaders(options: { hsts?: boolean } = {}): EdgeParts['start'][number] {
  const docsHeaders = headersOf(
    helmet({
      contentSecurityPolicy: { directives: { ...CSP, styleSrc: ["'self'", "'unsafe-inline'"] } },
      strictTransportSecurity: false,
    }),
  );
  const headers = headersOf(
    helmet({ contentSecurityPolicy: { directives: CSP }, strictTransportSecurity: false }),
  );
  return (request, response) => {
    for (const [name, value] of isDocs(pathOf(request.url ?? '/')) ? docsHeaders : headers) {
      response.setHeader(name, value);
    }
    // express' `request.secure` without 'trust proxy' (never set here): the connection itself is TLS.
    const tls = 'encrypted' in request.socket && request.socket.encrypted === true;
    if (options.hsts || tls) response.setHeader('Strict-Transport-Security', HSTS);
  };
}
