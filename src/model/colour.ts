/**
 * Colour channels beside a backbone's feature map: a colour histogram of the product pixels that carries no shape.
 *
 * A CNN trained on real catalogue photos learns product type first; the colour of a product then sits in the same
 * features as its shape, and colour neighbours come out as "same kind of product". These channels give every
 * condition a shape-free view of colour: each pixel is soft-assigned to a 4×4×4 grid of RGB bins (triangular
 * weights, so a colour between two bin centres counts for both), near-white pixels (the studio background) are
 * left out, and the memberships are averaged down to the feature map's positions. They are appended to the
 * feature map, so ASEN attends over them like any channel and heat maps still come from one feature map; the
 * pooled vector (what the CSN embedding reads) ends with COLOUR_DIMS dimensions made from the normalised histogram
 * of the whole product alone (a ReLU layer, then a linear one).
 */
import * as tf from '@tensorflow/tfjs';
import { linearUniform, zeros, type ParamStore } from './params.ts';
import type { FeatureExtractor } from './resnet.ts';

/** Bin centres per RGB channel (0, 1/3, 2/3, 1). */
const LEVELS = 4;
export const COLOUR_BINS = LEVELS ** 3;
/** Width of the ReLU layer on the histogram. */
const HIDDEN = 32;
/** Embedding dimensions made from the histogram alone. */
export const COLOUR_DIMS = 16;
/** Pixels whose darkest channel is above WHITE count as background; full weight below WHITE - RAMP. */
const WHITE = 0.94;
const RAMP = 0.1;

/** Soft memberships [n, h, w, LEVELS] of one channel [n, h, w, 1] in [0, 1]. */
function levelMemberships(channel: tf.Tensor4D): tf.Tensor4D {
  const centres = tf.linspace(0, LEVELS - 1, LEVELS);
  return tf.relu(tf.sub(1, tf.abs(tf.sub(tf.mul(channel, LEVELS - 1), centres)))) as tf.Tensor4D;
}

/** Weight of each pixel as product (not background) [n, h, w, 1]: 0 for near-white, 1 for clearly coloured. */
function foreground(images: tf.Tensor4D): tf.Tensor4D {
  const darkest = tf.min(images, 3, true);
  return tf.clipByValue(tf.div(tf.sub(WHITE, darkest), RAMP), 0, 1) as tf.Tensor4D;
}

/**
 * Colour-bin mass per position [n, side, side, COLOUR_BINS] for RGB images in [0, 1]: at each position, the share
 * of its pixels in each bin, background pixels counting for nothing.
 */
export function colourBinMap(images: tf.Tensor4D, side: number): tf.Tensor4D {
  const size = images.shape[1];
  // Averaging 2×2 first keeps the bin tensor small; the histogram barely changes.
  const small = size % 2 === 0 && size / 2 >= side ? tf.avgPool(images, 2, 2, 'valid') : images;
  const [r, g, b] = tf.split(small, 3, 3) as tf.Tensor4D[];
  const [n, h, w] = r.shape;
  const rg = tf.mul(
    tf.reshape(levelMemberships(r), [n, h, w, LEVELS, 1]),
    tf.reshape(levelMemberships(g), [n, h, w, 1, LEVELS]),
  );
  const rgb = tf.mul(
    tf.reshape(rg, [n, h, w, LEVELS * LEVELS, 1]),
    tf.reshape(levelMemberships(b), [n, h, w, 1, LEVELS]),
  );
  const bins = tf.mul(tf.reshape(rgb, [n, h, w, COLOUR_BINS]), foreground(small)) as tf.Tensor4D;
  if (h === side) return bins;
  if (h % side === 0) return tf.avgPool(bins, h / side, h / side, 'valid');
  return tf.image.resizeBilinear(bins, [side, side]);
}

/** Normalised colour histogram [n, COLOUR_BINS] of a bin map: sums to 1 (to about 0 for an all-white image). */
export function histogramOf(binMap: tf.Tensor4D): tf.Tensor2D {
  const mass = tf.sum(binMap, [1, 2]) as tf.Tensor2D;
  return tf.div(mass, tf.add(tf.sum(mass, 1, true), 1e-3)) as tf.Tensor2D;
}

/**
 * A backbone whose feature map carries COLOUR_BINS colour channels after its own. Its pooled vector ends with
 * COLOUR_DIMS embedding dimensions made from the histogram alone (ReLU layer, then linear), which the CSN head
 * passes through unmixed: a condition's mask can keep colour without the product's shape.
 */
export function withColourChannels(backbone: FeatureExtractor, params: ParamStore): FeatureExtractor {
  const [side, , channels] = backbone.featureShape;
  const hidden = {
    kernel: params.add('colour/hidden/kernel', [COLOUR_BINS, HIDDEN], linearUniform(COLOUR_BINS)),
    bias: params.add('colour/hidden/bias', [HIDDEN], zeros),
  };
  const out = {
    kernel: params.add('colour/out/kernel', [HIDDEN, COLOUR_DIMS], linearUniform(HIDDEN)),
    bias: params.add('colour/out/bias', [COLOUR_DIMS], zeros),
  };
  return {
    featureShape: [side, side, channels + COLOUR_BINS],
    pooledSize: backbone.pooledSize + COLOUR_DIMS,
    passThrough: COLOUR_DIMS,
    featureMap(images, training) {
      return tf.concat([backbone.featureMap(images, training), colourBinMap(images, side)], 3);
    },
    pooled(featureMap) {
      const [cnn, colour] = tf.split(featureMap, [channels, COLOUR_BINS], 3) as tf.Tensor4D[];
      // The square root (Hellinger) keeps small but telling colour shares from vanishing beside large ones.
      const histogram = tf.sqrt(tf.add(histogramOf(colour), 1e-4));
      const h = tf.relu(tf.add(tf.matMul(histogram, hidden.kernel as tf.Tensor2D), hidden.bias));
      const dims = tf.add(tf.matMul(h, out.kernel as tf.Tensor2D), out.bias);
      return tf.concat([backbone.pooled(cnn), dims], 1) as tf.Tensor2D;
    },
  };
}
