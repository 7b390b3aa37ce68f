/** Similar products with explanations: of a catalogue product (GET) or of an uploaded photo (POST). */
import type { Express } from 'express';
import sharp from 'sharp';
import { decodeImage } from '../../catalogue/index.ts';
import { heatmapInfo } from '../../explain/index.ts';
import type { ModelRunner } from '../model-runner.ts';
import type { ServedIndex } from '../served-index.ts';
import { checkFilteredQuery, filteredGroups, listParam, needsFilteredPath } from '../filtered.ts';
import { HttpProblem } from '../problem.ts';
import {
  neighbourGroups,
  requireSlot,
  rowOf,
  resolveConditions,
  toProduct,
  type SimilarResponse,
} from '../similar.ts';
import {
  leased,
  requireModel,
  requireModelCondition,
  route,
  timedModelCall,
  withIndex,
  type PathOf,
  type QueryOf,
  type RouteContext,
} from './context.ts';

/** Formats an upload may have (read from its bytes, not from what the client claims). */
const IMAGE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);
/** Uploads with more pixels than this are refused before decoding (decompression bombs). */
const MAX_UPLOAD_PIXELS = 40_000_000;

/** The uploaded photo's pixels at the model's input size; refuses what is not a supported image or too large. */
async function readUpload(
  files: Express.Multer.File[] | undefined,
  model: ModelRunner,
): Promise<Float32Array> {
  const upload = (files ?? []).find((file) => file.fieldname === 'image');
  if (!upload) throw new HttpProblem(400, 'invalid-request', 'The form has no file in its "image" field.');
  // sharp throws synchronously on an empty buffer (that was a 500).
  if (upload.size === 0) throw new HttpProblem(400, 'invalid-request', 'The uploaded file is empty.');
  // Only the header is read here, so no pixel limit: a bomb must reach the size check below and get its 413.
  const metadata = await sharp(upload.buffer, { limitInputPixels: false })
    .metadata()
    .catch(() => undefined);
  if (!metadata?.format || !IMAGE_FORMATS.has(metadata.format)) {
    throw new HttpProblem(
      415,
      'unsupported-media-type',
      `The upload is not an image in a supported format (${[...IMAGE_FORMATS].join(', ')}).`,
    );
  }
  if ((metadata.width ?? 0) * (metadata.height ?? 0) > MAX_UPLOAD_PIXELS) {
    throw new HttpProblem(
      413,
      'upload-too-large',
      `The image has ${metadata.width}x${metadata.height} pixels; the limit is ${MAX_UPLOAD_PIXELS} pixels.`,
    );
  }
  try {
    return await decodeImage(upload.buffer, model.description.imageSize, model.description.preprocess);
  } catch {
    throw new HttpProblem(415, 'unsupported-media-type', 'The upload could not be decoded as an image.');
  }
}

/** A validated `GET /similar/{productId}`: its path parameter and its query, as the contract types them. */
export interface ProductSimilarRequest {
  productId: string;
  query: QueryOf<'getSimilar'>;
}

/** The answer to `GET /similar/{productId}` from one index version (the express route and hot-path.ts share it). */
export async function similarToProduct(
  index: ServedIndex,
  { productId, query: params }: ProductSimilarRequest,
): Promise<SimilarResponse> {
  const k = Number(params.k ?? 10);
  const { condition } = params;
  const filters = listParam(params.filter);
  const slot = requireSlot(index, productId);
  const [own] = await index.store.vectors([slot]);
  const query = { slot, vector: rowOf(own) };
  const heatmaps = index.model !== undefined;
  const explain = params.explain ?? 'full';
  const body: SimilarResponse = {
    version: index.version,
    k,
    query: { source: 'product', product: toProduct(index, slot) },
    groups: needsFilteredPath(condition, filters)
      ? await filteredGroups(index, query, condition, filters, k, heatmaps, explain)
      : await neighbourGroups(index, query, resolveConditions(index, condition), k, heatmaps, explain),
  };
  if (index.model) body.heatmap = heatmapInfo(index.model.description.kind);
  return body;
}

export function registerSimilarRoutes(app: Express, context: RouteContext): void {
  const leaseIndex = withIndex(context.state);
  app.get(
    '/similar/:productId',
    leaseIndex,
    route<PathOf<'getSimilar'>, QueryOf<'getSimilar'>>(async (request, response) => {
      const index = leased(response);
      const body = await similarToProduct(index, {
        productId: request.params.productId,
        query: request.query,
      });
      if (context.checkResponses) response.json(body);
      else context.answers.send(request, response, request.originalUrl, index.version, body);
    }),
  );

  app.post(
    '/similar',
    leaseIndex,
    route<unknown, QueryOf<'postSimilar'>>(async (request, response) => {
      const index = leased(response);
      const k = Number(request.query.k ?? 10);
      const { condition } = request.query;
      const filters = listParam(request.query.filter);
      const filtered = needsFilteredPath(condition, filters);
      const explain = request.query.explain ?? 'full';
      // Check the condition and filters before the model runs (their errors are cheaper than an embedding).
      const conditions = filtered ? [] : resolveConditions(index, condition);
      if (filtered) checkFilteredQuery(index, condition, filters);
      const model = requireModel(index);
      const pixels = await readUpload(request.files as Express.Multer.File[] | undefined, model);
      const vectors = await timedModelCall(context.metrics, 'embed', () => model.vectors(pixels, 1));
      const rows = index.conditions.map((condition) => {
        const m = requireModelCondition(condition);
        const row = vectors.data.subarray(m * vectors.dims, (m + 1) * vectors.dims);
        return index.store.fromConditionVector(condition.name, row);
      });
      const body: SimilarResponse = {
        version: index.version,
        k,
        query: { source: 'upload' },
        groups: filtered
          ? await filteredGroups(index, { vector: (c) => rows[c] }, condition, filters, k, false, explain)
          : await neighbourGroups(index, { vector: (c) => rows[c] }, conditions, k, false, explain),
      };
      response.json(body);
    }),
  );
}
