/**
 * Security headers (helmet): a strict Content-Security-Policy for the page and the API, and a looser one for the
 * rendered docs, whose Swagger UI page carries an inline <style> block and inline style attributes.
 */
import type { RequestHandler } from 'express';
import helmet from 'helmet';

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

export function securityHeaders(): RequestHandler {
  const docsHeaders = helmet({
    contentSecurityPolicy: { directives: { ...CSP, styleSrc: ["'self'", "'unsafe-inline'"] } },
  });
  const headers = helmet({ contentSecurityPolicy: { directives: CSP } });
  return (request, response, next) => (isDocs(request.path) ? docsHeaders : headers)(request, response, next);
}
