/**
 * Distances in a condition space and how each kept embedding dimension contributes to them.
 *
 * Vectors here are condition-space vectors, exactly what the index stores: for CSN the embedding restricted to the
 * condition's kept dimensions and multiplied by its mask, so the masked distance is sum_d (m_d (a_d - b_d))^2 =
 * sum_d (v_d - w_d)^2. For cosine spaces (ASEN, no masks) both vectors are L2-normalised first; then
 * ||a - b||^2 = 2 (1 - cos), so the same per-dimension shares explain the cosine distance.
 */
import type { ConditionSpace, Metric } from '../model/index.ts';

export type Vector = ArrayLike<number>;

/** What an explanation needs to know about a space (ConditionSpace satisfies it). */
export type SpaceDescription = Pick<ConditionSpace, 'condition' | 'metric' | 'dims' | 'weights'>;

function checkLengths(a: Vector, b: Vector): void {
  if (a.length !== b.length) throw new RangeError(`vectors differ in length: ${a.length} vs ${b.length}`);
}

function norm(v: Vector): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i] * v[i];
  return Math.sqrt(sum);
}

/** Euclidean distance for L2 spaces (not squared), 1 - cosine similarity for cosine spaces. */
export function conditionDistance(a: Vector, b: Vector, metric: Metric): number {
  checkLengths(a, b);
  if (metric === 'l2') {
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
    return Math.sqrt(sum);
  }
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return 1;
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  return 1 - dot / (na * nb);
}

/** Per-dimension squared differences whose sum the distance is made of (normalised vectors for cosine). */
export function squaredTerms(a: Vector, b: Vector, metric: Metric): Float64Array {
  return squaredTermsInto(a, b, metric, new Float64Array(a.length));
}

function squaredTermsInto(a: Vector, b: Vector, metric: Metric, terms: Float64Array): Float64Array {
  checkLengths(a, b);
  const scaleA = metric === 'cosine' ? 1 / (norm(a) || 1) : 1;
  const scaleB = metric === 'cosine' ? 1 / (norm(b) || 1) : 1;
  for (let i = 0; i < a.length; i++) terms[i] = (a[i] * scaleA - b[i] * scaleB) ** 2;
  return terms;
}

/**
 * Room for one breakdown's terms, reused: a breakdown is made per neighbour, and each used to allocate a typed
 * array with a buffer of its own. Breakdowns run one at a time (no await inside), so one scratch array serves all.
 */
let scratch = new Float64Array(64);
function scratchTerms(length: number): Float64Array {
  if (scratch.length < length) scratch = new Float64Array(length);
  return scratch.subarray(0, length);
}

export interface DimensionContribution {
  /** Embedding dimension (index into the full embedding, not into the kept list). */
  dim: number;
  /** The condition's mask weight on this dimension (1 for spaces without masks). */
  maskWeight: number;
  /** Signed difference of the two condition-space coordinates (after normalisation for cosine). */
  difference: number;
  /** This dimension's share of the squared distance, in [0, 1]. */
  share: number;
}

export interface DimensionBreakdown {
  distance: number;
  /** The `top` largest contributions, largest first. */
  top: DimensionContribution[];
  /** Share of the squared distance carried by all other kept dimensions. */
  restShare: number;
  keptDims: number;
}

/**
 * Indices of the `count` largest terms, largest first, ties to the lower index: the head of a full sort, kept by
 * insertion instead (sorting all 64 indices per neighbour was the largest part of an explanation's time).
 */
function largestTerms(terms: Float64Array, count: number): number[] {
  const chosen: number[] = [];
  const wanted = Math.max(0, Math.min(count, terms.length));
  for (let i = 0; i < terms.length && wanted > 0; i++) {
    // Only a strictly larger term passes one already kept: an equal one has a higher index.
    let at = chosen.length;
    while (at > 0 && terms[i] > terms[chosen[at - 1]]) at--;
    if (at < wanted) {
      chosen.splice(at, 0, i);
      if (chosen.length > wanted) chosen.pop();
    }
  }
  return chosen;
}

/**
 * Which kept dimensions make the two products far apart under this condition, and by how much: each dimension's
 * share of the masked squared distance. Identical vectors have no distance to share: every share is 0.
 */
export function dimensionBreakdown(
  a: Vector,
  b: Vector,
  space: SpaceDescription,
  top = 5,
): DimensionBreakdown {
  if (a.length !== space.dims.length) {
    throw new RangeError(`space ${space.condition} keeps ${space.dims.length} dims, vector has ${a.length}`);
  }
  const terms = squaredTermsInto(a, b, space.metric, scratchTerms(a.length));
  let total = 0;
  for (const term of terms) total += term;
  const scaleA = space.metric === 'cosine' ? 1 / (norm(a) || 1) : 1;
  const scaleB = space.metric === 'cosine' ? 1 / (norm(b) || 1) : 1;
  const contributions = largestTerms(terms, top).map((i) => ({
    dim: space.dims[i],
    maskWeight: space.weights[i],
    difference: a[i] * scaleA - b[i] * scaleB,
    share: total > 0 ? terms[i] / total : 0,
  }));
  const shown = contributions.reduce((sum, c) => sum + c.share, 0);
  return {
    distance: conditionDistance(a, b, space.metric),
    top: contributions,
    restShare: total > 0 ? Math.max(0, 1 - shown) : 0,
    keptDims: space.dims.length,
  };
}
