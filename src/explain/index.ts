/** Explanation maths for the service: pure functions over vectors, masks and labels (no I/O, no HTTP). */
export {
  conditionDistance,
  squaredTerms,
  dimensionBreakdown,
  type Metric,
  type Vector,
  type SpaceDescription,
  type DimensionContribution,
  type DimensionBreakdown,
} from './distance.ts';
export {
  PairReference,
  QuantileReference,
  samplePairReference,
  type DistanceReference,
} from './reference.ts';
export {
  compareAttributes,
  type AttributeComparison,
  type SharedAttribute,
  type DifferingAttribute,
} from './attributes.ts';
export { summarizeMask, type MaskSummary } from './mask.ts';
export {
  explainPair,
  describeScore,
  type PairExplanation,
  type PairInput,
  type OtherCondition,
} from './pair.ts';
export { overlaySaliency, rampColour, resizeMap } from './heatmap.ts';
