/**
 * Batch normalisation over the channels of NHWC feature maps, as torch.nn.BatchNorm2d (eps 1e-5, momentum 0.1):
 *
 * - training: normalise with the batch's mean and biased variance, and move the running statistics towards
 *   the batch's (running_var receives the unbiased variance, as PyTorch does);
 * - inference: normalise with the running statistics (a per-channel scale and shift).
 *
 * The training forward pass is one custom-gradient op whose backward pass is the closed form
 * dx = rstd · (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) with dx̂ = dy · γ, instead of the tape of a dozen
 * elementwise ops and broadcasts tfjs would record. Per-channel sums are matrix products with a row of ones
 * ([1, N·H·W] × [N·H·W, C]): on wasm a reduction over the leading axes transposes the whole tensor first,
 * a matrix product runs in XNNPACK without it.
 */
import * as tf from '@tensorflow/tfjs';
import type { ParamStore } from './params.ts';

export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.1;

export interface BatchNorm {
  gamma: tf.Variable;
  beta: tf.Variable;
  runningMean: tf.Variable;
  runningVar: tf.Variable;
}

/** γ = 1, β = 0, running mean 0 and variance 1 (PyTorch's initial values); running statistics are not trainable. */
export function addBatchNorm(params: ParamStore, path: string, channels: number): BatchNorm {
  return {
    gamma: params.add(`${path}/gamma`, [channels], { kind: 'constant', value: 1 }),
    beta: params.add(`${path}/beta`, [channels], { kind: 'zeros' }),
    runningMean: params.add(`${path}/running_mean`, [channels], { kind: 'zeros' }, false),
    runningVar: params.add(`${path}/running_var`, [channels], { kind: 'constant', value: 1 }, false),
  };
}

/** Σ over the rows of [m, c] as a [1, c] matrix product. */
function columnSums(x: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(tf.ones([1, x.shape[0]]), x);
}

interface Moments {
  mean: tf.Tensor2D;
  variance: tf.Tensor2D;
}

/** Per-channel mean and biased variance of [m, c] as [1, c] rows. */
function channelMoments(x: tf.Tensor2D): Moments & { centred: tf.Tensor2D } {
  const rows = x.shape[0];
  const mean = tf.div(columnSums(x), rows) as tf.Tensor2D;
  const centred = tf.sub(x, mean) as tf.Tensor2D;
  const variance = tf.div(columnSums(tf.square(centred)), rows) as tf.Tensor2D;
  return { mean, centred, variance };
}

/**
 * y = x̂·γ + β with x̂ normalised by the batch statistics of x [m, c]; `onMoments` receives the batch mean and
 * variance (for the running statistics) while the forward pass runs.
 */
function normaliseTraining(
  x: tf.Tensor2D,
  gamma: tf.Tensor1D,
  beta: tf.Tensor1D,
  onMoments: (moments: Moments) => void,
): tf.Tensor2D {
  const op = tf.customGrad(((input: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor, save: tf.GradSaveFunc) => {
    const { mean, centred, variance } = channelMoments(input as tf.Tensor2D);
    onMoments({ mean, variance });
    const rstd = tf.rsqrt(tf.add(variance, BN_EPSILON));
    const normalised = tf.mul(centred, rstd) as tf.Tensor2D;
    save([normalised, rstd, scale]);
    return {
      value: tf.add(tf.mul(normalised, scale), shift),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xhat, savedRstd, savedScale] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const rows = xhat.shape[0];
        const grad = dy as tf.Tensor2D;
        const dBeta = columnSums(grad);
        const dGamma = columnSums(tf.mul(grad, xhat));
        // dx̂ = dy·γ; mean(dx̂) = γ·Σdy/m; mean(dx̂·x̂) = γ·Σ(dy·x̂)/m.
        const gammaRstd = tf.mul(savedScale, savedRstd);
        const centredGrad = tf.sub(tf.sub(grad, tf.div(dBeta, rows)), tf.mul(xhat, tf.div(dGamma, rows)));
        return [tf.mul(centredGrad, gammaRstd), tf.reshape(dGamma, [-1]), tf.reshape(dBeta, [-1])];
      },
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return op(x, gamma, beta) as tf.Tensor2D;
}

/** Move the running statistics towards the batch's (PyTorch: unbiased variance, momentum 0.1). */
function updateRunning(bn: BatchNorm, moments: Moments, count: number): void {
  const unbiased = count > 1 ? count / (count - 1) : 1;
  const keep = 1 - BN_MOMENTUM;
  const mean = tf.tidy(() =>
    tf.add(tf.mul(bn.runningMean, keep), tf.mul(tf.reshape(moments.mean, [-1]), BN_MOMENTUM)),
  );
  const variance = tf.tidy(() =>
    tf.add(tf.mul(bn.runningVar, keep), tf.mul(tf.reshape(moments.variance, [-1]), BN_MOMENTUM * unbiased)),
  );
  bn.runningMean.assign(mean);
  bn.runningVar.assign(variance);
  mean.dispose();
  variance.dispose();
}

/**
 * Batch norm of x [n, h, w, c]. `training`: batch statistics, and the running statistics are updated (once per
 * call); otherwise the running statistics are used.
 */
export function applyBatchNorm(x: tf.Tensor4D, bn: BatchNorm, training: boolean): tf.Tensor4D {
  const [n, h, w, c] = x.shape;
  if (!training) {
    const scale = tf.mul(bn.gamma, tf.rsqrt(tf.add(bn.runningVar, BN_EPSILON)));
    const shift = tf.sub(bn.beta, tf.mul(bn.runningMean, scale));
    return tf.add(tf.mul(x, scale), shift) as tf.Tensor4D;
  }
  const rows = n * h * w;
  const flat = tf.reshape(x, [rows, c]) as tf.Tensor2D;
  const y = normaliseTraining(flat, bn.gamma as tf.Tensor1D, bn.beta as tf.Tensor1D, (moments) =>
    updateRunning(bn, moments, rows),
  );
  return tf.reshape(y, [n, h, w, c]) as tf.Tensor4D;
}
