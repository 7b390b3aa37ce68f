/**
 * One interface in front of every place a published index can live: a hnswlib bundle directory (the default) and
 * a LanceDB database on shared storage whose manifest names the bundle version published next to its tables. The
 * service talks only to these types; on both, a version is a loaded bundle (bundle.ts), so either store gives the
 * same answers: same products, same condition spaces, same distances, hence the same explanations.
 *
 * A store holds a sequence of published versions. A `StoreVersion` is one of them, immutable and complete; a
 * reader never sees half of a version. Queries are async so that a version could also answer over I/O.
 */
import type { ConditionSpace, ModelKind } from '../../model/index.ts';
import type { PartDistance } from '../combine.ts';
import type { FilterTable } from '../filter.ts';
import type { RecommendStrategy } from '../recommend.ts';
import type { BuildParams, ConditionQuality, IndexedProduct, ModelProvenance } from '../types.ts';
import type { StoreKind } from '../defaults.ts';
import type { StoreFieldValue, StoreFilter } from './filter-clauses.ts';
import type { Metric } from '../vectors.ts';

export { STORE_KINDS, type StoreKind } from '../defaults.ts';

/** A product field's value (price, in_stock, brand...), as the catalogue's `fields` hold them. */
export type StoreFieldType = 'string' | 'number' | 'boolean';

/** A product as a store returns it: the bundle's product plus its filterable fields, when the catalogue has any. */
export interface StoreProduct extends IndexedProduct {
  fields?: Record<string, StoreFieldValue>;
}

/** A condition's space as every store records it: which dims, which weights, distance quantiles, measured quality. */
export interface StoreSpace extends ConditionSpace {
  /** Distance at 0%, 1%, ..., 100% of random product pairs (Euclidean for l2, 1 - cosine for cosine). */
  quantiles: number[];
  quality: ConditionQuality;
}

/** What a published version is: the model behind it, its conditions and spaces, and how it was built. */
export interface StoreInfo {
  version: string;
  createdAt: string;
  /** `checkpoint`: the model's file in the version's bundle directory, when the job copied one. */
  model: { id: string; kind: ModelKind; embedDim: number; checkpoint?: string };
  catalogue: { name: string; root: string } | null;
  conditions: string[];
  /** Full masks, one row per condition (all ones for models without masks). */
  masks: number[][];
  params: BuildParams;
  spaces: StoreSpace[];
  /** Field name -> type of the products' filterable fields (empty when the catalogue has none). */
  fields: Record<string, StoreFieldType>;
  /** Who trained the model and which refresh published it (absent in versions written before it was recorded). */
  provenance?: ModelProvenance | null;
}

export type { FilterClause, StoreFieldValue, StoreFilter } from './filter-clauses.ts';

/** A query: an indexed product (its slot; the product itself is left out of the results) or a vector. */
export type StoreQuery = number | ArrayLike<number>;

/** What an in-memory store answers at once and a remote one over I/O. */
export type Awaitable<T> = T | Promise<T>;

export interface StoreSearchOptions {
  /** Slots to leave out of the results. */
  exclude?: Iterable<number>;
  /** Only products matching this filter (exact k when at least k match). */
  filter?: StoreFilter;
}

export interface StoreHit {
  /** Slot of the product. */
  index: number;
  id: string;
  /** Exact distance in the condition's space (Euclidean for l2, 1 - cosine for cosine). */
  distance: number;
  /** Fraction of random product pairs that are farther apart under this condition, in [0, 1]. */
  score: number;
}

/** A part of a combined condition: the condition's position and the weight the search uses (see combine.ts). */
export interface WeightedCondition {
  condition: number;
  weight: number;
}

/** Exact k nearest under a weighted sum of condition spaces (combine.ts), among the products matching `filter`. */
export interface CombinedQuery {
  parts: readonly WeightedCondition[];
  /** The query's vector in each part's condition space, in part order. */
  vectors: readonly ArrayLike<number>[];
  k: number;
  filter?: StoreFilter;
  /** Slots never returned (the query product). */
  exclude?: Iterable<number>;
}

/** Recommendations from example slots (recommend.ts); the examples are never returned. */
export interface RecommendQuery {
  parts: readonly WeightedCondition[];
  positives: readonly number[];
  negatives: readonly number[];
  strategy: RecommendStrategy;
  k: number;
  filter?: StoreFilter;
}

/**
 * Where a query starts: a catalogue product (its slot, left out of the results), the query's vector in every
 * condition space (indexed by condition; an upload), or recommendation examples (slots, never returned).
 */
export type QueryOrigin =
  | { slot: number }
  | { vectors: readonly ArrayLike<number>[] }
  | { positives: readonly number[]; negatives: readonly number[]; strategy: RecommendStrategy };

/**
 * The one query every answer about neighbours goes through. One part is one condition's own search (HNSW, or the
 * filtered path when a filter is given, even an empty one); several parts rank exactly by their weighted sum
 * (combine.ts); examples rank by recommend.ts. The weights are the effective ones (`resolveCondition`).
 */
export interface VersionQuery {
  parts: readonly WeightedCondition[];
  from: QueryOrigin;
  k: number;
  filter?: StoreFilter;
  /** Slots never returned, besides the query's own (checks). */
  exclude?: Iterable<number>;
  /** Hand back each hit's vector in every condition space (what an explanation compares). */
  explain?: boolean;
}

export interface QueryHit {
  /** Slot of the product. */
  index: number;
  id: string;
  /** One part: that space's exact distance; several: the combined key distance; examples: see RecommendHit. */
  distance: number;
  /** Each part's own distance and share of the combined distance, in part order. */
  parts: PartDistance[];
  /** Examples only: ranking value (lower first) and the nearest positive example. */
  rankValue?: number;
  closestPositive?: { index: number; id: string; distance: number };
  /** With `explain`: the hit's vector in every condition space. */
  vectors?: ConditionVectors;
}

/** One product's vector in every condition space, in condition order. */
export type ConditionVectors = Float32Array[];

/** One published version of a store: immutable, complete, and answering queries until closed. */
export interface StoreVersion {
  readonly kind: StoreKind;
  readonly version: string;
  readonly info: StoreInfo;
  readonly conditions: readonly string[];
  readonly spaces: readonly StoreSpace[];
  readonly liveCount: number;
  productIndex(id: string): number | undefined;
  product(slot: number): StoreProduct;
  /** Live products with their slots, in slot order. */
  entries(): IterableIterator<[number, StoreProduct]>;
  /** A query vector for a condition from a shared embedding (CSN, unconditional). */
  fromEmbedding(condition: string, embedding: ArrayLike<number>): Float32Array;
  /** A query vector for a condition from the model's condition vector (mask already applied / ASEN vector). */
  fromConditionVector(condition: string, vector: ArrayLike<number>): Float32Array;
  /** Score in [0, 1] of a distance under a condition. */
  score(condition: string, distance: number): number;
  /** Neighbours, filtered, combined or recommended: what the service asks (see VersionQuery). */
  query(query: VersionQuery): Promise<QueryHit[]>;
  /** Approximate k nearest products under a condition, nearest first, with exact distances (checks and tools). */
  search(
    condition: string,
    query: StoreQuery,
    k: number,
    options?: StoreSearchOptions,
  ): Awaitable<StoreHit[]>;
  /** Exact k nearest products by brute force (checks and tests). */
  exactSearch(
    condition: string,
    query: StoreQuery,
    k: number,
    options?: StoreSearchOptions,
  ): Awaitable<StoreHit[]>;
  /** Every condition vector of each slot, in the order asked (explanations need all conditions of a pair). */
  vectors(slots: readonly number[]): Promise<ConditionVectors[]>;
  /** Labels and fields as filter columns (the names, labels and field types filters may use), built once. */
  filterTable(): FilterTable;
  /** How many live products match `filter` (all of them without one). */
  count(filter?: StoreFilter): Promise<number>;
  close(): void;
}

/** A new version became the published one. */
export interface StoreSwap {
  previous: StoreVersion | undefined;
  current: StoreVersion;
}

/** Where versions are published: the service opens the current one and follows new ones. */
export interface VectorStore {
  readonly kind: StoreKind;
  /** Directory or URI of the store, for logs. */
  readonly location: string;
  /** Name of the published version (cheap: what a poller compares), or null when nothing is published yet. */
  publishedVersion(): Promise<string | null>;
  /** Open the published version. */
  open(): Promise<StoreVersion>;
  /** The model checkpoint the published version carries (a file in its bundle version), if its job copied one. */
  publishedModelFile(): Promise<string | undefined>;
  /**
   * Poll for new versions every `intervalMs`; each newly published one is opened and handed to `onSwap`
   * (the previous one is not closed here: its holder closes it once no request uses it). `from` is the version
   * the caller already serves (not handed over again). Returns a stop function.
   */
  subscribe(
    onSwap: (swap: StoreSwap) => void,
    options?: { intervalMs?: number; onError?: (error: Error) => void; from?: string | null },
  ): () => void;
  close(): void;
}

export type { Metric };
