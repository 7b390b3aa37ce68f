/** The refresh stage: keep a published bundle in step with a changing catalogue (change report, rule, gate). */
export * from './types.ts';
export {
  compareCatalogue,
  describeChanges,
  nothingChanged,
  productChange,
  type ComparedProduct,
  type ServedSide,
  type CatalogueSide,
} from './changes.ts';
export { decide, retrainReasons, type DecisionOptions } from './decision.ts';
export { applyGate, formatGate, describeDifference, type GateAnswers, type GateSettings } from './gate.ts';
export { pairedDifference, type PairedOutcome, type BootstrapSettings } from './paired.ts';
export { warmStart, perConditionWeights, type WarmStart } from './warm-start.ts';
export { answerSharedTriplets, type SharedAnswers } from './compare.ts';
export { REFRESH_DEFAULTS, defaultRefreshName } from './options.ts';
export { acquireRefreshLock, type RefreshLock } from './lock.ts';
export { newReport, ReportWriter, markAbandoned } from './report.ts';
