/**
 * Conditional Similarity Network (Veit et al., CVPR 2017) and its unconditional baseline.
 *
 * Semantics follow the upstream PyTorch code (conditional-similarity-networks: csn.py, tripletnet.py,
 * main.py; the Farfetch fork keeps them):
 * - masks: `learned` = ReLU(w), w ~ N(0.9, 0.7); `prein` = 1 on block c of ⌊D/C⌋ dims and 0.1 elsewhere,
 *   trainable, also passed through ReLU; `fixed` = 0/1 blocks, frozen.
 * - distance: F.pairwise_distance of the masked embeddings, ‖a·m − b·m + 1e-6‖₂.
 * - triplet loss: MarginRankingLoss(dist(anchor, far), dist(anchor, close), target 1).
 * - embed norm: ‖E‖ over the whole batch (Frobenius) for each of anchor/far/close, averaged, divided by
 *   √batch (so it is the root-mean-square of the per-image L2 norms, not their mean).
 * - mask norm: ‖M‖₁ over the batch's per-triplet masks divided by the batch size (mean L1 of one mask).
 * - total = triplet + embedLoss·embedNorm + maskLoss·maskNorm; accuracy counts dist(a,far) > dist(a,close).
 * The unconditional model is the same network and loss with no mask (plain L2, mask norm 0).
 */
import * as tf from '@tensorflow/tfjs';
import { featureExtractorFor } from './backbones.ts';
import {
  checkBatch,
  checkCondition,
  checkImages,
  marginRankingLoss,
  ModelInputError,
  matchReferences,
  normaliseMap,
  pairwiseDistance,
} from './common.ts';
import { labelLoss } from './label-loss.ts';
import { freeScope, linearUniform, ParamStore, type Init } from './params.ts';
import type { BuiltModel } from './common.ts';
import type {
  LossCoefficients,
  LossParts,
  MaskMode,
  ModelConfig,
  ModelSnapshot,
  SimilarityModel,
  TripletBatch,
} from './types.ts';

/** Disjoint blocks of ⌊D/C⌋ dimensions, one per condition: `on` inside the block, `off` elsewhere. */
export function blockMasks(conditions: number, embedDim: number, on: number, off: number): Float32Array {
  const values = new Float32Array(conditions * embedDim).fill(off);
  const length = Math.floor(embedDim / conditions);
  for (let c = 0; c < conditions; c++) {
    values.fill(on, c * embedDim + c * length, c * embedDim + (c + 1) * length);
  }
  return values;
}

function maskInit(mode: MaskMode, conditions: number, embedDim: number): { init: Init; trainable: boolean } {
  switch (mode) {
    case 'learned':
      return { init: { kind: 'normal', mean: 0.9, std: 0.7 }, trainable: true };
    case 'prein':
      return { init: { kind: 'values', values: blockMasks(conditions, embedDim, 1, 0.1) }, trainable: true };
    case 'fixed':
      return { init: { kind: 'values', values: blockMasks(conditions, embedDim, 1, 0) }, trainable: false };
    default:
      throw new Error(`unknown mask mode ${String(mode)}`);
  }
}

/** Index part of a TripletBatch: rows into an embedding matrix plus the condition of each triplet. */
export type TripletIndices = Omit<TripletBatch, 'images'>;

/**
 * The CSN objective on precomputed embeddings [n, D] and effective masks [C, D] (undefined: no masks,
 * the unconditional baseline). Exposed on its own so that it can be checked by hand.
 */
export function csnLoss(
  embeddings: tf.Tensor2D,
  masks: tf.Tensor2D | undefined,
  batch: TripletIndices,
  coefficients: LossCoefficients,
): LossParts {
  const anchor = tf.gather(embeddings, batch.anchor);
  const far = tf.gather(embeddings, batch.far);
  const close = tf.gather(embeddings, batch.close);
  const count = batch.anchor.shape[0];
  const perTriplet = masks ? (tf.gather(masks, batch.condition) as tf.Tensor2D) : undefined;
  const apply = (e: tf.Tensor2D): tf.Tensor2D => (perTriplet ? tf.mul(e, perTriplet) : e);
  const distFar = pairwiseDistance(apply(anchor), apply(far));
  const distClose = pairwiseDistance(apply(anchor), apply(close));
  const triplet = marginRankingLoss(distFar, distClose, coefficients.margin);
  // Upstream: mean over anchor/far/close of ‖E‖ (whole batch), then / √batch.
  const embedNorm = tf.div(
    tf.addN([tf.norm(anchor), tf.norm(far), tf.norm(close)]),
    3 * Math.sqrt(count),
  ) as tf.Scalar;
  // Upstream: ‖M‖₁ of the per-triplet masks, then / batch.
  const maskNorm = perTriplet ? (tf.div(tf.sum(tf.abs(perTriplet)), count) as tf.Scalar) : tf.scalar(0);
  const terms = [triplet, tf.mul(embedNorm, coefficients.embedLoss), tf.mul(maskNorm, coefficients.maskLoss)];
  if (batch.labels && coefficients.labelLoss) {
    const vectors = masks
      ? tf.mul(tf.expandDims(embeddings, 1), tf.expandDims(masks, 0))
      : tf.tile(tf.expandDims(embeddings, 1), [1, batch.labels.shape[1], 1]);
    const labels = labelLoss(vectors as tf.Tensor3D, batch.labels, coefficients.controlled ?? 0, 1);
    terms.push(tf.mul(labels, coefficients.labelLoss));
  }
  const total = tf.addN(terms) as tf.Scalar;
  const correct = tf.cast(tf.greater(distFar, distClose), 'float32') as tf.Tensor1D;
  return { total, triplet, embedNorm, maskNorm, correct };
}

/** The condition masks [C, D] (learned, pre-initialised or fixed). */
function addMasks(params: ParamStore, config: Required<ModelConfig>): tf.Variable {
  const { init, trainable } = maskInit(config.maskMode, config.conditions.length, config.embedDim);
  return params.add('masks', [config.conditions.length, config.embedDim], init, trainable);
}

export function createCsnModel(config: Required<ModelConfig>): BuiltModel {
  const conditional = config.kind === 'csn';
  const params = new ParamStore(freeScope(config.kind), config.seed);
  const backbone = featureExtractorFor(config, params);
  const passThrough = backbone.passThrough ?? 0;
  const mixedIn = backbone.pooledSize - passThrough;
  const mixedOut = config.embedDim - passThrough;
  if (mixedOut < 1) throw new ModelInputError(`embedDim must exceed ${passThrough} with colour channels`);
  const embedKernel = params.add('embedding/kernel', [mixedIn, mixedOut], linearUniform(mixedIn));
  const embedBias = params.add('embedding/bias', [mixedOut], linearUniform(mixedIn));
  const conditionCount = config.conditions.length;
  const maskWeights = conditional ? addMasks(params, config) : undefined;

  /** Effective masks [C, D]: ReLU for learned and pre-initialised masks (as upstream), raw when fixed. */
  const effectiveMasks = (): tf.Tensor2D | undefined => {
    if (!maskWeights) return undefined;
    return (config.maskMode === 'fixed' ? tf.clone(maskWeights) : tf.relu(maskWeights)) as tf.Tensor2D;
  };

  const embedFeatures = (featureMap: tf.Tensor4D): tf.Tensor2D => {
    const pooled = backbone.pooled(featureMap);
    const [mixed, kept] = passThrough > 0 ? tf.split(pooled, [mixedIn, passThrough], 1) : [pooled];
    const embedded = tf.add(tf.matMul(mixed, embedKernel as tf.Tensor2D), embedBias) as tf.Tensor2D;
    return kept ? (tf.concat([embedded, kept], 1) as tf.Tensor2D) : embedded;
  };
  /** `training`: batch statistics in batch norm layers (and their running statistics move). */
  const embedImages = (images: tf.Tensor4D, training = false): tf.Tensor2D =>
    embedFeatures(backbone.featureMap(images, training));
  /** Embeddings [n, D] → condition vectors [n, C, D]: times each mask, or repeated without masks. */
  const maskEmbeddings = (embeddings: tf.Tensor2D): tf.Tensor3D => {
    const rows = tf.expandDims(embeddings, 1);
    const masks = effectiveMasks();
    if (!masks) return tf.tile(rows, [1, conditionCount, 1]) as tf.Tensor3D;
    return tf.mul(rows, tf.expandDims(masks, 0)) as tf.Tensor3D;
  };

  const model: SimilarityModel = {
    config,

    trainableVariables: () => params.trainable(),

    loss(batch: TripletBatch, coefficients: LossCoefficients, training: boolean): LossParts {
      checkBatch(batch, config);
      return csnLoss(embedImages(batch.images, training), effectiveMasks(), batch, coefficients);
    },

    embed(images: tf.Tensor4D): tf.Tensor2D {
      checkImages(images, config);
      return tf.tidy(() => embedImages(images));
    },

    conditionVectors(images: tf.Tensor4D): tf.Tensor3D {
      checkImages(images, config);
      return tf.tidy(() => maskEmbeddings(embedImages(images)));
    },

    featureSplit: () => ({
      featureMap: (images) => backbone.featureMap(images),
      vectorsFromFeatures: (features) => maskEmbeddings(embedFeatures(features)),
    }),

    masks(): number[][] {
      const masks = tf.tidy(() => effectiveMasks() ?? tf.ones([conditionCount, config.embedDim]));
      const rows = masks.arraySync() as number[][];
      masks.dispose();
      return rows;
    },

    /** |∂ masked distance(image, reference) / ∂ pixel| summed over RGB, blurred, max-scaled per image. */
    saliency: (images, references, condition) =>
      csnSaliency({ config, embedImages, effectiveMasks }, images, references, condition),

    snapshot(): ModelSnapshot {
      return { config: { ...config, conditions: [...config.conditions] }, weights: params.snapshot() };
    },

    dispose(): void {
      params.dispose();
    },
  };
  return { model, params };
}

/** What the saliency of a CSN or unconditional model needs from the model under construction. */
interface CsnParts {
  config: Required<ModelConfig>;
  embedImages: (images: tf.Tensor4D) => tf.Tensor2D;
  effectiveMasks: () => tf.Tensor2D | undefined;
}

/** |∂ masked distance(image, reference) / ∂ pixel| summed over RGB, blurred, max-scaled per image. */
function csnSaliency(
  parts: CsnParts,
  images: tf.Tensor4D,
  references: tf.Tensor4D,
  condition: number,
): tf.Tensor3D {
  const { config, embedImages, effectiveMasks } = parts;
  checkImages(images, config);
  checkImages(references, config, 'references');
  checkCondition(condition, config);
  return tf.tidy(() => {
    const target = embedImages(matchReferences(references, images.shape[0]));
    const masks = effectiveMasks();
    const mask = masks ? tf.slice(masks, [condition, 0], [1, -1]) : undefined;
    const distanceSum = (x: tf.Tensor): tf.Scalar => {
      const delta = tf.sub(embedImages(x as tf.Tensor4D), target) as tf.Tensor2D;
      const masked = mask ? tf.mul(delta, mask) : delta;
      return tf.sum(pairwiseDistance(masked as tf.Tensor2D, tf.zerosLike(masked) as tf.Tensor2D));
    };
    const gradient = tf.grad(distanceSum)(images);
    const map = tf.sum(tf.abs(gradient), 3) as tf.Tensor3D;
    return normaliseMap(map, config.imageSize, true);
  });
}
