/**
 * The trainer's Adam (src/train/optimizer.ts): on wasm its update is one fused kernel per variable, which must give
 * tfjs's own AdamOptimizer's weights and moments bit for bit, through learning-rate changes and both gradient forms.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import {
  ADAM_BETA1,
  ADAM_BETA2,
  ADAM_EPSILON,
  createAdam,
  exportAdamState,
  setLearningRate,
} from '../src/train/optimizer.ts';
import { quiet } from './fixtures/model/synthetic.ts';

function bits(values: ArrayLike<number>): number[] {
  return Array.from(new Uint32Array(Float32Array.from(values).buffer));
}

/** Four steps of a small quadratic problem; returns weights and the optimiser's state as bit patterns. */
async function train(optimizer: tf.AdamOptimizer, seed: number): Promise<unknown> {
  const variables = [
    tf.variable(tf.randomNormal([7, 5], 0, 1, 'float32', seed)),
    tf.variable(tf.randomNormal([5], 0, 1, 'float32', seed + 1)),
  ];
  const target = tf.randomNormal([7, 5], 0, 3, 'float32', seed + 2);
  for (let step = 0; step < 4; step++) {
    if (step === 2) setLearningRate(optimizer, 7e-4);
    tf.tidy(() => {
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(tf.sub(tf.add(variables[0], variables[1]), target))) as tf.Scalar,
        variables,
      );
      // Both forms tfjs accepts: a list in variable order, and a name → gradient map.
      if (step % 2 === 0)
        optimizer.applyGradients(variables.map((v) => ({ name: v.name, tensor: grads[v.name] })));
      else optimizer.applyGradients(grads as unknown as Parameters<tf.AdamOptimizer['applyGradients']>[0]);
    });
  }
  const state = await exportAdamState(optimizer, variables);
  const result = {
    weights: variables.map((v) => bits(v.dataSync())),
    slots: state.slots.map((slot) => bits(slot.data)),
    iterations: state.iterations,
    accBeta: bits([state.accBeta1, state.accBeta2]),
  };
  tf.dispose([...variables, target]);
  optimizer.dispose();
  return result;
}

describe('train: Adam', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm', 'the wasm backend starts');
  });

  it('the fused update gives tfjs AdamOptimizer’s weights and moments bit for bit', async () => {
    const ours = await train(createAdam(3e-3), 11);
    const reference = await train(tf.train.adam(3e-3, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON), 11);
    assert.deepEqual(ours, reference);
  });

  it('leaves no more tensors behind than tfjs’s own Adam', async () => {
    const left = async (optimizer: tf.AdamOptimizer): Promise<number> => {
      const before = tf.memory().numTensors;
      await train(optimizer, 21);
      return tf.memory().numTensors - before;
    };
    const reference = await left(tf.train.adam(1e-3, ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON));
    assert.equal(await left(createAdam(1e-3)), reference, 'tensors left after training and disposal');
  });
});
