/**
 * Attribute-Specific Embedding Network (Ma et al., AAAI 2020), after the upstream PyTorch code
 * (Maryeon/asen: model.py ASENet / ASENet_V2, asen.py), scaled for CPU training:
 *
 * - backbone feature map F [h, w, c]; attribute embedding: a learned vector per condition (nn.Embedding).
 * - attribute-aware spatial attention: F → 1×1 conv → tanh (image in a common space of size A); the
 *   attribute vector → linear → tanh; their product → 1×1 conv to one logit per position (V1's conv2;
 *   V2's fixed 1/√A weighting is the special case of it) → softmax over positions → attention-weighted
 *   sum of F. `attentionTanh` (default for new models, as V1): conv2 has a bias and tanh bounds the logits to
 *   [−1, 1] before the softmax; without it (as V2, and models trained before the option) the attention can
 *   become sharp.
 * - attribute-aware channel attention: [pooled feature, ReLU(linear(attribute))] → FC → ReLU → FC →
 *   sigmoid gates on the pooled feature's channels.
 * - FC to the embedding, L2-normalised.
 * - loss: MarginRankingLoss on cosine similarities with target −1: mean(max(0, s(a,far) − s(a,close) + margin));
 *   correct when s(a,close) > s(a,far). No embedding or mask norm terms (they are reported as 0).
 * Batch norm (V2's img_bn1) is left out like everywhere in this project's backbones.
 *
 * Every condition's vector is computed for every distinct image of a batch ([n, C, D]) and the
 * triplets pick rows from it: the head is cheap next to the backbone, and gathering final vectors
 * instead of feature maps keeps the gather gradient small.
 */
import * as tf from '@tensorflow/tfjs';
import { labelLoss } from './label-loss.ts';
import { featureExtractorFor, type Backbone } from './backbones.ts';
import {
  checkBatch,
  checkCondition,
  checkImages,
  marginRankingLoss,
  normaliseMap,
  type BuiltModel,
} from './common.ts';
import { freeScope, heNormal, linearUniform, ParamStore, zeros } from './params.ts';
import type {
  LossCoefficients,
  LossParts,
  ModelConfig,
  ModelSnapshot,
  SimilarityModel,
  TripletBatch,
} from './types.ts';

interface Dense {
  kernel: tf.Variable;
  bias: tf.Variable;
}

function addDense(params: ParamStore, path: string, inputs: number, outputs: number): Dense {
  return {
    kernel: params.add(`${path}/kernel`, [inputs, outputs], linearUniform(inputs)),
    bias: params.add(`${path}/bias`, [outputs], linearUniform(inputs)),
  };
}

function dense(x: tf.Tensor2D, layer: Dense): tf.Tensor2D {
  return tf.add(tf.matMul(x, layer.kernel as tf.Tensor2D), layer.bias) as tf.Tensor2D;
}

/** An ASEN model also exposes its spatial attention maps. */
export interface AsenModel extends SimilarityModel {
  /** Attention over feature-map positions [n, C, h, w]; each map sums to 1. */
  attention(images: tf.Tensor4D): tf.Tensor4D;
}

export function isAsenModel(model: SimilarityModel): model is AsenModel {
  return model.config.kind === 'asen' && typeof (model as Partial<AsenModel>).attention === 'function';
}

/**
 * ASEN's vectors are L2-normalised, so squared distances lie in [0, 4]; the label loss sharpens them by this factor
 * (a temperature of 0.1 for cosine similarity, as is usual for normalised embeddings).
 */
const ASEN_LABEL_SCALE = 5;

export interface AsenOutputs {
  /** L2-normalised attribute-specific embeddings [n, C, D]. */
  vectors: tf.Tensor3D;
  /** Spatial attention [n, C, h, w]; sums to 1 over h·w for each image and condition. */
  attention: tf.Tensor4D;
}

/** ASEN's triplet objective on precomputed attribute-specific vectors [n, C, D] (exposed for hand checks). */
export function asenLoss(
  vectors: tf.Tensor3D,
  batch: Omit<TripletBatch, 'images'>,
  coefficients: LossCoefficients,
): LossParts {
  const [n, conditions, dim] = vectors.shape;
  const flat = tf.reshape(vectors, [n * conditions, dim]) as tf.Tensor2D;
  const rows = (images: tf.Tensor1D) =>
    tf.add(tf.mul(images, tf.scalar(conditions, 'int32')), batch.condition) as tf.Tensor1D;
  const anchor = tf.gather(flat, rows(batch.anchor));
  const far = tf.gather(flat, rows(batch.far));
  const close = tf.gather(flat, rows(batch.close));
  const simFar = tf.sum(tf.mul(anchor, far), 1) as tf.Tensor1D;
  const simClose = tf.sum(tf.mul(anchor, close), 1) as tf.Tensor1D;
  const triplet = marginRankingLoss(simClose, simFar, coefficients.margin);
  const correct = tf.cast(tf.greater(simClose, simFar), 'float32') as tf.Tensor1D;
  const total =
    batch.labels && coefficients.labelLoss
      ? tf.add(
          triplet,
          tf.mul(
            labelLoss(vectors, batch.labels, coefficients.controlled ?? 0, ASEN_LABEL_SCALE),
            coefficients.labelLoss,
          ),
        )
      : triplet;
  return {
    total: total as tf.Scalar,
    triplet: tf.clone(triplet),
    embedNorm: tf.scalar(0),
    maskNorm: tf.scalar(0),
    correct,
  };
}

interface AsenWeights {
  attributeEmbedding: tf.Variable;
  imageProjection: Dense;
  spatialAttribute: Dense;
  spatialLogit: tf.Variable;
  /** V1's conv2 bias, present with attentionTanh (tanh on the logits). */
  spatialLogitBias?: tf.Variable;
  channelAttribute: Dense;
  channelHidden: Dense;
  channelGate: Dense;
  embedding: Dense;
}

interface AsenShape {
  height: number;
  width: number;
  channels: number;
  positions: number;
  attentionDim: number;
  conditionCount: number;
  embedDim: number;
}

export function createAsenModel(config: Required<ModelConfig>): BuiltModel {
  const params = new ParamStore(freeScope(config.kind), config.seed);
  const backbone = featureExtractorFor(config, params);
  const [height, width, channels] = backbone.featureShape;
  const shape: AsenShape = {
    height,
    width,
    channels,
    positions: height * width,
    attentionDim: channels,
    conditionCount: config.conditions.length,
    embedDim: config.embedDim,
  };
  const weights = addAsenWeights(params, shape, config.attentionTanh);
  const head = (features: tf.Tensor4D): AsenOutputs => asenHead(weights, shape, features);
  return { model: asenModel(config, params, backbone, head), params };
}

function asenModel(
  config: Required<ModelConfig>,
  params: ParamStore,
  backbone: Backbone,
  head: (features: tf.Tensor4D) => AsenOutputs,
): AsenModel {
  const conditionCount = config.conditions.length;
  const forward = (images: tf.Tensor4D, training = false): AsenOutputs =>
    head(backbone.featureMap(images, training));
  const model: AsenModel = {
    config,

    trainableVariables: () => params.trainable(),

    loss(batch: TripletBatch, coefficients: LossCoefficients, training: boolean): LossParts {
      checkBatch(batch, config);
      return asenLoss(forward(batch.images, training).vectors, batch, coefficients);
    },

    conditionVectors(images: tf.Tensor4D): tf.Tensor3D {
      checkImages(images, config);
      return tf.tidy(() => forward(images).vectors);
    },

    embed(images: tf.Tensor4D): tf.Tensor2D {
      checkImages(images, config);
      return tf.tidy(() => {
        const { vectors } = forward(images);
        return tf.reshape(vectors, [images.shape[0], conditionCount * config.embedDim]) as tf.Tensor2D;
      });
    },

    masks(): number[][] {
      return config.conditions.map(() => new Array<number>(config.embedDim).fill(1));
    },

    featureSplit: () => ({
      featureMap: (images) => backbone.featureMap(images),
      vectorsFromFeatures: (features) => head(features).vectors,
    }),

    /** Attention over feature-map positions [n, C, h, w] (each map sums to 1). */
    attention(images: tf.Tensor4D): tf.Tensor4D {
      checkImages(images, config);
      return tf.tidy(() => forward(images).attention);
    },

    /** The spatial attention for `condition`, upsampled to the image and scaled to a maximum of 1. */
    saliency(images: tf.Tensor4D, references: tf.Tensor4D, condition: number): tf.Tensor3D {
      checkImages(images, config);
      checkImages(references, config, 'references');
      checkCondition(condition, config);
      return tf.tidy(() => {
        const { attention } = forward(images);
        const map = tf.squeeze(
          tf.slice(attention, [0, condition, 0, 0], [-1, 1, -1, -1]),
          [1],
        ) as tf.Tensor3D;
        return normaliseMap(map, config.imageSize, false);
      });
    },

    snapshot(): ModelSnapshot {
      return { config: { ...config, conditions: [...config.conditions] }, weights: params.snapshot() };
    },

    dispose(): void {
      params.dispose();
    },
  };
  return model;
}

/** ASEN's head weights, created in a fixed order (the seeded initialisation depends on it). */
function addAsenWeights(params: ParamStore, shape: AsenShape, tanhLogits: boolean): AsenWeights {
  const { channels, attentionDim, conditionCount, embedDim } = shape;
  const attributeEmbedding = params.add('asen/attribute_embedding', [conditionCount, attentionDim], {
    kind: 'normal',
    mean: 0,
    std: 1,
  });
  const imageProjection = {
    kernel: params.add(
      'asen/spatial/image_projection/kernel',
      [1, 1, channels, attentionDim],
      heNormal(channels),
    ),
    bias: params.add('asen/spatial/image_projection/bias', [attentionDim], zeros),
  };
  const spatialAttribute = addDense(params, 'asen/spatial/attribute_projection', attentionDim, attentionDim);
  const spatialLogit = params.add('asen/spatial/logit/kernel', [attentionDim], linearUniform(attentionDim));
  const spatialLogitBias = tanhLogits
    ? params.add('asen/spatial/logit/bias', [], linearUniform(attentionDim))
    : undefined;
  const channelAttribute = addDense(params, 'asen/channel/attribute_projection', attentionDim, attentionDim);
  const channelHidden = addDense(params, 'asen/channel/fc1', channels + attentionDim, attentionDim);
  const channelGate = addDense(params, 'asen/channel/fc2', attentionDim, channels);
  const embedding = addDense(params, 'asen/embedding', channels, embedDim);

  return {
    attributeEmbedding,
    imageProjection,
    spatialAttribute,
    spatialLogit,
    spatialLogitBias,
    channelAttribute,
    channelHidden,
    channelGate,
    embedding,
  };
}

/** Vectors and attention for all conditions of a feature map [n, h, w, c]. */
function asenHead(w: AsenWeights, shape: AsenShape, features: tf.Tensor4D): AsenOutputs {
  const { height, width, channels, positions, attentionDim, conditionCount, embedDim } = shape;
  const { attributeEmbedding, imageProjection, spatialAttribute, spatialLogit } = w;
  const { channelAttribute, channelHidden, channelGate, embedding } = w;
  const n = features.shape[0];
  // Spatial attention: logits[n, hw, C] = Σ_k tanh(img)[n, hw, k] · tanh(attr)[C, k] · w[k].
  const image = tf.tanh(
    tf.add(tf.conv2d(features, imageProjection.kernel as tf.Tensor4D, 1, 'valid'), imageProjection.bias),
  );
  const spatialAttr = tf.tanh(dense(attributeEmbedding as tf.Tensor2D, spatialAttribute));
  const weightedAttr = tf.mul(spatialAttr, spatialLogit);
  const logits = tf.matMul(
    tf.reshape(image, [n * positions, attentionDim]) as tf.Tensor2D,
    weightedAttr,
    false,
    true,
  );
  let perCondition = tf.transpose(tf.reshape(logits, [n, positions, conditionCount]), [0, 2, 1]);
  if (w.spatialLogitBias) perCondition = tf.tanh(tf.add(perCondition, w.spatialLogitBias));
  const attention = tf.softmax(perCondition) as tf.Tensor3D; // [n, C, hw]
  const flatFeatures = tf.reshape(features, [n, positions, channels]) as tf.Tensor3D;
  const pooled = tf.reshape(tf.matMul(attention, flatFeatures), [
    n * conditionCount,
    channels,
  ]) as tf.Tensor2D;
  // Channel attention from the pooled feature and the attribute.
  const channelAttr = tf.relu(dense(attributeEmbedding as tf.Tensor2D, channelAttribute));
  const attrPerRow = tf.reshape(tf.tile(tf.expandDims(channelAttr, 0), [n, 1, 1]), [
    n * conditionCount,
    attentionDim,
  ]) as tf.Tensor2D;
  const hidden = tf.relu(dense(tf.concat([pooled, attrPerRow], 1), channelHidden));
  const gates = tf.sigmoid(dense(hidden, channelGate));
  const embedded = dense(tf.mul(pooled, gates), embedding);
  // Guarded against an all-zero vector (upstream divides by the bare norm).
  const normalised = tf.div(embedded, tf.maximum(tf.norm(embedded, 'euclidean', 1, true), 1e-12));
  return {
    vectors: tf.reshape(normalised, [n, conditionCount, embedDim]) as tf.Tensor3D,
    attention: tf.reshape(attention, [n, conditionCount, height, width]) as tf.Tensor4D,
  };
}
