/**
 * How faithful a heat map is, as plain arithmetic (bench/explain-faithfulness.ts runs the model):
 * - energy on part: share of the map's mass inside the ground-truth region over the region's share of the image
 *   (1 = no better than uniform);
 * - deletion / insertion: the order in which to grey out (or restore) blocks of pixels, most salient first, and
 *   the area under the distance curve that order produces, against a random order;
 * - a percentile bootstrap interval for a ratio of means over pairs.
 */
import { Rng } from '../util/rng.ts';

/** (mass of `heat` inside `region`) / (total mass) ÷ (area of region / area); NaN for an empty map or region. */
export function energyOnPart(heat: ArrayLike<number>, region: ArrayLike<number>): number {
  if (heat.length !== region.length)
    throw new RangeError(`heat has ${heat.length} values, region ${region.length}`);
  let inside = 0;
  let total = 0;
  let area = 0;
  for (let p = 0; p < heat.length; p++) {
    const h = Math.max(0, heat[p]);
    total += h;
    if (region[p]) {
      inside += h;
      area++;
    }
  }
  if (total === 0 || area === 0) return Number.NaN;
  return inside / total / (area / heat.length);
}

/**
 * Square blocks of `block`×`block` pixels of a size×size map, ordered by their mean heat (highest first, ties in
 * a random order from `rng`), or in a uniformly random order when `heat` is undefined. Each block is listed as
 * the pixel indices it covers. Blocks rather than single pixels: scattered single grey pixels are an input the
 * network never saw, and would move the distance for reasons unrelated to any region.
 */
export function blockOrder(
  heat: ArrayLike<number> | undefined,
  size: number,
  block: number,
  rng: Rng,
): number[][] {
  const blocks: { pixels: number[]; heat: number; tie: number }[] = [];
  for (let by = 0; by < size; by += block) {
    for (let bx = 0; bx < size; bx += block) {
      const pixels: number[] = [];
      for (let y = by; y < Math.min(size, by + block); y++) {
        for (let x = bx; x < Math.min(size, bx + block); x++) pixels.push(y * size + x);
      }
      const mean = heat ? pixels.reduce((s, p) => s + heat[p], 0) / pixels.length : 0;
      blocks.push({ pixels, heat: mean, tie: rng.next() });
    }
  }
  blocks.sort((a, b) => b.heat - a.heat || a.tie - b.tie);
  return blocks.map((b) => b.pixels);
}

/**
 * Pixel masks (1 = replaced) after greying the first ⌈j·B/steps⌉ of B blocks, for j = 0..steps: steps + 1 masks of
 * size² values, concatenated.
 */
export function deletionMasks(order: number[][], pixels: number, steps: number): Float32Array {
  const out = new Float32Array((steps + 1) * pixels);
  for (let j = 0; j <= steps; j++) {
    const taken = Math.ceil((j * order.length) / steps);
    for (let b = 0; b < taken; b++) for (const p of order[b]) out[j * pixels + p] = 1;
  }
  return out;
}

/** Trapezoidal area under a curve sampled at steps + 1 equally spaced points of [0, 1]. */
export function curveArea(values: ArrayLike<number>): number {
  const steps = values.length - 1;
  if (steps < 1) throw new RangeError('a curve needs at least two points');
  let area = 0;
  for (let j = 0; j < steps; j++) area += (values[j] + values[j + 1]) / 2;
  return area / steps;
}

/** Σ gaps / Σ scales over the chosen pairs (indices may repeat, as in a bootstrap resample). */
export function ratioOfSums(
  gaps: ArrayLike<number>,
  scales: ArrayLike<number>,
  rows?: ArrayLike<number>,
): number {
  let gap = 0;
  let scale = 0;
  const count = rows ? rows.length : gaps.length;
  for (let i = 0; i < count; i++) {
    const r = rows ? rows[i] : i;
    gap += gaps[r];
    scale += scales[r];
  }
  return scale > 0 ? gap / scale : Number.NaN;
}

/** Percentile bootstrap interval (95 % by default) of ratioOfSums, resampling pairs with replacement. */
export function bootstrapInterval(
  gaps: ArrayLike<number>,
  scales: ArrayLike<number>,
  seed: number,
  resamples = 1000,
  level = 0.95,
): [number, number] {
  const n = gaps.length;
  if (n === 0) return [Number.NaN, Number.NaN];
  const rng = new Rng(seed);
  const rows = new Array<number>(n);
  const estimates: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) rows[i] = rng.int(0, n - 1);
    estimates.push(ratioOfSums(gaps, scales, rows));
  }
  estimates.sort((a, b) => a - b);
  const at = (q: number) => estimates[Math.min(resamples - 1, Math.max(0, Math.floor(q * resamples)))];
  return [at((1 - level) / 2), at(1 - (1 - level) / 2)];
}
