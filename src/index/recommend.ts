/**
 * Recommendations from several examples ("like these two, not like that one") in one condition space or a
 * combination of them. Two strategies, as vector databases offer them:
 * - `average`: search from one point, mean(positive) + (mean(positive) - mean(negative)) in the condition space
 *   (Qdrant's average_vector). The literal mean(positive) - mean(negative) is a direction, not a point of an L2
 *   space (it lies near the origin, far from every product), so it is added to the positives' mean: the query moves
 *   from the positives away from the negatives. Without negatives the point is mean(positive).
 * - `best`: score every selected product by its distance to the nearest positive minus its distance to the nearest
 *   negative (lower is better), exact over the selection (100k products x 3 examples ~20 ms, bench/filters.ts).
 * Examples are never returned, and each result names the positive example it is closest to.
 */
import {
  combinedSearch,
  prepareQuery,
  partTerm,
  TopK,
  describeParts,
  keyDistance,
  type PartDistance,
  type WeightedQuery,
} from './combine.ts';
import type { Selection } from './filter.ts';
import { QueryError } from './query-error.ts';
import { filteredSearch, type SpaceData } from './search.ts';

export const RECOMMEND_STRATEGIES = ['average', 'best'] as const;
export type RecommendStrategy = (typeof RECOMMEND_STRATEGIES)[number];
/** At most this many examples (positive and negative) per request: `best` costs one distance per example and row. */
export const MAX_EXAMPLES = 20;

export interface WeightedSpace {
  space: SpaceData;
  weight: number;
}

export interface RecommendRequest {
  parts: readonly WeightedSpace[];
  /** Slots of the examples. */
  positives: readonly number[];
  negatives: readonly number[];
  strategy: RecommendStrategy;
  k: number;
  selection: Selection;
  liveCount: number;
  efSearch: number;
}

export interface RecommendHit {
  index: number;
  /** `average`: combined distance to the query point; `best`: distance to the nearest positive. */
  distance: number;
  /** Ranking value, lower first: `average` the distance, `best` nearest positive minus nearest negative. */
  rankValue: number;
  /** The positive example this product is closest to, and the combined distance to it. */
  closestPositive: number;
  closestPositiveDistance: number;
  /** Each part's distance and share, measured against the closest positive. */
  parts: PartDistance[];
}

/** Check the example lists (ids resolve elsewhere): at least one positive, at most MAX_EXAMPLES, no overlap. */
export function checkExamples(positives: readonly string[], negatives: readonly string[]): void {
  const expression = JSON.stringify({ positive: positives, negative: negatives });
  if (positives.length === 0) {
    throw new QueryError('invalid-examples', 'Give at least one positive example.', expression);
  }
  if (positives.length + negatives.length > MAX_EXAMPLES) {
    throw new QueryError(
      'invalid-examples',
      `At most ${MAX_EXAMPLES} examples in all; got ${positives.length} positive and ${negatives.length} negative.`,
      expression,
    );
  }
  const both = positives.filter((id) => negatives.includes(id));
  if (both.length > 0) {
    throw new QueryError(
      'invalid-examples',
      `${both.join(', ')} cannot be both a positive and a negative example.`,
      expression,
      both,
    );
  }
}

/** mean(pos) + (mean(pos) - mean(neg)) of the rows, per part (cosine rows are unit length already). */
export function averageQuery(
  space: SpaceData,
  positives: readonly number[],
  negatives: readonly number[],
): Float64Array {
  const mean = (slots: readonly number[]): Float64Array => {
    const out = new Float64Array(space.d);
    for (const slot of slots)
      for (let k = 0; k < space.d; k++) out[k] += space.rows[slot * space.d + k] / slots.length;
    return out;
  };
  const pos = mean(positives);
  if (negatives.length === 0) return pos;
  const neg = mean(negatives);
  return pos.map((p, k) => 2 * p - neg[k]);
}

/** The examples' rows, copied once per request so the scan over every product allocates nothing. */
class ExampleRows {
  private readonly rows: Float64Array[][];

  constructor(
    private readonly parts: readonly WeightedSpace[],
    readonly slots: readonly number[],
  ) {
    this.rows = parts.map(({ space }) =>
      slots.map((e) => prepareQuery(space, space.rows.subarray(e * space.d, (e + 1) * space.d))),
    );
  }

  /** Combined distance (keyDistance) between row i and example number j. */
  distance(i: number, j: number): number {
    let key = 0;
    for (let p = 0; p < this.parts.length; p++) {
      key += this.parts[p].weight * partTerm(this.parts[p].space, i, this.rows[p][j]);
    }
    return keyDistance(this.parts, key);
  }

  /** The nearest example to row i (ties: smaller slot) and its distance. */
  closest(i: number): [number, number] {
    let best = this.slots[0];
    let bestDistance = Number.POSITIVE_INFINITY;
    for (let j = 0; j < this.slots.length; j++) {
      const distance = this.distance(i, j);
      const e = this.slots[j];
      if (distance < bestDistance || (distance === bestDistance && e < best))
        [best, bestDistance] = [e, distance];
    }
    return [best, bestDistance];
  }

  /** Row `j`'s prepared vectors, one per part. */
  vectors(slot: number): Float64Array[] {
    const j = this.slots.indexOf(slot);
    return this.rows.map((perPart) => perPart[j]);
  }
}

function toHit(
  parts: readonly WeightedSpace[],
  positives: ExampleRows,
  index: number,
  distance: number,
  rankValue: number,
): RecommendHit {
  const [closestPositive, closestPositiveDistance] = positives.closest(index);
  return {
    index,
    distance,
    rankValue,
    closestPositive,
    closestPositiveDistance,
    parts: describeParts(parts, positives.vectors(closestPositive), index).parts,
  };
}

/**
 * Recommendation hits for candidates already ranked by distance to the `average` query point (a store that walks
 * its own index for it): each with its closest positive and the parts' shares. `positives` and the candidates'
 * indices are rows of the parts' spaces.
 */
export function averageHits(
  parts: readonly WeightedSpace[],
  positives: readonly number[],
  ranked: readonly { index: number; distance: number }[],
): RecommendHit[] {
  const rows = new ExampleRows(parts, positives);
  return ranked.map((n) => toHit(parts, rows, n.index, n.distance, n.distance));
}

function recommendAverage(
  request: RecommendRequest,
  positives: ExampleRows,
  exclude: ReadonlySet<number>,
): RecommendHit[] {
  const { parts } = request;
  const queries: WeightedQuery[] = parts.map((part) => ({
    ...part,
    query: averageQuery(part.space, request.positives, request.negatives),
  }));
  if (parts.length === 1) {
    const { neighbours } = filteredSearch(parts[0].space, queries[0].query, request.k, {
      selection: request.selection,
      liveCount: request.liveCount,
      efSearch: request.efSearch,
      exclude,
    });
    return neighbours.map((n) => toHit(parts, positives, n.index, n.distance, n.distance));
  }
  return combinedSearch(queries, request.k, request.selection, exclude).map((hit) =>
    toHit(parts, positives, hit.index, hit.distance, hit.distance),
  );
}

function recommendBest(
  request: RecommendRequest,
  positives: ExampleRows,
  exclude: ReadonlySet<number>,
): RecommendHit[] {
  const negatives = new ExampleRows(request.parts, request.negatives);
  const top = new TopK(request.k);
  const nearestPositive = new Map<number, number>();
  const { bits } = request.selection;
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i] || exclude.has(i)) continue;
    let toPositive = Number.POSITIVE_INFINITY;
    for (let j = 0; j < positives.slots.length; j++)
      toPositive = Math.min(toPositive, positives.distance(i, j));
    let toNegative = negatives.slots.length > 0 ? Number.POSITIVE_INFINITY : 0;
    for (let j = 0; j < negatives.slots.length; j++)
      toNegative = Math.min(toNegative, negatives.distance(i, j));
    const value = toPositive - toNegative;
    if (value < top.bound) nearestPositive.set(i, toPositive);
    top.push(value, i);
  }
  const hits: RecommendHit[] = [];
  for (let j = 0; j < top.size; j++) {
    const i = top.ids[j];
    hits.push(toHit(request.parts, positives, i, nearestPositive.get(i) ?? Number.NaN, top.keys[j]));
  }
  return hits;
}

/** The k best selected products for the examples, best first; examples themselves are never among them. */
export function recommend(request: RecommendRequest): RecommendHit[] {
  if (request.positives.length === 0) throw new RangeError('recommend needs at least one positive example');
  const exclude = new Set([...request.positives, ...request.negatives]);
  const positives = new ExampleRows(request.parts, request.positives);
  return request.strategy === 'average'
    ? recommendAverage(request, positives, exclude)
    : recommendBest(request, positives, exclude);
}
