/**
 * The slot plan of a build: which product sits in which slot of the new version, and where each slot's vectors
 * come from (copied from the previous version or embedded now). A full build lays products out densely; an
 * incremental one keeps unchanged products in their slots and edits the previous version's indexes in place,
 * when the previous version was built from the same model and parameters. Pure.
 */
import type { IndexBundle } from './bundle.ts';
import type { BuildParams, BundleSource, ChangeSummary, IndexedProduct, VersionInfo } from './types.ts';

/** Where a final slot's vectors come from. */
export type SlotSource = { previous: number } | { embedded: number } | null;

export interface Layout {
  slots: (IndexedProduct | null)[];
  sources: SlotSource[];
  /** Source product indices to embed, in embedding order (`embedded` refers to positions in this list). */
  toEmbed: number[];
  changes: ChangeSummary;
  /** Slots whose HNSW element must be updated (incremental, in place) and slots to mark deleted. */
  upsert: number[];
  remove: number[];
  inPlace: boolean;
}

export function fullLayout(products: IndexedProduct[]): Layout {
  return {
    slots: [...products],
    sources: products.map((_, i) => ({ embedded: i })),
    toEmbed: products.map((_, i) => i),
    changes: { added: products.length, updated: 0, removed: 0, unchanged: 0, compacted: false },
    upsert: [],
    remove: [],
    inPlace: false,
  };
}

/**
 * Incremental plan: unchanged products keep their slot and vectors, changed ones keep their slot with new vectors,
 * removed ones leave a hole, new ones fill holes (lowest first) then append. When holes would exceed
 * `compactRatio` of the slots, everything is laid out densely again (still without re-embedding unchanged ones).
 */
export function incrementalLayout(
  previous: IndexBundle,
  products: IndexedProduct[],
  compactRatio: number,
): Layout {
  const previousSlots = previous.products;
  const toEmbed: number[] = [];
  const sources: SlotSource[] = previousSlots.map((p, slot) => (p ? { previous: slot } : null));
  const slots: (IndexedProduct | null)[] = [...previousSlots];
  const changes: ChangeSummary = { added: 0, updated: 0, removed: 0, unchanged: 0, compacted: false };
  const upsert: number[] = [];
  const incoming = new Set(products.map((p) => p.id));
  const remove: number[] = [];
  previousSlots.forEach((product, slot) => {
    if (product && !incoming.has(product.id)) {
      slots[slot] = null;
      sources[slot] = null;
      remove.push(slot);
      changes.removed++;
    }
  });
  const free = slots.flatMap((p, slot) => (p ? [] : [slot]));
  let nextFree = 0;
  products.forEach((product, i) => {
    const slot = previous.productIndex(product.id);
    if (slot !== undefined) {
      if (previousSlots[slot]?.fingerprint === product.fingerprint) {
        changes.unchanged++;
        slots[slot] = product;
        return;
      }
      changes.updated++;
      slots[slot] = product;
      sources[slot] = { embedded: toEmbed.length };
      toEmbed.push(i);
      upsert.push(slot);
      return;
    }
    changes.added++;
    const target = nextFree < free.length ? free[nextFree++] : slots.length;
    slots[target] = product;
    sources[target] = { embedded: toEmbed.length };
    toEmbed.push(i);
    upsert.push(target);
  });
  const removedFromIndex = remove.filter((slot) => slots[slot] === null);
  const holes = slots.filter((p) => p === null).length;
  if (holes > 0 && holes > compactRatio * slots.length) {
    const dense = slots.flatMap((p, slot) => (p ? [slot] : []));
    return {
      slots: dense.map((slot) => slots[slot]),
      sources: dense.map((slot) => sources[slot]),
      toEmbed,
      changes: { ...changes, compacted: true },
      upsert: [],
      remove: [],
      inPlace: false,
    };
  }
  return { slots, sources, toEmbed, changes, upsert, remove: removedFromIndex, inPlace: true };
}

/**
 * True when a product keeps its vectors but its fields changed (price, stock): fields stay out of the fingerprint,
 * so nothing is re-embedded, but the new values must still be published.
 */
export function fieldsChanged(previous: IndexBundle, slots: readonly (IndexedProduct | null)[]): boolean {
  return slots.some(
    (product, slot) =>
      product !== null &&
      JSON.stringify(product.fields ?? {}) !== JSON.stringify(previous.products[slot]?.fields ?? {}),
  );
}

/** Why the current version cannot be edited in place for this source, or null when it can. */
export function incompatibility(info: VersionInfo, source: BundleSource, params: BuildParams): string | null {
  if (info.model.id !== source.modelId) return 'the model changed';
  if (info.model.kind !== source.modelKind || info.model.embedDim !== source.embedDim)
    return 'the model kind changed';
  if (info.conditions.join('\n') !== source.conditions.join('\n')) return 'the conditions changed';
  if (info.params.m !== params.m || info.params.efConstruction !== params.efConstruction) {
    return 'M or efConstruction changed';
  }
  if (info.params.maskThreshold !== params.maskThreshold) return 'the mask threshold changed';
  return null;
}
