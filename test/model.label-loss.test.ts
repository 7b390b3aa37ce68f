import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { csnLoss, selectBackend } from '../src/model/index.ts';
import { labelLoss } from '../src/model/label-loss.ts';
import { Rng } from '../src/util/rng.ts';
import { ints, quiet } from './fixtures/model/synthetic.ts';

/** The loss written out plainly: per condition and anchor, −log(Σ same e^{−s·d²} / Σ weighted e^{−s·d²}). */
function referenceLoss(vectors: number[][][], labels: number[][], controlled: number, scale: number): number {
  const n = vectors.length;
  const conditions = labels[0].length;
  const d2 = (i: number, j: number, c: number) =>
    vectors[i][c].reduce((sum, v, k) => sum + (v - vectors[j][c][k]) ** 2, 0);
  const same = (i: number, j: number, c: number) => labels[i][c] >= 0 && labels[i][c] === labels[j][c];
  let total = 0;
  let anchors = 0;
  for (let c = 0; c < conditions; c++) {
    for (let i = 0; i < n; i++) {
      let numerator = 0;
      let denominator = 0;
      for (let j = 0; j < n; j++) {
        if (j === i || labels[i][c] < 0 || labels[j][c] < 0) continue;
        const e = Math.exp(-scale * d2(i, j, c));
        if (same(i, j, c)) {
          numerator += e;
          denominator += e;
          continue;
        }
        let alike = true;
        for (let o = 0; o < conditions; o++) if (o !== c && !same(i, j, o)) alike = false;
        denominator += e * (alike && conditions > 1 ? 1 + controlled : 1);
      }
      if (numerator === 0) continue;
      total += -Math.log(numerator / denominator);
      anchors++;
    }
  }
  return total / Math.max(anchors, 1);
}

function computed(vectors: number[][][], labels: number[][], controlled: number, scale: number): number {
  return tf.tidy(
    () =>
      labelLoss(
        tf.tensor3d(vectors),
        tf.tensor2d(labels, undefined, 'int32'),
        controlled,
        scale,
      ).dataSync()[0],
  );
}

describe('model: in-batch label loss', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  it('matches a hand computation', () => {
    // x = 0, 1, 3 with labels a, a, b. Anchor 0: −log(e⁻¹ / (e⁻¹ + e⁻⁹)) = log(1 + e⁻⁸); anchor 1:
    // log(1 + e⁻³); anchor 2 has no partner and is left out.
    const expected = (Math.log(1 + Math.exp(-8)) + Math.log(1 + Math.exp(-3))) / 2;
    assert.ok(Math.abs(computed([[[0]], [[1]], [[3]]], [[0], [0], [1]], 0, 1) - expected) < 1e-6);
  });

  it('matches the plain computation with missing labels and controlled negatives', () => {
    const rng = new Rng(7);
    const n = 12;
    const vectors = Array.from({ length: n }, () =>
      Array.from({ length: 3 }, () => Array.from({ length: 4 }, () => rng.next() - 0.5)),
    );
    const labels = Array.from({ length: n }, (_, i) => [i % 3, i % 2, i % 5 === 0 ? -1 : i % 4 < 2 ? 0 : 1]);
    for (const controlled of [0, 2]) {
      const want = referenceLoss(vectors, labels, controlled, 1.5);
      const got = computed(vectors, labels, controlled, 1.5);
      assert.ok(Math.abs(got - want) < 1e-5, `controlled ${controlled}: ${got} vs ${want}`);
    }
    assert.ok(referenceLoss(vectors, labels, 2, 1.5) > referenceLoss(vectors, labels, 0, 1.5));
  });

  it('is added to the CSN objective with its coefficient, only when the batch carries labels', () => {
    const [without, withLabels, alone] = tf.tidy(() => {
      const embeddings = tf.tensor2d([1, 0, 0, 1, 1, 1, 0.5, 0.2], [4, 2]);
      const masks = tf.tensor2d([1, 0, 0.5, 2], [2, 2]);
      const labels = tf.tensor2d([0, 1, 0, 0, 1, 1, 1, 0], [4, 2], 'int32');
      const indices = { anchor: ints([0]), far: ints([2]), close: ints([1]), condition: ints([0]) };
      const coefficients = { margin: 0.2, embedLoss: 0, maskLoss: 0, labelLoss: 0.5, controlled: 1 };
      const vectors = tf.mul(tf.expandDims(embeddings, 1), tf.expandDims(masks, 0)) as tf.Tensor3D;
      return [
        csnLoss(embeddings, masks, indices, coefficients).total.dataSync()[0],
        csnLoss(embeddings, masks, { ...indices, labels }, coefficients).total.dataSync()[0],
        labelLoss(vectors, labels, 1, 1).dataSync()[0],
      ];
    });
    assert.ok(alone > 0);
    assert.ok(Math.abs(withLabels - without - 0.5 * alone) < 1e-6);
  });
});
