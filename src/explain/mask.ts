/** A condition's mask in a few numbers a person can read. */
import type { SpaceDescription } from './distance.ts';

export interface MaskSummary {
  totalDims: number;
  keptDims: number;
  /**
   * Participation ratio (sum w)^2 / sum w^2: how many dimensions effectively carry the condition. Equals keptDims
   * for a flat mask and approaches 1 when one dimension dominates.
   */
  effectiveDims: number;
  maxWeight: number;
  meanWeight: number;
  /** Heaviest dimensions, heaviest first. */
  topDims: { dim: number; weight: number }[];
  /** Mask over the whole embedding, 0 where the space drops a dimension. */
  weights: number[];
}

export function summarizeMask(space: SpaceDescription, totalDims?: number, top = 8): MaskSummary {
  const size = totalDims ?? (space.dims.length === 0 ? 0 : Math.max(...space.dims) + 1);
  const weights = new Array<number>(size).fill(0);
  let sum = 0;
  let sumSquares = 0;
  let max = 0;
  space.dims.forEach((dim, i) => {
    const w = space.weights[i];
    if (dim >= size)
      throw new RangeError(`space ${space.condition} keeps dim ${dim} of a ${size}-dim embedding`);
    weights[dim] = w;
    sum += Math.abs(w);
    sumSquares += w * w;
    max = Math.max(max, Math.abs(w));
  });
  const topDims = space.dims
    .map((dim, i) => ({ dim, weight: space.weights[i] }))
    .sort((a, b) => Math.abs(b.weight) - Math.abs(a.weight) || a.dim - b.dim)
    .slice(0, top);
  return {
    totalDims: size,
    keptDims: space.dims.length,
    effectiveDims: sumSquares > 0 ? (sum * sum) / sumSquares : 0,
    maxWeight: max,
    meanWeight: space.dims.length > 0 ? sum / space.dims.length : 0,
    topDims,
    weights,
  };
}
