/**
 * The index job's bridge to the model and the catalogue: products with fingerprints, and embeddings computed by a
 * trained model from decoded images. Everything else of the job works on plain vectors (build.ts).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { mapWithConcurrency, type Catalogue, type Product } from '../catalogue/index.ts';
import { preprocessOf } from '../model/defaults.ts';
import type { SimilarityModel } from '../model/index.ts';
import type { Logger } from '../util/log.ts';
import type { BundleSource, EmbeddedRows } from './build.ts';
import type { IndexedProduct, ModelProvenance } from './types.ts';

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

/**
 * Provenance of a checkpoint written by `train`: when it was written, and the test accuracy its run measured
 * (`test_results.json` beside it, only if that file is about this very model).
 */
export async function modelProvenance(checkpointPath: string, modelId: string): Promise<ModelProvenance> {
  const [{ readCheckpoint }, { RUN_FILES }] = await Promise.all([
    import('../checkpoint/index.ts'),
    import('../train/index.ts'),
  ]);
  const checkpoint = await readCheckpoint(checkpointPath);
  let testAccuracy: number | null = null;
  try {
    const path = join(dirname(checkpointPath), RUN_FILES.testResults);
    const results = JSON.parse(await readFile(path, 'utf8')) as {
      model?: { id?: string };
      triplets?: { overall?: number };
    };
    if (results.model?.id === modelId && typeof results.triplets?.overall === 'number')
      testAccuracy = results.triplets.overall;
  } catch {
    // No readable test results beside the checkpoint: the accuracy is unknown.
  }
  return { trainedAt: checkpoint.createdAt ?? null, testAccuracy, refresh: null };
}

export interface ModelSourceOptions {
  model: SimilarityModel;
  modelId: string;
  catalogue: Catalogue;
  products: IndexedProduct[];
  /** Parallel image decodes (sharp runs them on libuv's thread pool). */
  decodeConcurrency?: number;
  log?: Logger;
}

/**
 * A BundleSource that decodes product images with sharp and runs them through the model: the shared embedding for
 * CSN and the unconditional baseline, the attribute-specific vectors for ASEN. The next batch is decoded while
 * the model works on the current one.
 */
export async function createModelSource(options: ModelSourceOptions): Promise<BundleSource> {
  const tfjs = await import('@tensorflow/tfjs');
  const { decodeImage } = await import('../catalogue/index.ts');
  const { model, catalogue, products } = options;
  const config = model.config;
  const size = config.imageSize;
  const imageLength = size * size * 3;
  const concurrency = options.decodeConcurrency ?? 4;
  const pending = new Map<string, Promise<Float32Array>>();

  const decodeBatch = (indices: number[]): Promise<Float32Array> => {
    const key = indices.join(',');
    let promise = pending.get(key);
    if (!promise) {
      promise = mapWithConcurrency(indices, concurrency, (i) =>
        decodeImage(join(catalogue.root, products[i].image), size, preprocessOf(config)),
      ).then((images) => {
        const pixels = new Float32Array(indices.length * imageLength);
        images.forEach((image, row) => pixels.set(image, row * imageLength));
        return pixels;
      });
      // An unhandled rejection of a prefetch that is never awaited would crash the process; embed() rethrows it.
      promise.catch(() => undefined);
      pending.set(key, promise);
    }
    return promise;
  };

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
      void decodeBatch(indices);
    },
    async embed(indices: number[]): Promise<EmbeddedRows> {
      const key = indices.join(',');
      const pixels = await decodeBatch(indices);
      pending.delete(key);
      const n = indices.length;
      const output = tfjs.tidy(() => {
        const images = tfjs.tensor4d(pixels, [n, size, size, 3]);
        return config.kind === 'asen'
          ? (model.conditionVectors(images) as tf.Tensor)
          : (model.embed(images) as tf.Tensor);
      });
      try {
        const values = (await output.data()) as Float32Array;
        if (config.kind !== 'asen') return { embeddings: Float32Array.from(values) };
        // [n, C, D] → one n x D array per condition.
        const C = config.conditions.length;
        const D = config.embedDim;
        const conditionVectors = config.conditions.map(() => new Float32Array(n * D));
        for (let i = 0; i < n; i++) {
          for (let c = 0; c < C; c++)
            conditionVectors[c].set(values.subarray((i * C + c) * D, (i * C + c + 1) * D), i * D);
        }
        return { conditionVectors };
      } finally {
        output.dispose();
      }
    },
  };
}
