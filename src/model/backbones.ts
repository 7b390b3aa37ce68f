/**
 * Convolutional feature extractors shared by the models.
 *
 * - small: a 5×5 stride-2 stem, then three 3×3 conv + ReLU layers with 2×2 max pooling after the first
 *   two (feature map at S/8, channels w, 2w, 4w, 4w), no batch norm. The CSN head pools once more and
 *   flattens, so the embedding still sees where things are (sleeves, hem length), not only which colours
 *   occur. The strided stem avoids the costliest step on a CPU, pooling and backpropagating full-size
 *   activations: measured on wasm at 48 px, 160 images, one training step took 576 ms with a stride-1
 *   3×3 stem + pool and 344 ms with this one. Stride-2 convolutions instead of the two poolings halved
 *   the step again but reached lower accuracy in the same time on the demo catalogue, so pooling stays.
 * - resnet18: upstream CSN's torchvision ResNet-18 to layer3 with batch norm (resnet.ts).
 * - resnet18-skipinit: our earlier BN-free variant, kept for comparison: ResNet-18 layout (3×3 stem + 2×2 max
 *   pool, four stages of two basic blocks, strides 1/2/2/2,
 *   projection shortcuts) with widths w, 2w, 4w, 8w instead of 64…512 so that it trains on a CPU; batch norm is
 *   replaced by a learnable residual scale initialised at 0 (SkipInit), which keeps training and
 *   inference identical and deterministic. Feature map at S/16 like upstream CSN's ResNet; the CSN
 *   head average-pools it as upstream does.
 */
import * as tf from '@tensorflow/tfjs';
import { heNormal, zeros, type ParamStore } from './params.ts';
import { normaliseImageNet, upstreamResnet18, type FeatureExtractor } from './resnet.ts';
import { withColourChannels } from './colour.ts';
import type { Backbone as BackboneName, ModelConfig } from './types.ts';
import { MAX_POOL_2X2_GRAD } from './kernels/wasm-heap-kernels.ts';

/** Spatial features (what ASEN attends over) and pooled vectors (what the CSN embedding reads). */
export type Backbone = FeatureExtractor;

interface Conv {
  kernel: tf.Variable;
  bias: tf.Variable;
}

function addConv(
  params: ParamStore,
  path: string,
  size: number,
  inChannels: number,
  outChannels: number,
): Conv {
  return {
    kernel: params.add(
      `${path}/kernel`,
      [size, size, inChannels, outChannels],
      heNormal(size * size * inChannels),
    ),
    bias: params.add(`${path}/bias`, [outChannels], zeros),
  };
}

function applyConv(x: tf.Tensor4D, conv: Conv, stride: number, relu: boolean): tf.Tensor4D {
  return tf.fused.conv2d({
    x,
    filter: conv.kernel as tf.Tensor4D,
    strides: stride,
    pad: 'same',
    bias: conv.bias,
    activation: relu ? 'relu' : 'linear',
  });
}

/**
 * First layer on raw pixels. The fused op's gradient always computes the input gradient, which training
 * never needs here (and which is slow on wasm for strided convs); the plain op computes it only on request.
 */
function applyInputConv(x: tf.Tensor4D, conv: Conv, stride: number): tf.Tensor4D {
  return tf.relu(tf.add(tf.conv2d(x, conv.kernel as tf.Tensor4D, stride, 'same'), conv.bias)) as tf.Tensor4D;
}

/**
 * 2×2 max pooling whose gradient routes dy through a nearest-neighbour upsampling and an equality mask.
 * The wasm backend's MaxPoolGrad is about 1.5× slower. Unlike it, ties (equal maxima in one window) all
 * receive the gradient; after a ReLU, ties are zeros whose gradient the ReLU discards anyway.
 */
export const maxPool2x2 = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  const input = x as tf.Tensor4D;
  const pooled = tf.maxPool(input, 2, 2, 'same');
  save([input, pooled]);
  return {
    value: pooled,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedInput, savedPooled] = saved as tf.Tensor4D[];
      const size: [number, number] = [savedInput.shape[1], savedInput.shape[2]];
      // The same values in one pass where the backend has the fused kernel (wasm; even sizes only).
      if (size[0] % 2 === 0 && size[1] % 2 === 0 && tf.getKernel(MAX_POOL_2X2_GRAD, tf.getBackend())) {
        return tf
          .engine()
          .runKernel(MAX_POOL_2X2_GRAD, { x: savedInput, pooled: savedPooled, dy }, {}) as tf.Tensor;
      }
      const winners = tf.cast(
        tf.equal(savedInput, tf.image.resizeNearestNeighbor(savedPooled, size)),
        'float32',
      );
      return tf.mul(tf.image.resizeNearestNeighbor(dy as tf.Tensor4D, size), winners);
    },
  };
}) as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor4D) => tf.Tensor4D;

/** Side after `halvings` 2×2 poolings or stride-2 convolutions with 'same' padding. */
function halve(side: number, halvings: number): number {
  let s = side;
  for (let i = 0; i < halvings; i++) s = Math.ceil(s / 2);
  return s;
}

function smallBackbone(params: ParamStore, imageSize: number, width: number): Backbone {
  const widths = [width, 2 * width, 4 * width, 4 * width];
  const stem = addConv(params, 'backbone/conv1', 5, 3, widths[0]);
  const convs = [1, 2, 3].map((i) => addConv(params, `backbone/conv${i + 1}`, 3, widths[i - 1], widths[i]));
  const side = halve(imageSize, 3);
  const pooledSide = Math.floor(side / 2);
  if (pooledSide < 1)
    throw new Error(`image size ${imageSize} is too small for the small backbone (minimum 16)`);
  const channels = widths[3];
  return {
    featureShape: [side, side, channels],
    pooledSize: pooledSide * pooledSide * channels,
    featureMap(images) {
      // A strided 5×5 stem: full-resolution activations are the most expensive ones to pool and backpropagate.
      let x = applyInputConv(normaliseImageNet(images), stem, 2);
      x = maxPool2x2(applyConv(x, convs[0], 1, true));
      x = maxPool2x2(applyConv(x, convs[1], 1, true));
      return applyConv(x, convs[2], 1, true);
    },
    pooled(featureMap) {
      const x = tf.maxPool(featureMap, 2, 2, 'valid');
      return tf.reshape(x, [x.shape[0], -1]);
    },
  };
}

interface BasicBlock {
  conv1: Conv;
  conv2: Conv;
  scale: tf.Variable;
  shortcut?: Conv;
  stride: number;
}

function skipInitResnet(params: ParamStore, imageSize: number, width: number): Backbone {
  const stem = addConv(params, 'backbone/stem', 3, 3, width);
  const blocks: BasicBlock[] = [];
  let inChannels = width;
  [1, 2, 4, 8].forEach((multiple, stage) => {
    const outChannels = width * multiple;
    for (let b = 0; b < 2; b++) {
      const path = `backbone/stage${stage + 1}/block${b + 1}`;
      const stride = stage > 0 && b === 0 ? 2 : 1;
      blocks.push({
        conv1: addConv(params, `${path}/conv1`, 3, inChannels, outChannels),
        conv2: addConv(params, `${path}/conv2`, 3, outChannels, outChannels),
        scale: params.add(`${path}/residual_scale`, [], zeros),
        shortcut:
          stride !== 1 || inChannels !== outChannels
            ? addConv(params, `${path}/shortcut`, 1, inChannels, outChannels)
            : undefined,
        stride,
      });
      inChannels = outChannels;
    }
  });
  const side = halve(imageSize, 4);
  return {
    featureShape: [side, side, inChannels],
    pooledSize: inChannels,
    featureMap(images) {
      let x = maxPool2x2(applyInputConv(normaliseImageNet(images), stem, 1));
      for (const block of blocks) {
        const residual = applyConv(applyConv(x, block.conv1, block.stride, true), block.conv2, 1, false);
        const shortcut = block.shortcut ? applyConv(x, block.shortcut, block.stride, false) : x;
        x = tf.relu(tf.add(shortcut, tf.mul(residual, block.scale))) as tf.Tensor4D;
      }
      return x;
    },
    pooled(featureMap) {
      return tf.mean(featureMap, [1, 2]) as tf.Tensor2D;
    },
  };
}

export function createBackbone(
  name: BackboneName,
  params: ParamStore,
  imageSize: number,
  width: number,
): Backbone {
  switch (name) {
    case 'small':
      return smallBackbone(params, imageSize, width);
    case 'resnet18':
      return upstreamResnet18(params, imageSize, width);
    case 'resnet18-skipinit':
      return skipInitResnet(params, imageSize, width);
    default:
      throw new Error(`unknown backbone ${String(name)}`);
  }
}

/** The feature extractor a model config asks for: its backbone, with colour channels when configured. */
export function featureExtractorFor(config: Required<ModelConfig>, params: ParamStore): Backbone {
  const backbone = createBackbone(config.backbone, params, config.imageSize, config.width);
  return config.colourHistogram ? withColourChannels(backbone, params) : backbone;
}
