/**
 * Serving from LanceDB: the published version's table on local disk or object storage (s3://, gs://, az://; the
 * credentials come from the object store's usual environment variables), shared by any number of stateless
 * readers. Product rows (ids, titles, labels, fields) are loaded once per version; vectors stay in the table and
 * are fetched per query, so a replica's memory does not grow with the vectors.
 */
import * as lancedb from '@lancedb/lancedb';
import { LRUCache } from 'lru-cache';
import { combinedSearch, type CombinedHit } from '../combine.ts';
import { FilterTable } from '../filter.ts';
import { averageHits, averageQuery, recommend, type RecommendHit } from '../recommend.ts';
import { BundleError } from '../types.ts';
import { exactSearch } from '../vectors.ts';
import {
  answerQuery,
  matchesFilter,
  pollStore,
  queryFromConditionVector,
  queryFromEmbedding,
  scoreOf,
} from './common.ts';
import { currentManifestRow, openManifest, readManifestRows, type ManifestRow } from './lance-manifest.ts';
import { annSearch, filterToSql, takeVectors } from './lance-query.ts';
import { scanRows, ScanView } from './lance-scan.ts';
import { PRODUCT_COLUMNS, productFromRow, readTableMetadata, type TableMetadata } from './lance-schema.ts';
import type {
  CombinedQuery,
  ConditionVectors,
  QueryHit,
  RecommendQuery,
  StoreFilter,
  StoreHit,
  StoreInfo,
  StoreProduct,
  StoreQuery,
  StoreSearchOptions,
  StoreSpace,
  StoreSwap,
  StoreVersion,
  VectorStore,
  VersionQuery,
  WeightedCondition,
} from './types.ts';

/**
 * With a filter matching at most this share of the rows, search scans the matching rows exactly instead of
 * walking the graph: a prefiltered HNSW walk has to visit many non-matching nodes to find k matching ones.
 */
const EXACT_FILTER_SHARE = 0.02;

/**
 * Product vectors kept per loaded version (all conditions of a product, ~6 x 28 floats = 0.7 kB): a query by product
 * and the explanations of its neighbours then need no extra round trip for products asked about recently.
 */
const VECTOR_CACHE_PRODUCTS = 20_000;

/**
 * Match counts kept per loaded version, by prefilter text (a version never changes, so a count stays true). The
 * count decides between the graph walk and the exact scan, and answers `matching`. LanceDB counts with the same SQL
 * as the prefilter (`countRows(where)`), so the count and the prefiltered search cannot disagree (exact k relies on
 * it). Measured at 100k products, load average 6-10 (bench/results/store-compare-100k.md): 4.6-9.4 ms a new filter,
 * against 11-23 ms for the JavaScript pass over the product objects it replaces; the in-memory FilterTable would
 * take 2-3 ms but is a second evaluator of the same filter, and a repeated filter costs nothing here.
 */
const COUNT_CACHE_FILTERS = 1000;

type ProductRow = Parameters<typeof productFromRow>[0] & { slot: number };

async function loadProducts(table: lancedb.Table, where: string): Promise<StoreProduct[]> {
  const rows = (await table.query().select(PRODUCT_COLUMNS).toArray()) as ProductRow[];
  rows.forEach((row, i) => {
    if (row.slot !== i)
      throw new BundleError('corrupt', where, `row ${i} holds slot ${row.slot}: rows out of slot order`);
  });
  return rows.map(productFromRow);
}

export class LanceVersion implements StoreVersion {
  readonly kind = 'lancedb' as const;
  readonly conditions: readonly string[];
  readonly spaces: readonly StoreSpace[];
  private readonly slotOfId = new Map<string, number>();
  private readonly cache = new LRUCache<number, ConditionVectors>({ max: VECTOR_CACHE_PRODUCTS });
  private readonly counts = new LRUCache<string, Promise<number>>({ max: COUNT_CACHE_FILTERS });
  private filters: FilterTable | undefined;
  private closed = false;

  constructor(
    private readonly table: lancedb.Table,
    readonly info: StoreInfo,
    private readonly meta: TableMetadata,
    private readonly products: readonly StoreProduct[],
  ) {
    this.conditions = info.conditions;
    this.spaces = info.spaces;
    products.forEach((product, slot) => this.slotOfId.set(product.id, slot));
  }

  get version(): string {
    return this.info.version;
  }

  get liveCount(): number {
    return this.products.length;
  }

  productIndex(id: string): number | undefined {
    return this.slotOfId.get(id);
  }

  product(slot: number): StoreProduct {
    const product = this.products[slot];
    if (!product) throw new RangeError(`no product in slot ${slot} of index version ${this.version}`);
    return product;
  }

  *entries(): IterableIterator<[number, StoreProduct]> {
    for (let slot = 0; slot < this.products.length; slot++) yield [slot, this.products[slot]];
  }

  fromEmbedding(condition: string, embedding: ArrayLike<number>): Float32Array {
    return queryFromEmbedding(this.info, condition, embedding);
  }

  fromConditionVector(condition: string, vector: ArrayLike<number>): Float32Array {
    return queryFromConditionVector(this.info, condition, vector);
  }

  score(condition: string, distance: number): number {
    return scoreOf(this.info, condition, distance);
  }

  /** Neighbours, filtered, combined or recommended (the store's one query; common.ts). */
  query(query: VersionQuery): Promise<QueryHit[]> {
    return answerQuery(this, query);
  }

  async search(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    return this.find(this.conditionIndex(condition), query, k, options, false);
  }

  async exactSearch(
    condition: string,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions = {},
  ): Promise<StoreHit[]> {
    return this.find(this.conditionIndex(condition), query, k, options, true);
  }

  /** k nearest under condition c: a prefiltered index walk, or an exact scan when few match (see find). */
  nearest(
    c: number,
    from: StoreQuery,
    k: number,
    filter: StoreFilter | undefined,
    options: { exclude?: Iterable<number> } = {},
  ): Promise<StoreHit[]> {
    return this.find(c, from, k, { filter, exclude: options.exclude }, false);
  }

  async vectors(slots: readonly number[]): Promise<ConditionVectors[]> {
    this.checkOpen();
    for (const slot of slots) this.product(slot);
    const found = new Map<number, ConditionVectors>();
    for (const slot of slots) {
      const cached = this.cache.get(slot);
      if (cached) found.set(slot, cached);
    }
    const missing = [...new Set(slots.filter((slot) => !found.has(slot)))];
    if (missing.length > 0) {
      const rows = await takeVectors(this.table, missing, this.conditions.length);
      missing.forEach((slot, i) => {
        found.set(slot, rows[i]);
        this.cache.set(slot, rows[i]);
      });
    }
    return slots.map((slot) => found.get(slot)!);
  }

  filterTable(): FilterTable {
    this.filters ??= new FilterTable(this.products, this.conditions, this.info.fields);
    return this.filters;
  }

  async count(filter?: StoreFilter): Promise<number> {
    this.checkOpen();
    const where = filterToSql(filter, this.conditions, this.meta.fieldOrder);
    if (where === undefined) return this.products.length;
    // The promise is kept, so concurrent queries with one filter (all conditions of a request) count once.
    let count = this.counts.get(where);
    if (count === undefined) {
      count = this.table.countRows(where);
      this.counts.set(where, count);
      count.catch(() => this.counts.delete(where));
    }
    return count;
  }

  /** Exact over the rows LanceDB's prefilter lets through (as on the bundle: no index per combination). */
  async combinedSearch(query: CombinedQuery): Promise<CombinedHit[]> {
    const view = await this.scan(query.parts, query.filter, new Set(query.exclude ?? []));
    const parts = query.parts.map((part, p) => ({
      space: view.space(part.condition),
      weight: part.weight,
      query: query.vectors[p],
    }));
    return combinedSearch(parts, query.k, view.selection).map((hit) => ({
      ...hit,
      index: view.slots[hit.index],
    }));
  }

  /**
   * `average` with one part walks the index with the prefilter, as the bundle walks its graph; `best` and combined
   * parts are exact over the prefiltered rows, as on the bundle. The examples get rows of their own, filtered out
   * or not.
   */
  async recommend(query: RecommendQuery): Promise<RecommendHit[]> {
    if (query.strategy === 'average' && query.parts.length === 1) return this.recommendByWalk(query);
    const examples = [...new Set([...query.positives, ...query.negatives])].sort((a, b) => a - b);
    const vectors = await this.vectors(examples);
    const extra = examples.map((slot, i) => ({ slot, vectors: vectors[i] }));
    const view = await this.scan(query.parts, query.filter, new Set(examples), extra);
    const hits = recommend({
      parts: query.parts.map((part) => ({ space: view.space(part.condition), weight: part.weight })),
      positives: query.positives.map((slot) => view.rowOf(slot)),
      negatives: query.negatives.map((slot) => view.rowOf(slot)),
      strategy: query.strategy,
      k: query.k,
      selection: view.selection,
      liveCount: this.products.length,
      efSearch: this.meta.index.ef,
    });
    return hits.map((hit) => ({
      ...hit,
      index: view.slots[hit.index],
      closestPositive: view.slots[hit.closestPositive],
    }));
  }

  /**
   * The query point mean(pos) + (mean(pos) - mean(neg)) searched like any vector (prefilter, graph walk, exact k):
   * an unfiltered scan of every row took 785 ms at 100k products (bench/results/store-compare-100k.md).
   */
  private async recommendByWalk(query: RecommendQuery): Promise<RecommendHit[]> {
    const { condition: c, weight } = query.parts[0];
    const { metric } = this.spaces[c];
    const d = this.spaces[c].dims.length;
    const examples = [...new Set([...query.positives, ...query.negatives])].sort((a, b) => a - b);
    const rowsOf = async (slots: readonly number[]): Promise<Float32Array> => {
      const rows = new Float32Array(slots.length * d);
      (await this.vectors(slots)).forEach((vectors, i) => rows.set(vectors[c], i * d));
      return rows;
    };
    const exampleRows = await rowsOf(examples);
    const row = (slot: number) => examples.indexOf(slot);
    const point = averageQuery(
      { metric, d, rows: exampleRows, index: null },
      query.positives.map(row),
      query.negatives.map(row),
    );
    const found = await this.find(c, point, query.k, { filter: query.filter, exclude: examples }, false);
    // Rows: the examples, then the hits, each in slot order (ties then break as by slot). The hits are re-ranked
    // against the float64 point as the bundle's exact search ranks them (LanceDB was queried with a float32 copy).
    const hitSlots = found.map((hit) => hit.index).sort((a, b) => a - b);
    const hitRows = await rowsOf(hitSlots);
    const rows = new Float32Array((examples.length + hitSlots.length) * d);
    rows.set(exampleRows);
    rows.set(hitRows, exampleRows.length);
    const slotOfRow = [...examples, ...hitSlots];
    const ranked = exactSearch(hitRows, d, point, hitSlots.length, metric).map((n) => ({
      index: examples.length + n.index,
      distance: n.distance,
    }));
    const parts = [{ space: { metric, d, rows, index: null }, weight }];
    return averageHits(parts, query.positives.map(row), ranked).map((hit) => ({
      ...hit,
      index: slotOfRow[hit.index],
      closestPositive: slotOfRow[hit.closestPositive],
    }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.table.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`index version ${this.version} is closed`);
  }

  /** The prefiltered rows of the parts' conditions, plus `extra` rows, as the pure search functions take them. */
  private async scan(
    parts: readonly WeightedCondition[],
    filter: StoreFilter | undefined,
    exclude: ReadonlySet<number>,
    extra: readonly { slot: number; vectors: ConditionVectors }[] = [],
  ): Promise<ScanView> {
    this.checkOpen();
    const spaces = [...new Set(parts.map((part) => part.condition))].map((c) => ({
      c,
      d: this.spaces[c].dims.length,
      metric: this.spaces[c].metric,
    }));
    const where = filterToSql(filter, this.conditions, this.meta.fieldOrder);
    return new ScanView(await scanRows(this.table, spaces, where, extra.length), spaces, exclude, extra);
  }

  private conditionIndex(condition: string): number {
    const c = this.conditions.indexOf(condition);
    if (c < 0)
      throw new RangeError(
        `unknown condition ${JSON.stringify(condition)}; this index has ${this.conditions.join(', ')}`,
      );
    return c;
  }

  private async find(
    c: number,
    query: StoreQuery,
    k: number,
    options: StoreSearchOptions,
    exact: boolean,
  ): Promise<StoreHit[]> {
    this.checkOpen();
    const condition = this.conditions[c];
    const exclude = new Set(options.exclude ?? []);
    let vector: ArrayLike<number>;
    if (typeof query === 'number') {
      exclude.add(query);
      vector = (await this.vectors([query]))[0][c];
    } else {
      if (query.length !== this.spaces[c].dims.length) {
        throw new RangeError(
          `query for ${condition} has ${query.length} dims, the space keeps ${this.spaces[c].dims.length}`,
        );
      }
      vector = query;
    }
    const where = filterToSql(options.filter, this.conditions, this.meta.fieldOrder);
    // How many results are possible: matching products minus the excluded ones among them.
    const possible = await this.count(options.filter);
    const excludedMatching = [...exclude].filter(
      (slot) => this.products[slot] && matchesFilter(options.filter, this.products[slot]),
    ).length;
    const wanted = Math.max(0, Math.min(k, possible - excludedMatching));
    if (wanted === 0) return [];
    const scan =
      exact || (options.filter !== undefined && possible <= EXACT_FILTER_SHARE * this.products.length);
    const run = async (useExact: boolean) =>
      (
        await annSearch(this.table, {
          c,
          metric: this.spaces[c].metric,
          vector,
          limit: wanted + exclude.size,
          params: this.meta.index,
          where,
          exact: useExact,
        })
      )
        .filter((hit) => !exclude.has(hit.slot))
        .slice(0, wanted);
    let hits = await run(scan);
    // Exact k: a prefiltered graph walk can come back short; the exact scan over the matching rows cannot.
    if (hits.length < wanted && !scan) hits = await run(true);
    return hits.map((hit) => ({
      index: hit.slot,
      id: this.products[hit.slot].id,
      distance: hit.distance,
      score: scoreOf(this.info, condition, hit.distance),
    }));
  }
}

export interface LanceStoreOptions {
  /** Passed to lancedb.connect (object-store settings beyond the environment variables). */
  storageOptions?: Record<string, string>;
  /** Refuse versions built from another model (the checkpoint the service runs). */
  expectedModelId?: string;
}

/** A LanceDB database holding dressmatch versions, as a VectorStore. */
export class LanceStore implements VectorStore {
  readonly kind = 'lancedb' as const;
  private manifest: lancedb.Table | null = null;

  private constructor(
    readonly location: string,
    private readonly db: lancedb.Connection,
    private readonly options: LanceStoreOptions,
  ) {}

  static async connect(uri: string, options: LanceStoreOptions = {}): Promise<LanceStore> {
    const db = await lancedb.connect(
      uri,
      options.storageOptions ? { storageOptions: options.storageOptions } : {},
    );
    return new LanceStore(uri, db, options);
  }

  private async currentRow(): Promise<ManifestRow | null> {
    this.manifest ??= await openManifest(this.db);
    if (!this.manifest) return null;
    return (await readManifestRows(this.manifest)).at(-1) ?? null;
  }

  async publishedVersion(): Promise<string | null> {
    return (await this.currentRow())?.version ?? null;
  }

  async open(): Promise<StoreVersion> {
    const row = await this.currentRow();
    if (!row) {
      throw new BundleError(
        'not-found',
        this.location,
        'no index has been published here yet (run `dressmatch index --store lancedb`)',
      );
    }
    const info = JSON.parse(row.info) as StoreInfo;
    if (this.options.expectedModelId !== undefined && info.model.id !== this.options.expectedModelId) {
      throw new BundleError(
        'model-mismatch',
        `${this.location}#${row.table}`,
        `built from model ${info.model.id.slice(0, 12)}, but the model in use is ${this.options.expectedModelId.slice(0, 12)}`,
      );
    }
    const where = `${this.location}#${row.table}`;
    const table = await this.db.openTable(row.table);
    try {
      const meta = readTableMetadata(await table.schema(), where);
      if (meta.model.id !== info.model.id || meta.version !== info.version) {
        throw new BundleError('corrupt', where, 'the table does not hold the version the manifest names');
      }
      const products = await loadProducts(table, where);
      if (products.length !== meta.rows)
        throw new BundleError('corrupt', where, `expected ${meta.rows} rows, found ${products.length}`);
      return new LanceVersion(table, info, meta, products);
    } catch (error) {
      table.close();
      throw error;
    }
  }

  subscribe(
    onSwap: (swap: StoreSwap) => void,
    options: { intervalMs?: number; onError?: (error: Error) => void; from?: string | null } = {},
  ): () => void {
    return pollStore(this, options.from ?? null, onSwap, options);
  }

  close(): void {
    this.manifest?.close();
    this.db.close();
  }
}

/** The published version of a LanceDB database, or null (for `index-info` style checks). */
export async function publishedLanceVersion(uri: string): Promise<string | null> {
  const db = await lancedb.connect(uri);
  try {
    return (await currentManifestRow(db))?.version ?? null;
  } finally {
    db.close();
  }
}
