/**
 * Adam (tf.train.adam) with its complete state exportable, so that a resumed run takes bit-identical steps.
 *
 * Adam's public getWeights/setWeights round-trip the moments and the iteration count, but setWeights recomputes
 * the bias-correction products beta^(t+1) with one pow() while a running optimiser carries them as a product of
 * float32 multiplications; the two differ in the last bits and a resumed run would drift. We therefore also save
 * and restore those two scalars, and set the learning rate for the per-epoch decay. Both live on fields tfjs does
 * not type publicly; `internals()` checks they exist, and the resume-equivalence test fails if tfjs ever changes
 * them.
 */
import * as tf from '@tensorflow/tfjs';
import type { NamedWeight } from '../model/types.ts';
import type { OptimizerState } from '../checkpoint/index.ts';

export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
/** PyTorch's Adam default (upstream trains with it); tfjs would otherwise take the backend's epsilon. */
export const ADAM_EPSILON = 1e-8;

interface AdamInternals {
  learningRate: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
}

function internals(optimizer: tf.AdamOptimizer): AdamInternals {
  const inner = optimizer as unknown as Partial<AdamInternals>;
  if (
    typeof inner.learningRate !== 'number' ||
    !(inner.accBeta1 instanceof tf.Variable) ||
    !(inner.accBeta2 instanceof tf.Variable)
  ) {
    throw new Error(
      'this tfjs version lays out AdamOptimizer differently: cannot save or restore its state exactly',
    );
  }
  return inner as AdamInternals;
}

export function createAdam(learningRate: number): tf.AdamOptimizer {
  const optimizer = tf.train.adam(learningRate, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON);
  internals(optimizer);
  return optimizer;
}

export function setLearningRate(optimizer: tf.AdamOptimizer, learningRate: number): void {
  internals(optimizer).learningRate = learningRate;
}

/** Upstream CSN's schedule: lr × (1 − decay)^epoch, epochs counted from 1. */
export function learningRateForEpoch(baseRate: number, decay: number, epoch: number): number {
  return baseRate * Math.pow(1 - decay, epoch);
}

/**
 * Optimiser state as plain arrays. `variables` must be the list the optimiser is stepped with, in the same order
 * (Adam keys its moments by position), so the slots can be named after them.
 */
export async function exportAdamState(
  optimizer: tf.AdamOptimizer,
  variables: tf.Variable[],
): Promise<OptimizerState> {
  const inner = internals(optimizer);
  const [iterationWeight, ...moments] = await optimizer.getWeights();
  const iterations = (await iterationWeight.tensor.data())[0];
  // getWeights makes a fresh scalar for the iteration count (the moments are the live variables).
  iterationWeight.tensor.dispose();
  const half = moments.length / 2;
  if (half !== 0 && half !== variables.length) {
    throw new Error(`optimiser holds ${half} moments for ${variables.length} variables`);
  }
  const slots: NamedWeight[] = await Promise.all(
    moments.map(async (moment, i) => ({
      name: `${variables[i % half].name}/${i < half ? 'm' : 'v'}`,
      shape: [...moment.tensor.shape],
      data: new Float32Array(await moment.tensor.data()),
    })),
  );
  return {
    kind: 'adam',
    iterations,
    learningRate: inner.learningRate,
    beta1: ADAM_BETA1,
    beta2: ADAM_BETA2,
    epsilon: ADAM_EPSILON,
    accBeta1: (await inner.accBeta1.data())[0],
    accBeta2: (await inner.accBeta2.data())[0],
    slots,
  };
}

/** Put a saved state into a fresh optimiser for `variables` (same order as when it was saved). */
export async function importAdamState(
  optimizer: tf.AdamOptimizer,
  state: OptimizerState,
  variables: tf.Variable[],
): Promise<void> {
  if (state.kind !== 'adam') throw new Error(`unsupported optimiser state "${String(state.kind)}"`);
  const half = state.slots.length / 2;
  if (half !== 0 && half !== variables.length) {
    throw new Error(
      `saved optimiser state has ${half} moments but the model has ${variables.length} trainable variables`,
    );
  }
  state.slots.forEach((slot, i) => {
    const variable = variables[i % half];
    if (slot.shape.join('x') !== variable.shape.join('x')) {
      throw new Error(
        `optimiser slot ${slot.name} has shape [${slot.shape}] but variable ${variable.name} has [${variable.shape}]`,
      );
    }
  });
  const weights: { name: string; tensor: tf.Tensor }[] = [
    { name: 'iter', tensor: tf.scalar(state.iterations, 'int32') },
    ...state.slots.map((slot) => ({ name: slot.name, tensor: tf.tensor(slot.data, slot.shape, 'float32') })),
  ];
  await optimizer.setWeights(weights);
  tf.dispose(weights.map((w) => w.tensor));
  const inner = internals(optimizer);
  inner.learningRate = state.learningRate;
  tf.tidy(() => {
    inner.accBeta1.assign(tf.scalar(state.accBeta1));
    inner.accBeta2.assign(tf.scalar(state.accBeta2));
  });
}
