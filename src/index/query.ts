/**
 * Filtered, combined and recommend queries: resolves names to conditions and slots, has the search done (by the
 * pure search functions on a loaded bundle, or by any store through its interface) and returns hits with ids and
 * scores. Filters read only what the index stores (labels and fields), never the catalogue.
 */
import type { IndexBundle, SearchHit, SearchQuery } from './bundle.ts';
import {
  combinedSearch,
  effectiveWeights,
  parseConditionParts,
  type CombinedHit,
  type ConditionPart,
} from './combine.ts';
import { parseFilter, toStoreFilter, type FilterSchema, type Selection } from './filter.ts';
import { recommend, type RecommendHit, type RecommendStrategy } from './recommend.ts';
import { filteredSearch } from './search.ts';
import type { StoreFilter, StoreSpace, StoreVersion } from './store/types.ts';

/** What resolving names and reporting parts needs of an index: a bundle or any store's version. */
interface Named {
  readonly conditions: readonly string[];
  readonly spaces: readonly Pick<StoreSpace, 'quantiles' | 'metric'>[];
  score(condition: string, distance: number): number;
}

/** A combined condition resolved against a bundle: the parts as written and the weights the search uses. */
export interface ResolvedCondition {
  /** The condition text as asked (`color`, `color:2,pattern:1`). */
  text: string;
  parts: ConditionPart[];
  weights: number[];
}

export interface PartResult {
  condition: string;
  /** Weight as written. */
  weight: number;
  /** This part's own distance and score, and its share of the combined distance. */
  distance: number;
  score: number;
  share: number;
}

export interface CombinedQueryHit {
  index: number;
  id: string;
  distance: number;
  parts: PartResult[];
}

export interface RecommendQueryHit extends CombinedQueryHit {
  /** Ranking value, lower first (see RecommendHit). */
  rankValue: number;
  closestPositive: { index: number; id: string; distance: number };
}

/** What filters may name on this bundle. */
export function filterSchema(bundle: IndexBundle): FilterSchema {
  return bundle.filterTable().schema();
}

/** The live products passing every filter expression (none: all of them). Throws QueryError on a bad expression. */
export function selectProducts(bundle: IndexBundle, expressions: readonly string[] = []): Selection {
  const table = bundle.filterTable();
  return expressions.length === 0 ? table.all() : table.select(parseFilter(expressions, table.schema()));
}

/**
 * The API's filter expressions in the stores' form (QueryError on a bad expression). No expressions give the empty
 * filter: every product, through the same filtered path (so an unfiltered combined query answers as before).
 */
export function storeFilter(version: StoreVersion, expressions: readonly string[]): StoreFilter {
  if (expressions.length === 0) return { clauses: [] };
  return toStoreFilter(parseFilter(expressions, version.filterTable().schema()));
}

/** Parse `color`, `color,pattern` or `color:2,pattern:1` against the index (QueryError when invalid). */
export function resolveCondition(bundle: Named, text: string): ResolvedCondition {
  const parts = parseConditionParts(text, bundle.conditions);
  const weights = effectiveWeights(
    parts,
    (c) => bundle.spaces[c].quantiles[Math.floor(bundle.spaces[c].quantiles.length / 2)] ?? 1,
    (c) => bundle.spaces[c].metric,
  );
  return { text, parts, weights };
}

/** k nearest selected products under one condition; a slot query leaves the product itself out. */
export function searchSelected(
  bundle: IndexBundle,
  condition: number,
  query: SearchQuery,
  k: number,
  selection: Selection,
  exclude: Iterable<number> = [],
): SearchHit[] {
  const space = bundle.spaceData(condition);
  const skip = new Set(exclude);
  let vector: ArrayLike<number>;
  if (typeof query === 'number') {
    vector = space.rows.subarray(query * space.d, (query + 1) * space.d);
    skip.add(query);
  } else vector = query;
  const { neighbours } = filteredSearch(space, vector, k, {
    selection,
    liveCount: bundle.liveCount,
    efSearch: bundle.defaultEfSearch,
    exclude: skip,
  });
  const name = bundle.conditions[condition];
  return neighbours.map((n) => ({
    ...n,
    id: bundle.product(n.index).id,
    score: bundle.score(name, n.distance),
  }));
}

function partResults(
  bundle: Named,
  resolved: ResolvedCondition,
  parts: readonly { distance: number; share: number }[],
): PartResult[] {
  return resolved.parts.map((part, p) => {
    const condition = bundle.conditions[part.condition];
    const { distance, share } = parts[p];
    return { condition, weight: part.weight, distance, score: bundle.score(condition, distance), share };
  });
}

/** k nearest selected products under a combined condition, exact; `vector(c)` is the query in condition c. */
export function searchCombined(
  bundle: IndexBundle,
  resolved: ResolvedCondition,
  vector: (condition: number) => ArrayLike<number>,
  k: number,
  selection: Selection,
  exclude: Iterable<number> = [],
): CombinedQueryHit[] {
  const parts = resolved.parts.map((part, p) => ({
    space: bundle.spaceData(part.condition),
    weight: resolved.weights[p],
    query: vector(part.condition),
  }));
  return combinedSearch(parts, k, selection, new Set(exclude)).map((hit) => ({
    index: hit.index,
    id: bundle.product(hit.index).id,
    distance: hit.distance,
    parts: partResults(bundle, resolved, hit.parts),
  }));
}

/** Recommendations from example slots under a (combined) condition, best first; examples are never returned. */
export function recommendProducts(
  bundle: IndexBundle,
  resolved: ResolvedCondition,
  examples: { positives: readonly number[]; negatives: readonly number[] },
  strategy: RecommendStrategy,
  k: number,
  selection: Selection,
): RecommendQueryHit[] {
  const parts = resolved.parts.map((part, p) => ({
    space: bundle.spaceData(part.condition),
    weight: resolved.weights[p],
  }));
  const hits = recommend({
    parts,
    positives: examples.positives,
    negatives: examples.negatives,
    strategy,
    k,
    selection,
    liveCount: bundle.liveCount,
    efSearch: bundle.defaultEfSearch,
  });
  return hits.map((hit) => ({
    index: hit.index,
    id: bundle.product(hit.index).id,
    distance: hit.distance,
    rankValue: hit.rankValue,
    parts: partResults(bundle, resolved, hit.parts),
    closestPositive: {
      index: hit.closestPositive,
      id: bundle.product(hit.closestPositive).id,
      distance: hit.closestPositiveDistance,
    },
  }));
}

function weighted(resolved: ResolvedCondition): { condition: number; weight: number }[] {
  return resolved.parts.map((part, p) => ({ condition: part.condition, weight: resolved.weights[p] }));
}

function combinedQueryHit(
  version: StoreVersion,
  resolved: ResolvedCondition,
  hit: CombinedHit,
): CombinedQueryHit {
  return {
    index: hit.index,
    id: version.product(hit.index).id,
    distance: hit.distance,
    parts: partResults(version, resolved, hit.parts),
  };
}

/** searchCombined through the store interface: the store searches (exact, prefiltered), this adds ids and scores. */
export async function storeCombined(
  version: StoreVersion,
  resolved: ResolvedCondition,
  vector: (condition: number) => ArrayLike<number>,
  k: number,
  filter: StoreFilter,
  exclude: Iterable<number> = [],
): Promise<CombinedQueryHit[]> {
  const vectors = resolved.parts.map((part) => vector(part.condition));
  const hits = await version.combinedSearch({ parts: weighted(resolved), vectors, k, filter, exclude });
  return hits.map((hit) => combinedQueryHit(version, resolved, hit));
}

/** recommendProducts through the store interface. */
export async function storeRecommend(
  version: StoreVersion,
  resolved: ResolvedCondition,
  examples: { positives: readonly number[]; negatives: readonly number[] },
  strategy: RecommendStrategy,
  k: number,
  filter: StoreFilter,
): Promise<RecommendQueryHit[]> {
  const hits: RecommendHit[] = await version.recommend({
    parts: weighted(resolved),
    ...examples,
    strategy,
    k,
    filter,
  });
  return hits.map((hit) => ({
    ...combinedQueryHit(version, resolved, hit),
    rankValue: hit.rankValue,
    closestPositive: {
      index: hit.closestPositive,
      id: version.product(hit.closestPositive).id,
      distance: hit.closestPositiveDistance,
    },
  }));
}
