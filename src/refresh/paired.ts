/**
 * Paired comparison of two models on the same test triplets: per triplet both right, both wrong, or only one
 * right; the difference in accuracy and its confidence interval by a seeded paired bootstrap. Pure.
 *
 * The bootstrap resamples anchor products, not single triplets: the triplets of one anchor share its embedding, so
 * they are not independent, and resampling them one by one would give intervals that are too narrow when a small
 * test split is reused by many triplets. Each resample draws as many anchors as there are, with replacement, and
 * takes the difference of the two models' accuracies over all their triplets; the interval is the percentile
 * interval of those differences.
 */
import { Rng } from '../util/rng.ts';
import type { PairedResult } from './types.ts';

/** One test triplet answered by both models. */
export interface PairedOutcome {
  anchor: number;
  candidate: boolean;
  served: boolean;
}

export interface BootstrapSettings {
  /** Two-sided confidence of the interval, e.g. 0.95. */
  confidence: number;
  resamples: number;
  seed: number;
}

/** Per anchor: its triplet count and (only-candidate − only-served) count. */
function clusters(outcomes: readonly PairedOutcome[]): { size: Float64Array; gain: Float64Array } {
  const byAnchor = new Map<number, { size: number; gain: number }>();
  for (const o of outcomes) {
    const entry = byAnchor.get(o.anchor) ?? { size: 0, gain: 0 };
    entry.size++;
    entry.gain += Number(o.candidate) - Number(o.served);
    byAnchor.set(o.anchor, entry);
  }
  const entries = [...byAnchor.values()];
  return {
    size: Float64Array.from(entries, (e) => e.size),
    gain: Float64Array.from(entries, (e) => e.gain),
  };
}

/** The value at quantile q of sorted `values` (linear between neighbours). */
function quantile(sorted: Float64Array, q: number): number {
  const at = q * (sorted.length - 1);
  const low = Math.floor(at);
  const high = Math.min(sorted.length - 1, low + 1);
  return sorted[low] + (sorted[high] - sorted[low]) * (at - low);
}

/** Difference of the two models on `outcomes` with its bootstrap interval (a zero-width interval when no triplet). */
export function pairedDifference(
  outcomes: readonly PairedOutcome[],
  settings: BootstrapSettings,
): PairedResult {
  const n = outcomes.length;
  const onlyCandidate = outcomes.filter((o) => o.candidate && !o.served).length;
  const onlyServed = outcomes.filter((o) => o.served && !o.candidate).length;
  const candidate = n > 0 ? outcomes.filter((o) => o.candidate).length / n : 0;
  const served = n > 0 ? outcomes.filter((o) => o.served).length / n : 0;
  const delta = n > 0 ? (onlyCandidate - onlyServed) / n : 0;
  const base = { triplets: n, candidate, served, onlyCandidate, onlyServed, delta };
  if (onlyCandidate + onlyServed === 0) return { ...base, interval: [0, 0] };
  const { size, gain } = clusters(outcomes);
  const rng = new Rng(settings.seed);
  const deltas = new Float64Array(settings.resamples);
  const last = size.length - 1;
  for (let r = 0; r < settings.resamples; r++) {
    let triplets = 0;
    let sum = 0;
    for (let k = 0; k <= last; k++) {
      const pick = rng.int(0, last);
      triplets += size[pick];
      sum += gain[pick];
    }
    deltas[r] = sum / triplets;
  }
  deltas.sort();
  const tail = (1 - settings.confidence) / 2;
  return { ...base, interval: [quantile(deltas, tail), quantile(deltas, 1 - tail)] };
}
