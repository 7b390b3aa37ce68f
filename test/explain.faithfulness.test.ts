/**
 * Heat-map methods and the faithfulness arithmetic on a fixed small model (tiny CSN, seed 5, synthetic squares on
 * a grey background), and the dimension explanation checked against the model itself.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  blockOrder,
  bootstrapInterval,
  curveArea,
  deletionMasks,
  dimensionBreakdown,
  energyOnPart,
  HEATMAP_METHODS,
  loadAttribution,
  methodsFor,
  ratioOfSums,
} from '../src/explain/index.ts';
import { conditionSpace } from '../src/index/index.ts';
import { createModel, restoreModel, selectBackend, type SimilarityModel } from '../src/model/index.ts';
import { Rng } from '../src/util/rng.ts';
import { quiet, syntheticImages, tinyConfig } from './fixtures/model/synthetic.ts';

const attribution = await loadAttribution();
const SIZE = 32;

/** Pixels of synthetic image i that lie at least `margin` pixels (Chebyshev) away from its square. */
function farFromSquare(images: Float32Array, i: number, margin: number): number[] {
  const inSquare = (y: number, x: number) => {
    const p = ((i * SIZE + y) * SIZE + x) * 3;
    return images[p] !== 0.5 || images[p + 1] !== 0.5 || images[p + 2] !== 0.5;
  };
  const far: number[] = [];
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      let near = false;
      for (let dy = -margin; dy <= margin && !near; dy++) {
        for (let dx = -margin; dx <= margin && !near; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          near = yy >= 0 && yy < SIZE && xx >= 0 && xx < SIZE && inSquare(yy, xx);
        }
      }
      if (!near) far.push(y * SIZE + x);
    }
  }
  return far;
}

describe('heat-map methods on a fixed small model', () => {
  let model: SimilarityModel;
  let images: tf.Tensor4D;
  let pixels: Float32Array;
  const pick = (i: number) => tf.slice(images, [i, 0, 0, 0], [1, -1, -1, -1]);

  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm', 'the wasm backend is available');
    model = createModel(tinyConfig({ seed: 5 }));
    images = syntheticImages().images;
    pixels = images.dataSync() as Float32Array;
  });

  it('every method a CSN offers returns one map per image, in [0, 1] with a maximum of 1', () => {
    assert.deepEqual(
      methodsFor('csn'),
      HEATMAP_METHODS.filter((m) => m !== 'attention'),
    );
    for (const method of methodsFor('csn')) {
      const maps = attribution.heatMaps(
        model,
        method,
        tf.slice(images, [0, 0, 0, 0], [2, -1, -1, -1]),
        pick(5),
        1,
      );
      assert.deepEqual(maps.shape, [2, SIZE, SIZE], `${method} shape`);
      const values = maps.dataSync();
      maps.dispose();
      assert.ok(
        values.every((v) => v >= 0 && v <= 1),
        `${method} values lie in [0, 1]`,
      );
      for (const i of [0, 1]) {
        const max = Math.max(...values.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE));
        assert.ok(Math.abs(max - 1) < 1e-5, `${method} image ${i} maximum ${max}`);
      }
    }
  });

  it('methods with a grey baseline give no heat where the image is already grey', () => {
    // Greying out grey pixels changes nothing, so gradient × input, integrated gradients and occlusion must put
    // exactly 0 there (margin: the 2-pixel blur of the gradient maps, the 5-pixel occlusion patch).
    for (const [method, margin] of [
      ['gradient-input', 3],
      ['integrated-gradients', 3],
      ['occlusion', 6],
    ] as const) {
      for (const [i, reference] of [
        [3, 6],
        [12, 9],
      ]) {
        const map = attribution.heatMaps(model, method, pick(i), pick(reference), 0);
        const heat = map.dataSync();
        map.dispose();
        const far = farFromSquare(pixels, i, margin);
        assert.ok(far.length > SIZE * SIZE * 0.3, `image ${i} has background far from its square`);
        const stray = far.filter((p) => heat[p] !== 0);
        assert.equal(stray.length, 0, `${method} image ${i}: heat on ${stray.length} background pixels`);
      }
    }
  });

  it('integrated gradients sum to the similarity gained from grey to the image (completeness)', () => {
    // Noisy copies: on exactly flat regions the backbone's 2×2 max-pool gradient hands the full gradient to every
    // tied maximum, and the sum then settles 8 % off (measured on image 12); with noise it converges.
    const rng = new Rng(9);
    const noisy = tf.tidy(() => {
      const noise = Float32Array.from({ length: images.size }, () => (rng.next() - 0.5) * 0.1);
      return tf.clipByValue(tf.add(images, tf.tensor4d(noise, images.shape)), 0, 1) as tf.Tensor4D;
    });
    const at = (i: number) => tf.slice(noisy, [i, 0, 0, 0], [1, -1, -1, -1]);
    for (const [i, reference, c] of [
      [3, 6, 0],
      [12, 9, 2],
      [7, 1, 1],
    ]) {
      const target = attribution.referenceTargets(model, at(reference), c);
      const map = attribution.integratedGradientsMap(model, at(i), target, c, 256);
      const total = tf.sum(map).dataSync()[0];
      const image = attribution.conditionDistances(model, at(i), target, c).dataSync()[0];
      const grey = attribution
        .conditionDistances(model, tf.fill([1, SIZE, SIZE, 3], attribution.GREY) as tf.Tensor4D, target, c)
        .dataSync()[0];
      tf.dispose([target, map]);
      const expected = grey - image;
      assert.ok(
        Math.abs(total - expected) <= 0.02 * Math.abs(expected),
        `image ${i}: attributions sum to ${total}, d(grey) − d(image) = ${expected}`,
      );
    }
    noisy.dispose();
  });

  it('attention is refused for a model without attention', () => {
    assert.throws(() => attribution.heatMaps(model, 'attention', pick(0), pick(1), 0), /needs an ASEN model/);
  });

  it('the dimension explanation: shares sum to 1 and removing the top dims removes exactly their share', () => {
    const embedDim = model.config.embedDim;
    const embeddings = model.embed(tf.slice(images, [0, 0, 0, 0], [2, -1, -1, -1]));
    const rows = embeddings.dataSync() as Float32Array;
    embeddings.dispose();
    const snapshot = model.snapshot();
    const maskWeight = snapshot.weights.find((w) => w.name.endsWith('masks'));
    assert.ok(maskWeight, 'the CSN snapshot holds its masks');
    for (const [c, condition] of model.config.conditions.entries()) {
      const space = conditionSpace(condition, 'csn', model.masks()[c], embedDim, 0);
      // The condition-space vectors the index stores: kept dims times their mask weight.
      const project = (i: number) => space.dims.map((d, k) => rows[i * embedDim + d] * space.weights[k]);
      const a = project(0);
      const b = project(1);
      const all = dimensionBreakdown(a, b, space, space.dims.length);
      const sum = all.top.reduce((s, d) => s + d.share, 0) + all.restShare;
      assert.ok(Math.abs(sum - 1) < 1e-9, `${condition}: shares sum to ${sum}`);

      // Zero the mask on the top 3 dims in the model itself and measure the distance again.
      const top = dimensionBreakdown(a, b, space, 3);
      const weights = snapshot.weights.map((w) => {
        if (w !== maskWeight) return w;
        const data = Float32Array.from(w.data);
        for (const d of top.top) data[c * embedDim + d.dim] = 0;
        return { ...w, data };
      });
      const pruned = restoreModel({ config: snapshot.config, weights });
      const vectors = pruned.conditionVectors(tf.slice(images, [0, 0, 0, 0], [2, -1, -1, -1]));
      const v = vectors.arraySync()[0][c];
      const w = vectors.arraySync()[1][c];
      vectors.dispose();
      pruned.dispose();
      const after = v.reduce((s, x, d) => s + (x - w[d]) ** 2, 0);
      const removed = top.top.reduce((s, d) => s + d.share, 0);
      const expected = top.distance ** 2 * (1 - removed);
      assert.ok(
        Math.abs(after - expected) <= 1e-4 * top.distance ** 2,
        `${condition}: squared distance after removing ${top.top.length} dims is ${after}, stated ${expected}`,
      );
    }
  });
});

describe('faithfulness arithmetic', () => {
  it('energy on part is 1 for a uniform map and 1 / area for a map inside the part', () => {
    const region = [1, 1, 0, 0, 0, 0, 0, 0];
    assert.equal(energyOnPart(new Array(8).fill(0.3), region), 1);
    assert.equal(energyOnPart([1, 0.5, 0, 0, 0, 0, 0, 0], region), 4);
    assert.equal(energyOnPart([0, 0, 1, 1, 1, 1, 1, 1], region), 0);
    assert.ok(Number.isNaN(energyOnPart(new Array(8).fill(0), region)), 'an empty map has no energy');
  });

  it('blocks are ordered by mean heat, every pixel in exactly one block', () => {
    const heat = new Float32Array(16);
    heat[15] = 1; // bottom-right block first
    heat[0] = 0.5; // then top-left
    const order = blockOrder(heat, 4, 2, new Rng(1));
    assert.deepEqual(order[0], [10, 11, 14, 15]);
    assert.deepEqual(order[1], [0, 1, 4, 5]);
    assert.deepEqual(
      order.flat().sort((x, y) => x - y),
      [...Array(16).keys()],
    );
    const random = blockOrder(undefined, 4, 2, new Rng(1));
    assert.equal(random.length, 4);
  });

  it('deletion masks grey out a growing prefix of the blocks', () => {
    const order = [[0], [1], [2], [3]];
    const masks = deletionMasks(order, 4, 2);
    assert.deepEqual([...masks], [0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1]);
  });

  it('curve areas and the bootstrap interval', () => {
    assert.equal(curveArea([0, 1, 1]), 0.75);
    const gaps = [0.2, 0.3, 0.25, 0.15, 0.1];
    const scales = [1, 1, 1, 1, 1];
    assert.equal(ratioOfSums(gaps, scales), 0.2);
    const [lo, hi] = bootstrapInterval(gaps, scales, 3);
    assert.ok(lo < 0.2 && hi > 0.2 && lo >= 0.1 && hi <= 0.3, `interval [${lo}, ${hi}] around 0.2`);
    assert.deepEqual(bootstrapInterval(gaps, scales, 3), [lo, hi], 'the same seed gives the same interval');
  });
});
