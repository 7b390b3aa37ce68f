/** The index stage: per-condition HNSW indexes in versioned, atomically published bundles. */
export * from './types.ts';
export {
  buildBundle,
  collectGarbage,
  resolveParams,
  type BundleSource,
  type BuildOptions,
  type BuildProgress,
  type BuildReport,
  type BuildStage,
  type EmbeddedRows,
} from './build.ts';
export { DEFAULT_PARAMS, DEMO_BUNDLE_DIR, BUILD_DEFAULTS } from './defaults.ts';
export {
  openBundle,
  loadVersion,
  requireManifest,
  IndexBundle,
  type OpenBundleOptions,
  type SearchQuery,
  type SearchOptions,
  type SearchHit,
} from './bundle.ts';
export { readManifest, listVersionDirs } from './files.ts';
export { createModelSource, fingerprintProducts, type ModelSourceOptions } from './model-source.ts';
export {
  conditionSpace,
  metricOf,
  exactSearch,
  recallAtK,
  quantiles,
  scoreFromQuantiles,
  type Metric,
  type Neighbour,
} from './vectors.ts';
