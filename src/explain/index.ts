/** Explanation maths for the service: pure functions over vectors, masks, labels and (lazily) model tensors; no I/O, no HTTP. */
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
export {
  HEATMAP_METHODS,
  DEFAULT_HEATMAP_METHOD,
  HEATMAP_LEGEND,
  methodsFor,
  isHeatmapMethod,
  type HeatmapMethod,
} from './methods.ts';
export type { AttributionOptions } from './attribution.ts';
export {
  energyOnPart,
  blockOrder,
  deletionMasks,
  curveArea,
  ratioOfSums,
  bootstrapInterval,
} from './faithfulness.ts';

/** The tensor side of explanations (heat-map methods); loaded on demand so that importing this stage never loads tfjs. */
export const loadAttribution = () => import('./attribution.ts');
