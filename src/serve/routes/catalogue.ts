/** The catalogue as the served index version has it: conditions, products, one product, a product's image. */
import { readFile } from 'node:fs/promises';
import type { Express, Response } from 'express';
import sharp from 'sharp';
import { HttpProblem } from '../problem.ts';
import { conditionList, productPage, requireSlot, toProduct } from '../products.ts';
import { leased, route, withIndex, type PathOf, type QueryOf, type RouteContext } from './context.ts';

/** The image file as stored, or a square WebP thumbnail of `size` pixels. */
async function productImage(path: string, size: number | undefined): Promise<Buffer> {
  try {
    if (size === undefined) return await readFile(path);
    return await sharp(path)
      .rotate()
      .resize(size, size, { fit: 'contain', background: '#ffffff' })
      .flatten({ background: '#ffffff' })
      .webp({ quality: 85 })
      .toBuffer();
  } catch {
    throw new HttpProblem(404, 'not-found', 'The image of this product cannot be read on this server.');
  }
}

/** Media type of a stored image, read from its bytes. */
async function setImageType(response: Response, image: Buffer): Promise<void> {
  const format = (
    await sharp(image)
      .metadata()
      .catch(() => undefined)
  )?.format;
  response.type(format === 'jpeg' ? 'image/jpeg' : format ? `image/${format}` : 'application/octet-stream');
}

export function registerCatalogueRoutes(app: Express, context: RouteContext): void {
  const leaseIndex = withIndex(context.state);
  app.get('/conditions', leaseIndex, (_request, response) => {
    response.json(conditionList(leased(response)));
  });

  app.get(
    '/products',
    leaseIndex,
    route<unknown, QueryOf<'listProducts'>>((request, response) => {
      const { q, offset = 0, limit = 48 } = request.query;
      response.json(productPage(leased(response), q, Number(offset), Number(limit)));
    }),
  );

  app.get(
    '/products/:productId',
    leaseIndex,
    route<PathOf<'getProduct'>, unknown>((request, response) => {
      const index = leased(response);
      response.json(toProduct(index, requireSlot(index, request.params.productId)));
    }),
  );

  app.get(
    '/products/:productId/image',
    leaseIndex,
    route<PathOf<'getProductImage'>, QueryOf<'getProductImage'>>(async (request, response) => {
      const index = leased(response);
      const slot = requireSlot(index, request.params.productId);
      const path = index.imagePath(slot);
      if (!path)
        throw new HttpProblem(404, 'not-found', 'The image of this product is not available on this server.');
      response.setHeader('Cache-Control', 'public, max-age=300');
      const size = request.query.size === undefined ? undefined : Number(request.query.size);
      const image =
        size === undefined
          ? await productImage(path, undefined)
          : await context.thumbnails.get(`${index.version}|${slot}|${size}`, () => productImage(path, size));
      if (size !== undefined) response.type('image/webp');
      else await setImageType(response, image);
      response.send(image);
    }),
  );
}
