/**
 * Responses for filtered and combined similarity and for recommendations: the index stage selects and ranks
 * (src/index/query.ts), the explain stage explains; this file only looks things up and shapes the contract's types.
 * Plain queries (one or all conditions, no filter) keep the path in similar.ts.
 */
import { explainPair } from '../explain/index.ts';
import {
  checkExamples,
  recommendProducts,
  resolveCondition,
  searchCombined,
  searchSelected,
  selectProducts,
  type CombinedQueryHit,
  type IndexBundle,
  type PartResult,
  type RecommendStrategy,
  type ResolvedCondition,
  type Selection,
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

/** The hnswlib bundle these paths run on; on LanceDB a 501 problem (not mapped onto its SQL prefilter yet). */
function bundleOf(index: ServedIndex): IndexBundle {
  return index.requireBundle('Filters, combined conditions and recommendations');
}

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
  selectProducts(bundleOf(index), filters);
  if (condition !== undefined) resolveCondition(bundleOf(index), condition);
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
  hit: { index: number; parts: PartResult[] },
  lead: number,
  combined: boolean,
): Explanation {
  const bundle = bundleOf(index);
  const body = toExplanation(
    explainPair({
      condition: lead,
      spaces: bundle.spaces,
      references: index.references,
      queryVector: sides.query.vector,
      neighbourVector: (other) => bundle.vector(bundle.conditions[other], hit.index),
      queryAttributes: sides.querySlot === undefined ? undefined : bundle.product(sides.querySlot).attributes,
      neighbourAttributes: bundle.product(hit.index).attributes,
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
  hit: { index: number; id: string; distance: number; parts: PartResult[] },
  resolved: ResolvedCondition,
  rank: number,
  options: { heatmaps: boolean; explain: ExplainLevel },
): Neighbour {
  const bundle = bundleOf(index);
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
      `/similar/${encodeURIComponent(bundle.product(sides.querySlot).id)}/${encodeURIComponent(hit.id)}/heatmap.png` +
      `?condition=${encodeURIComponent(bundle.conditions[lead])}`;
  }
  return neighbour;
}

function combinedGroup(
  index: ServedIndex,
  query: Query,
  resolved: ResolvedCondition,
  selection: Selection,
  k: number,
  options: { heatmaps: boolean; explain: ExplainLevel },
): ConditionNeighbours {
  const exclude = query.slot === undefined ? [] : [query.slot];
  const hits: CombinedQueryHit[] = searchCombined(
    bundleOf(index),
    resolved,
    query.vector,
    k,
    selection,
    exclude,
  );
  const sides = { query, querySlot: query.slot };
  return {
    condition: resolved.text,
    metric: bundleOf(index).spaces[resolved.parts[0].condition].metric,
    parts: resolved.parts.map((p) => ({
      condition: bundleOf(index).conditions[p.condition],
      weight: p.weight,
    })),
    matching: selection.count,
    neighbours: hits.map((hit, rank) => combinedNeighbour(index, sides, hit, resolved, rank + 1, options)),
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
  const selection = selectProducts(bundleOf(index), filters);
  const resolved = condition === undefined ? undefined : resolveCondition(bundleOf(index), condition);
  if (resolved && resolved.parts.length > 1) {
    return [combinedGroup(index, query, resolved, selection, k, { heatmaps, explain })];
  }
  const conditions = resolveConditions(
    index,
    resolved ? bundleOf(index).conditions[resolved.parts[0].condition] : undefined,
  );
  const groups = await neighbourGroups(index, query, conditions, k, heatmaps, explain, (served, q, n) =>
    searchSelected(bundleOf(index), served.index, q.slot ?? q.vector(served.index), n, selection),
  );
  return groups.map((group) => ({ ...group, matching: selection.count }));
}

/** Slots of example ids; unknown ids are one 404 that lists them all. */
function exampleSlots(
  index: ServedIndex,
  positive: readonly string[],
  negative: readonly string[],
): number[][] {
  const unknown = [...positive, ...negative].filter((id) => bundleOf(index).productIndex(id) === undefined);
  if (unknown.length > 0) {
    throw new HttpProblem(
      404,
      'unknown-product',
      `No product ${unknown.map((id) => JSON.stringify(id)).join(', ')} in index version ${index.version}.`,
      { unknownProducts: unknown },
    );
  }
  return [positive, negative].map((ids) => ids.map((id) => bundleOf(index).productIndex(id) as number));
}

/** POST /recommend: check the examples, select, rank, explain each result against its closest positive. */
export function recommendResponse(
  index: ServedIndex,
  request: RecommendRequest,
  heatmaps: boolean,
): RecommendResponse {
  const negative = request.negative ?? [];
  checkExamples(request.positive, negative);
  const [positives, negatives] = exampleSlots(index, request.positive, negative);
  const resolved = resolveCondition(bundleOf(index), request.condition);
  const filters = request.filter ?? [];
  const selection = selectProducts(bundleOf(index), filters);
  const strategy: RecommendStrategy = request.strategy ?? 'average';
  const k = request.k ?? 10;
  const bundle = bundleOf(index);
  const hits = recommendProducts(bundle, resolved, { positives, negatives }, strategy, k, selection);
  const neighbours = hits.map((hit, rank) => {
    const positive = hit.closestPositive.index;
    const sides: PairSides = {
      query: { slot: positive, vector: (c: number) => bundle.vector(bundle.conditions[c], positive) },
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
  if (filters.length > 0) response.matching = selection.count;
  return response;
}
