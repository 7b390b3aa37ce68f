/** The web page (static files in public/) and the rendered API docs: outside the contract. */
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import swaggerUi from 'swagger-ui-express';

const PUBLIC_DIR = fileURLToPath(new URL('../public/', import.meta.url));

export function registerPages(app: Express): void {
  app.use('/docs', swaggerUi.serveFiles(undefined, { swaggerOptions: { url: '/openapi.yaml' } }));
  app.get(
    '/docs',
    swaggerUi.setup(undefined, {
      swaggerOptions: { url: '/openapi.yaml' },
      customSiteTitle: 'dressmatch API',
    }),
  );
  app.use(express.static(PUBLIC_DIR, { index: 'index.html', maxAge: '5m' }));
}
