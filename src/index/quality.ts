/**
 * The recall gate's measurement, shared by both stores' index jobs: recall@k of an approximate search against brute
 * force on sampled products, and, for CSN with a mask threshold, of the kept subspace against the full mask. Only
 * the approximate search differs between the hnswlib bundle and the LanceDB table. Also the random-pair distance
 * quantiles both record per condition.
 */
import type { ConditionSpace } from '../model/index.ts';
import { yieldToEventLoop } from './hnsw.ts';
import type { BuildParams, ConditionQuality } from './types.ts';
import {
  exactSearch,
  quantiles,
  randomPairDistances,
  recallAtK,
  rowDistance,
  sampleWithoutReplacement,
  type Neighbour,
} from './vectors.ts';
import { Rng } from '../util/rng.ts';

export interface RecallInput {
  space: ConditionSpace;
  /** The condition's rows (n × dims of the space). */
  rows: Float32Array;
  /** Slots that may be sampled as queries; `live` marks the rows brute force may return (all when absent). */
  slots: readonly number[];
  live?: Uint8Array;
  /** CSN: the same products under the full mask, to measure what the threshold costs. */
  fullRows: Float32Array | null;
  fullDim: number;
}

/** The k approximate nearest rows to row `q` (whose vector is `query`), `q` itself left out. */
export type ApproximateSearch = (
  q: number,
  query: Float32Array,
  k: number,
) => Neighbour[] | Promise<Neighbour[]>;

export async function measureRecall(
  input: RecallInput,
  params: BuildParams,
  rng: Rng,
  approximateSearch: ApproximateSearch,
  onQuery: () => void,
): Promise<ConditionQuality> {
  const { space, rows, live } = input;
  const d = space.dims.length;
  const k = Math.min(params.recallK, input.slots.length - 1);
  const queries = k < 1 ? [] : sampleWithoutReplacement(input.slots, params.recallSample, rng);
  let recall = 0;
  let subspaceRecall = 0;
  let approximateTime = 0;
  let exactTime = 0;
  for (const q of queries) {
    const exclude = new Set([q]);
    const query = rows.subarray(q * d, (q + 1) * d);
    let start = performance.now();
    const approximate = await approximateSearch(q, query, k);
    approximateTime += performance.now() - start;
    start = performance.now();
    const exact = exactSearch(rows, d, query, k, space.metric, { live, exclude });
    exactTime += performance.now() - start;
    recall += recallAtK(approximate, exact, k);
    if (input.fullRows) subspaceRecall += fullMaskRecall(input.fullRows, input.fullDim, q, exact, k, live);
    onQuery();
    await yieldToEventLoop();
  }
  const n = queries.length;
  return {
    condition: space.condition,
    k: Math.max(k, 0),
    recall: n === 0 ? 1 : recall / n,
    subspaceRecall: input.fullRows ? (n === 0 ? 1 : subspaceRecall / n) : null,
    queries: n,
    hnswMs: n === 0 ? 0 : approximateTime / n,
    exactMs: n === 0 ? 0 : exactTime / n,
  };
}

/** Recall@k of the subspace's exact neighbours of row q against the exact neighbours under the full mask. */
function fullMaskRecall(
  fullRows: Float32Array,
  D: number,
  q: number,
  exact: Neighbour[],
  k: number,
  live: Uint8Array | undefined,
): number {
  const fullQuery = fullRows.subarray(q * D, (q + 1) * D);
  const truth = exactSearch(fullRows, D, fullQuery, k, 'l2', { live, exclude: new Set([q]) });
  const inFullSpace: Neighbour[] = exact.map((hit) => ({
    index: hit.index,
    distance: rowDistance(fullRows, D, hit.index, fullQuery, 'l2'),
  }));
  return recallAtK(inFullSpace, truth, k);
}

/**
 * Condition c's quantile table of random-pair distances over `slots` (what a pair's score is read against), from the
 * same seeded sample in both stores.
 */
export function distanceQuantiles(
  space: ConditionSpace,
  rows: Float32Array,
  slots: readonly number[],
  params: BuildParams,
  c: number,
): number[] {
  const rng = new Rng(params.seed + 104729 * (c + 1));
  return quantiles(
    randomPairDistances(rows, space.dims.length, slots, space.metric, rng, params.quantilePairs),
  );
}
