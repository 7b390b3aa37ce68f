/**
 * Optional part masks of a native catalogue (data/README.md, "masks/"): one 8-bit grey PNG per product,
 * `masks/{id}.png`, the same size as its image, where bit k of a pixel is set when the pixel belongs to part k
 * of `masks/parts.json`. They are ground truth for checking explanations, never used for training.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';

/** `masks/parts.json`: the parts in bit order, and which parts each condition is about. */
export interface PartsManifest {
  parts: string[];
  conditions: Record<string, string[]>;
}

/** At most 8 parts fit in one 8-bit pixel. */
export const MAX_PARTS = 8;

export function partMaskPath(root: string, productId: string): string {
  return join(root, 'masks', `${productId}.png`);
}

export async function readPartsManifest(root: string): Promise<PartsManifest> {
  const file = join(root, 'masks', 'parts.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as PartsManifest;
  if (!Array.isArray(manifest.parts) || manifest.parts.length > MAX_PARTS) {
    throw new Error(`${file}: "parts" must list at most ${MAX_PARTS} part names`);
  }
  for (const [condition, parts] of Object.entries(manifest.conditions ?? {})) {
    const unknown = parts.filter((p) => !manifest.parts.includes(p));
    if (unknown.length > 0)
      throw new Error(`${file}: condition ${condition} names unknown parts ${unknown.join(', ')}`);
  }
  return manifest;
}

/** Combine one 0/255 grey layer per part (bit order) into a bit-flag mask. */
export function packPartLayers(layers: ArrayLike<number>[]): Uint8Array {
  if (layers.length > MAX_PARTS) throw new RangeError(`at most ${MAX_PARTS} parts, got ${layers.length}`);
  const out = new Uint8Array(layers[0]?.length ?? 0);
  layers.forEach((layer, k) => {
    for (let p = 0; p < out.length; p++) if (layer[p] >= 128) out[p] |= 1 << k;
  });
  return out;
}

/** Encode a size×size bit-flag mask as an 8-bit grey PNG. */
export function encodePartMask(mask: Uint8Array, size: number): Promise<Buffer> {
  return sharp(mask, { raw: { width: size, height: size, channels: 1 } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/**
 * The region of `bits` (a bit set of parts) in a mask, resized to size×size: 1 where at least half of the pixel
 * lies in one of those parts, 0 elsewhere.
 */
export async function readPartRegion(file: string, bits: number, size: number): Promise<Uint8Array> {
  const { data, info } = await sharp(file).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  const layer = new Uint8Array(info.width * info.height);
  for (let p = 0; p < layer.length; p++) layer[p] = data[p] & bits ? 255 : 0;
  const resized =
    info.width === size && info.height === size
      ? layer
      : await sharp(layer, { raw: { width: info.width, height: info.height, channels: 1 } })
          .resize(size, size, { fit: 'fill', kernel: 'linear' })
          .extractChannel(0)
          .raw()
          .toBuffer();
  const region = new Uint8Array(size * size);
  for (let p = 0; p < region.length; p++) region[p] = resized[p] >= 128 ? 1 : 0;
  return region;
}

/** Bit set of the parts a condition is about (0 when the manifest names none). */
export function conditionBits(manifest: PartsManifest, condition: string): number {
  return (manifest.conditions[condition] ?? []).reduce(
    (bits, part) => bits | (1 << manifest.parts.indexOf(part)),
    0,
  );
}
