/** Pieces shared by the model kinds: input checks, distances, saliency post-processing. */
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.ts';
import type { ModelConfig, SimilarityModel, TripletBatch } from './types.ts';

/** A model and the store that owns its weights (restoreModel writes snapshots through it). */
export interface BuiltModel {
  model: SimilarityModel;
  params: ParamStore;
}

/** What F.pairwise_distance adds to the difference so that the distance has a gradient at 0. */
export const PAIRWISE_EPS = 1e-6;

export class ModelInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelInputError';
  }
}

export function checkImages(
  images: tf.Tensor,
  config: ModelConfig,
  what = 'images',
): asserts images is tf.Tensor4D {
  const [, h, w, c] = images.shape;
  if (images.rank !== 4 || h !== config.imageSize || w !== config.imageSize || c !== 3) {
    throw new ModelInputError(
      `${what} must be [n, ${config.imageSize}, ${config.imageSize}, 3] (RGB in [0, 1]), got [${images.shape.join(', ')}]`,
    );
  }
}

export function checkBatch(batch: TripletBatch, config: ModelConfig): void {
  checkImages(batch.images, config, 'batch.images');
  const count = batch.anchor.shape[0];
  for (const [name, t] of Object.entries({
    anchor: batch.anchor,
    far: batch.far,
    close: batch.close,
    condition: batch.condition,
  })) {
    if (t.rank !== 1 || t.shape[0] !== count) {
      throw new ModelInputError(`batch.${name} must be [${count}], got [${t.shape.join(', ')}]`);
    }
    if (t.dtype !== 'int32') throw new ModelInputError(`batch.${name} must be int32, got ${t.dtype}`);
  }
  if (count === 0) throw new ModelInputError('batch has no triplets');
}

export function checkCondition(condition: number, config: ModelConfig): void {
  if (!Number.isInteger(condition) || condition < 0 || condition >= config.conditions.length) {
    throw new ModelInputError(
      `condition index ${condition} is out of range for conditions [${config.conditions.join(', ')}]`,
    );
  }
}

/** ‖x − y + ε‖₂ per row, as torch.nn.functional.pairwise_distance. */
export function pairwiseDistance(x: tf.Tensor2D, y: tf.Tensor2D): tf.Tensor1D {
  return tf.sqrt(tf.sum(tf.square(tf.add(tf.sub(x, y), PAIRWISE_EPS)), 1)) as tf.Tensor1D;
}

/** MarginRankingLoss(x1, x2, y = 1) = mean(max(0, −(x1 − x2) + margin)): x1 should exceed x2 by the margin. */
export function marginRankingLoss(
  shouldBeLarger: tf.Tensor1D,
  shouldBeSmaller: tf.Tensor1D,
  margin: number,
): tf.Scalar {
  return tf.mean(tf.relu(tf.add(tf.sub(shouldBeSmaller, shouldBeLarger), margin)));
}

/** Repeat a reference batch of one to `count` rows, or check that the sizes agree. */
export function matchReferences(references: tf.Tensor4D, count: number): tf.Tensor4D {
  if (references.shape[0] === count) return references;
  if (references.shape[0] === 1) return tf.tile(references, [count, 1, 1, 1]);
  throw new ModelInputError(`references must hold 1 or ${count} images, got ${references.shape[0]}`);
}

/**
 * Per-image map [n, h, w] → blurred (3×3 box, twice ≈ a small Gaussian), resized to size×size and scaled
 * so that each image's maximum is 1 (an all-zero map stays zero).
 */
export function normaliseMap(map: tf.Tensor3D, size: number, blur: boolean): tf.Tensor3D {
  let x = tf.expandDims(map, 3) as tf.Tensor4D;
  // Half-pixel centres: each feature cell covers its own patch of the image (as cv2.resize upstream).
  if (x.shape[1] !== size || x.shape[2] !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
  if (blur) x = tf.avgPool(tf.avgPool(x, 3, 1, 'same'), 3, 1, 'same');
  const max = tf.max(x, [1, 2, 3], true);
  const scaled = tf.divNoNan(x, max);
  return tf.squeeze(scaled, [3]) as tf.Tensor3D;
}
