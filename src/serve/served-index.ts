/**
 * One index version as the HTTP layer uses it: the store's version (a loaded bundle, from either store) plus what is
 * derived from it once at load time
 * (score references, mask summaries, label counts, search text), so that requests only look things up.
 */
import { isAbsolute, resolve } from 'node:path';
import {
  QuantileReference,
  summarizeMask,
  type DistanceReference,
  type MaskSummary,
} from '../explain/index.ts';
import { resolveCondition, type ResolvedCondition, type StoreVersion } from '../index/index.ts';
import type { ModelRunner } from './model/runner.ts';

export interface ValueCount {
  value: string;
  count: number;
}

/** One condition of an index version, resolved once from its name: where it sits in the index and in the model. */
export interface ServedCondition {
  name: string;
  /** Position in the index's condition list (the index explanations use). */
  index: number;
  /** Position in the loaded model's condition list; undefined without a model or when the model lacks it. */
  modelIndex: number | undefined;
}

export class ServedIndex {
  /** The index's conditions in order; requests resolve a condition name to one of these at the edge. */
  readonly conditions: ServedCondition[];
  /** Each condition as a query part of its own: what a request without a condition asks, resolved once. */
  readonly plainConditions: ResolvedCondition[];
  readonly references: DistanceReference[];
  readonly masks: MaskSummary[];
  readonly valueCounts: ValueCount[][];
  /** Live slots in catalogue (slot) order. */
  readonly liveSlots: number[];
  /** Lower-cased id, title and label values of each live slot, for text search. */
  private readonly searchText = new Map<number, string>();
  /** Requests currently holding this version (see IndexHolder). */
  leases = 0;
  retired = false;

  constructor(
    /** The published version being served, from whichever store (same answers from either). */
    readonly store: StoreVersion,
    /** Directory product image paths are relative to, or null when the index does not say and none was given. */
    readonly imageRoot: string | null,
    /** The model this version was built from (uploads and heat maps), when the service runs with one. */
    readonly model?: ModelRunner,
  ) {
    const embedDim = store.info.model.embedDim;
    this.conditions = store.conditions.map((name, index) => {
      const m = model?.description.conditions.indexOf(name) ?? -1;
      return { name, index, modelIndex: m < 0 ? undefined : m };
    });
    this.plainConditions = store.conditions.map((name) => resolveCondition(store, name));
    this.references = store.spaces.map((space) => new QuantileReference(space.quantiles));
    this.masks = store.spaces.map((space) => summarizeMask(space, embedDim));
    const counts = store.conditions.map(() => new Map<string, number>());
    this.liveSlots = [];
    for (const [slot, product] of store.entries()) {
      this.liveSlots.push(slot);
      const words = [product.id, product.title];
      store.conditions.forEach((condition, c) => {
        for (const value of product.attributes[condition] ?? []) {
          counts[c].set(value, (counts[c].get(value) ?? 0) + 1);
          words.push(value);
        }
      });
      this.searchText.set(slot, words.join('\u0000').toLowerCase());
    }
    this.valueCounts = counts.map((map) =>
      [...map]
        .map(([value, count]) => ({ value, count }))
        .sort((a, b) => b.count - a.count || a.value.localeCompare(b.value)),
    );
  }

  get version(): string {
    return this.store.version;
  }

  /** Live slots whose text contains every whitespace-separated term of `query` (all of them for an empty query). */
  search(query: string | undefined): number[] {
    const terms = (query ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    if (terms.length === 0) return this.liveSlots;
    return this.liveSlots.filter((slot) => {
      const text = this.searchText.get(slot) ?? '';
      return terms.every((term) => text.includes(term));
    });
  }

  /** Absolute image path of a product, or null when the catalogue's location is unknown. */
  imagePath(slot: number): string | null {
    if (!this.imageRoot) return null;
    const image = this.store.product(slot).image;
    const path = resolve(this.imageRoot, image);
    // Image paths come from our own catalogue, but never let one point outside the catalogue root.
    if (isAbsolute(image) || !path.startsWith(resolve(this.imageRoot) + '/')) return null;
    return path;
  }
}

/** What the service shows about what it serves (readiness, metrics, page header). */
export interface Provenance {
  modelId: string;
  trainedAt: string | null;
  testAccuracy: number | null;
  refresh: string | null;
}

/** The version's model and provenance; versions written before provenance was recorded say "unknown" (null). */
export function provenanceOf(version: StoreVersion): Provenance {
  const recorded = version.info.provenance;
  return {
    modelId: version.info.model.id,
    trainedAt: recorded?.trainedAt ?? null,
    testAccuracy: recorded?.testAccuracy ?? null,
    refresh: recorded?.refresh ?? null,
  };
}

/** The catalogue root a version records, unless the operator gave another (e.g. images mounted elsewhere). */
export function imageRootFor(version: StoreVersion, override: string | undefined): string | null {
  if (override) return resolve(override);
  return version.info.catalogue?.root ? resolve(version.info.catalogue.root) : null;
}
