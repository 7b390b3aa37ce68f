/**
 * Responses for filtered and combined similarity and for recommendations, on either store: the index stage filters
 * and ranks through the store interface (src/index/query.ts; a LanceDB store runs the filter as a prefilter), the
 * explain stage explains; this file only looks things up and shapes the contract's types. Plain queries (one or all
 * conditions, no filter) keep the path in similar.ts.
 */
import { explainPair } from '../explain/index.ts';
import {
  checkExamples,
  resolveCondition,
  storeCombined,
  storeFilter,
  storeRecommend,
  type CombinedQueryHit,
  type ConditionVectors,
  type PartResult,
  type RecommendStrategy,
  type ResolvedCondition,
  type StoreFilter,
} from '../index/index.ts';
import type { components } from './generated/api-types.ts';
import { HttpProblem } from './problem.ts';
import type { ServedIndex } from './served-index.ts';
import {
  neighbourGroups,
  resolveConditions,
  toExplanation,
  toProduct,
  type ConditionNeighbours,
  type ExplainLevel,
  type Neighbour,
  type Query,
} from './similar.ts';

type Schemas = components['schemas'];
type Explanation = Schemas['Explanation'];
export type RecommendRequest = Schemas['RecommendRequest'];
export type RecommendResponse = Schemas['RecommendResponse'];

const TOP_DIMS = 5;

/** True when the request needs this module: a filter, or a condition with a weight or several parts. */
export function needsFilteredPath(condition: string | undefined, filters: readonly string[]): boolean {
  return filters.length > 0 || (condition !== undefined && /[,:]/.test(condition));
}

/** Throws the QueryError a filtered query would (before an upload is embedded for nothing). */
export function checkFilteredQuery(
  index: ServedIndex,
  condition: string | undefined,
  filters: readonly string[],
): void {
  storeFilter(index.store, filters);
  if (condition !== undefined) resolveCondition(index.store, condition);
}

/** A query parameter that may be given once or repeated, as a list. */
export function listParam(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function percent(share: number): string {
  return `${Math.round(share * 100)} %`;
}

/** The part with the largest share explains the pair (dimensions, labels, heat map). */
function leadingPart(parts: readonly PartResult[]): number {
  let best = 0;
  parts.forEach((part, p) => {
    if (part.share > parts[best].share) best = p;
  });
  return best;
}

/** Score of a combined hit: the parts' scores averaged with the weights as written. */
function combinedScore(parts: readonly PartResult[]): number {
  const total = parts.reduce((sum, part) => sum + part.weight, 0);
  return parts.reduce((sum, part) => sum + (part.weight / total) * part.score, 0);
}

interface PairSides {
  /** The explained query side: a catalogue slot or the query's vectors. */
  query: Query;
  /** Product whose labels the neighbour is compared with (absent for uploads). */
  querySlot?: number;
  /** For a recommendation: the positive example explained (it is the query side). */
  closestPositive?: { id: string; distance: number };
}

/** The full explanation of a combined (or recommended) neighbour under its leading part, with the parts' shares. */
function combinedExplanation(
  index: ServedIndex,
  sides: PairSides,
  hit: { index: number; parts: PartResult[]; vectors: ConditionVectors },
  lead: number,
  combined: boolean,
): Explanation {
  const { store } = index;
  const body = toExplanation(
    explainPair({
      condition: lead,
      spaces: store.spaces,
      references: index.references,
      queryVector: sides.query.vector,
      neighbourVector: (other) => hit.vectors[other],
      queryAttributes: sides.querySlot === undefined ? undefined : store.product(sides.querySlot).attributes,
      neighbourAttributes: store.product(hit.index).attributes,
      topDims: TOP_DIMS,
    }),
  );
  if (combined) {
    body.parts = hit.parts;
    body.summary = `Combined distance: ${hit.parts.map((p) => `${p.condition} ${percent(p.share)}`).join(', ')}. ${body.summary}`;
  }
  if (sides.closestPositive) {
    body.closestPositive = sides.closestPositive;
    body.summary = `Closest to ${sides.closestPositive.id}. ${body.summary}`;
  }
  return body;
}

/** A neighbour of a combined condition (or a recommendation), explained under its leading part as far as asked. */
function combinedNeighbour(
  index: ServedIndex,
  sides: PairSides,
  hit: { index: number; id: string; distance: number; parts: PartResult[]; vectors: ConditionVectors },
  resolved: ResolvedCondition,
  rank: number,
  options: { heatmaps: boolean; explain: ExplainLevel },
): Neighbour {
  const { store } = index;
  const lead = resolved.parts[leadingPart(hit.parts)].condition;
  const combined = resolved.parts.length > 1;
  const neighbour: Neighbour = {
    rank,
    product: toProduct(index, hit.index),
    distance: hit.distance,
    score: combined ? combinedScore(hit.parts) : hit.parts[0].score,
  };
  if (options.explain !== 'none') {
    const explanation = combinedExplanation(index, sides, hit, lead, combined);
    neighbour.explanation = options.explain === 'summary' ? { summary: explanation.summary } : explanation;
  }
  if (options.heatmaps && sides.querySlot !== undefined) {
    neighbour.heatmapUrl =
      `/similar/${encodeURIComponent(store.product(sides.querySlot).id)}/${encodeURIComponent(hit.id)}/heatmap.png` +
      `?condition=${encodeURIComponent(store.conditions[lead])}`;
  }
  return neighbour;
}

/** Each hit with every condition vector of its product (the explanation compares the pair under all of them). */
async function withVectors<T extends { index: number }>(
  index: ServedIndex,
  hits: readonly T[],
): Promise<(T & { vectors: ConditionVectors })[]> {
  const vectors = await index.store.vectors(hits.map((hit) => hit.index));
  return hits.map((hit, i) => ({ ...hit, vectors: vectors[i] }));
}

async function combinedGroup(
  index: ServedIndex,
  query: Query,
  resolved: ResolvedCondition,
  filter: StoreFilter,
  k: number,
  options: { heatmaps: boolean; explain: ExplainLevel },
): Promise<ConditionNeighbours> {
  const { store } = index;
  const exclude = query.slot === undefined ? [] : [query.slot];
  const [hits, matching]: [CombinedQueryHit[], number] = await Promise.all([
    storeCombined(store, resolved, query.vector, k, filter, exclude),
    store.count(filter),
  ]);
  const sides = { query, querySlot: query.slot };
  return {
    condition: resolved.text,
    metric: store.spaces[resolved.parts[0].condition].metric,
    parts: resolved.parts.map((p) => ({ condition: store.conditions[p.condition], weight: p.weight })),
    matching,
    neighbours: (await withVectors(index, hits)).map((hit, rank) =>
      combinedNeighbour(index, sides, hit, resolved, rank + 1, options),
    ),
  };
}

/**
 * Groups for a filtered and/or combined query: one group per condition asked (all when none), or one group for a
 * combined condition. Filter and condition errors are QueryErrors (400 problems listing what is valid).
 */
export async function filteredGroups(
  index: ServedIndex,
  query: Query,
  condition: string | undefined,
  filters: readonly string[],
  k: number,
  heatmaps: boolean,
  explain: ExplainLevel = 'full',
): Promise<ConditionNeighbours[]> {
  const { store } = index;
  const filter = storeFilter(store, filters);
  const resolved = condition === undefined ? undefined : resolveCondition(store, condition);
  if (resolved && resolved.parts.length > 1) {
    return [await combinedGroup(index, query, resolved, filter, k, { heatmaps, explain })];
  }
  const conditions = resolveConditions(
    index,
    resolved ? store.conditions[resolved.parts[0].condition] : undefined,
  );
  const [groups, matching] = await Promise.all([
    neighbourGroups(index, query, conditions, k, heatmaps, explain, (served, q, n) =>
      store.search(served.name, q.slot ?? q.vector(served.index), n, { filter }),
    ),
    store.count(filter),
  ]);
  return groups.map((group) => ({ ...group, matching }));
}

/** Slots of example ids; unknown ids are one 404 that lists them all. */
function exampleSlots(
  index: ServedIndex,
  positive: readonly string[],
  negative: readonly string[],
): number[][] {
  const { store } = index;
  const unknown = [...positive, ...negative].filter((id) => store.productIndex(id) === undefined);
  if (unknown.length > 0) {
    throw new HttpProblem(
      404,
      'unknown-product',
      `No product ${unknown.map((id) => JSON.stringify(id)).join(', ')} in index version ${index.version}.`,
      { unknownProducts: unknown },
    );
  }
  return [positive, negative].map((ids) => ids.map((id) => store.productIndex(id) as number));
}

/** POST /recommend: check the examples, select, rank, explain each result against its closest positive. */
export async function recommendResponse(
  index: ServedIndex,
  request: RecommendRequest,
  heatmaps: boolean,
): Promise<RecommendResponse> {
  const { store } = index;
  const negative = request.negative ?? [];
  checkExamples(request.positive, negative);
  const [positives, negatives] = exampleSlots(index, request.positive, negative);
  const resolved = resolveCondition(store, request.condition);
  const filters = request.filter ?? [];
  const filter = storeFilter(store, filters);
  const strategy: RecommendStrategy = request.strategy ?? 'average';
  const k = request.k ?? 10;
  const [hits, matching, positiveVectors] = await Promise.all([
    storeRecommend(store, resolved, { positives, negatives }, strategy, k, filter),
    filters.length > 0 ? store.count(filter) : Promise.resolve(undefined),
    store.vectors(positives),
  ]);
  const neighbours = (await withVectors(index, hits)).map((hit, rank) => {
    const positive = hit.closestPositive.index;
    const vectors = positiveVectors[positives.indexOf(positive)];
    const sides: PairSides = {
      query: { slot: positive, vector: (c: number) => vectors[c] },
      querySlot: positive,
      closestPositive: { id: hit.closestPositive.id, distance: hit.closestPositive.distance },
    };
    return combinedNeighbour(index, sides, hit, resolved, rank + 1, { heatmaps, explain: 'full' });
  });
  const response: RecommendResponse = {
    version: index.version,
    k,
    strategy,
    condition: request.condition,
    positive: positives.map((slot) => toProduct(index, slot)),
    negative: negatives.map((slot) => toProduct(index, slot)),
    neighbours,
  };
  if (matching !== undefined) response.matching = matching;
  return response;
}
