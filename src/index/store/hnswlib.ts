/**
 * The embedded hnswlib bundle (the default store) behind the store interface: a thin adapter over IndexBundle and
 * the bundle's manifest. Everything is in memory, so the async methods answer at once.
 */
import { openBundle, type IndexBundle, type OpenBundleOptions } from '../bundle.ts';
import { readManifest } from '../files.ts';
import { rowDistance } from '../vectors.ts';
import { matchesFilter, pollStore } from './common.ts';
import type {
  ConditionVectors,
  StoreFieldType,
  StoreHit,
  StoreInfo,
  StoreProduct,
  StoreQuery,
  StoreSearchOptions,
  StoreSpace,
  StoreSwap,
  StoreVersion,
  VectorStore,
} from './types.ts';

export class HnswVersion implements StoreVersion {
  readonly kind = 'hnswlib' as const;
  readonly info: StoreInfo;

  constructor(readonly bundle: IndexBundle) {
    const fields = (bundle.info as { fields?: Record<string, StoreFieldType> }).fields ?? {};
    this.info = { ...bundle.info, fields };
  }

  get version(): string {
    return this.bundle.version;
  }
  get conditions(): readonly string[] {
    return this.bundle.conditions;
  }
  get spaces(): readonly StoreSpace[] {
    return this.bundle.spaces;
  }
  get liveCount(): number {
    return this.bundle.liveCount;
  }
  productIndex(id: string): number | undefined {
    return this.bundle.productIndex(id);
  }
  product(slot: number): StoreProduct {
    return this.bundle.product(slot);
  }
  entries(): IterableIterator<[number, StoreProduct]> {
    return this.bundle.entries();
  }
  fromEmbedding(condition: string, embedding: ArrayLike<number>): Float32Array {
    return this.bundle.fromEmbedding(condition, embedding);
  }
  fromConditionVector(condition: string, vector: ArrayLike<number>): Float32Array {
    return this.bundle.fromConditionVector(condition, vector);
  }
  score(condition: string, distance: number): number {
    return this.bundle.score(condition, distance);
  }

  async search(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    if (options.filter) return this.filteredScan(condition, query, k, options);
    return this.bundle.search(condition, query, k, { exclude: options.exclude });
  }

  async exactSearch(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    if (options.filter) return this.filteredScan(condition, query, k, options);
    return this.bundle.exactSearch(condition, query, k, { exclude: options.exclude });
  }

  async vectors(slots: readonly number[]): Promise<ConditionVectors[]> {
    return slots.map((slot) => this.conditions.map((condition) => this.bundle.vector(condition, slot)));
  }

  close(): void {
    this.bundle.close();
  }

  /** Exact search over the products matching the filter (correct at every selectivity). */
  private filteredScan(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions,
  ): StoreHit[] {
    const space = this.bundle.space(condition);
    const d = space.dims.length;
    const exclude = new Set(options.exclude ?? []);
    if (typeof query === 'number') exclude.add(query);
    const vector = typeof query === 'number' ? this.bundle.vector(condition, query) : query;
    const hits: { index: number; distance: number }[] = [];
    for (const [slot, product] of this.bundle.entries()) {
      if (exclude.has(slot) || !matchesFilter(options.filter, product)) continue;
      hits.push({
        index: slot,
        distance: rowDistance(this.bundle.vector(condition, slot), d, 0, vector, space.metric),
      });
    }
    hits.sort((a, b) => a.distance - b.distance || a.index - b.index);
    return hits.slice(0, k).map((hit) => ({
      ...hit,
      id: this.bundle.product(hit.index).id,
      score: this.bundle.score(condition, hit.distance),
    }));
  }
}

/** A bundle directory as a VectorStore. */
export class HnswStore implements VectorStore {
  readonly kind = 'hnswlib' as const;

  constructor(
    readonly location: string,
    private readonly options: OpenBundleOptions = {},
  ) {}

  async publishedVersion(): Promise<string | null> {
    const manifest = await readManifest(this.location);
    return manifest?.current ?? null;
  }

  async open(): Promise<StoreVersion> {
    return new HnswVersion(await openBundle(this.location, this.options));
  }

  subscribe(
    onSwap: (swap: StoreSwap) => void,
    options: { intervalMs?: number; onError?: (error: Error) => void; from?: string | null } = {},
  ): () => void {
    return pollStore(this, options.from ?? null, onSwap, options);
  }

  close(): void {}
}
