import type { Catalogue } from './types.ts';

/** The on-disk layouts `loadCatalogue` understands. */
export type LayoutKind = 'native' | 'farfetch' | 'zappos' | 'asen';
export const LAYOUT_KINDS: readonly LayoutKind[] = ['native', 'farfetch', 'zappos', 'asen'];

/** Where a product was declared, so that a missing image can be reported at that file and line. */
export interface SourceRef {
  file: string;
  /** 1-based line; for list files in JSON array form, the 1-based entry number instead (see `entry`). */
  line: number;
  entry?: boolean;
}

export interface LayoutResult {
  catalogue: Catalogue;
  /** sources[i] declares catalogue.products[i]. */
  sources: SourceRef[];
}

/** Add a label to a product's attributes, keeping the first-seen order and no duplicates. */
export function addLabel(attributes: Record<string, string[]>, condition: string, label: string): void {
  const labels = (attributes[condition] ??= []);
  if (!labels.includes(label)) labels.push(label);
}

/** A readable title for layouts that ship no product names: the labels in condition order. */
export function titleFromAttributes(
  conditions: readonly string[],
  attributes: Record<string, string[]>,
  fallback: string,
): string {
  const parts = conditions.flatMap((condition) => attributes[condition] ?? []);
  if (parts.length === 0) return fallback;
  const text = parts.join(', ');
  return `${text.charAt(0).toUpperCase()}${text.slice(1)} (${fallback})`;
}

/**
 * Layouts that ship triplet lists but no product split (Farfetch CSN, Zappos): a product used by the triplets of
 * exactly one split belongs to it; products used in several splits, or in none, keep no split.
 */
export function assignSplitsFromTriplets(catalogue: Catalogue): void {
  const seen = new Map<number, Set<string>>();
  for (const [split, triplets] of Object.entries(catalogue.triplets ?? {})) {
    for (const triplet of triplets ?? []) {
      for (const index of [triplet.anchor, triplet.far, triplet.close]) {
        let splits = seen.get(index);
        if (!splits) seen.set(index, (splits = new Set()));
        splits.add(split);
      }
    }
  }
  for (const [index, splits] of seen) {
    if (splits.size === 1) catalogue.products[index].split = [...splits][0] as 'train' | 'val' | 'test';
  }
}
