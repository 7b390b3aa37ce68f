/**
 * Retrieval quality maths (pure: plain arrays in, numbers out).
 *
 * Attribute-specific retrieval as in ASEN: under one condition, every candidate is ranked by its distance to the
 * query; a candidate is relevant when it shares a label of that condition with the query. Average precision (AP)
 * of one ranking is the mean, over the ranks k that hold a relevant candidate, of precision@k. MAP is the mean AP
 * over queries; a query with no relevant candidate counts as AP 0, as upstream's scorer does (ASEN's
 * mean_average_precision divides by the number of queries; leaving them out inflated MAP), and is also counted in
 * `skipped`. The overall MAP over conditions weights each condition by its number of queries (= mean AP over all
 * queries of all conditions).
 */

/**
 * AP of one ranked list of relevance flags (best match first). Undefined when nothing is relevant: MAP scores
 * such a query 0 and counts it in `skipped`.
 */
export function averagePrecision(rankedRelevance: ArrayLike<boolean>): number | undefined {
  let hits = 0;
  let sum = 0;
  for (let k = 0; k < rankedRelevance.length; k++) {
    if (rankedRelevance[k]) {
      hits++;
      sum += hits / (k + 1);
    }
  }
  return hits === 0 ? undefined : sum / hits;
}

/** Candidate positions ordered by ascending distance; ties keep candidate order so rankings are deterministic. */
export function rankByDistance(distances: ArrayLike<number>): number[] {
  const order = Array.from({ length: distances.length }, (_, i) => i);
  return order.sort((a, b) => distances[a] - distances[b] || a - b);
}

export interface RetrievalQuery {
  /** Distance from the query to each candidate. */
  distances: ArrayLike<number>;
  /** Whether each candidate is relevant to the query. */
  relevant: ArrayLike<boolean>;
  /** Candidates to leave out of the ranking (e.g. the query itself when queries are drawn from the candidates). */
  exclude?: ReadonlySet<number>;
}

/** AP of one query: rank its candidates by distance and score the ranking. */
export function queryAveragePrecision(query: RetrievalQuery): number | undefined {
  const ranked = rankByDistance(query.distances).filter((candidate) => !query.exclude?.has(candidate));
  return averagePrecision(ranked.map((candidate) => query.relevant[candidate]));
}

export interface MapResult {
  /** Mean AP over all queries, those without a relevant candidate scored 0 (0 when there are no queries). */
  map: number;
  /** Queries in the mean (all of them). */
  queries: number;
  /** Queries with no relevant candidate (scored AP 0). */
  skipped: number;
}

/** MAP of a set of per-query APs (undefined entries = queries without relevant candidates, scored 0). */
export function meanAveragePrecision(aps: ReadonlyArray<number | undefined>): MapResult {
  const sum = aps.reduce<number>((total, ap) => total + (ap ?? 0), 0);
  return {
    map: aps.length > 0 ? sum / aps.length : 0,
    queries: aps.length,
    skipped: aps.filter((ap) => ap === undefined).length,
  };
}

/** Overall MAP: per-condition MAPs weighted by their number of queries; `skipped` is the sum over conditions. */
export function weightedMap(perCondition: ReadonlyArray<MapResult>): MapResult {
  const queries = perCondition.reduce((total, entry) => total + entry.queries, 0);
  const sum = perCondition.reduce((total, entry) => total + entry.map * entry.queries, 0);
  const skipped = perCondition.reduce((total, entry) => total + entry.skipped, 0);
  return { map: queries > 0 ? sum / queries : 0, queries, skipped };
}

/** Two label lists share at least one label. */
export function sharesLabel(a: readonly string[], b: readonly string[]): boolean {
  return a.some((label) => b.includes(label));
}

/**
 * Squared L2 distances between every query row and every candidate row (row-major [n, dim] inputs), as a
 * [queries, candidates] row-major matrix. Squared distance ranks exactly like distance and skips the square root.
 */
export function squaredDistances(queries: Float32Array, candidates: Float32Array, dim: number): Float32Array {
  const nq = queries.length / dim;
  const nc = candidates.length / dim;
  const out = new Float32Array(nq * nc);
  for (let q = 0; q < nq; q++) {
    const qo = q * dim;
    for (let c = 0; c < nc; c++) {
      const co = c * dim;
      let sum = 0;
      for (let d = 0; d < dim; d++) {
        const diff = queries[qo + d] - candidates[co + d];
        sum += diff * diff;
      }
      out[q * nc + c] = sum;
    }
  }
  return out;
}
