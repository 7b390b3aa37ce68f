/**
 * Assemble API responses from an index version: look products up, ask the index for neighbours and the explain
 * stage for explanations. No maths here, only lookups and shaping into the contract's types.
 */
import { conditionDistance, explainPair, type PairExplanation } from '../explain/index.ts';
import type { StoreHit } from '../index/index.ts';
import type { components, operations } from './generated/api-types.ts';
import { HttpProblem } from './problem.ts';
import type { ServedCondition, ServedIndex } from './served-index.ts';

type Schemas = components['schemas'];
export type ProductBody = Schemas['Product'];
export type SimilarResponse = Schemas['SimilarResponse'];
export type ConditionNeighbours = Schemas['ConditionNeighbours'];
export type Neighbour = Schemas['Neighbour'];
export type ConditionList = Schemas['ConditionList'];
export type ProductPage = Schemas['ProductPage'];

/** Dimensions listed per explanation. */
const TOP_DIMS = 5;

export function productUrl(id: string): string {
  return `/products/${encodeURIComponent(id)}`;
}

export function toProduct(index: ServedIndex, slot: number): ProductBody {
  const product = index.store.product(slot);
  const body: ProductBody = {
    id: product.id,
    title: product.title,
    attributes: product.attributes,
    imageUrl: `${productUrl(product.id)}/image`,
  };
  if (product.fields) body.fields = product.fields;
  return body;
}

export function requireSlot(index: ServedIndex, productId: string): number {
  const slot = index.store.productIndex(productId);
  if (slot === undefined) {
    throw new HttpProblem(
      404,
      'unknown-product',
      `No product ${JSON.stringify(productId)} in index version ${index.version}.`,
    );
  }
  return slot;
}

/**
 * The conditions asked for, resolved once at the edge: the named one, or all of them. An unknown name is a 400 that
 * lists the valid ones (the only place it is detected).
 */
export function resolveConditions(index: ServedIndex, name: string | undefined): ServedCondition[] {
  if (name === undefined) return index.conditions;
  const condition = index.conditions.find((c) => c.name === name);
  if (!condition) {
    const names = index.conditions.map((c) => c.name);
    throw new HttpProblem(
      400,
      'unknown-condition',
      `Unknown condition ${JSON.stringify(name)}; valid conditions are ${names.join(', ')}.`,
      { validConditions: names },
    );
  }
  return [condition];
}

export function toExplanation(explanation: PairExplanation): Schemas['Explanation'] {
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

export interface Query {
  /** The query's vector in condition c's space. */
  vector(c: number): ArrayLike<number>;
  /** Catalogue product being queried (its slot), absent for uploads. */
  slot?: number;
}

/** Neighbours of one condition (filtered.ts passes a filtered search, answered at once); by default the store's. */
export type NeighbourSearch = (
  condition: ServedCondition,
  query: Query,
  k: number,
) => StoreHit[] | Promise<StoreHit[]>;

/** How much explanation a neighbour carries (the contract's `explain` parameter; `full` by default). */
export type ExplainLevel = NonNullable<operations['getSimilar']['parameters']['query']>['explain'] & string;

/**
 * `(c) => rows[c]`, made by a function: a closure assigned to a name is named at run time by tsx (`keepNames`), a
 * `defineProperty` of 0.26 µs per closure here, and these are made per neighbour.
 */
export function rowOf<T>(rows: readonly T[]): (c: number) => T {
  return (c) => rows[c];
}

/** Distance, score and explanation of one neighbour at the asked level; `none` skips the explain stage. */
function measureNeighbour(
  index: ServedIndex,
  query: Query,
  queryAttributes: Readonly<Record<string, readonly string[]>> | undefined,
  c: number,
  slot: number,
  /** The neighbour's vector in every condition space (from the store). */
  vectors: readonly ArrayLike<number>[],
  explain: ExplainLevel,
): Pick<Neighbour, 'distance' | 'score' | 'explanation'> {
  const { store } = index;
  const neighbourVector = rowOf(vectors);
  if (explain === 'none') {
    // The same number explainPair reports (its distance is this conditionDistance), without the rest.
    const distance = conditionDistance(query.vector(c), neighbourVector(c), store.spaces[c].metric);
    return { distance, score: index.references[c].score(distance) };
  }
  const explanation = explainPair({
    condition: c,
    spaces: store.spaces,
    references: index.references,
    queryVector: query.vector,
    neighbourVector,
    queryAttributes,
    neighbourAttributes: store.product(slot).attributes,
    topDims: TOP_DIMS,
  });
  return {
    distance: explanation.distance,
    score: explanation.score,
    explanation: explain === 'summary' ? { summary: explanation.summary } : toExplanation(explanation),
  };
}

/**
 * Neighbours of a query under the given conditions, each explained as far as asked. The store answers the search
 * and hands over every condition vector of the neighbours (one round trip per condition for a remote store).
 */
export async function neighbourGroups(
  index: ServedIndex,
  query: Query,
  conditions: ServedCondition[],
  k: number,
  heatmaps: boolean,
  explain: ExplainLevel = 'full',
  search?: NeighbourSearch,
): Promise<ConditionNeighbours[]> {
  const { store } = index;
  const find: NeighbourSearch =
    search ?? (({ name, index: c }, q, n) => store.search(name, q.slot ?? q.vector(c), n));
  const queryProduct = query.slot === undefined ? undefined : store.product(query.slot);
  return Promise.all(
    conditions.map(async (served) => {
      const { name: condition, index: c } = served;
      const hits = await find(served, query, k);
      const vectors = await store.vectors(hits.map((hit) => hit.index));
      const neighbours = hits.map((hit, rank): Neighbour => {
        const measured = measureNeighbour(
          index,
          query,
          queryProduct?.attributes,
          c,
          hit.index,
          vectors[rank],
          explain,
        );
        // Keys written out in the answer's order: spreading `measured` cost 2-3 µs per neighbour on Node 20.
        const neighbour: Neighbour = {
          rank: rank + 1,
          product: toProduct(index, hit.index),
          distance: measured.distance,
          score: measured.score,
        };
        if (measured.explanation) neighbour.explanation = measured.explanation;
        if (heatmaps && queryProduct) {
          neighbour.heatmapUrl =
            `/similar/${encodeURIComponent(queryProduct.id)}/${encodeURIComponent(hit.id)}/heatmap.png` +
            `?condition=${encodeURIComponent(condition)}`;
        }
        return neighbour;
      });
      return { condition, metric: store.spaces[c].metric, neighbours };
    }),
  );
}

export function conditionList(index: ServedIndex): ConditionList {
  return {
    version: index.version,
    conditions: index.store.spaces.map((space, c) => ({
      name: space.condition,
      index: c,
      metric: space.metric,
      mask: index.masks[c],
      medianRandomDistance: index.references[c].quantile(0.5),
      values: index.valueCounts[c],
    })),
    fields: index.store.filterTable().describeFields(),
  };
}

export function productPage(
  index: ServedIndex,
  q: string | undefined,
  offset: number,
  limit: number,
): ProductPage {
  const matches = index.search(q);
  return {
    version: index.version,
    total: matches.length,
    offset,
    limit,
    items: matches.slice(offset, offset + limit).map((slot) => toProduct(index, slot)),
  };
}
