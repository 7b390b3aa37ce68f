/**
 * Filtered nearest-neighbour search in one condition space: HNSW with a filter callback while enough products
 * match, exact search over the matching products below a measured selectivity (bench/filters.ts), and always k
 * results when at least k products match.
 */
import { fromIndexDistance, type HnswIndex } from './hnsw.ts';
import type { Selection } from './filter.ts';
import { exactSearch, type Metric, type Neighbour } from './vectors.ts';

/** One condition space as search needs it: the vectors (row = slot) and, when built, its HNSW index (label = slot). */
export interface SpaceData {
  metric: Metric;
  /** Dims per row. */
  d: number;
  rows: Float32Array;
  index: HnswIndex | null;
}

/**
 * When filtered search turns exact. HNSW with a filter callback walks about ef / selectivity nodes (calling the
 * filter on each) before it has ef matches; exact search computes one distance per match. So HNSW costs ~ ef / s
 * and exact ~ s x n: exact wins when matches x s < FILTER_COST_RATIO x ef, i.e. below the selectivity
 * s* = sqrt(FILTER_COST_RATIO x ef / n). bench/filters.ts measures the crossover of the two (CPU time per query,
 * 100k products, 16-dim space, ef 64): HNSW 1.2 ms vs exact 2.1 ms at 10 %, 1.8 ms vs 1.4 ms at 5 %, crossing at
 * 6.0-6.4 % in two runs (ratio 5.6-6.3); below, HNSW degrades fast (12 ms at 0.5 %, 68 ms at 0.05 %, exact 0.3-0.5 ms). So s* is 6.2 %
 * at 100k products, 20 % at 10k and 2 % at 1M. Mature engines switch the same way (Qdrant's full_scan_threshold,
 * Weaviate's flatSearchCutoff), on a fixed count of matches; a count ignores that the walk grows as they get rarer.
 */
export const FILTER_COST_RATIO = 6;

/** The selectivity below which filtered search is exact, for an index of `liveCount` products. */
export function exactBelowSelectivity(liveCount: number, efSearch: number): number {
  return liveCount > 0 ? Math.min(1, Math.sqrt((FILTER_COST_RATIO * efSearch) / liveCount)) : 1;
}

/** How often efSearch is multiplied when filtered HNSW returns fewer than k matches. */
const EF_GROWTH = 4;

export interface FilteredSearchOptions {
  /** Products allowed (live and passing the filter); absent = every live product (then `live` is required). */
  selection: Selection;
  /** Live products in the index (the denominator of the selectivity). */
  liveCount: number;
  efSearch: number;
  /** Slots never returned (the query product, recommendation examples). */
  exclude?: ReadonlySet<number>;
  /** Override exactBelowSelectivity (benchmarks and tests force one path with 0 or above 1). */
  exactBelow?: number;
}

export interface FilteredResult {
  neighbours: Neighbour[];
  /** Which path answered, and the ef of the last HNSW attempt (0 for exact). */
  method: 'hnsw' | 'exact';
  ef: number;
}

/** Matching products that may be returned: the selection minus excluded slots that it contains. */
export function allowedCount(selection: Selection, exclude?: ReadonlySet<number>): number {
  let excluded = 0;
  for (const slot of exclude ?? []) if (selection.bits[slot]) excluded++;
  return selection.count - excluded;
}

/**
 * The k nearest allowed products to `query`, nearest first (ties by slot). Exactly min(k, allowed) come back: the
 * HNSW path retries with a larger ef when the graph walk ends early, and falls back to exact search.
 */
export function filteredSearch(
  space: SpaceData,
  query: ArrayLike<number>,
  k: number,
  options: FilteredSearchOptions,
): FilteredResult {
  const { selection, exclude } = options;
  const want = Math.min(k, allowedCount(selection, exclude));
  if (want <= 0) return { neighbours: [], method: 'exact', ef: 0 };
  const selectivity = options.liveCount > 0 ? selection.count / options.liveCount : 0;
  const exactBelow = options.exactBelow ?? exactBelowSelectivity(options.liveCount, options.efSearch);
  if (!space.index || selectivity < exactBelow) {
    return { neighbours: exactOver(space, query, want, selection, exclude), method: 'exact', ef: 0 };
  }
  const bits = selection.bits;
  const filter =
    exclude && exclude.size > 0
      ? (label: number) => bits[label] === 1 && !exclude.has(label)
      : (label: number) => bits[label] === 1;
  const point = Array.from(query);
  for (let ef = Math.max(options.efSearch, want); ; ef *= EF_GROWTH) {
    space.index.setEf(ef);
    const result = space.index.searchKnn(point, want, filter);
    if (result.neighbors.length >= want) {
      const neighbours = result.neighbors.map((label, j) => ({
        index: label,
        distance: fromIndexDistance(space.metric, result.distances[j]),
      }));
      neighbours.sort((a, b) => a.distance - b.distance || a.index - b.index);
      return { neighbours, method: 'hnsw', ef };
    }
    // The walk ran out of reachable matches: a larger ef rarely helps once it exceeds the matches themselves.
    if (ef >= selection.count) break;
  }
  return { neighbours: exactOver(space, query, want, selection, exclude), method: 'exact', ef: 0 };
}

/** Exact k nearest among the selected rows. */
export function exactOver(
  space: SpaceData,
  query: ArrayLike<number>,
  k: number,
  selection: Selection,
  exclude?: ReadonlySet<number>,
): Neighbour[] {
  return exactSearch(space.rows, space.d, query, k, space.metric, { live: selection.bits, exclude });
}
