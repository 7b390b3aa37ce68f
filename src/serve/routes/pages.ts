/**
 * The web page (static files in public/) and the rendered API docs: outside the contract. The static handler runs
 * only for the page's own files: ahead of every API request it cost an fs.stat (4 % of the CPU profile under load).
 * Neither handler redirects: a directory-like path such as /similar/x%2F..%2F.. used to get a 301 before the API saw
 * it.
 */
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));
/**
 * Swagger UI's assets, served by us with the same no-redirect rule (swagger-ui-express's own copy redirects). Only
 * the folder is looked up: requiring the package itself evaluates its 1.4 MB browser bundle in Node (memory held for
 * the life of the process, and a slower start).
 */
const SWAGGER_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

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
  const pageFiles = new Set(['/', ...readdirSync(PUBLIC_DIR).map((name) => `/${name}`)]);
  const page = express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m', redirect: false });
  app.use((request, response, next) => {
    if (pageFiles.has(request.path)) page(request, response, next);
    else next();
  });
}
