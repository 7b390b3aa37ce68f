/**
 * The web page (static files in public/) and the rendered API docs: outside the contract. Neither redirects: a
 * directory-like path such as /similar/x%2F..%2F.. used to get a 301 from the static handler before the API saw it.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
/** Swagger UI's assets, served by us with the same no-redirect rule (swagger-ui-express's own copy redirects). */
const SWAGGER_DIR = (
  createRequire(import.meta.url)('swagger-ui-dist') as { getAbsoluteFSPath(): string }
).getAbsoluteFSPath();

export function registerPages(app: Express): void {
  const [swaggerInit] = swaggerUi.serveFiles(undefined, { swaggerOptions: { url: '/openapi.yaml' } });
  app.use('/docs', swaggerInit, express.static(SWAGGER_DIR, { index: false, redirect: false }));
  app.get(
    '/docs',
    swaggerUi.setup(undefined, {
      swaggerOptions: { url: '/openapi.yaml' },
      customSiteTitle: 'dressmatch API',
    }),
  );
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m', redirect: false }));
}
