/**
 * The index job's bridge to the model and the catalogue: products with fingerprints, and embeddings computed by a
 * trained model from decoded images. Everything else of the job works on plain vectors (build.ts).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { mapWithConcurrency, type Catalogue, type ImageFit, type Product } from '../catalogue/index.ts';
import { preprocessOf } from '../model/defaults.ts';
import type { SimilarityModel } from '../model/index.ts';
import type { Logger } from '../util/log.ts';
import type { AccuracySummary, Checkpoint } from '../checkpoint/index.ts';
import type { BundleSource, ConditionScore, EmbeddedRows, IndexedProduct, ModelProvenance } from './types.ts';

/** Attributes with sorted keys and values, so that the fingerprint does not depend on how a file listed them. */
function canonicalAttributes(attributes: Record<string, string[]>): [string, string[]][] {
  return Object.keys(attributes)
    .sort()
    .map((key) => [key, [...attributes[key]].sort()]);
}

/**
 * Products as the bundle stores them. The fingerprint covers title, image path, attributes and the image file's
 * bytes: an incremental run re-embeds a product exactly when one of them changed.
 */
export async function fingerprintProducts(
  catalogue: Catalogue,
  options: { concurrency?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<IndexedProduct[]> {
  let done = 0;
  return mapWithConcurrency(catalogue.products, options.concurrency ?? 16, async (product: Product) => {
    const bytes = await readFile(join(catalogue.root, product.image));
    const imageSha256 = createHash('sha256').update(bytes).digest('hex');
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([product.title, product.image, canonicalAttributes(product.attributes)]))
      .update('\u0000')
      .update(bytes)
      .digest('hex');
    options.onProgress?.(++done, catalogue.products.length);
    // Fields (price, stock...) do not change the vectors, so they stay out of the fingerprint; every run copies
    // them from the catalogue, also for unchanged products.
    const indexed: IndexedProduct = {
      id: product.id,
      title: product.title,
      image: product.image,
      attributes: product.attributes,
      fingerprint,
      imageSha256,
    };
    if (product.fields && Object.keys(product.fields).length > 0) indexed.fields = product.fields;
    return indexed;
  });
}

/** The parts of a trainer's test report (`test_results.json`) that provenance reads. */
interface TestReport {
  model?: { id?: string };
  triplets?: AccuracySummary;
  retrieval?: { perCondition?: Record<string, { map?: number }> };
}

/**
 * Provenance of a checkpoint written by `train`: when it was written, and the test scores its run measured — from
 * `test_results.json` beside it (only if that file is about this very model), else from the scores the trainer
 * wrote into the best checkpoint itself.
 */
export async function modelProvenance(checkpointPath: string, modelId: string): Promise<ModelProvenance> {
  const [{ readCheckpoint }, { RUN_FILES }] = await Promise.all([
    import('../checkpoint/index.ts'),
    import('../train/index.ts'),
  ]);
  const checkpoint = await readCheckpoint(checkpointPath);
  let report: TestReport | undefined;
  try {
    const path = join(dirname(checkpointPath), RUN_FILES.testResults);
    const results = JSON.parse(await readFile(path, 'utf8')) as TestReport;
    if (results.model?.id === modelId) report = results;
  } catch {
    // No readable test results beside the checkpoint: the checkpoint's own scores, if any, are used.
  }
  const triplets = report?.triplets ?? checkpoint.metrics?.test;
  const maps = report
    ? Object.fromEntries(Object.entries(report.retrieval?.perCondition ?? {}).map(([c, r]) => [c, r.map]))
    : checkpoint.metrics?.testMap?.perCondition;
  const provenance: ModelProvenance = {
    trainedAt: checkpoint.createdAt ?? null,
    testAccuracy: typeof triplets?.overall === 'number' ? triplets.overall : null,
    refresh: null,
  };
  if (triplets || maps)
    provenance.conditionScores = conditionScores(checkpoint.model.config.conditions, triplets, maps);
  return provenance;
}

/** Per-condition test scores a checkpoint carries itself (the trainer writes them into its best checkpoint). */
export function checkpointConditionScores(
  checkpoint: Checkpoint,
): Record<string, ConditionScore> | undefined {
  const { test, testMap } = checkpoint.metrics ?? {};
  if (!test && !testMap) return undefined;
  return conditionScores(checkpoint.model.config.conditions, test, testMap?.perCondition);
}

function conditionScores(
  conditions: readonly string[],
  triplets: AccuracySummary | undefined,
  maps: Record<string, number | undefined> | undefined,
): Record<string, ConditionScore> {
  return Object.fromEntries(
    conditions.map((c) => [
      c,
      { testAccuracy: triplets?.perCondition[c]?.accuracy ?? null, testMap: maps?.[c] ?? null },
    ]),
  );
}

export interface ModelSourceOptions {
  model: SimilarityModel;
  modelId: string;
  catalogue: Catalogue;
  products: IndexedProduct[];
  /** Image decodes queued at once (sharp runs them on libuv's thread pool); default DECODE_IN_FLIGHT. */
  decodeConcurrency?: number;
  /**
   * Read decoded pixels kept beside the catalogue (by training, evaluation or an earlier index run) instead of
   * decoding again, and keep the ones decoded now (src/catalogue/pixel-store.ts; default true).
   */
  keepPixels?: boolean;
  log?: Logger;
}

/**
 * Decodes handed to sharp at once. Queueing a whole default batch lets libuv's pool keep decoding while the model
 * holds the main thread (a batch of 64 at 48 px is tens of ms of wasm); with 4 at a time the pool ran dry after 4
 * decodes and waited for the model. A/B on 1200 demo images, cache off in both, 4 pairs at load 7-11: 64 in
 * flight gave 1.00-2.17x the images/s of 4 (405/368, 346/347, 337/186, 358/165).
 */
export const DECODE_IN_FLIGHT = 64;

/** ASEN's [n, C, D] output → one n x D array per condition. */
function splitConditions(values: Float32Array, n: number, C: number, D: number): Float32Array[] {
  const conditionVectors = Array.from({ length: C }, () => new Float32Array(n * D));
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < C; c++)
      conditionVectors[c].set(values.subarray((i * C + c) * D, (i * C + c + 1) * D), i * D);
  }
  return conditionVectors;
}

/**
 * A BundleSource that decodes product images with sharp and runs them through the model: the shared embedding for
 * CSN and the unconditional baseline, the attribute-specific vectors for ASEN. The next batch is decoded while
 * the model works on the current one.
 */
/** Decodes batches of product images into reused float buffers, through the pixel store; a batch asked for twice is decoded once. */
interface BatchDecoder {
  decode(indices: number[]): Promise<Float32Array<ArrayBuffer>>;
  /** The batch was embedded: its promise is dropped and its buffer can take another batch. */
  done(indices: number[], pixels: Float32Array<ArrayBuffer>): void;
  /** Wait for prefetches, then write and close the pixel store. */
  finish(): Promise<void>;
}

async function batchDecoder(options: ModelSourceOptions, size: number, fit: ImageFit): Promise<BatchDecoder> {
  const { decodeImageBytesKept, bytesToFloats, PixelStore } = await import('../catalogue/index.ts');
  const { catalogue, products } = options;
  const imageLength = size * size * 3;
  const concurrency = options.decodeConcurrency ?? DECODE_IN_FLIGHT;
  const pending = new Map<string, Promise<Float32Array<ArrayBuffer>>>();
  // Batch buffers go back here once the backend has the tensor (it copies or no longer needs them after tidy).
  const spare: Float32Array<ArrayBuffer>[] = [];
  // Opened on the first decode of a run of embed() calls, written and closed by finish().
  let store: ReturnType<typeof PixelStore.open> | null = null;
  const openStore = () =>
    (store ??=
      options.keepPixels === false
        ? Promise.resolve(null)
        : PixelStore.open(catalogue.root, size, fit, options.log));

  const decode = (indices: number[]): Promise<Float32Array<ArrayBuffer>> => {
    const key = indices.join(',');
    let promise = pending.get(key);
    if (!promise) {
      const length = indices.length * imageLength;
      const at = spare.findIndex((buffer) => buffer.length === length);
      const pixels = at >= 0 ? spare.splice(at, 1)[0] : new Float32Array(length);
      promise = openStore().then(async (kept) => {
        await mapWithConcurrency(indices, concurrency, async (i, row) => {
          const path = join(catalogue.root, products[i].image);
          const bytes = await decodeImageBytesKept(path, size, fit, kept, products[i].imageSha256);
          bytesToFloats(bytes, pixels, row * imageLength);
        });
        return pixels;
      });
      // An unhandled rejection of a prefetch that is never awaited would crash the process; embed() rethrows it.
      promise.catch(() => undefined);
      pending.set(key, promise);
    }
    return promise;
  };

  return {
    decode,
    done(indices, pixels) {
      pending.delete(indices.join(','));
      spare.push(pixels);
    },
    async finish() {
      // A prefetch still decoding would add rows to a closed store.
      await Promise.allSettled(pending.values());
      pending.clear();
      const opened = store;
      store = null;
      const kept = await opened?.catch(() => null);
      if (!kept) return;
      await kept.close();
      if (kept.stats.hits + kept.stats.added > 0)
        options.log?.info(
          { read: kept.stats.hits, kept: kept.stats.added, dir: kept.dir },
          `decoded pixels: ${kept.stats.hits} read back, ${kept.stats.added} decoded and kept`,
        );
    },
  };
}

export async function createModelSource(options: ModelSourceOptions): Promise<BundleSource> {
  const tfjs = await import('@tensorflow/tfjs');
  const { model, catalogue, products } = options;
  const config = model.config;
  const size = config.imageSize;
  const batches = await batchDecoder(options, size, preprocessOf(config));

  const masks = model.masks();
  return {
    modelId: options.modelId,
    modelKind: config.kind,
    embedDim: config.embedDim,
    conditions: [...config.conditions],
    masks,
    products,
    catalogue: { name: catalogue.name, root: catalogue.root },
    prefetch(indices: number[]): void {
      void batches.decode(indices);
    },
    finish: () => batches.finish(),
    async embed(indices: number[]): Promise<EmbeddedRows> {
      const pixels = await batches.decode(indices);
      const n = indices.length;
      const output = tfjs.tidy(() => {
        const images = tfjs.tensor4d(pixels, [n, size, size, 3]);
        return config.kind === 'asen'
          ? (model.conditionVectors(images) as tf.Tensor)
          : (model.embed(images) as tf.Tensor);
      });
      // The input tensor is gone with the tidy: its buffer can take the next batch.
      batches.done(indices, pixels);
      try {
        const values = (await output.data()) as Float32Array;
        if (config.kind !== 'asen') return { embeddings: Float32Array.from(values) };
        return { conditionVectors: splitConditions(values, n, config.conditions.length, config.embedDim) };
      } finally {
        output.dispose();
      }
    },
  };
}
