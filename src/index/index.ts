/** The index stage: per-condition HNSW indexes in versioned, atomically published bundles. */
export * from './types.ts';
export {
  buildBundle,
  resolveParams,
  type BuildOptions,
  type BuildProgress,
  type BuildReport,
  type BuildStage,
} from './build.ts';
export {
  collectGarbage,
  removeLeftovers,
  holdLock,
  nextVersionName,
  publishVersion,
  type HeldLock,
  type PendingVersion,
} from './lifecycle.ts';
export { DEFAULT_PARAMS, DEMO_BUNDLE_DIR, BUILD_DEFAULTS } from './defaults.ts';
export {
  openBundle,
  loadVersion,
  requireManifest,
  readPublishedInfo,
  IndexBundle,
  type OpenBundleOptions,
  type SearchQuery,
  type SearchOptions,
  type SearchHit,
} from './bundle.ts';
export { readManifest, listVersionDirs } from './files.ts';
export {
  createModelSource,
  DECODE_IN_FLIGHT,
  fingerprintProducts,
  modelProvenance,
  checkpointConditionScores,
  type ModelSourceOptions,
} from './model-source.ts';
export {
  conditionSpace,
  metricOf,
  exactSearch,
  recallAtK,
  quantiles,
  scoreFromQuantiles,
  type Neighbour,
} from './vectors.ts';
export * from './store/types.ts';
export { openVectorStore } from './store/open.ts';
export { HnswStore } from './store/hnswlib.ts';
// LanceDB and Arrow load only where a LanceDB store is used (openVectorStore, the index job's --store lancedb):
// about 40 MB of a process's memory that the default store does not need. Types only here.
export type { LanceBuildOptions, LanceBuildReport, LanceBuildStage } from './store/lance-build.ts';
export type { ShardSpec } from './store/lance-shards.ts';
export { matchesFilter } from './store/common.ts';
export { QueryError, type QueryErrorCode } from './query-error.ts';
export { stageBars, type StageBars } from './progress.ts';
export {
  FilterTable,
  parseFilter,
  filterKey,
  toStoreFilter,
  type Filter,
  type FilterClause,
  type FilterSchema,
  type FieldSummary,
  type Selection,
} from './filter.ts';
export { exactBelowSelectivity, FILTER_COST_RATIO } from './search.ts';
export { parseConditionParts, weightShares, type ConditionPart } from './combine.ts';
export { RECOMMEND_STRATEGIES, MAX_EXAMPLES, checkExamples, type RecommendStrategy } from './recommend.ts';
export {
  filterSchema,
  selectProducts,
  resolveCondition,
  storeFilter,
  storeCombined,
  storeRecommend,
  queryVersion,
  weightedParts,
  type ResolvedQueryHit,
  type ResolvedCondition,
  type PartResult,
  type CombinedQueryHit,
  type RecommendQueryHit,
} from './query.ts';
