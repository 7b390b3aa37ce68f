/**
 * How close is close? A distance only means something next to the distances of arbitrary pairs under the same
 * condition, so the index stage records per condition a quantile table of random-pair distances and a pair's score is
 * the fraction of random pairs that are farther apart ("closer than 93% of random pairs").
 */

/** Something a pair's distance can be scored against. */
export interface DistanceReference {
  /** Fraction of random pairs farther apart than `distance`, in [0, 1]. */
  score(distance: number): number;
  /** Random-pair distance at quantile q in [0, 1]. */
  quantile(q: number): number;
}

function lowerBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(sorted: Float64Array, value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A reference given as a quantile table: distances at 0%, 1/(L-1), ..., 100% of random pairs (what the index stage
 * records per condition). Scores interpolate linearly between table entries, so they vary smoothly with distance.
 */
export class QuantileReference implements DistanceReference {
  private readonly table: Float64Array;

  constructor(table: ArrayLike<number>) {
    this.table = Float64Array.from(table);
    for (let i = 1; i < this.table.length; i++) {
      if (!(this.table[i] >= this.table[i - 1]))
        throw new RangeError('a quantile table must be non-decreasing');
    }
  }

  score(distance: number): number {
    const t = this.table;
    const last = t.length - 1;
    if (last < 1 || Number.isNaN(distance)) return 0;
    if (distance < t[0]) return 1;
    if (distance > t[last]) return 0;
    // Entries equal to the distance form a run [first, end): the distance sits in the middle of that run.
    const first = lowerBound(t, distance);
    const end = upperBound(t, distance);
    let position: number;
    if (end > first) position = (first + end - 1) / 2;
    else position = first - 1 + (distance - t[first - 1]) / (t[first] - t[first - 1]);
    return 1 - position / last;
  }

  quantile(q: number): number {
    const last = this.table.length - 1;
    if (last < 0) return Number.NaN;
    const position = Math.min(1, Math.max(0, q)) * last;
    const below = Math.floor(position);
    const above = Math.min(last, below + 1);
    return this.table[below] + (this.table[above] - this.table[below]) * (position - below);
  }
}
