import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { COLOUR_BINS, colourBinMap, histogramOf } from '../src/model/colour.ts';
import { createModel, restoreModel, selectBackend } from '../src/model/index.ts';
import { quiet, syntheticImages, tinyConfig } from './fixtures/model/synthetic.ts';

/** An 8×8 image: the left half `left`, the right half `right` (RGB in [0, 1]). */
function halves(left: number[], right: number[]): tf.Tensor4D {
  const pixels: number[] = [];
  for (let y = 0; y < 8; y++) for (let x = 0; x < 8; x++) pixels.push(...(x < 4 ? left : right));
  return tf.tensor4d(pixels, [1, 8, 8, 3]);
}

function histogram(image: tf.Tensor4D): number[] {
  return tf.tidy(() => Array.from(histogramOf(colourBinMap(image, 1)).dataSync()));
}

const bin = (r: number, g: number, b: number) => r * 16 + g * 4 + b;

describe('model: colour channels', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  it('puts a pure colour in its bin and leaves the white background out', () => {
    const red = histogram(halves([1, 0, 0], [1, 1, 1]));
    assert.equal(red.length, COLOUR_BINS);
    assert.ok(red[bin(3, 0, 0)] > 0.99, `red bin ${red[bin(3, 0, 0)]}`);
    const white = histogram(halves([1, 1, 1], [1, 1, 1]));
    assert.ok(white.every((v) => v < 1e-6));
  });

  it('splits a colour between neighbouring bins and keeps shares of two colours', () => {
    const mid = histogram(halves([0.5, 0, 0], [0.5, 0, 0]));
    assert.ok(Math.abs(mid[bin(1, 0, 0)] - 0.5) < 1e-3 && Math.abs(mid[bin(2, 0, 0)] - 0.5) < 1e-3);
    const two = histogram(halves([0, 0, 1], [0, 1, 0]));
    assert.ok(Math.abs(two[bin(0, 0, 3)] - 0.5) < 1e-3 && Math.abs(two[bin(0, 3, 0)] - 0.5) < 1e-3);
  });

  it('adds its channels to CSN and ASEN, restores them from a snapshot, and leaves other models as they were', () => {
    const { images } = syntheticImages();
    for (const kind of ['csn', 'asen'] as const) {
      const plain = createModel(tinyConfig({ kind, embedDim: 24 }));
      const coloured = createModel(tinyConfig({ kind, embedDim: 24, colourHistogram: true }));
      const names = (m: typeof plain) => m.snapshot().weights.map((w) => w.name);
      assert.deepEqual(
        names(coloured).filter((n) => !n.includes('colour/') && !n.startsWith(`${kind}/asen`)),
        names(plain).filter((n) => !n.startsWith(`${kind}/asen`)),
      );
      assert.ok(names(coloured).some((n) => n.includes('colour/hidden')) || kind === 'asen');
      const restored = restoreModel(coloured.snapshot());
      assert.equal(restored.config.colourHistogram, true);
      const [a, b] = tf.tidy(() => [
        coloured.conditionVectors(images).arraySync(),
        restored.conditionVectors(images).arraySync(),
      ]);
      assert.deepEqual(a, b);
      [plain, coloured, restored].forEach((m) => m.dispose());
    }
  });

  it('makes vectors that tell colours apart before any training', () => {
    // The synthetic squares are red or blue on grey; their colour channels differ even with random CNN weights.
    const { images, labels } = syntheticImages();
    const hist = tf.tidy(() => histogramOf(colourBinMap(images, 4)).arraySync());
    const mass = (colour: number, at: number) =>
      hist.filter((_, i) => labels[i][0] === colour).map((h) => h[at]);
    const [redBin, blueBin] = [bin(3, 0, 0), bin(0, 0, 3)];
    assert.ok(Math.min(...mass(0, redBin)) > Math.max(...mass(1, redBin)));
    assert.ok(Math.min(...mass(1, blueBin)) > Math.max(...mass(0, blueBin)));
  });
});
