/**
 * What every store does the same way: the one query (`answerQuery`) over each store's own searches, query vectors
 * from model outputs, scores from quantiles, filters evaluated over loaded products, and polling for newly
 * published versions.
 */
import type { CombinedHit } from '../combine.ts';
import type { RecommendHit } from '../recommend.ts';
import { normalizeRows, scoreFromQuantiles, type Neighbour } from '../vectors.ts';
import type {
  Awaitable,
  CombinedQuery,
  ConditionVectors,
  FilterClause,
  QueryHit,
  RecommendQuery,
  StoreQuery,
  VersionQuery,
  StoreFilter,
  StoreInfo,
  StoreProduct,
  StoreSpace,
  StoreSwap,
  StoreVersion,
  VectorStore,
} from './types.ts';

export function spaceOf(spaces: readonly StoreSpace[], condition: string): StoreSpace {
  const space = spaces.find((s) => s.condition === condition);
  if (!space) {
    throw new RangeError(
      `unknown condition ${JSON.stringify(condition)}; this index has ${spaces.map((s) => s.condition).join(', ')}`,
    );
  }
  return space;
}

/** Query vector from a shared embedding: the space's dims times its weights (unit length for cosine spaces). */
export function queryFromEmbedding(
  info: StoreInfo,
  condition: string,
  embedding: ArrayLike<number>,
): Float32Array {
  const space = spaceOf(info.spaces, condition);
  if (embedding.length !== info.model.embedDim) {
    throw new RangeError(`embedding has ${embedding.length} dims, the model ${info.model.embedDim}`);
  }
  const out = Float32Array.from(space.dims, (d, k) => embedding[d] * space.weights[k]);
  return space.metric === 'cosine' ? normalizeRows(out, out.length) : out;
}

/** Query vector from the model's condition vector (mask already applied): only the kept dims are picked. */
export function queryFromConditionVector(
  info: StoreInfo,
  condition: string,
  vector: ArrayLike<number>,
): Float32Array {
  const space = spaceOf(info.spaces, condition);
  if (vector.length !== info.model.embedDim) {
    throw new RangeError(`condition vector has ${vector.length} dims, the model ${info.model.embedDim}`);
  }
  const out = Float32Array.from(space.dims, (d) => vector[d]);
  return space.metric === 'cosine' ? normalizeRows(out, out.length) : out;
}

export function scoreOf(info: StoreInfo, condition: string, distance: number): number {
  return scoreFromQuantiles(spaceOf(info.spaces, condition).quantiles, distance);
}

function clauseHolds(clause: FilterClause, product: StoreProduct): boolean {
  if (clause.kind === 'label') {
    const labels = product.attributes[clause.condition] ?? [];
    return clause.values.some((value) => labels.includes(value));
  }
  const value = product.fields?.[clause.field];
  if (clause.kind === 'equals') return value !== undefined && clause.values.includes(value);
  if (typeof value !== 'number') return false;
  return clause.comparisons.some(({ op, value: bound }) =>
    op === '<' ? value < bound : op === '<=' ? value <= bound : op === '>' ? value > bound : value >= bound,
  );
}

/** The filter as a predicate over products (what the hnswlib store filters with, and how tests check results). */
export function matchesFilter(filter: StoreFilter | undefined, product: StoreProduct): boolean {
  return !filter || filter.clauses.every((clause) => clauseHolds(clause, product));
}

/**
 * Poll a store for newly published versions: open each new one and hand it over. A version that fails to open is
 * reported once and not retried until another one is published; the previous one keeps being served meanwhile.
 */
export function pollStore(
  store: VectorStore,
  initial: string | null,
  onSwap: (swap: StoreSwap) => void,
  options: { intervalMs?: number; onError?: (error: Error) => void } = {},
): () => void {
  let seen = initial;
  let current: StoreVersion | undefined;
  let busy = false;
  let stopped = false;
  const tick = async (): Promise<void> => {
    if (busy || stopped) return;
    busy = true;
    try {
      const published = await store.publishedVersion();
      if (published === null || published === seen) return;
      seen = published;
      const next = await store.open();
      if (stopped) return next.close();
      const previous = current;
      current = next;
      onSwap({ previous, current: next });
    } catch (error) {
      options.onError?.(error as Error);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), options.intervalMs ?? 1000);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
  };
}

/** The searches a store runs itself; `answerQuery` makes the one query of them. */
export interface QueryEngine {
  product(slot: number): StoreProduct;
  vectors(slots: readonly number[]): Promise<ConditionVectors[]>;
  /** k nearest under condition c from a slot (left out) or a vector; the filtered path when a filter is given. */
  nearest(
    c: number,
    from: StoreQuery,
    k: number,
    filter: StoreFilter | undefined,
    options?: { exclude?: Iterable<number> },
  ): Awaitable<Neighbour[]>;
  combinedSearch(query: CombinedQuery): Awaitable<CombinedHit[]>;
  recommend(query: RecommendQuery): Awaitable<RecommendHit[]>;
}

/** A store's answer to a VersionQuery: the search its origin and parts call for, with ids (and vectors). */
export async function answerQuery(engine: QueryEngine, query: VersionQuery): Promise<QueryHit[]> {
  const hits = await rankedHits(engine, query);
  if (query.explain) {
    const vectors = await engine.vectors(hits.map((hit) => hit.index));
    hits.forEach((hit, i) => (hit.vectors = vectors[i]));
  }
  return hits;
}

async function rankedHits(engine: QueryEngine, query: VersionQuery): Promise<QueryHit[]> {
  const { parts, from, k, filter, exclude = [] } = query;
  const id = (slot: number) => engine.product(slot).id;
  if ('positives' in from) {
    const hits = await engine.recommend({ ...from, parts, k, filter });
    return hits.map((hit) => ({
      index: hit.index,
      id: id(hit.index),
      distance: hit.distance,
      parts: hit.parts,
      rankValue: hit.rankValue,
      closestPositive: {
        index: hit.closestPositive,
        id: id(hit.closestPositive),
        distance: hit.closestPositiveDistance,
      },
    }));
  }
  if (parts.length === 1) {
    const c = parts[0].condition;
    const hits = await engine.nearest(c, 'slot' in from ? from.slot : from.vectors[c], k, filter, {
      exclude,
    });
    return hits.map((hit) => ({
      index: hit.index,
      id: id(hit.index),
      distance: hit.distance,
      parts: [{ distance: hit.distance, share: 1 }],
    }));
  }
  const own = 'slot' in from ? (await engine.vectors([from.slot]))[0] : from.vectors;
  const hits = await engine.combinedSearch({
    parts,
    vectors: parts.map((part) => own[part.condition]),
    k,
    filter,
    exclude: 'slot' in from ? [from.slot, ...exclude] : exclude,
  });
  return hits.map((hit) => ({
    index: hit.index,
    id: id(hit.index),
    distance: hit.distance,
    parts: hit.parts,
  }));
}
