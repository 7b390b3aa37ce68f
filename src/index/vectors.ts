/**
 * Vector maths of the index stage: condition subspaces, exact (brute-force) search, recall and distance quantiles.
 * Distances follow the explain stage: Euclidean (not squared) for l2 spaces, 1 - cosine similarity for cosine ones.
 * Rows live in flat Float32Arrays (row-major), the layout the bundle stores on disk.
 */
import type { ConditionSpace, ModelKind } from '../model/types.ts';
import type { Rng } from '../util/rng.ts';

export type Metric = ConditionSpace['metric'];

/** CSN and the unconditional baseline compare masked embeddings by L2 (as upstream); ASEN compares by cosine. */
export function metricOf(kind: ModelKind): Metric {
  return kind === 'asen' ? 'cosine' : 'l2';
}

/**
 * The space an index is built over for one condition. CSN: the dims whose |mask weight| reaches `threshold` times the
 * condition's largest one, each multiplied by its weight (threshold 0 keeps every nonzero dim, which is exact).
 * ASEN and unconditional: every dim with weight 1. `threshold` is checked once, by resolveParams (build.ts).
 */
export function conditionSpace(
  condition: string,
  kind: ModelKind,
  mask: readonly number[],
  embedDim: number,
  threshold: number,
): ConditionSpace {
  if (kind !== 'csn') {
    const dims = Array.from({ length: embedDim }, (_, d) => d);
    return { condition, metric: metricOf(kind), dims, weights: dims.map(() => 1) };
  }
  if (mask.length !== embedDim) {
    throw new RangeError(`mask of ${condition} has ${mask.length} weights, the embedding ${embedDim} dims`);
  }
  const largest = mask.reduce((max, w) => Math.max(max, Math.abs(w)), 0);
  if (!(largest > 0))
    throw new RangeError(`mask of ${condition} is all zero: this condition has no space to index`);
  const dims: number[] = [];
  mask.forEach((w, d) => {
    if (w !== 0 && Math.abs(w) >= threshold * largest) dims.push(d);
  });
  return { condition, metric: 'l2', dims, weights: dims.map((d) => mask[d]) };
}

/** Rows of `source` (n x sourceDim) restricted to `dims` and multiplied by `weights`; cosine rows are L2-normalised. */
export function projectRows(
  source: Float32Array,
  sourceDim: number,
  space: Pick<ConditionSpace, 'dims' | 'weights' | 'metric'>,
): Float32Array {
  const n = source.length / sourceDim;
  const d = space.dims.length;
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    const from = i * sourceDim;
    const to = i * d;
    for (let k = 0; k < d; k++) out[to + k] = source[from + space.dims[k]] * space.weights[k];
  }
  if (space.metric === 'cosine') normalizeRows(out, d);
  return out;
}

/** Scale each row to unit length in place (zero rows stay zero). */
export function normalizeRows(rows: Float32Array, d: number): Float32Array {
  for (let start = 0; start < rows.length; start += d) {
    let sum = 0;
    for (let k = 0; k < d; k++) sum += rows[start + k] * rows[start + k];
    if (sum > 0) {
      const scale = 1 / Math.sqrt(sum);
      for (let k = 0; k < d; k++) rows[start + k] *= scale;
    }
  }
  return rows;
}

/** Squared L2 between row i of `rows` and `query` (length d). */
function squaredL2(rows: Float32Array, offset: number, query: ArrayLike<number>, d: number): number {
  let sum = 0;
  for (let k = 0; k < d; k++) {
    const diff = rows[offset + k] - query[k];
    sum += diff * diff;
  }
  return sum;
}

function dot(rows: Float32Array, offset: number, query: ArrayLike<number>, d: number): number {
  let sum = 0;
  for (let k = 0; k < d; k++) sum += rows[offset + k] * query[k];
  return sum;
}

/**
 * Distance between row `i` and a query in the same space. Cosine rows are stored unit-length; the query is
 * normalised here, so callers may pass any vector.
 */
export function rowDistance(
  rows: Float32Array,
  d: number,
  i: number,
  query: ArrayLike<number>,
  metric: Metric,
): number {
  if (metric === 'l2') return Math.sqrt(squaredL2(rows, i * d, query, d));
  let norm = 0;
  for (let k = 0; k < d; k++) norm += query[k] * query[k];
  let rowNorm = 0;
  for (let k = 0; k < d; k++) rowNorm += rows[i * d + k] ** 2;
  if (norm === 0 || rowNorm === 0) return 1;
  return 1 - dot(rows, i * d, query, d) / Math.sqrt(norm * rowNorm);
}

export interface Neighbour {
  index: number;
  distance: number;
}

/**
 * Exact k nearest rows to `query` by brute force. `live` (optional) marks usable rows; `exclude` rows are skipped.
 * Ties are broken by row index so the result is deterministic.
 */
export function exactSearch(
  rows: Float32Array,
  d: number,
  query: ArrayLike<number>,
  k: number,
  metric: Metric,
  options: { live?: Uint8Array; exclude?: ReadonlySet<number> } = {},
): Neighbour[] {
  const n = rows.length / d;
  let q: ArrayLike<number> = query;
  if (metric === 'cosine') {
    const unit = Float32Array.from(query);
    normalizeRows(unit, d);
    q = unit;
  }
  // Keep the best k in two parallel arrays sorted by (key, index): k is small, so insertion beats a heap.
  const keys = new Float64Array(k);
  const ids = new Int32Array(k);
  let size = 0;
  for (let i = 0; i < n; i++) {
    if (options.live && !options.live[i]) continue;
    if (options.exclude?.has(i)) continue;
    const key = metric === 'l2' ? squaredL2(rows, i * d, q, d) : 1 - dot(rows, i * d, q, d);
    if (size === k && key >= keys[k - 1]) continue;
    let at = size < k ? size++ : k - 1;
    while (at > 0 && keys[at - 1] > key) {
      keys[at] = keys[at - 1];
      ids[at] = ids[at - 1];
      at--;
    }
    keys[at] = key;
    ids[at] = i;
  }
  const out: Neighbour[] = [];
  for (let j = 0; j < size; j++) {
    out.push({ index: ids[j], distance: metric === 'l2' ? Math.sqrt(Math.max(0, keys[j])) : keys[j] });
  }
  return out;
}

/**
 * Tie-aware recall@k of an approximate result against the exact one: the fraction of the k approximate neighbours
 * that are at most as far as the exact k-th neighbour. Equal distances count as found, so duplicates in the data
 * (identical images, identical masked vectors) do not look like misses.
 */
export function recallAtK(approximate: readonly Neighbour[], exact: readonly Neighbour[], k: number): number {
  const wanted = Math.min(k, exact.length);
  if (wanted === 0) return 1;
  const radius = exact[wanted - 1].distance;
  const tolerance = 1e-5 * Math.max(1, Math.abs(radius));
  let found = 0;
  for (const neighbour of approximate.slice(0, wanted)) if (neighbour.distance <= radius + tolerance) found++;
  return found / wanted;
}

/** The distances at 0%, 1%, ..., 100% of a sample (linear interpolation between order statistics). */
export function quantiles(sample: ArrayLike<number>, levels = 101): number[] {
  const sorted = Float64Array.from(sample).sort();
  if (sorted.length === 0) return [];
  return Array.from({ length: levels }, (_, i) => {
    const position = (i / (levels - 1)) * (sorted.length - 1);
    const below = Math.floor(position);
    const above = Math.min(sorted.length - 1, below + 1);
    return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
  });
}

/**
 * Similarity score in [0, 1] of a distance: the fraction of random pairs that are farther apart, read off the
 * condition's quantiles with linear interpolation (0.93 = "closer than 93% of random pairs").
 */
export function scoreFromQuantiles(table: readonly number[], distance: number): number {
  const levels = table.length;
  if (levels < 2 || Number.isNaN(distance)) return 0;
  if (distance <= table[0]) return 1;
  if (distance >= table[levels - 1]) return 0;
  let lo = 0;
  let hi = levels - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (table[mid] <= distance) lo = mid;
    else hi = mid;
  }
  // Several quantiles can share one value (many identical pairs): take the middle of that run.
  let first = lo;
  while (first > 0 && table[first - 1] === table[lo]) first--;
  const span = table[hi] - table[lo];
  const position = span > 0 ? lo + (distance - table[lo]) / span : (first + lo) / 2;
  return 1 - position / (levels - 1);
}

/** Distances of `pairs` random pairs of distinct live rows (seeded), for the quantile table. */
export function randomPairDistances(
  rows: Float32Array,
  d: number,
  liveRows: readonly number[],
  metric: Metric,
  rng: Rng,
  pairs: number,
): Float64Array {
  if (liveRows.length < 2) return new Float64Array(0);
  const out = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    const a = rng.int(0, liveRows.length - 1);
    let b = rng.int(0, liveRows.length - 2);
    if (b >= a) b++;
    out[p] = rowDistance(rows, d, liveRows[a], rows.subarray(liveRows[b] * d, liveRows[b] * d + d), metric);
  }
  return out;
}

/** `count` distinct items of `items` (seeded partial shuffle), in sampled order. */
export function sampleWithoutReplacement<T>(items: readonly T[], count: number, rng: Rng): T[] {
  const pool = [...items];
  const take = Math.min(count, pool.length);
  for (let i = 0; i < take; i++) {
    const j = rng.int(i, pool.length - 1);
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  return pool.slice(0, take);
}
