/**
 * Heat maps: which pixels of `images` make them close to `references` under one condition, by several methods
 * (src/explain/methods.ts lists them). Pure tensor maths over a model (no I/O); loaded lazily through
 * loadAttribution() in index.ts so that the HTTP process never loads tfjs.
 *
 * Every method explains the same quantity, the similarity s = −‖v_c(image) − v_c(reference)‖ of the condition
 * vectors (masked embeddings for CSN, attribute-specific embeddings for ASEN), and returns [n, S, S] maps scaled
 * to a maximum of 1 per image. "Greying out" means setting pixels to GREY, the baseline of the methods that need one.
 */
import * as tf from '@tensorflow/tfjs';
import { isAsenModel, type SimilarityModel } from '../model/index.ts';
import type { HeatmapMethod } from './methods.ts';

/** The value a greyed-out pixel takes (all channels). */
export const GREY = 0.5;

/**
 * Integrated gradients: Riemann midpoints from GREY to the image. Measured on the demo CSN (6 pairs): the map sums
 * to s(x) − s(grey) within 6 % (median) with 16 steps, 2 % with 32; 16 steps took 116 ms, 32 took 188 ms.
 */
const IG_STEPS = 16;

export interface AttributionOptions {
  /** Occlusion patch side and stride in pixels (defaults: a sixth and a twelfth of the image side). */
  patch?: number;
  stride?: number;
  /** Integrated-gradients steps (default 16). */
  steps?: number;
}

/** Condition-`condition` rows of [n, C, D] condition vectors: [n, D]. */
function conditionRows(vectors: tf.Tensor3D, condition: number): tf.Tensor2D {
  return tf.squeeze(tf.slice(vectors, [0, condition, 0], [-1, 1, -1]), [1]) as tf.Tensor2D;
}

/** ‖v − t‖ per row (t: one row or as many as v), with a floor inside the root so that the gradient exists at 0. */
function rowDistances(vectors: tf.Tensor2D, targets: tf.Tensor2D): tf.Tensor1D {
  return tf.sqrt(tf.add(tf.sum(tf.square(tf.sub(vectors, targets)), 1), 1e-12)) as tf.Tensor1D;
}

/** Distance of each image to its reference's condition vector (targets: [1 or n, D]). */
export function conditionDistances(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  condition: number,
): tf.Tensor1D {
  return tf.tidy(() => rowDistances(conditionRows(model.conditionVectors(images), condition), targets));
}

/** The reference images' condition vectors [n, D]. */
export function referenceTargets(
  model: SimilarityModel,
  references: tf.Tensor4D,
  condition: number,
): tf.Tensor2D {
  return tf.tidy(() => conditionRows(model.conditionVectors(references), condition));
}

/** 3×3 box blur twice (≈ a small Gaussian), as the original input-gradient map had. */
function blur(map: tf.Tensor4D): tf.Tensor4D {
  return tf.avgPool(tf.avgPool(map, 3, 1, 'same'), 3, 1, 'same');
}

/** [n, h, w] → [n, size, size], non-negative, optionally blurred, scaled so each image's maximum is 1. */
export function finishMap(map: tf.Tensor3D, size: number, smooth: boolean): tf.Tensor3D {
  return tf.tidy(() => {
    let x = tf.expandDims(tf.relu(map), 3) as tf.Tensor4D;
    // Half-pixel centres: each feature cell covers its own patch of the image.
    if (x.shape[1] !== size || x.shape[2] !== size) x = tf.image.resizeBilinear(x, [size, size], false, true);
    if (smooth) x = blur(x);
    return tf.squeeze(tf.divNoNan(x, tf.max(x, [1, 2, 3], true)), [3]) as tf.Tensor3D;
  });
}

/** ∂ Σ distance / ∂ images, with the distance function of a model and targets. */
function distanceGradient(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  condition: number,
): tf.Tensor4D {
  const total = (x: tf.Tensor): tf.Scalar =>
    tf.sum(rowDistances(conditionRows(model.conditionVectors(x as tf.Tensor4D), condition), targets));
  return tf.grad(total)(images) as tf.Tensor4D;
}

/** |∂d/∂x| summed over RGB: the original heat map. */
function gradientMap(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  c: number,
): tf.Tensor3D {
  return tf.sum(tf.abs(distanceGradient(model, images, targets, c)), 3) as tf.Tensor3D;
}

/** (x − grey) · ∂s/∂x summed over RGB: first-order effect of greying each pixel out on the similarity. */
function gradientInputMap(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  c: number,
): tf.Tensor3D {
  const gradient = distanceGradient(model, images, targets, c);
  return tf.neg(tf.sum(tf.mul(gradient, tf.sub(images, GREY)), 3)) as tf.Tensor3D;
}

/**
 * (x − grey) · mean over the path of ∂s/∂x, per pixel (RGB summed), signed: sums to about s(x) − s(grey) over the
 * pixels (completeness; exact as steps → ∞).
 */
export function integratedGradientsMap(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  c: number,
  steps: number,
): tf.Tensor3D {
  const [n, h, w] = images.shape;
  const maps: tf.Tensor3D[] = [];
  for (let i = 0; i < n; i++) {
    const image = tf.slice(images, [i, 0, 0, 0], [1, -1, -1, -1]);
    const delta = tf.sub(image, GREY);
    const alphas = tf.reshape(tf.linspace(0.5 / steps, 1 - 0.5 / steps, steps), [steps, 1, 1, 1]);
    const path = tf.add(GREY, tf.mul(alphas, delta)) as tf.Tensor4D;
    const target = targets.shape[0] === 1 ? targets : tf.slice(targets, [i, 0], [1, -1]);
    const meanGradient = tf.mean(distanceGradient(model, path, target as tf.Tensor2D, c), 0, true);
    maps.push(tf.reshape(tf.neg(tf.sum(tf.mul(meanGradient, delta), 3)), [1, h, w]) as tf.Tensor3D);
  }
  return tf.concat(maps, 0);
}

/**
 * Σ_k α_k F_k with α_k = mean over positions of ∂s/∂F_k, on the last backbone feature map (ReLU in finishMap).
 * On the demo CSN this map is 6×6 cells of 8 px, and its head reads each pooled position with its own weights,
 * which the position-averaged α_k discard; the element-wise variant (HiResCAM) measured no better (energy on part
 * 0.75–1.7 on 10 pairs per condition), so it is not offered.
 */
function gradCamMap(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  c: number,
): tf.Tensor3D {
  const split = model.featureSplit();
  const features = split.featureMap(images);
  const total = (f: tf.Tensor): tf.Scalar =>
    tf.neg(
      tf.sum(rowDistances(conditionRows(split.vectorsFromFeatures(f as tf.Tensor4D), c), targets)),
    ) as tf.Scalar;
  const gradient = tf.grad(total)(features);
  const weights = tf.mean(gradient, [1, 2], true);
  return tf.sum(tf.mul(features, weights), 3) as tf.Tensor3D;
}

/** Rise of the distance when a grey patch covers each region, averaged over the patches covering each pixel. */
function occlusionMap(
  model: SimilarityModel,
  images: tf.Tensor4D,
  targets: tf.Tensor2D,
  c: number,
  options: AttributionOptions,
): tf.Tensor3D {
  const [n, size] = images.shape;
  const patch = options.patch ?? Math.max(2, Math.round(size / 6));
  const stride = options.stride ?? Math.max(1, Math.round(size / 12));
  const starts: number[] = [];
  for (let p = 0; p + patch <= size; p += stride) starts.push(p);
  if (starts.at(-1) !== size - patch) starts.push(size - patch);
  const masks: number[] = [];
  for (const y of starts) {
    for (const x of starts) {
      const m = new Array<number>(size * size).fill(0);
      for (let dy = 0; dy < patch; dy++) m.fill(1, (y + dy) * size + x, (y + dy) * size + x + patch);
      masks.push(...m);
    }
  }
  const count = starts.length ** 2;
  const cover = tf.tensor4d(masks, [count, size, size, 1]);
  const coverage = tf.sum(cover, 0);
  const maps: tf.Tensor3D[] = [];
  for (let i = 0; i < n; i++) {
    const image = tf.slice(images, [i, 0, 0, 0], [1, -1, -1, -1]);
    const target = (targets.shape[0] === 1 ? targets : tf.slice(targets, [i, 0], [1, -1])) as tf.Tensor2D;
    const base = conditionDistances(model, image as tf.Tensor4D, target, c);
    const occluded = tf.add(tf.mul(image, tf.sub(1, cover)), tf.mul(cover, GREY)) as tf.Tensor4D;
    const rise = tf.sub(conditionDistances(model, occluded, target, c), base);
    const perPixel = tf.div(tf.sum(tf.mul(cover, tf.reshape(rise, [count, 1, 1, 1])), 0), coverage);
    maps.push(tf.reshape(perPixel, [1, size, size]) as tf.Tensor3D);
  }
  return tf.concat(maps, 0);
}

function attentionMap(model: SimilarityModel, images: tf.Tensor4D, c: number): tf.Tensor3D {
  if (!isAsenModel(model))
    throw new RangeError(`method attention needs an ASEN model, not ${model.config.kind}`);
  return tf.squeeze(tf.slice(model.attention(images), [0, c, 0, 0], [-1, 1, -1, -1]), [1]) as tf.Tensor3D;
}

/**
 * Heat maps [n, S, S] in [0, 1] of `images` with respect to their similarity to `references` (1 or n images)
 * under condition index `condition`. Gradient maps are blurred (single-pixel gradients are noisy); Grad-CAM,
 * occlusion and attention are already smooth.
 */
export function heatMaps(
  model: SimilarityModel,
  method: HeatmapMethod,
  images: tf.Tensor4D,
  references: tf.Tensor4D,
  condition: number,
  options: AttributionOptions = {},
): tf.Tensor3D {
  const size = model.config.imageSize;
  return tf.tidy(() => {
    const targets = referenceTargets(model, references, condition);
    switch (method) {
      case 'gradient':
        return finishMap(gradientMap(model, images, targets, condition), size, true);
      case 'gradient-input':
        return finishMap(gradientInputMap(model, images, targets, condition), size, true);
      case 'integrated-gradients': {
        const steps = options.steps ?? IG_STEPS;
        return finishMap(integratedGradientsMap(model, images, targets, condition, steps), size, true);
      }
      case 'grad-cam':
        return finishMap(gradCamMap(model, images, targets, condition), size, false);
      case 'occlusion':
        return finishMap(occlusionMap(model, images, targets, condition, options), size, false);
      case 'attention':
        return finishMap(attentionMap(model, images, condition), size, false);
      default:
        throw new RangeError(`unknown heat-map method ${String(method)}`);
    }
  });
}
