/**
 * Combined conditions: "similar in colour and pattern" ranks by a weighted sum over the parts' spaces,
 * key = sum_c w_c s_c, where s_c is the squared masked distance (l2 spaces) or 2 x (1 - cosine) = the squared
 * distance of the normalised vectors (cosine spaces, i.e. ASEN: the parts' distances are summed). For CSN this is
 * exactly one combined mask over the embedding: sum_c w_c sum_d (m_cd (a_d - b_d))^2 = sum_d (M_d (a_d - b_d))^2
 * with M_d = sqrt(sum_c w_c m_cd^2). No index is built per combination: the search is exact over the selected rows
 * (100k products x 2 parts of 16 dims in ~4 ms, bench/filters.ts).
 */
import { parseNumber } from './filter.ts';
import { QueryError } from './query-error.ts';
import type { SpaceData } from './search.ts';
import type { Selection } from './filter.ts';

export interface ConditionPart {
  /** Index into the index's conditions. */
  condition: number;
  /** Weight as written (1 when omitted). */
  weight: number;
}

const PART = /^([A-Za-z0-9][A-Za-z0-9_.-]*)(?:\s*:\s*(\S+))?$/;

/**
 * Parse `color`, `color,pattern` (equal weights) or `color:2,pattern:1`. Throws QueryError for an unknown name
 * (listing the valid ones), a weight that is not a positive number, a repeated name or an empty part.
 */
export function parseConditionParts(text: string, conditions: readonly string[]): ConditionPart[] {
  const parts: ConditionPart[] = [];
  for (const piece of text.split(',')) {
    const match = PART.exec(piece.trim());
    const weight = match?.[2] === undefined ? 1 : parseNumber(match[2]);
    if (!match || weight === undefined || !(weight > 0)) {
      throw new QueryError(
        'malformed-condition',
        `Malformed condition ${JSON.stringify(text)}: write name, name,name or name:weight,name:weight with positive weights (conditions: ${conditions.join(', ')}).`,
        text,
        [...conditions],
      );
    }
    const condition = conditions.indexOf(match[1]);
    if (condition < 0) {
      throw new QueryError(
        'unknown-condition',
        `Unknown condition ${JSON.stringify(match[1])}; valid conditions are ${conditions.join(', ')}.`,
        text,
        [...conditions],
      );
    }
    if (parts.some((part) => part.condition === condition)) {
      throw new QueryError(
        'malformed-condition',
        `Condition ${match[1]} appears twice in ${JSON.stringify(text)}; give it one weight.`,
        text,
        [...conditions],
      );
    }
    parts.push({ condition, weight });
  }
  return parts;
}

/**
 * The weights the search uses. One part: 1, so distances are the condition's own. Several parts: the written
 * weights normalised to sum 1 and divided by each condition's typical s (its median random-pair distance, squared
 * for l2, doubled for cosine), so `color,pattern` weighs both notions equally even when colour distances are
 * larger, and a combined distance of 1 is about as far as a typical random pair.
 */
export function effectiveWeights(
  parts: readonly ConditionPart[],
  medianDistance: (condition: number) => number,
  metric: (condition: number) => SpaceData['metric'],
): number[] {
  if (parts.length === 1) return [1];
  const shares = weightShares(parts.map((part) => part.weight));
  return parts.map((part, p) => {
    const median = medianDistance(part.condition);
    const typical = metric(part.condition) === 'l2' ? median * median : 2 * median;
    return shares[p] / (typical > 0 ? typical : 1);
  });
}

/**
 * Positive finite weights normalised to sum 1. Weights whose sum overflows (`1e308,1e308`) are first divided by
 * the largest, so they keep their proportions instead of all becoming 0.
 */
export function weightShares(weights: readonly number[]): number[] {
  let total = weights.reduce((sum, weight) => sum + weight, 0);
  if (Number.isFinite(total)) return weights.map((weight) => weight / total);
  const largest = Math.max(...weights);
  const scaled = weights.map((weight) => weight / largest);
  total = scaled.reduce((sum, weight) => sum + weight, 0);
  return scaled.map((weight) => weight / total);
}

/** One part of a combined query: its space, its effective weight and the query's vector there. */
export interface WeightedQuery {
  space: SpaceData;
  weight: number;
  query: ArrayLike<number>;
}

export interface PartDistance {
  /** The part's own distance (Euclidean for l2, 1 - cosine for cosine). */
  distance: number;
  /** The part's share of the combined key, in [0, 1]; the shares sum to 1 (all 0 for an identical pair). */
  share: number;
}

export interface CombinedHit {
  index: number;
  /** keyDistance of the combined key: for one part, that space's own distance. */
  distance: number;
  parts: PartDistance[];
}

/** Unit-length copy of a cosine query (the stored cosine rows are unit length); l2 queries as they are. */
export function prepareQuery(space: SpaceData, query: ArrayLike<number>): Float64Array {
  const q = Float64Array.from(query);
  if (space.metric === 'cosine') {
    let norm = 0;
    for (const v of q) norm += v * v;
    if (norm > 0) for (let k = 0; k < q.length; k++) q[k] /= Math.sqrt(norm);
  }
  return q;
}

/** s of row `i` against a prepared query: squared L2, or 2 - 2 dot for unit cosine rows. */
export function partTerm(space: SpaceData, i: number, q: ArrayLike<number>): number {
  const { rows, d } = space;
  const offset = i * d;
  if (space.metric === 'l2') {
    let sum = 0;
    for (let k = 0; k < d; k++) {
      const diff = rows[offset + k] - q[k];
      sum += diff * diff;
    }
    return sum;
  }
  let dot = 0;
  for (let k = 0; k < d; k++) dot += rows[offset + k] * q[k];
  return Math.max(0, 2 - 2 * dot);
}

/** The part distances and shares of row `i`, given each part's prepared query. */
export function describeParts(
  parts: readonly Pick<WeightedQuery, 'space' | 'weight'>[],
  prepared: readonly ArrayLike<number>[],
  i: number,
): { key: number; parts: PartDistance[] } {
  const terms = parts.map((part, p) => part.weight * partTerm(part.space, i, prepared[p]));
  const key = terms.reduce((sum, t) => sum + t, 0);
  return {
    key,
    parts: parts.map((part, p) => {
      const s = partTerm(part.space, i, prepared[p]);
      return {
        distance: part.space.metric === 'l2' ? Math.sqrt(s) : s / 2,
        share: key > 0 ? terms[p] / key : 0,
      };
    }),
  };
}

/**
 * The distance of a combined key: sqrt(key), except for a single cosine part of weight w, where key / (2 w) is that
 * space's own 1 - cosine. So one part always reports the condition's own distance (Euclidean or 1 - cosine).
 */
export function keyDistance(parts: readonly Pick<WeightedQuery, 'space' | 'weight'>[], key: number): number {
  if (parts.length === 1 && parts[0].space.metric === 'cosine') return key / (2 * parts[0].weight);
  return Math.sqrt(key);
}

/** Keeps the k smallest (key, index) pairs; k is small, so sorted insertion beats a heap. */
export class TopK {
  readonly keys: Float64Array;
  readonly ids: Int32Array;
  size = 0;

  constructor(readonly k: number) {
    this.keys = new Float64Array(k);
    this.ids = new Int32Array(k);
  }

  /** The key a candidate must beat to enter (Infinity until full). */
  get bound(): number {
    return this.size < this.k ? Number.POSITIVE_INFINITY : this.keys[this.k - 1];
  }

  push(key: number, id: number): void {
    if (this.k === 0 || (this.size === this.k && key >= this.keys[this.k - 1])) return;
    let at = this.size < this.k ? this.size++ : this.k - 1;
    while (at > 0 && this.keys[at - 1] > key) {
      this.keys[at] = this.keys[at - 1];
      this.ids[at] = this.ids[at - 1];
      at--;
    }
    this.keys[at] = key;
    this.ids[at] = id;
  }
}

/**
 * Exact k nearest selected rows under the combined key, nearest first (ties by slot), with each part's distance
 * and share. Rows whose partial sum already exceeds the current k-th key are abandoned early.
 */
export function combinedSearch(
  parts: readonly WeightedQuery[],
  k: number,
  selection: Selection,
  exclude?: ReadonlySet<number>,
): CombinedHit[] {
  const prepared = parts.map((part) => prepareQuery(part.space, part.query));
  const top = new TopK(k);
  const { bits } = selection;
  for (let i = 0; i < bits.length; i++) {
    if (!bits[i] || exclude?.has(i)) continue;
    const bound = top.bound;
    let key = 0;
    for (let p = 0; p < parts.length && key < bound; p++) {
      key += parts[p].weight * partTerm(parts[p].space, i, prepared[p]);
    }
    top.push(key, i);
  }
  const hits: CombinedHit[] = [];
  for (let j = 0; j < top.size; j++) {
    const i = top.ids[j];
    hits.push({
      index: i,
      distance: keyDistance(parts, top.keys[j]),
      parts: describeParts(parts, prepared, i).parts,
    });
  }
  return hits;
}
