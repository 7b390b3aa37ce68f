import { mkdir, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import sharp from 'sharp';
import { Rng } from '../util/rng.ts';
import { DEMO_DEFAULTS } from './defaults.ts';
import {
  DEMO_ATTRIBUTES,
  DEMO_CONDITION_PARTS,
  DEMO_CONDITIONS,
  DEMO_PARTS,
  drawDress,
  type DemoAttributes,
  type DemoCondition,
} from './demo-svg.ts';
import { encodePartMask, packPartLayers, type PartsManifest } from './masks.ts';
import { writeCatalogue } from './native.ts';
import { mapWithConcurrency } from './pool.ts';
import { replaceDirectory } from './staging.ts';
import type { Catalogue, Product, Split } from './types.ts';

export {
  DEMO_ATTRIBUTES,
  DEMO_CONDITIONS,
  DEMO_PARTS,
  DEMO_CONDITION_PARTS,
  type DemoAttributes,
  type DemoCondition,
};

/** Which parts each demo condition is about, as written to masks/parts.json and generator.json. */
export const DEMO_PARTS_MANIFEST: PartsManifest = {
  parts: [...DEMO_PARTS],
  conditions: Object.fromEntries(DEMO_CONDITIONS.map((c) => [c, [...DEMO_CONDITION_PARTS[c]]])),
};

export interface DemoCatalogueOptions {
  count?: number;
  seed?: number;
  /** Side of the square images written to disk. */
  imageSize?: number;
  /** Replace a non-empty `dir` (default false: refuse). */
  overwrite?: boolean;
  /** Parallel renders. */
  concurrency?: number;
  /**
   * Render and record only the products of these splits (default: every product). Each product keeps the id,
   * record and image bytes it has in the full catalogue, so a job that reads one split needs no other.
   */
  splits?: readonly Split[];
  onProgress?: (done: number, total: number) => void;
}

const TITLE_WORDS = {
  pattern: { solid: 'solid', stripes: 'striped', dots: 'polka-dot', floral: 'floral', check: 'checked' },
  length: { mini: 'mini', knee: 'knee-length', midi: 'midi', maxi: 'maxi' },
  sleeve: {
    sleeveless: 'sleeveless',
    short: 'short sleeves',
    'three-quarter': 'three-quarter sleeves',
    long: 'long sleeves',
  },
  neckline: {
    'v-neck': 'V-neck',
    round: 'round neck',
    square: 'square neck',
    collar: 'collar',
    'off-shoulder': 'off-shoulder',
  },
} as const;

export function demoTitle(a: DemoAttributes): string {
  const color = `${a.color.charAt(0).toUpperCase()}${a.color.slice(1)}`;
  return `${color} ${TITLE_WORDS.pattern[a.pattern]} ${TITLE_WORDS.length[a.length]} ${a.silhouette} dress, ${TITLE_WORDS.sleeve[a.sleeve]}, ${TITLE_WORDS.neckline[a.neckline]}`;
}

/** Every value of every attribute equally often (±1), independently shuffled per attribute. */
function balancedAttributes(count: number, rng: Rng): DemoAttributes[] {
  const columns = DEMO_CONDITIONS.map((condition) => {
    const values = DEMO_ATTRIBUTES[condition];
    return rng.shuffle(Array.from({ length: count }, (_, i) => values[i % values.length]));
  });
  return Array.from(
    { length: count },
    (_, i) =>
      Object.fromEntries(DEMO_CONDITIONS.map((condition, c) => [condition, columns[c][i]])) as DemoAttributes,
  );
}

/** Exactly 70/10/20 (rounded) of the products per split, shuffled. */
function balancedSplits(count: number, rng: Rng): Split[] {
  const train = Math.round(count * 0.7);
  const val = Math.round(count * 0.1);
  const splits: Split[] = Array.from({ length: count }, (_, i) =>
    i < train ? 'train' : i < train + val ? 'val' : 'test',
  );
  return rng.shuffle(splits);
}

/** Values of the demo's `category` field: a shop's department, which the labels do not carry. */
export const DEMO_CATEGORIES = ['casual', 'evening', 'office', 'beach'] as const;

/**
 * The demo's product fields (price, in_stock, category), drawn from their own stream so that adding them changed no
 * image or label of an existing demo catalogue. Longer dresses cost more, so `price` is not independent of `length`.
 */
function demoFields(a: DemoAttributes, rng: Rng): Record<string, string | number | boolean> {
  const base = { mini: 39, knee: 59, midi: 79, maxi: 99 }[a.length];
  return {
    price: Math.round((base + rng.range(0, 100)) * 100) / 100,
    in_stock: rng.next() < 0.8,
    category: rng.pick(DEMO_CATEGORIES),
  };
}

/** Small fast generator for pixel noise (mulberry32); seeded from the product's Rng so output is deterministic. */
function noiseSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rasterise each part's SVG and pack the parts into one bit-flag mask (bit k = DEMO_PARTS[k]). */
async function renderPartMask(parts: Record<string, string>, size: number): Promise<Buffer> {
  const layers = await Promise.all(
    DEMO_PARTS.map((part) => sharp(Buffer.from(parts[part])).extractChannel(0).raw().toBuffer()),
  );
  return encodePartMask(packPartLayers(layers), size);
}

/** The photo (JPEG) and its part mask (PNG). */
async function renderDress(
  attributes: DemoAttributes,
  size: number,
  rng: Rng,
): Promise<{ jpeg: Buffer; mask: Buffer }> {
  const scene = drawDress(attributes, size, rng);
  const { data, info } = await sharp(Buffer.from(scene.svg))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  // Sum of three uniforms: bell-shaped noise with standard deviation `scene.noise`.
  const uniform = noiseSource(rng.int(0, 0xffffffff));
  const scale = scene.noise * 2;
  for (let i = 0; i < data.length; i++) {
    const n = (uniform() + uniform() + uniform() - 1.5) * scale;
    const v = data[i] + n;
    data[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  const [jpeg, mask] = await Promise.all([
    sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
      .jpeg({ quality: 92, chromaSubsampling: '4:4:4' })
      .toBuffer(),
    renderPartMask(scene.parts, size),
  ]);
  return { jpeg, mask };
}

/** The demo's product records (ids, titles, labels, splits, fields), the first draws of `rng`; no images. */
function drawDemoProducts(
  count: number,
  seed: number,
  rng: Rng,
): { products: Product[]; attributes: DemoAttributes[] } {
  const attributes = balancedAttributes(count, rng);
  const splits = balancedSplits(count, rng);
  const digits = Math.max(5, String(count).length);
  const fieldRng = new Rng(seed ^ 0x5eed_f1e1);
  const products: Product[] = attributes.map((a, i) => {
    const id = `dress-${String(i + 1).padStart(digits, '0')}`;
    return {
      id,
      title: demoTitle(a),
      image: `images/${id}.jpg`,
      attributes: Object.fromEntries(DEMO_CONDITIONS.map((condition) => [condition, [a[condition]]])),
      split: splits[i],
      fields: demoFields(a, fieldRng),
    };
  });
  return { products, attributes };
}

/**
 * The records generateDemoCatalogue writes for `count` and `seed`, without rendering an image: for benches that
 * serve demo-like answers from synthetic vectors.
 */
export function demoProducts(
  count: number = DEMO_DEFAULTS.count,
  seed: number = DEMO_DEFAULTS.seed,
): Product[] {
  return drawDemoProducts(count, seed, new Rng(seed)).products;
}

/**
 * Write a native catalogue of synthetic dress photos with known attributes (see DEMO_ATTRIBUTES). Everything is
 * rendered into a sibling temporary folder that replaces `dir` only when complete, so a crash never leaves a
 * half-written catalogue behind. Deterministic for a seed (same products, same image bytes).
 */
export async function generateDemoCatalogue(
  dir: string,
  options: DemoCatalogueOptions = {},
): Promise<Catalogue> {
  const count = options.count ?? DEMO_DEFAULTS.count;
  const seed = options.seed ?? DEMO_DEFAULTS.seed;
  const imageSize = options.imageSize ?? DEMO_DEFAULTS.imageSize;
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`count must be a positive integer, got ${count}`);
  if (!Number.isInteger(imageSize) || imageSize < 16 || imageSize > 1024) {
    throw new RangeError(`imageSize must be an integer in 16..1024, got ${imageSize}`);
  }
  const target = resolve(dir);

  const rng = new Rng(seed);
  const drawn = drawDemoProducts(count, seed, rng);
  // One independent stream per product, so parallel rendering order (or a subset) cannot change any image.
  const productSeeds = drawn.products.map(() => rng.int(0, 0x7fffffff));
  const kept = drawn.products.flatMap((product, i) =>
    !options.splits || options.splits.includes(product.split!) ? [i] : [],
  );
  const products = kept.map((i) => drawn.products[i]);

  const catalogue: Catalogue = {
    root: target,
    name: basename(target),
    conditions: [...DEMO_CONDITIONS],
    products,
    fields: { category: 'string', in_stock: 'boolean', price: 'number' },
  };
  await replaceDirectory(
    target,
    async (staging) => {
      await mkdir(join(staging, 'images'), { recursive: true });
      await mkdir(join(staging, 'masks'), { recursive: true });
      let done = 0;
      options.onProgress?.(0, products.length);
      await mapWithConcurrency(kept, options.concurrency ?? 4, async (i) => {
        const product = drawn.products[i];
        const { jpeg, mask } = await renderDress(drawn.attributes[i], imageSize, new Rng(productSeeds[i]));
        await writeFile(join(staging, product.image), jpeg);
        await writeFile(join(staging, 'masks', `${product.id}.png`), mask);
        options.onProgress?.(++done, products.length);
      });
      // Version 2 adds the part masks; images are byte-identical to version 1 for the same seed.
      const record = {
        generator: 'dressmatch demo-data',
        version: 2,
        count,
        seed,
        imageSize,
        ...(options.splits ? { splits: [...options.splits] } : {}),
        masks: DEMO_PARTS_MANIFEST,
      };
      await writeFile(join(staging, 'generator.json'), `${JSON.stringify(record, null, 2)}\n`);
      await writeFile(
        join(staging, 'masks', 'parts.json'),
        `${JSON.stringify(DEMO_PARTS_MANIFEST, null, 2)}\n`,
      );
      // Images are already in place: write the catalogue files as if the staging folder were its root.
      await writeCatalogue({ ...catalogue, root: staging }, staging);
    },
    { overwrite: options.overwrite },
  );
  return catalogue;
}
