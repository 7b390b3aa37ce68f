/** The model stage: pure tensor maths (no file or network I/O). */
import type * as tf from '@tensorflow/tfjs';

export type ModelKind = 'csn' | 'asen' | 'unconditional';
/** resnet18: upstream's torchvision ResNet-18 to layer3 with batch norm; resnet18-skipinit: our BN-free variant. */
export type Backbone = 'small' | 'resnet18' | 'resnet18-skipinit';
/**
 * How a photo becomes a square input. fit-pad: scaled to fit, padded with the corners' colour (nothing cropped);
 * resize-crop: shorter side resized to the input size, then centre-cropped (upstream's Scale + CenterCrop).
 */
export type Preprocess = 'fit-pad' | 'resize-crop';
/** learned: ReLU(w), w ~ N(0.9, 0.7); prein: disjoint blocks of 1 and 0.1 elsewhere, trainable; fixed: disjoint 0/1 blocks, frozen. */
export type MaskMode = 'learned' | 'prein' | 'fixed';

export interface ModelConfig {
  kind: ModelKind;
  backbone: Backbone;
  /** Square input side in pixels; images are RGB in [0, 1], NHWC. */
  imageSize: number;
  embedDim: number;
  conditions: string[];
  maskMode: MaskMode;
  /** Seed for weight initialisation. */
  seed: number;
  /** Channels of the first backbone layer; later layers are multiples of it (default per backbone). */
  width?: number;
  /**
   * ASEN: tanh on the spatial attention logits (with a bias), as upstream V1. New models get it (MODEL_DEFAULTS);
   * a config without the field (models trained before it existed) resolves to false.
   */
  attentionTanh?: boolean;
  /** Photo → square input (default per backbone: resize-crop for resnet18, as upstream; fit-pad otherwise). */
  preprocess?: Preprocess;
  /** Colour-histogram channels beside the backbone's features (colour.ts); absent in older models: false. */
  colourHistogram?: boolean;
}

export interface LossCoefficients {
  margin: number;
  embedLoss: number;
  maskLoss: number;
  /** Weight of the in-batch label loss (labelLoss in common.ts); 0 or absent: off. */
  labelLoss?: number;
  /** Extra weight of negatives that share every other condition's label with the anchor (labelLoss). */
  controlled?: number;
}

export interface TripletBatch {
  /** [n, S, S, 3] images of the distinct products in the batch. */
  images: tf.Tensor4D;
  /** Row indices into `images`, one per triplet. */
  anchor: tf.Tensor1D;
  far: tf.Tensor1D;
  close: tf.Tensor1D;
  /** Condition index per triplet. */
  condition: tf.Tensor1D;
  /** Label id per image and condition [n, C] (int32, -1: no label), for the in-batch label loss. */
  labels?: tf.Tensor2D;
}

export interface LossParts {
  total: tf.Scalar;
  triplet: tf.Scalar;
  embedNorm: tf.Scalar;
  maskNorm: tf.Scalar;
  /** 1 where the close item is nearer than the far one, per triplet. */
  correct: tf.Tensor1D;
}

/** Serialisable weights: plain arrays, so that any stage can write them however it likes. */
export interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}
export interface ModelSnapshot {
  config: ModelConfig;
  weights: NamedWeight[];
}

/**
 * How distances are measured in a condition space: Euclidean (CSN, unconditional) or 1 - cosine similarity (ASEN).
 * The one definition that the index and explain stages share.
 */
export type Metric = 'l2' | 'cosine';

/** How a condition compares products: the vector space an index is built over. */
export interface ConditionSpace {
  condition: string;
  metric: Metric;
  /** Embedding dimensions this space keeps (all for ASEN / unconditional). */
  dims: number[];
  /** Weight each kept dimension is multiplied by (the mask for CSN, 1 otherwise). */
  weights: number[];
}

export interface SimilarityModel {
  readonly config: ModelConfig;
  /** Variables the optimiser updates. */
  trainableVariables(): tf.Variable[];
  /** Loss for a batch (call inside an optimiser's minimize or tf.tidy). */
  loss(batch: TripletBatch, coefficients: LossCoefficients, training: boolean): LossParts;
  /**
   * Condition-space vectors for a batch of images: [n, C, D] where C is the number of conditions.
   * CSN: embedding times each mask; ASEN: attribute-specific embeddings (L2-normalised); unconditional: the embedding repeated.
   */
  conditionVectors(images: tf.Tensor4D): tf.Tensor3D;
  /** Shared embedding [n, D] (CSN and unconditional); for ASEN the per-condition vectors flattened. */
  embed(images: tf.Tensor4D): tf.Tensor2D;
  /** Masks as numbers, one row per condition (all ones for models without masks). */
  masks(): number[][];
  /**
   * Visual explanation: [n, S, S] map of how much each pixel drives the distance between `images` and `references`
   * under `condition` (gradient-based for CSN, spatial attention for ASEN), scaled to [0, 1].
   */
  saliency(images: tf.Tensor4D, references: tf.Tensor4D, condition: number): tf.Tensor3D;
  /** The same network cut at the backbone's last feature map (what Grad-CAM-style explanations differentiate). */
  featureSplit(): FeatureSplit;
  snapshot(): ModelSnapshot;
  dispose(): void;
}

/** conditionVectors(x) = vectorsFromFeatures(featureMap(x)); both differentiable, call inside tf.tidy. */
export interface FeatureSplit {
  /** Last backbone feature map [n, h, w, c]. */
  featureMap(images: tf.Tensor4D): tf.Tensor4D;
  /** Condition-space vectors [n, C, D] from a feature map. */
  vectorsFromFeatures(features: tf.Tensor4D): tf.Tensor3D;
}
