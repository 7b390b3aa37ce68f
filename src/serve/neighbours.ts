/**
 * Every answer about neighbours, from one pipeline: `/similar` by product or upload, with one, all or a combined
 * condition, filtered or not, and `/recommend`. The request is resolved once at the edge (conditions to weighted
 * parts, filters to a store filter), the store answers its one query (StoreVersion.query, through the index stage's
 * queryVersion), the explain stage explains each pair; this file only looks things up and shapes the contract's
 * types.
 */
import { conditionDistance, explainPair, heatmapInfo, type PairExplanation } from '../explain/index.ts';
import {
  checkExamples,
  queryVersion,
  resolveCondition,
  storeFilter,
  weightShares,
  type ConditionVectors,
  type PartResult,
  type QueryOrigin,
  type RecommendStrategy,
  type ResolvedCondition,
  type ResolvedQueryHit,
  type StoreFilter,
} from '../index/index.ts';
import type { components, operations } from './generated/api-types.ts';
import { HttpProblem } from './problem.ts';
import { toProduct } from './products.ts';
import type { ServedIndex } from './served-index.ts';

type Schemas = components['schemas'];
type Explanation = Schemas['Explanation'];
export type SimilarResponse = Schemas['SimilarResponse'];
export type ConditionNeighbours = Schemas['ConditionNeighbours'];
export type Neighbour = Schemas['Neighbour'];
export type RecommendRequest = Schemas['RecommendRequest'];
export type RecommendResponse = Schemas['RecommendResponse'];

/** How much explanation a neighbour carries (the contract's `explain` parameter; `full` by default). */
export type ExplainLevel = NonNullable<operations['getSimilar']['parameters']['query']>['explain'] & string;

/** Dimensions listed per explanation. */
const TOP_DIMS = 5;

/** A similarity request resolved against an index version: one group per condition asked, the filter, k. */
export interface SimilarAsk {
  /** The condition asked (one part or combined), or every condition for a plain request without one. */
  conditions: ResolvedCondition[];
  /**
   * The store filter when the request filters or writes a weight or a combination (even an empty filter: such
   * answers say how many products match); undefined for a plain request.
   */
  filter?: StoreFilter;
  k: number;
  explain: ExplainLevel;
}

/** A query parameter that may be given once or repeated, as a list. */
export function listParam(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/**
 * Resolve a similarity request once (QueryErrors for a bad condition or filter: 400 problems listing what is
 * valid). Uploads call it before the model runs, so these errors cost no embedding.
 */
export function resolveAsk(
  index: ServedIndex,
  params: { condition?: string; filter?: string | string[]; k?: number; explain?: ExplainLevel },
): SimilarAsk {
  const filters = listParam(params.filter);
  const { condition } = params;
  const written = condition !== undefined && /[,:]/.test(condition);
  return {
    conditions: condition === undefined ? index.plainConditions : [resolveCondition(index.store, condition)],
    filter: filters.length > 0 || written ? storeFilter(index.store, filters) : undefined,
    k: Number(params.k ?? 10),
    explain: params.explain ?? 'full',
  };
}

/** The query side of the pairs explained: its vector in every condition space, its product when it is one. */
interface QuerySide {
  vectors: ConditionVectors | readonly ArrayLike<number>[];
  /** The catalogue product being queried (its slot), absent for uploads. */
  slot?: number;
  /** For a recommendation: the positive example explained (it is the query side). */
  closestPositive?: { id: string; distance: number };
}

/**
 * `(c) => rows[c]`, made by a function: a closure assigned to a name is named at run time by tsx (`keepNames`), a
 * `defineProperty` of 0.26 µs per closure here, and these are made per neighbour.
 */
function rowOf<T>(rows: readonly T[]): (c: number) => T {
  return (c) => rows[c];
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
  const shares = weightShares(parts.map((part) => part.weight));
  return parts.reduce((sum, part, p) => sum + shares[p] * part.score, 0);
}

function explanationBody(explanation: PairExplanation): Explanation {
  return {
    summary: explanation.summary,
    dimensions: {
      keptDims: explanation.dimensions.keptDims,
      top: explanation.dimensions.top,
      restShare: explanation.dimensions.restShare,
    },
    otherConditions: explanation.otherConditions,
    attributes: explanation.attributes,
  };
}

/** The full explanation: the pair under `lead`, with a combination's shares and a recommendation's example. */
function fullExplanation(pair: PairExplanation, hit: ResolvedQueryHit, side: QuerySide): Explanation {
  const body = explanationBody(pair);
  if (hit.parts.length > 1) {
    body.parts = hit.parts;
    body.summary = `Combined distance: ${hit.parts.map((p) => `${p.condition} ${percent(p.share)}`).join(', ')}. ${body.summary}`;
  }
  if (side.closestPositive) {
    body.closestPositive = side.closestPositive;
    body.summary = `Closest to ${side.closestPositive.id}. ${body.summary}`;
  }
  return body;
}

/**
 * Distance and score of a neighbour: a condition's own (recomputed from the vectors, as the explanation reports
 * it) for one part searched from a query; the ranking's for a combination or a recommendation.
 */
function measure(
  index: ServedIndex,
  side: QuerySide,
  hit: ResolvedQueryHit,
  lead: number,
  pair: PairExplanation | undefined,
): { distance: number; score: number } {
  if (hit.parts.length > 1) return { distance: hit.distance, score: combinedScore(hit.parts) };
  if (side.closestPositive) return { distance: hit.distance, score: hit.parts[0].score };
  if (pair) return { distance: pair.distance, score: pair.score };
  const metric = index.store.spaces[lead].metric;
  const distance = conditionDistance(side.vectors[lead], (hit.vectors as ConditionVectors)[lead], metric);
  return { distance, score: index.references[lead].score(distance) };
}

interface NeighbourOptions {
  explain: ExplainLevel;
  heatmaps: boolean;
}

/** One neighbour, explained under its leading part as far as asked, with its heat map's URL when there is one. */
function neighbourOf(
  index: ServedIndex,
  side: QuerySide,
  hit: ResolvedQueryHit,
  resolved: ResolvedCondition,
  rank: number,
  options: NeighbourOptions,
): Neighbour {
  const { store } = index;
  const lead = resolved.parts[leadingPart(hit.parts)].condition;
  const pair =
    options.explain === 'none'
      ? undefined
      : explainPair({
          condition: lead,
          spaces: store.spaces,
          references: index.references,
          queryVector: rowOf(side.vectors),
          neighbourVector: rowOf(hit.vectors as ConditionVectors),
          queryAttributes: side.slot === undefined ? undefined : store.product(side.slot).attributes,
          neighbourAttributes: store.product(hit.index).attributes,
          topDims: TOP_DIMS,
        });
  const { distance, score } = measure(index, side, hit, lead, pair);
  // Keys written out in the answer's order: spreading cost 2-3 µs per neighbour on Node 20.
  const neighbour: Neighbour = { rank, product: toProduct(index, hit.index), distance, score };
  if (pair) {
    const body = fullExplanation(pair, hit, side);
    neighbour.explanation = options.explain === 'summary' ? { summary: body.summary } : body;
  }
  if (options.heatmaps && side.slot !== undefined) {
    neighbour.heatmapUrl =
      `/similar/${encodeURIComponent(store.product(side.slot).id)}/${encodeURIComponent(hit.id)}/heatmap.png` +
      `?condition=${encodeURIComponent(store.conditions[lead])}`;
  }
  return neighbour;
}

/** One group of a similarity answer: the neighbours under one resolved condition. */
async function similarGroup(
  index: ServedIndex,
  side: QuerySide,
  resolved: ResolvedCondition,
  ask: SimilarAsk,
  matching: Promise<number> | undefined,
  heatmaps: boolean,
): Promise<ConditionNeighbours> {
  const { store } = index;
  const from: QueryOrigin = side.slot === undefined ? { vectors: side.vectors } : { slot: side.slot };
  const hits = await queryVersion(store, resolved, { from, k: ask.k, filter: ask.filter, explain: true });
  const options = { explain: ask.explain, heatmaps };
  const neighbours = hits.map((hit, rank) => neighbourOf(index, side, hit, resolved, rank + 1, options));
  const first = resolved.parts[0].condition;
  const metric = store.spaces[first].metric;
  if (resolved.parts.length > 1) {
    const parts = resolved.parts.map((p) => ({ condition: store.conditions[p.condition], weight: p.weight }));
    return { condition: resolved.text, metric, parts, matching: await matching, neighbours };
  }
  const group: ConditionNeighbours = { condition: store.conditions[first], metric, neighbours };
  if (matching) group.matching = await matching;
  return group;
}

/** The groups of a similarity answer: one per condition asked, all computed at once. */
export function similarGroups(
  index: ServedIndex,
  side: QuerySide,
  ask: SimilarAsk,
  heatmaps: boolean,
): Promise<ConditionNeighbours[]> {
  const matching = ask.filter ? index.store.count(ask.filter) : undefined;
  return Promise.all(
    ask.conditions.map((resolved) => similarGroup(index, side, resolved, ask, matching, heatmaps)),
  );
}

/** The answer to `GET /similar/{productId}` from one index version. */
export async function similarToProduct(
  index: ServedIndex,
  slot: number,
  ask: SimilarAsk,
): Promise<SimilarResponse> {
  const [vectors] = await index.store.vectors([slot]);
  const heatmaps = index.model !== undefined;
  const body: SimilarResponse = {
    version: index.version,
    k: ask.k,
    query: { source: 'product', product: toProduct(index, slot) },
    groups: await similarGroups(index, { vectors, slot }, ask, heatmaps),
  };
  if (index.model) body.heatmap = heatmapInfo(index.model.description.kind);
  return body;
}

/** The answer to `POST /similar`: the upload's vector in every condition space, already computed. */
export async function similarToUpload(
  index: ServedIndex,
  vectors: readonly ArrayLike<number>[],
  ask: SimilarAsk,
): Promise<SimilarResponse> {
  return {
    version: index.version,
    k: ask.k,
    query: { source: 'upload' },
    groups: await similarGroups(index, { vectors }, ask, false),
  };
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
  const from = { positives, negatives, strategy };
  const [hits, matching, positiveVectors] = await Promise.all([
    queryVersion(store, resolved, { from, k, filter, explain: true }),
    filters.length > 0 ? store.count(filter) : Promise.resolve(undefined),
    store.vectors(positives),
  ]);
  const neighbours = hits.map((hit, rank) => {
    const closest = hit.closestPositive as { index: number; id: string; distance: number };
    const side: QuerySide = {
      vectors: positiveVectors[positives.indexOf(closest.index)],
      slot: closest.index,
      closestPositive: { id: closest.id, distance: closest.distance },
    };
    return neighbourOf(index, side, hit, resolved, rank + 1, { heatmaps, explain: 'full' });
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
