/**
 * The embedded hnswlib bundle (the default store) behind the store interface: a thin adapter over IndexBundle and
 * the bundle's manifest. Everything is in memory, so the async methods answer at once.
 */
import { openBundle, type IndexBundle, type OpenBundleOptions } from '../bundle.ts';
import { combinedSearch, type CombinedHit } from '../combine.ts';
import { readManifest } from '../files.ts';
import type { FilterTable, Selection } from '../filter.ts';
import { searchSelected } from '../query.ts';
import { recommend, type RecommendHit } from '../recommend.ts';
import { exactOver } from '../search.ts';
import { pollStore } from './common.ts';
import type {
  CombinedQuery,
  ConditionVectors,
  RecommendQuery,
  StoreFilter,
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

  /** With a filter (even an empty one), the filtered path: HNSW with a filter callback, or exact when few match. */
  async search(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    if (!options.filter) return this.bundle.search(condition, query, k, { exclude: options.exclude });
    const selection = this.selection(options.filter);
    return searchSelected(
      this.bundle,
      this.bundle.conditionIndex(condition),
      query,
      k,
      selection,
      options.exclude,
    );
  }

  async exactSearch(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    if (!options.filter) return this.bundle.exactSearch(condition, query, k, { exclude: options.exclude });
    const space = this.bundle.spaceData(this.bundle.conditionIndex(condition));
    const exclude = new Set(options.exclude ?? []);
    if (typeof query === 'number') exclude.add(query);
    const vector = typeof query === 'number' ? this.bundle.vector(condition, query) : query;
    const neighbours = exactOver(space, vector, k, this.selection(options.filter), exclude);
    return neighbours.map((n) => ({
      index: n.index,
      distance: n.distance,
      id: this.bundle.product(n.index).id,
      score: this.bundle.score(condition, n.distance),
    }));
  }

  async vectors(slots: readonly number[]): Promise<ConditionVectors[]> {
    return slots.map((slot) => this.conditions.map((condition) => this.bundle.vector(condition, slot)));
  }

  filterTable(): FilterTable {
    return this.bundle.filterTable();
  }

  async count(filter?: StoreFilter): Promise<number> {
    return this.selection(filter).count;
  }

  async combinedSearch(query: CombinedQuery): Promise<CombinedHit[]> {
    const parts = query.parts.map((part, p) => ({
      space: this.bundle.spaceData(part.condition),
      weight: part.weight,
      query: query.vectors[p],
    }));
    return combinedSearch(parts, query.k, this.selection(query.filter), new Set(query.exclude ?? []));
  }

  async recommend(query: RecommendQuery): Promise<RecommendHit[]> {
    return recommend({
      parts: query.parts.map((part) => ({
        space: this.bundle.spaceData(part.condition),
        weight: part.weight,
      })),
      positives: query.positives,
      negatives: query.negatives,
      strategy: query.strategy,
      k: query.k,
      selection: this.selection(query.filter),
      liveCount: this.bundle.liveCount,
      efSearch: this.bundle.defaultEfSearch,
    });
  }

  close(): void {
    this.bundle.close();
  }

  /** The live products a filter selects, on the bundle's posting lists (every live product without a filter). */
  private selection(filter: StoreFilter | undefined): Selection {
    const table = this.bundle.filterTable();
    return filter ? table.selectStore(filter) : table.all();
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
