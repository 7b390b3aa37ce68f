import type { Catalogue, Split } from './types.ts';

/**
 * 32-bit FNV-1a over the UTF-16 code units of `text`, finished with the murmur3 avalanche so that ids that
 * differ only in their last characters (demo-00001, demo-00002, ...) still spread uniformly.
 */
export function stableHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}

/** Deterministic 70/10/20 train/val/test assignment of a product id, independent of catalogue order. */
export function hashSplit(id: string): Split {
  const bucket = stableHash(id) % 100;
  if (bucket < 70) return 'train';
  if (bucket < 80) return 'val';
  return 'test';
}

/** Each product's split: the one its layout gives, otherwise the stable hash of its id. */
export function productSplit(catalogue: Pick<Catalogue, 'products'>): Split[] {
  return catalogue.products.map((product) => product.split ?? hashSplit(product.id));
}

/** A seed for one named purpose, derived from the run seed (independent streams per split and per use). */
export function deriveSeed(seed: number, purpose: string): number {
  return stableHash(`${seed}/${purpose}`) & 0x7fffffff;
}

/** Product indices of a split. */
export function splitProducts(catalogue: Pick<Catalogue, 'products'>, split: Split): number[] {
  return productSplit(catalogue).flatMap((s, index) => (s === split ? [index] : []));
}
