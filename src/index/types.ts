/** The index stage: versioned bundles of per-condition HNSW indexes, as written by the index job and read by serve. */
import type { FieldSchema, FieldValue } from '../catalogue/index.ts';
import type { ConditionSpace, ModelKind } from '../model/index.ts';

export const BUNDLE_FORMAT = 'dressmatch-index';
export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.json';
export const VERSIONS_DIR = 'versions';
export const VERSION_FILE = 'version.json';
export const PRODUCTS_FILE = 'products.json';
export const EMBEDDINGS_FILE = 'embeddings.f32';
/** The checkpoint of the model a version was built from, when the job was given its file (refresh reads it back). */
export const MODEL_FILE = 'model.dmck';
/** Prefix of the directory a version is built in before it is renamed into place. */
export const TEMP_PREFIX = '.tmp-';

export type BundleErrorCode =
  /** No bundle (or no published version) at that path. */
  | 'not-found'
  /** A file is missing, truncated, does not parse or has the wrong shape. */
  | 'corrupt'
  /** A file's SHA-256 differs from the one recorded when it was written. */
  | 'checksum'
  /** The bundle was built from another model than the one the caller runs. */
  | 'model-mismatch'
  /** The bundle's conditions differ from the ones the caller expects. */
  | 'conditions-mismatch'
  /** Written by a newer (or unknown) format version. */
  | 'unsupported'
  /** Another index job holds the bundle's lock. */
  | 'locked'
  /** The data given to the builder is inconsistent (duplicate ids, wrong vector lengths...). */
  | 'invalid-input';

/** Any problem with an index bundle: what went wrong, and the file or directory it concerns. */
export class BundleError extends Error {
  constructor(
    readonly code: BundleErrorCode,
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
    this.name = 'BundleError';
  }
}

/** True when a condition's index misses too many exact neighbours, by HNSW or by dropping low-weight mask dims. */
export function failsRecall(quality: ConditionQuality, minRecall: number): boolean {
  return (
    quality.recall < minRecall || (quality.subspaceRecall !== null && quality.subspaceRecall < minRecall)
  );
}

/** The index job's quality gate failed: nothing was published. */
export class IndexQualityError extends Error {
  constructor(
    readonly quality: ConditionQuality[],
    readonly minRecall: number,
  ) {
    const graph = quality.filter((q) => q.recall < minRecall);
    const subspace = quality.filter((q) => q.subspaceRecall !== null && q.subspaceRecall < minRecall);
    const k = quality[0]?.k ?? 10;
    const reasons = [
      graph.length > 0 &&
        `HNSW recall@${k} below ${minRecall} for ${graph
          .map((q) => `${q.condition} (${q.recall.toFixed(3)})`)
          .join(', ')} (raise --ef-search, --m or --ef-construction)`,
      subspace.length > 0 &&
        `subspace recall@${k} below ${minRecall} for ${subspace
          .map((q) => `${q.condition} (${q.subspaceRecall?.toFixed(3)})`)
          .join(', ')} (lower --mask-threshold)`,
    ].filter(Boolean);
    super(`${reasons.join('; ')}: the new index was not published`);
    this.name = 'IndexQualityError';
  }
}

/** A product as the bundle stores it. */
export interface IndexedProduct {
  id: string;
  title: string;
  /** Image path relative to the catalogue root. */
  image: string;
  attributes: Record<string, string[]>;
  /** Product fields to filter on (price, in_stock...), copied from the catalogue; absent when it has none. */
  fields?: Record<string, FieldValue>;
  /**
   * Hash of everything the product's vectors depend on (title, image path, attributes and the image file's bytes):
   * an incremental run re-embeds a product exactly when its fingerprint changes.
   */
  fingerprint: string;
  /** SHA-256 of the image file alone (recorded since refresh exists): tells an image change from a label change. */
  imageSha256?: string;
}

/** How well a model does under one condition on its test split; null where it was not measured. */
export interface ConditionScore {
  testAccuracy: number | null;
  testMap: number | null;
}

/** What the service shows about the model of a version: when it was trained, how well, who published it. */
export interface ModelProvenance {
  /** When the model's checkpoint was written; null when unknown. */
  trainedAt: string | null;
  /** Overall test triplet accuracy (0-1) measured for this model; null when unknown. */
  testAccuracy: number | null;
  /** Per condition: test triplet accuracy and retrieval MAP measured for this model (absent when unknown). */
  conditionScores?: Record<string, ConditionScore>;
  /** Name of the refresh run that published the version; null for the index command. */
  refresh: string | null;
}

/** Build parameters, recorded in every version. */
export interface BuildParams {
  /** HNSW graph degree (links per node; level 0 gets 2M). */
  m: number;
  efConstruction: number;
  /** Default candidate-list size at query time (raised to k when k is larger). */
  efSearch: number;
  /** CSN: keep dims whose |mask weight| >= threshold x the condition's largest weight; 0 keeps every nonzero dim. */
  maskThreshold: number;
  /** Seed for HNSW level assignment and every sample (recall queries, quantile pairs). */
  seed: number;
  /** k of the recall@k quality check. */
  recallK: number;
  /** Queries in the recall check (sampled from the indexed products). */
  recallSample: number;
  /** Publish only when every condition reaches this recall. */
  minRecall: number;
  /** Random product pairs behind each condition's distance quantiles. */
  quantilePairs: number;
}

export interface ConditionQuality {
  condition: string;
  k: number;
  /** HNSW recall@k against exact search in the indexed space (tie-aware), over the sampled queries. */
  recall: number;
  /**
   * CSN with a mask threshold: exact top-k in the kept dims against exact top-k under the full mask, i.e. what the
   * threshold costs; null when the space keeps every nonzero dim or has no shared embedding.
   */
  subspaceRecall: number | null;
  queries: number;
  /** Mean HNSW query time in the check, milliseconds. */
  hnswMs: number;
  /** Mean brute-force query time in the check, milliseconds. */
  exactMs: number;
}

/** A condition's space as recorded in a version. */
export interface SpaceRecord extends ConditionSpace {
  /** HNSW index file and float32 vectors file of this condition, relative to the version directory. */
  indexFile: string;
  vectorsFile: string;
  /** Distance at 0%, 1%, ..., 100% of random product pairs (Euclidean for l2, 1 - cosine for cosine). */
  quantiles: number[];
  quality: ConditionQuality;
}

export interface FileRecord {
  bytes: number;
  sha256: string;
}

export interface ChangeSummary {
  added: number;
  updated: number;
  removed: number;
  unchanged: number;
  /** The slot table was rebuilt without holes (too many removed products had accumulated). */
  compacted: boolean;
}

/** `versions/<version>/version.json`: everything needed to check and load one version. */
export interface VersionInfo {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  version: string;
  createdAt: string;
  mode: 'full' | 'incremental';
  /** Version this one was derived from (incremental), or the one it replaced (full). */
  previousVersion: string | null;
  /** `checkpoint`: the model's file in the version directory (MODEL_FILE), when the job was given one. */
  model: { id: string; kind: ModelKind; embedDim: number; checkpoint?: string };
  /** Absent in versions written before refresh existed. */
  provenance?: ModelProvenance | null;
  catalogue: { name: string; root: string } | null;
  conditions: string[];
  /** Types of the product fields (absent in bundles written before fields existed: no fields). */
  fields?: FieldSchema;
  /** Full masks, one row per condition (all ones for models without masks). */
  masks: number[][];
  /** Slots in every per-product array and HNSW label space; removed products leave null slots until compaction. */
  slots: number;
  live: number;
  params: BuildParams;
  spaces: SpaceRecord[];
  /** Shared embedding, slots x embedDim (CSN and unconditional); null for ASEN. */
  embeddingsFile: string | null;
  productsFile: string;
  changes: ChangeSummary;
  /** Seconds spent per stage of the build. */
  timings: Record<string, number>;
  /** Every other file of the version directory, with its size and SHA-256. */
  files: Record<string, FileRecord>;
}

/** `<bundle>/manifest.json`: which version is served. Replaced atomically to publish a version. */
export interface Manifest {
  format: typeof BUNDLE_FORMAT;
  formatVersion: number;
  current: string;
  /** SHA-256 of the current version's version.json, which in turn holds every other file's hash. */
  versionSha256: string;
  updatedAt: string;
  modelId: string;
  /** Published versions, oldest first (the last one is `current`). */
  history: string[];
}

/** `products.json`: the slot table (null = removed product whose HNSW element is marked deleted). */
export interface ProductsFile {
  slots: (IndexedProduct | null)[];
}

/** Vectors a source computes for a batch of products (rows in the order of the requested indices). */
export interface EmbeddedRows {
  /** Shared embedding, rows x embedDim (CSN and unconditional). */
  embeddings?: Float32Array;
  /** One rows x embedDim array per condition (ASEN's attribute-specific embeddings). */
  conditionVectors?: Float32Array[];
}

/** What the builder needs from the model and the catalogue. */
export interface BundleSource {
  modelId: string;
  modelKind: ModelKind;
  embedDim: number;
  conditions: string[];
  /** One row per condition (all ones for models without masks). */
  masks: number[][];
  products: IndexedProduct[];
  catalogue?: { name: string; root: string } | null;
  /** Vectors of products[indices[0]], products[indices[1]], ... */
  embed(indices: number[]): Promise<EmbeddedRows>;
  /** Hint: these products are embedded next (a source can decode their images while the model runs). */
  prefetch?(indices: number[]): void;
  /** A run of embed() calls ended (also on failure): the source writes what it keeps, e.g. decoded pixels. */
  finish?(): Promise<void>;
  /** The model's checkpoint file: copied into the version (MODEL_FILE) so that the version carries its model. */
  checkpointFile?: string;
  provenance?: ModelProvenance;
}
