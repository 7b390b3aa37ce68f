import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  asenLoss,
  createModel,
  isAsenModel,
  restoreModel,
  selectBackend,
  type ModelConfig,
} from '../src/model/index.ts';
import {
  ints,
  lossValue,
  quiet,
  syntheticBatch,
  syntheticImages,
  tinyConfig,
  train,
} from './fixtures/model/synthetic.ts';

function config(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return tinyConfig({ kind: 'asen', seed: 9, ...overrides });
}

describe('model: ASEN', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  it('shapes: unit-length vectors per condition, attention that sums to 1 over positions', () => {
    const { images } = syntheticImages();
    const model = createModel(config());
    assert.ok(isAsenModel(model));
    const vectors = model.conditionVectors(images);
    assert.deepEqual(vectors.shape, [16, 3, 12]);
    const norms = tf.tidy(() => Array.from(tf.norm(vectors, 'euclidean', 2).dataSync()));
    norms.forEach((n) => assert.ok(Math.abs(n - 1) < 1e-5, `norm ${n}`));
    const flat = model.embed(images);
    assert.deepEqual(flat.shape, [16, 36]);
    const attention = model.attention(images);
    // Small backbone: feature map at 1/8 of 32 px.
    assert.deepEqual(attention.shape, [16, 3, 4, 4]);
    const sums = tf.tidy(() => Array.from(tf.sum(attention, [2, 3]).dataSync()));
    sums.forEach((s) => assert.ok(Math.abs(s - 1) < 1e-5, `attention sums to ${s}`));
    assert.ok(tf.tidy(() => tf.min(attention).dataSync()[0]) >= 0);
    // Attention differs between conditions: each has its own attribute embedding.
    const perCondition = tf.tidy(() =>
      tf.sub(attention.slice([0, 0], [-1, 1]), attention.slice([0, 1], [-1, 1])),
    );
    assert.ok(tf.tidy(() => tf.max(tf.abs(perCondition)).dataSync()[0]) > 1e-6);
    assert.deepEqual(model.masks(), [Array(12).fill(1), Array(12).fill(1), Array(12).fill(1)]);
    tf.dispose([images, vectors, flat, attention, perCondition]);
    model.dispose();
  });

  it('attentionTanh bounds the attention logits to [−1, 1] (upstream V1); without it attention can be sharper', () => {
    const { images } = syntheticImages();
    /** Largest max/min attention ratio over images and conditions, with the logit kernel scaled up 50×. */
    const sharpness = (attentionTanh: boolean): number => {
      const model = createModel(config({ attentionTanh }));
      const snapshot = model.snapshot();
      snapshot.weights = snapshot.weights.map((w) =>
        w.name === 'asen/spatial/logit/kernel' ? { ...w, data: w.data.map((v) => v * 50) } : w,
      );
      model.dispose();
      const scaled = restoreModel(snapshot);
      assert.ok(isAsenModel(scaled), 'an ASEN model');
      const ratio = tf.tidy(() => {
        const attention = scaled.attention(images);
        return tf.max(tf.div(tf.max(attention, [2, 3]), tf.min(attention, [2, 3]))).dataSync()[0];
      });
      scaled.dispose();
      return ratio;
    };
    const bounded = sharpness(true);
    assert.ok(bounded <= Math.exp(2) * 1.0001, `tanh: max/min attention ${bounded} ≤ e²`);
    assert.ok(sharpness(false) > Math.exp(2), 'without tanh the same logits give sharper attention');
    const legacy = createModel({ ...config(), attentionTanh: undefined });
    assert.equal(legacy.config.attentionTanh, false, 'a config from before the option keeps its behaviour');
    const fresh = createModel(config());
    assert.equal(fresh.config.attentionTanh, true, 'new models follow upstream V1');
    legacy.dispose();
    fresh.dispose();
    images.dispose();
  });

  it('loss matches a hand computation on cosine similarities', () => {
    const result = tf.tidy(() => {
      // vectors[image][condition]
      const vectors = tf.tensor3d(
        [
          [
            [1, 0],
            [0, 1],
          ],
          [
            [0, 1],
            [0.6, 0.8],
          ],
          [
            [0.8, 0.6],
            [1, 0],
          ],
        ],
        [3, 2, 2],
      );
      // Triplet 1 (condition 0): s(a,far) = [1,0]·[0,1] = 0, s(a,close) = [1,0]·[0.8,0.6] = 0.8 → loss 0, correct.
      // Triplet 2 (condition 1): s(a,far) = [0.6,0.8]·[0,1] = 0.8, s(a,close) = [0.6,0.8]·[1,0] = 0.6 → 0.4.
      const parts = asenLoss(
        vectors,
        { anchor: ints([0, 1]), far: ints([1, 0]), close: ints([2, 2]), condition: ints([0, 1]) },
        { margin: 0.2, embedLoss: 5e-3, maskLoss: 5e-4 },
      );
      return {
        total: parts.total.dataSync()[0],
        triplet: parts.triplet.dataSync()[0],
        norms: [parts.embedNorm.dataSync()[0], parts.maskNorm.dataSync()[0]],
        correct: Array.from(parts.correct.dataSync()),
      };
    });
    assert.ok(Math.abs(result.triplet - 0.2) < 1e-6, `triplet ${result.triplet}`);
    assert.ok(Math.abs(result.total - 0.2) < 1e-6, 'ASEN has no norm penalties');
    assert.deepEqual(result.norms, [0, 0]);
    assert.deepEqual(result.correct, [1, 0]);
  });

  it('a few training steps on wasm reduce the loss, without leaking tensors', () => {
    const batch = syntheticBatch();
    const model = createModel(config());
    const before = lossValue(model, batch);
    const tensors = tf.memory().numTensors;
    train(model, batch, 25);
    assert.equal(tf.memory().numTensors, tensors);
    const afterTraining = lossValue(model, batch);
    assert.ok(afterTraining.total < 0.6 * before.total, `loss ${before.total} → ${afterTraining.total}`);
    assert.ok(
      afterTraining.accuracy > before.accuracy,
      `accuracy ${before.accuracy} → ${afterTraining.accuracy}`,
    );
    model.dispose();
    tf.dispose(Object.values(batch));
  });

  it('snapshot → restore gives identical vectors (resnet18 backbone)', () => {
    const { images } = syntheticImages();
    const model = createModel(config({ backbone: 'resnet18' }));
    const restored = restoreModel(model.snapshot());
    const [a, b] = [model, restored].map((m) => {
      const v = m.conditionVectors(images);
      const values = Array.from(v.dataSync());
      v.dispose();
      return values;
    });
    assert.deepEqual(b, a);
    images.dispose();
    model.dispose();
    restored.dispose();
  });

  it('saliency is the condition’s attention upsampled to the image, scaled to a maximum of 1', () => {
    const { images } = syntheticImages();
    const model = createModel(config());
    assert.ok(isAsenModel(model));
    const subset = images.slice([0, 0, 0, 0], [2, -1, -1, -1]) as tf.Tensor4D;
    const map = model.saliency(subset, subset, 1);
    assert.deepEqual(map.shape, [2, 32, 32]);
    const attention = model.attention(subset);
    // The brightest 4×4 cell of the attention is where the saliency peaks.
    const values = map.arraySync();
    const cells = attention.arraySync();
    for (let i = 0; i < 2; i++) {
      const cell = cells[i][1].flat();
      const best = cell.indexOf(Math.max(...cell));
      const [cy, cx] = [Math.floor(best / 4), best % 4];
      const centre = values[i][cy * 8 + 4][cx * 8 + 4];
      assert.ok(centre > 0.9, `saliency at the attention peak is ${centre}`);
      assert.ok(Math.max(...values[i].flat()) <= 1 + 1e-6);
    }
    tf.dispose([images, subset, map, attention]);
    model.dispose();
  });
});
