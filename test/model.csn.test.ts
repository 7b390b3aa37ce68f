import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { createModel, csnLoss, restoreModel, selectBackend, type ModelConfig } from '../src/model/index.ts';

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
  return tinyConfig({ seed: 5, ...overrides });
}

describe('model: CSN', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  it('loss parts match a hand computation (margin, masked L2, embed norm, mask norm)', () => {
    const result = tf.tidy(() => {
      // e0 = [1, 0], e1 = [0, 1], e2 = [1, 1]; masks m0 = [1, 0], m1 = [0.5, 2].
      const embeddings = tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]);
      const masks = tf.tensor2d([1, 0, 0.5, 2], [2, 2]);
      // Triplet 1 (condition 0): a = [1,0], far = [0,0], close = [1,0] → d_far 1, d_close 0 → loss 0, correct.
      // Triplet 2 (condition 1): a = [0.5,2], far = [0,2], close = [0.5,0] → d_far 0.5, d_close 2 → 2 − 0.5 + 0.2 = 1.7.
      const parts = csnLoss(
        embeddings,
        masks,
        { anchor: ints([0, 2]), far: ints([1, 1]), close: ints([2, 0]), condition: ints([0, 1]) },
        { margin: 0.2, embedLoss: 0.1, maskLoss: 0.01 },
      );
      return {
        triplet: parts.triplet.dataSync()[0],
        embedNorm: parts.embedNorm.dataSync()[0],
        maskNorm: parts.maskNorm.dataSync()[0],
        total: parts.total.dataSync()[0],
        correct: Array.from(parts.correct.dataSync()),
      };
    });
    const close = (actual: number, expected: number) =>
      assert.ok(Math.abs(actual - expected) < 1e-4, `${actual} is not ${expected}`);
    close(result.triplet, 0.85);
    // Frobenius norms of anchors [e0; e2] = √3, fars [e1; e1] = √2, closes [e2; e0] = √3; mean / √2 triplets.
    const embedNorm = (2 * Math.sqrt(3) + Math.sqrt(2)) / 3 / Math.sqrt(2);
    close(result.embedNorm, embedNorm);
    // L1 of the masks used: |m0| = 1, |m1| = 2.5, divided by 2 triplets.
    close(result.maskNorm, 1.75);
    close(result.total, 0.85 + 0.1 * embedNorm + 0.01 * 1.75);
    assert.deepEqual(result.correct, [1, 0]);
  });

  it('learned masks: N(0.9, 0.7) before the ReLU, ReLU applied in masks()', () => {
    const model = createModel(
      config({ embedDim: 64, conditions: ['a', 'b', 'c', 'd', 'e', 'f'], seed: 123 }),
    );
    const raw = model.snapshot().weights.find((w) => w.name === 'masks')!;
    assert.deepEqual(raw.shape, [6, 64]);
    const values = Array.from(raw.data);
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const std = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
    assert.ok(Math.abs(mean - 0.9) < 0.12, `mean ${mean}`);
    assert.ok(Math.abs(std - 0.7) < 0.1, `std ${std}`);
    const negatives = values.filter((v) => v < 0).length;
    assert.ok(negatives > 10, 'N(0.9, 0.7) has about 10% negative values');
    const masks = model.masks().flat();
    masks.forEach((m, i) => assert.equal(m, Math.max(0, values[i])));
    assert.ok(model.trainableVariables().some((v) => v.name.endsWith('/masks')));
    model.dispose();
  });

  it('prein masks: disjoint blocks of 1, 0.1 elsewhere, trainable', () => {
    const model = createModel(config({ maskMode: 'prein', embedDim: 8 }));
    const row = (on: number[]) => Array.from({ length: 8 }, (_, d) => (on.includes(d) ? 1 : 0.1));
    const masks = model.masks().map((r) => r.map((v) => Math.round(v * 1e6) / 1e6));
    assert.deepEqual(masks, [row([0, 1]), row([2, 3]), row([4, 5])]);
    assert.ok(model.trainableVariables().some((v) => v.name.endsWith('/masks')));
    model.dispose();
  });

  it('fixed masks: 0/1 blocks, not trainable, unchanged by training', () => {
    const model = createModel(config({ maskMode: 'fixed', embedDim: 8 }));
    const before = model.masks();
    assert.deepEqual(before[1], [0, 0, 1, 1, 0, 0, 0, 0]);
    assert.ok(!model.trainableVariables().some((v) => v.name.endsWith('/masks')));
    const batch = syntheticBatch();
    train(model, batch, 2);
    assert.deepEqual(model.masks(), before);
    tf.dispose(Object.values(batch));
    model.dispose();
  });

  it('condition vectors are the embedding times each mask; the baseline repeats the embedding', () => {
    const { images } = syntheticImages();
    for (const kind of ['csn', 'unconditional'] as const) {
      const model = createModel(config({ kind }));
      const embedding = model.embed(images);
      const vectors = model.conditionVectors(images);
      assert.deepEqual(vectors.shape, [16, 3, 12]);
      const masks = model.masks();
      if (kind === 'unconditional') assert.ok(masks.flat().every((m) => m === 1));
      const expected = tf.tidy(() =>
        tf.mul(tf.expandDims(embedding, 1), tf.expandDims(tf.tensor2d(masks), 0)),
      );
      assert.ok(tf.tidy(() => tf.max(tf.abs(tf.sub(expected, vectors))).dataSync()[0]) < 1e-6);
      tf.dispose([embedding, vectors, expected]);
      model.dispose();
    }
    images.dispose();
  });

  it('the same seed gives the same weights and the same training run; another seed does not', () => {
    const batch = syntheticBatch();
    const runs = [5, 5, 6].map((seed) => {
      const model = createModel(config({ seed }));
      const initial = model.snapshot().weights.map((w) => Array.from(w.data));
      train(model, batch, 2);
      const { total } = lossValue(model, batch);
      model.dispose();
      return { initial, total };
    });
    assert.deepEqual(runs[0].initial, runs[1].initial);
    assert.equal(runs[0].total, runs[1].total);
    assert.notDeepEqual(runs[0].initial, runs[2].initial);
    tf.dispose(Object.values(batch));
  });

  it('variables have stable names, unique while several models are alive', () => {
    const a = createModel(config());
    const b = createModel(config());
    const namesA = a.trainableVariables().map((v) => v.name);
    const namesB = b.trainableVariables().map((v) => v.name);
    assert.equal(namesA[0], 'csn/backbone/conv1/kernel');
    assert.equal(namesB[0], 'csn#2/backbone/conv1/kernel');
    assert.deepEqual(
      a.snapshot().weights.map((w) => w.name),
      b.snapshot().weights.map((w) => w.name),
    );
    a.dispose();
    b.dispose();
    const c = createModel(config());
    assert.equal(c.trainableVariables()[0].name, 'csn/backbone/conv1/kernel');
    c.dispose();
  });

  it('snapshot → restore gives identical outputs; a snapshot that does not fit is refused', () => {
    const batch = syntheticBatch();
    const model = createModel(config({ backbone: 'resnet18' }));
    train(model, batch, 2);
    const snapshot = model.snapshot();
    const restored = restoreModel(snapshot);
    const fresh = createModel(config({ backbone: 'resnet18' }));
    const [original, copy, untrained] = [model, restored, fresh].map((m) => {
      const v = m.conditionVectors(batch.images);
      const values = Array.from(v.dataSync());
      v.dispose();
      return values;
    });
    assert.deepEqual(copy, original);
    assert.notDeepEqual(untrained, original);
    const broken = { ...snapshot, weights: snapshot.weights.filter((w) => w.name !== 'masks') };
    assert.throws(() => restoreModel(broken), /missing \[masks\]/);
    const tensorsBefore = tf.memory().numTensors;
    assert.throws(() => restoreModel({ ...snapshot, config: { ...snapshot.config, embedDim: 13 } }), /shape/);
    assert.equal(tf.memory().numTensors, tensorsBefore, 'a failed restore frees its weights');
    [model, restored, fresh].forEach((m) => m.dispose());
    tf.dispose(Object.values(batch));
  });

  for (const backbone of ['small', 'resnet18', 'resnet18-skipinit'] as const) {
    it(`a few training steps on wasm reduce the loss (${backbone} backbone)`, () => {
      const batch = syntheticBatch();
      const model = createModel(config({ backbone }));
      const before = lossValue(model, batch);
      const tensors = tf.memory().numTensors;
      train(model, batch, 25);
      assert.equal(tf.memory().numTensors, tensors, 'training leaks no tensors');
      const afterTraining = lossValue(model, batch);
      assert.ok(afterTraining.total < 0.6 * before.total, `loss ${before.total} → ${afterTraining.total}`);
      assert.ok(
        afterTraining.accuracy > before.accuracy,
        `accuracy ${before.accuracy} → ${afterTraining.accuracy}`,
      );
      model.dispose();
      tf.dispose(Object.values(batch));
    });
  }

  it('saliency: one map per image in [0, 1], different per condition', () => {
    const { images } = syntheticImages();
    const model = createModel(config());
    const subset = images.slice([0, 0, 0, 0], [4, -1, -1, -1]) as tf.Tensor4D;
    const reference = images.slice([5, 0, 0, 0], [1, -1, -1, -1]) as tf.Tensor4D;
    const maps = [0, 1].map((c) => model.saliency(subset, reference, c));
    assert.deepEqual(maps[0].shape, [4, 32, 32]);
    const values = maps.map((m) => Array.from(m.dataSync()));
    assert.ok(values[0].every((v) => v >= 0 && v <= 1));
    for (let i = 0; i < 4; i++) {
      const row = values[0].slice(i * 1024, (i + 1) * 1024);
      assert.ok(Math.abs(Math.max(...row) - 1) < 1e-6, 'each map reaches 1');
    }
    assert.notDeepEqual(values[0], values[1]);
    assert.throws(() => model.saliency(subset, reference, 3), /out of range/);
    tf.dispose([images, subset, reference, ...maps]);
    model.dispose();
  });

  it('rejects images of the wrong size with a clear message', () => {
    const model = createModel(config());
    const wrong = tf.zeros([2, 16, 16, 3]) as tf.Tensor4D;
    assert.throws(() => model.embed(wrong), /\[n, 32, 32, 3\]/);
    wrong.dispose();
    model.dispose();
  });
});
