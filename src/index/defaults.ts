/**
 * The index stage's defaults, in a file free of hnswlib and tfjs so that `dressmatch index --help` can show them
 * without loading the builder.
 */
import type { BuildParams } from './types.ts';

/** The stores the index job can write and the service can read; the first one is the default. */
export const STORE_KINDS = ['hnswlib', 'lancedb'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/** The bundle the demo publishes and that `index-info`, `index-query` and `serve` read unless told otherwise. */
export const DEMO_BUNDLE_DIR = 'indexes/demo';

/**
 * Defaults, and why (numbers from bench/results/index-hnsw.md, one core):
 * - m 16, efConstruction 200: hnswlib's own defaults. With efSearch 64 they give recall@10 of 0.999 / 1.000 / 0.986
 *   at 10k / 100k / 1M clustered 64-dim vectors and 1.000 at all sizes in a 16-dim masked subspace; 1M x 64 dims
 *   builds in ~4 min and takes ~470 MiB. Larger M only pays off at much higher intrinsic dimension.
 * - efSearch 64: the smallest of the measured values (16, 32, 64, 128) that keeps recall@10 >= 0.98 on clustered
 *   data up to 1M products, at a p50 of 0.1 ms (1M x 64). It is only the serving default: raise it without rebuilding
 *   for nearly unstructured vectors (iid gaussian 64-dim data needs far more; the quality gate below catches that).
 * - maskThreshold 0.02: ReLU already zeroes about half of a learned mask; of the rest, dims under 2% of the largest
 *   weight can go. The weight alone does not tell how much a dim matters (a lightly weighted dim can vary a lot
 *   across products), so the cut is measured: on the demo CSN, subspace recall@10 is 0.996-1.000 at 0.02 but drops
 *   to 0.80-0.99 at 0.1. A condition whose subspace recall falls under minRecall fails the gate like HNSW recall.
 * - minRecall 0.9: a healthy build measures 0.97-1.0; below 0.9 more than one in ten true neighbours is missing, which
 *   users notice, and it signals wrong parameters or degenerate vectors (collapsed embeddings) rather than noise.
 * - recallSample 200 queries (2000 neighbours): the standard error of a recall near 0.95 is then about 0.005-0.01
 *   per condition, and brute force on 200 queries stays within seconds even at 1M products.
 */
export const DEFAULT_PARAMS: BuildParams = {
  m: 16,
  efConstruction: 200,
  efSearch: 64,
  maskThreshold: 0.02,
  seed: 100,
  recallK: 10,
  recallSample: 200,
  minRecall: 0.9,
  quantilePairs: 5000,
};

/** Build settings that are not index parameters: products per embed() call, and versions kept on disk. */
export const BUILD_DEFAULTS = { batchSize: 64, keepVersions: 3 };
