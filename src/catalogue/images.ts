/**
 * Product photos → the model's size×size RGB input: decoding with sharp (decodeImageBytes), through the catalogue's
 * pixel store when a job decodes a whole catalogue (decodeImageBytesKept, pixel-store.ts), and the in-memory
 * ImageCache that training and evaluation draw batches from.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp, { type OutputInfo } from 'sharp';
import { imageDigest, PixelStore, type PixelStoreLog } from './pixel-store.ts';
import { mapWithConcurrency } from './pool.ts';
import type { Catalogue, ImageFit, Product } from './types.ts';

export type ImageDecodeReason = 'not-found' | 'unsupported' | 'invalid';

/** An input that is not a decodable image (missing file, unknown format, corrupt data). */
export class ImageDecodeError extends Error {
  constructor(
    /** File path, or "buffer" for in-memory input. */
    readonly source: string,
    readonly reason: ImageDecodeReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ImageDecodeError';
  }
}

const MAX_SIZE = 4096;

// libvips' operation cache only ever hits for the same input object, and every decode here gets a fresh buffer:
// it costs hashing, locking and up to 100 kept operations per call for nothing. Off, a 128 px demo JPEG decoded to
// 48 px takes ~15-20% less CPU (same pixels; bench/results/index-embed.md).
sharp.cache(false);

function classify(error: Error): ImageDecodeReason {
  const text = error.message.toLowerCase();
  if (text.includes('missing') || text.includes('no such file') || text.includes('enoent'))
    return 'not-found';
  if (text.includes('unsupported image format') || text.includes('empty')) return 'unsupported';
  return 'invalid';
}

/**
 * Decode any image sharp reads into size×size RGB bytes (HWC). EXIF orientation is applied, transparency is
 * flattened onto white, then the picture is fitted as `fit` says (default fit-pad).
 */
export async function decodeImageBytes(
  input: string | Buffer,
  size: number,
  fit: ImageFit = 'fit-pad',
): Promise<Uint8Array> {
  checkSize(size);
  const source = typeof input === 'string' ? input : 'buffer';
  // Reading the file first and decoding the bytes costs ~1.4x less CPU per 128 px JPEG than letting libvips
  // open the path (bench/results/index-embed.md); the pixels are the same.
  const data =
    typeof input === 'string' ? await readFile(input).catch((error: Error) => failed(source, error)) : input;
  return decodeData(data, source, size, fit);
}

/**
 * decodeImageBytes of a file through a PixelStore: the rows kept for its bytes are read back instead of decoded,
 * and rows decoded now are kept. `digest` (the file's SHA-256, when the caller already has it) finds kept rows
 * without reading the file; rows are only ever added under the digest of the bytes actually decoded.
 */
export async function decodeImageBytesKept(
  path: string,
  size: number,
  fit: ImageFit,
  store: PixelStore | null,
  digest?: string,
): Promise<Uint8Array> {
  if (!store) return decodeImageBytes(path, size, fit);
  checkSize(size);
  const known = digest === undefined ? undefined : await store.get(digest);
  if (known) return known;
  const data = await readFile(path).catch((error: Error) => failed(path, error));
  const actual = imageDigest(data);
  const kept = actual === digest ? undefined : await store.get(actual);
  if (kept) return kept;
  const bytes = await decodeData(data, path, size, fit);
  store.add(actual, bytes);
  return bytes;
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < 1 || size > MAX_SIZE) {
    throw new RangeError(`image size must be an integer in 1..${MAX_SIZE}, got ${size}`);
  }
}

function failed(source: string, cause: Error): never {
  const reason = classify(cause);
  const what =
    reason === 'not-found'
      ? 'image file not found'
      : reason === 'unsupported'
        ? 'not a supported image'
        : 'cannot decode image';
  throw new ImageDecodeError(source, reason, `${what}: ${source} (${cause.message})`, { cause });
}

async function decodeData(data: Buffer, source: string, size: number, fit: ImageFit): Promise<Uint8Array> {
  let decoded: { data: Buffer; info: OutputInfo };
  try {
    if (data.length === 0) throw new Error('Input buffer is empty');
    decoded = await sharp(data)
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .resize(
        size,
        size,
        fit === 'resize-crop'
          ? { fit: 'cover', position: 'centre', kernel: 'linear' }
          : { fit: 'inside', kernel: 'lanczos3' },
      )
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    failed(source, error as Error);
  }
  const { data: raw, info } = decoded;
  const rgb = toRgb(raw, info.width * info.height, info.channels);
  if (info.width === size && info.height === size) return rgb;
  return padToSquare(rgb, info.width, info.height, size);
}

/** Decode to float32 RGB in [0, 1], NHWC order for one image (length size*size*3). */
export async function decodeImage(
  input: string | Buffer,
  size: number,
  fit: ImageFit = 'fit-pad',
): Promise<Float32Array> {
  return bytesToFloats(await decodeImageBytes(input, size, fit));
}

function toRgb(data: Buffer, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(data.buffer, data.byteOffset, pixels * 3);
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    const base = p * channels;
    const grey = channels < 3;
    out[p * 3] = data[base];
    out[p * 3 + 1] = grey ? data[base] : data[base + 1];
    out[p * 3 + 2] = grey ? data[base] : data[base + 2];
  }
  return out;
}

function padToSquare(rgb: Uint8Array, width: number, height: number, size: number): Uint8Array {
  const corners = [0, width - 1, (height - 1) * width, height * width - 1];
  const fill = [0, 1, 2].map((c) => Math.round(corners.reduce((sum, p) => sum + rgb[p * 3 + c], 0) / 4));
  const out = new Uint8Array(size * size * 3);
  for (let p = 0; p < size * size; p++) {
    out[p * 3] = fill[0];
    out[p * 3 + 1] = fill[1];
    out[p * 3 + 2] = fill[2];
  }
  const left = Math.floor((size - width) / 2);
  const top = Math.floor((size - height) / 2);
  for (let y = 0; y < height; y++) {
    out.set(rgb.subarray(y * width * 3, (y + 1) * width * 3), ((top + y) * size + left) * 3);
  }
  return out;
}

const TO_UNIT = Float32Array.from({ length: 256 }, (_, value) => value / 255);

/** Bytes → float32 in [0, 1] (value / 255), written into `out` from `offset` (a batch buffer). */
export function bytesToFloats(
  bytes: Uint8Array,
  out = new Float32Array(bytes.length),
  offset = 0,
): Float32Array {
  for (let i = 0; i < bytes.length; i++) out[offset + i] = TO_UNIT[bytes[i]];
  return out;
}

/** Anything that hands out a batch of decoded images (ImageCache does). */
export interface ImageSource {
  readonly size: number;
  batch(indices: readonly number[]): Float32Array;
}

export interface ImageCacheOptions {
  onProgress?: (done: number, total: number) => void;
  /** Decodes in flight at once (sharp runs them on libuv's thread pool). */
  concurrency?: number;
  /** Photo → square input (default fit-pad). */
  fit?: ImageFit;
  /** Read and keep decoded pixels beside the catalogue (pixel-store.ts; default true). */
  keepPixels?: boolean;
  log?: PixelStoreLog;
}

/**
 * Every product image of a catalogue decoded once at size×size. Pixels are kept as bytes (4× smaller than
 * float32, and exactly what the decoder produced) and converted to float32 in [0, 1] per batch.
 */
export class ImageCache implements ImageSource {
  private constructor(
    readonly size: number,
    readonly count: number,
    private readonly pixels: Uint8Array,
    /** Images whose pixels were read back from the pixel store instead of decoded. */
    readonly keptImages = 0,
  ) {}

  /** Values per image: size * size * 3. */
  get imageLength(): number {
    return this.size * this.size * 3;
  }

  static async load(
    catalogue: Catalogue,
    size: number,
    options: ImageCacheOptions = {},
  ): Promise<ImageCache> {
    const count = catalogue.products.length;
    const length = size * size * 3;
    const pixels = new Uint8Array(count * length);
    let done = 0;
    const fit = options.fit ?? 'fit-pad';
    const store =
      options.keepPixels === false ? null : await PixelStore.open(catalogue.root, size, fit, options.log);
    options.onProgress?.(0, count);
    try {
      await mapWithConcurrency(catalogue.products, options.concurrency ?? 8, async (product, index) => {
        pixels.set(await decodeProduct(catalogue, product, size, fit, store), index * length);
        options.onProgress?.(++done, count);
      });
    } finally {
      await store?.close();
    }
    return new ImageCache(size, count, pixels, store?.stats.hits ?? 0);
  }

  /** Images `indices` (product indices, repeats allowed) as float32 NHWC, length indices.length * size * size * 3. */
  batch(indices: readonly number[]): Float32Array {
    const length = this.imageLength;
    const out = new Float32Array(indices.length * length);
    indices.forEach((index, row) => {
      if (!Number.isInteger(index) || index < 0 || index >= this.count) {
        throw new RangeError(`image index ${index} out of range (0-${this.count - 1})`);
      }
      bytesToFloats(this.pixels.subarray(index * length, (index + 1) * length), out, row * length);
    });
    return out;
  }

  /** One image's raw RGB bytes (a view, not a copy). */
  bytes(index: number): Uint8Array {
    const length = this.imageLength;
    return this.pixels.subarray(index * length, (index + 1) * length);
  }
}

async function decodeProduct(
  catalogue: Catalogue,
  product: Product,
  size: number,
  fit: ImageFit,
  store: PixelStore | null,
): Promise<Uint8Array> {
  const path = join(catalogue.root, product.image);
  try {
    return await decodeImageBytesKept(path, size, fit, store);
  } catch (error) {
    if (error instanceof ImageDecodeError) {
      throw new ImageDecodeError(path, error.reason, `product ${product.id}: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}
