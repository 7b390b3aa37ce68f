/** Similar products with explanations: of a catalogue product (GET) or of an uploaded photo (POST). */
import type { Express } from 'express';
import sharp from 'sharp';
import { decodeImage } from '../../catalogue/index.ts';
import type { ModelRunner } from '../model/runner.ts';
import { resolveAsk, similarToProduct, similarToUpload } from '../neighbours.ts';
import { HttpProblem } from '../problem.ts';
import { requireSlot } from '../products.ts';
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

/**
 * A CMYK image without an ICC profile, converted to sRGB through libvips' standard CMYK profile (the one sharp
 * converts to CMYK with), orientation applied, as lossless PNG: decoded without a profile its colours shift, and
 * the same photo in CMYK and in RGB got different neighbours.
 */
function cmykToRgb(image: Buffer): Promise<Buffer> {
  return sharp(image).rotate().pipelineColourspace('cmyk').toColourspace('srgb').png().toBuffer();
}

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
    const bytes = metadata.space === 'cmyk' && !metadata.icc ? await cmykToRgb(upload.buffer) : upload.buffer;
    return await decodeImage(bytes, model.description.imageSize, model.description.preprocess);
  } catch {
    throw new HttpProblem(415, 'unsupported-media-type', 'The upload could not be decoded as an image.');
  }
}

export function registerSimilarRoutes(app: Express, context: RouteContext): void {
  const leaseIndex = withIndex(context.state);
  app.get(
    '/similar/:productId',
    context.answers.lookup,
    leaseIndex,
    route<PathOf<'getSimilar'>, QueryOf<'getSimilar'>>(async (request, response) => {
      const index = leased(response);
      const slot = requireSlot(index, request.params.productId);
      const body = await similarToProduct(index, slot, resolveAsk(index, request.query));
      context.answers.send(request, response, index.version, body);
    }),
  );

  app.post(
    '/similar',
    leaseIndex,
    route<unknown, QueryOf<'postSimilar'>>(async (request, response) => {
      const index = leased(response);
      // The condition and filters are checked before the model runs (their errors are cheaper than an embedding).
      const ask = resolveAsk(index, request.query);
      const model = requireModel(index);
      const pixels = await readUpload(request.files as Express.Multer.File[] | undefined, model);
      const vectors = await timedModelCall(context.metrics, 'embed', () => model.vectors(pixels, 1));
      const rows = index.conditions.map((condition) => {
        const m = requireModelCondition(condition);
        const row = vectors.data.subarray(m * vectors.dims, (m + 1) * vectors.dims);
        return index.store.fromConditionVector(condition.name, row);
      });
      response.json(await similarToUpload(index, rows, ask));
    }),
  );
}
