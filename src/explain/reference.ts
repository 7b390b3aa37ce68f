/**
 * How close is close? A distance only means something next to the distances of arbitrary pairs under the same
 * condition, so every condition keeps a sorted sample of random-pair distances and a pair's score is the fraction
 * of random pairs that are farther apart ("closer than 93% of random pairs").
 */
import type { Rng } from '../util/rng.ts';
import { conditionDistance, type Metric, type Vector } from './distance.ts';

/** Something a pair's distance can be scored against. */
export interface DistanceReference {
  /** Fraction of random pairs farther apart than `distance`, in [0, 1]. */
  score(distance: number): number;
  /** Random-pair distance at quantile q in [0, 1]. */
  quantile(q: number): number;
}

/** A sample of random-pair distances, kept sorted. */
export class PairReference implements DistanceReference {
  private readonly sorted: Float64Array;

  constructor(distances: ArrayLike<number>) {
    this.sorted = Float64Array.from(distances).sort();
  }

  get size(): number {
    return this.sorted.length;
  }

  /**
   * Fraction of reference pairs strictly farther apart than `distance`, ties counted as half, in [0, 1].
   * An empty reference (a catalogue of one product) has nothing to compare with and scores 0.
   */
  score(distance: number): number {
    const n = this.sorted.length;
    if (n === 0) return 0;
    const below = lowerBound(this.sorted, distance);
    const notAbove = upperBound(this.sorted, distance);
    const farther = n - notAbove;
    const tied = notAbove - below;
    return (farther + tied / 2) / n;
  }

  /** Distance at quantile q in [0, 1] of the reference (nearest rank); NaN when empty. */
  quantile(q: number): number {
    const n = this.sorted.length;
    if (n === 0) return Number.NaN;
    const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
    return this.sorted[rank];
  }
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
 * Sample `pairs` random pairs of distinct products (seeded, so a bundle always gets the same reference) and keep
 * their distances under one condition. `vectorOf(i)` returns product i's condition-space vector.
 */
export function samplePairReference(
  count: number,
  vectorOf: (product: number) => Vector,
  metric: Metric,
  rng: Rng,
  pairs = 2000,
): PairReference {
  if (count < 2) return new PairReference([]);
  const distances = new Float64Array(pairs);
  for (let p = 0; p < pairs; p++) {
    const i = rng.int(0, count - 1);
    let j = rng.int(0, count - 2);
    if (j >= i) j++;
    distances[p] = conditionDistance(vectorOf(i), vectorOf(j), metric);
  }
  return new PairReference(distances);
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
