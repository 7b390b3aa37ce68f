/**
 * Upstream CSN's image network: torchvision's ResNet-18 up to layer3 (conditional-similarity-networks
 * Resnet_18.py; the Farfetch fork keeps it), at 112 px:
 *
 * - conv1 7×7/2 (padding 3, no bias) → bn1 → ReLU → max pool 3×3/2 (padding 1);
 * - layer1..layer3: two BasicBlocks each (3×3 convs without bias, each followed by batch norm; the first block
 *   of layer2/layer3 has stride 2 and a 1×1/2 conv + batch norm shortcut, `downsample.0` / `downsample.1`);
 *   64, 128, 256 channels (× width/64);
 * - global average pool (upstream: AvgPool2d(7) on the 7×7 map of a 112 px input), then the model's linear
 *   embedding (`fc_embed`).
 *
 * Weight paths are `backbone/<torchvision module>/<kernel | gamma | beta | running_mean | running_var>`, so that
 * torch-names.ts maps them to and from state-dict names by rule. Paddings are PyTorch's (symmetric), not tfjs
 * 'same' (which pads stride-2 layers on the bottom/right only): the same weights give the same features.
 */
import * as tf from '@tensorflow/tfjs';
import { addBatchNorm, applyBatchNorm, type BatchNorm } from './batchnorm.ts';
import { heNormal, type ParamStore } from './params.ts';

/** ImageNet statistics, as the upstream trainers normalise inputs with them. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export interface FeatureExtractor {
  /** Spatial features [n, h, w, c]; `training` selects batch statistics (and updates the running ones). */
  featureMap(images: tf.Tensor4D, training?: boolean): tf.Tensor4D;
  /** Feature vector per image [n, pooledSize] (what the CSN embedding layer reads). */
  pooled(featureMap: tf.Tensor4D): tf.Tensor2D;
  readonly featureShape: [number, number, number];
  readonly pooledSize: number;
  /**
   * The last `passThrough` pooled features are embedding dimensions already (a layer of their own made them): the
   * CSN head copies them to the end of the embedding instead of mixing them with the others. 0 when absent.
   */
  readonly passThrough?: number;
}

export function normaliseImageNet(images: tf.Tensor4D): tf.Tensor4D {
  return tf.div(tf.sub(images, tf.tensor1d(IMAGENET_MEAN)), tf.tensor1d(IMAGENET_STD));
}

interface ConvBn {
  kernel: tf.Variable;
  bn: BatchNorm;
  stride: number;
  pad: number;
}

/** A bias-free conv (kaiming normal, fan-out as torchvision) and the batch norm after it. */
function addConvBn(
  params: ParamStore,
  conv: string,
  bn: string,
  size: number,
  channels: [number, number],
  stride: number,
): ConvBn {
  const [inChannels, outChannels] = channels;
  return {
    kernel: params.add(
      `backbone/${conv}/kernel`,
      [size, size, inChannels, outChannels],
      heNormal(size * size * outChannels),
    ),
    bn: addBatchNorm(params, `backbone/${bn}`, outChannels),
    stride,
    pad: (size - 1) / 2,
  };
}

function applyConvBn(x: tf.Tensor4D, layer: ConvBn, training: boolean, relu: boolean): tf.Tensor4D {
  const y = applyBatchNorm(
    tf.conv2d(x, layer.kernel as tf.Tensor4D, layer.stride, layer.pad),
    layer.bn,
    training,
  );
  return relu ? tf.relu(y) : y;
}

interface BasicBlock {
  first: ConvBn;
  second: ConvBn;
  downsample?: ConvBn;
}

/** PyTorch's output side for a kernel/stride/padding. */
function outSide(side: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((side + 2 * pad - kernel) / stride) + 1;
}

/** ResNet-18 to layer3 with batch norm; `width` is layer1's channels (torchvision: 64). */
export function upstreamResnet18(params: ParamStore, imageSize: number, width: number): FeatureExtractor {
  const stem = addConvBn(params, 'conv1', 'bn1', 7, [3, width], 2);
  const blocks: BasicBlock[] = [];
  let inChannels = width;
  let side = outSide(outSide(imageSize, 7, 2, 3), 3, 2, 1);
  [1, 2, 4].forEach((multiple, stage) => {
    const outChannels = width * multiple;
    for (let b = 0; b < 2; b++) {
      const module = `layer${stage + 1}.${b}`;
      const stride = stage > 0 && b === 0 ? 2 : 1;
      blocks.push({
        first: addConvBn(params, `${module}.conv1`, `${module}.bn1`, 3, [inChannels, outChannels], stride),
        second: addConvBn(params, `${module}.conv2`, `${module}.bn2`, 3, [outChannels, outChannels], 1),
        downsample:
          stride !== 1 || inChannels !== outChannels
            ? addConvBn(
                params,
                `${module}.downsample.0`,
                `${module}.downsample.1`,
                1,
                [inChannels, outChannels],
                stride,
              )
            : undefined,
      });
      side = outSide(side, 3, stride, 1);
      inChannels = outChannels;
    }
  });
  if (side < 1)
    throw new Error(`image size ${imageSize} is too small for the resnet18 backbone (minimum 17)`);
  return {
    featureShape: [side, side, inChannels],
    pooledSize: inChannels,
    featureMap(images, training = false) {
      const stemOut = applyConvBn(normaliseImageNet(images), stem, training, true);
      // Max pool 3×3/2 with padding 1: after the ReLU every value is ≥ 0, so zero padding equals PyTorch's −∞.
      let x = tf.maxPool(
        tf.pad(stemOut, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ]),
        3,
        2,
        'valid',
      );
      for (const block of blocks) {
        const residual = applyConvBn(
          applyConvBn(x, block.first, training, true),
          block.second,
          training,
          false,
        );
        const shortcut = block.downsample ? applyConvBn(x, block.downsample, training, false) : x;
        x = tf.relu(tf.add(shortcut, residual)) as tf.Tensor4D;
      }
      return x;
    },
    pooled(featureMap) {
      return tf.mean(featureMap, [1, 2]) as tf.Tensor2D;
    },
  };
}
