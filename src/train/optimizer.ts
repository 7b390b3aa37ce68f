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
import { ADAM_UPDATE, type AdamUpdateAttrs, type NamedWeight } from '../model/index.ts';
import type { OptimizerState } from '../checkpoint/index.ts';

export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.999;
/** PyTorch's Adam default (upstream trains with it); tfjs would otherwise take the backend's epsilon. */
export const ADAM_EPSILON = 1e-8;

type Gradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

interface MomentSlot {
  originalName: string;
  variable: tf.Variable;
}

interface AdamInternals {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: (MomentSlot | undefined)[];
  accumulatedSecondMoment: (MomentSlot | undefined)[];
  incrementIterations(): void;
}

function internals(optimizer: tf.AdamOptimizer): AdamInternals {
  const inner = optimizer as unknown as Partial<AdamInternals>;
  if (
    typeof inner.learningRate !== 'number' ||
    typeof inner.beta1 !== 'number' ||
    typeof inner.beta2 !== 'number' ||
    typeof inner.epsilon !== 'number' ||
    !(inner.accBeta1 instanceof tf.Variable) ||
    !(inner.accBeta2 instanceof tf.Variable) ||
    !Array.isArray(inner.accumulatedFirstMoment) ||
    !Array.isArray(inner.accumulatedSecondMoment) ||
    typeof inner.incrementIterations !== 'function'
  ) {
    throw new Error(
      'this tfjs version lays out AdamOptimizer differently: cannot save or restore its state exactly',
    );
  }
  return inner as AdamInternals;
}

export function createAdam(learningRate: number): tf.AdamOptimizer {
  const optimizer = tf.train.adam(learningRate, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON);
  const inner = internals(optimizer);
  const original = optimizer.applyGradients.bind(optimizer);
  optimizer.applyGradients = (gradients) => {
    if (tf.getKernel(ADAM_UPDATE, tf.getBackend())) applyFused(inner, gradients);
    else original(gradients);
  };
  return optimizer;
}

/** A moment slot as tfjs's Adam makes it: zeros like the variable, not trainable. */
function momentSlot(name: string, value: tf.Variable): MomentSlot {
  return { originalName: name, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
}

/**
 * tfjs's AdamOptimizer.applyGradients with each variable's 14 kernels fused into one (ADAM_UPDATE, on wasm): the
 * same slots, the same float32 operations in the same order, so the same weights and moments bit for bit (the
 * resume and determinism tests compare them). Measured on the reference step: 154 kernel calls → 11.
 */
function applyFused(inner: AdamInternals, gradients: Gradients): void {
  const names = Array.isArray(gradients) ? gradients.map((g) => g.name) : Object.keys(gradients);
  const f = Math.fround;
  tf.tidy(() => {
    const attrs: AdamUpdateAttrs = {
      beta1: f(inner.beta1),
      beta2: f(inner.beta2),
      oneMinusBeta1: f(1 - inner.beta1),
      oneMinusBeta2: f(1 - inner.beta2),
      oneMinusAccBeta1: f(1 - inner.accBeta1.dataSync()[0]),
      oneMinusAccBeta2: f(1 - inner.accBeta2.dataSync()[0]),
      epsilon: f(inner.epsilon),
      negativeLearningRate: f(-inner.learningRate),
    };
    names.forEach((name, i) => {
      const value = tf.engine().registeredVariables[name];
      const first = (inner.accumulatedFirstMoment[i] ??= momentSlot(`${name}/m`, value)).variable;
      const second = (inner.accumulatedSecondMoment[i] ??= momentSlot(`${name}/v`, value)).variable;
      const gradient = Array.isArray(gradients) ? gradients[i].tensor : gradients[name];
      if (gradient == null) return;
      const inputs = { value, m: first, v: second, gradient };
      const [nextValue, nextFirst, nextSecond] = tf
        .engine()
        .runKernel(ADAM_UPDATE, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
      first.assign(nextFirst);
      second.assign(nextSecond);
      value.assign(nextValue);
    });
    inner.accBeta1.assign(tf.mul(inner.accBeta1, inner.beta1));
    inner.accBeta2.assign(tf.mul(inner.accBeta2, inner.beta2));
  });
  inner.incrementIterations();
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
