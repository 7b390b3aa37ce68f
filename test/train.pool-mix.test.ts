/**
 * Pool batching draws anchors with the triplets mode's label mix, on a skewed catalogue where plain random pools
 * gave the rarest label about half its share; with anchors drawn by product, both modes follow the products' mix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitProducts, splitTriplets, type Catalogue, type Triplet } from '../src/catalogue/index.ts';
import { PoolSampler } from '../src/train/data.ts';
import { Rng } from '../src/util/rng.ts';

const LABELS = 12;

/** 3000 products, one condition, label k drawn with P ∝ 1/k^1.5. */
function skewedCatalogue(): Catalogue {
  const rng = new Rng(1);
  const weights = Array.from({ length: LABELS }, (_, k) => 1 / (k + 1) ** 1.5);
  const total = weights.reduce((a, b) => a + b, 0);
  const draw = (): number => {
    let u = rng.next() * total;
    for (let k = 0; k < LABELS; k++) if ((u -= weights[k]) < 0) return k;
    return LABELS - 1;
  };
  const products = Array.from({ length: 3000 }, (_, i) => ({
    id: `p${i}`,
    title: '',
    image: `p${i}.png`,
    attributes: { color: [`c${draw()}`] },
  }));
  return { root: '/nonexistent', name: 'skewed', conditions: ['color'], products };
}

function shares(catalogue: Catalogue, triplets: readonly Triplet[]): number[] {
  const counts = new Array<number>(LABELS).fill(0);
  for (const t of triplets) counts[Number(catalogue.products[t.anchor].attributes.color[0].slice(1))]++;
  return counts.map((c) => c / triplets.length);
}

describe('train: pool batching label mix', () => {
  it('gives rare labels the same share of anchors as the triplets mode', () => {
    const catalogue = skewedCatalogue();
    const reference = shares(catalogue, splitTriplets(catalogue, { split: 'train', count: 20000 }, 42));
    const sampler = new PoolSampler(catalogue, splitProducts(catalogue, 'train'), 96);
    const rng = new Rng(7);
    const pooled = shares(catalogue, Array.from({ length: 60 }, () => sampler.sample(384, rng)).flat());
    const rarest = pooled[LABELS - 1];
    assert.ok(
      Math.abs(rarest - reference[LABELS - 1]) < 0.2 * reference[LABELS - 1],
      `rarest label: ${(100 * rarest).toFixed(1)} % of pool anchors vs ${(100 * reference[LABELS - 1]).toFixed(1)} % in triplets mode`,
    );
    const distance = pooled.reduce((sum, s, k) => sum + Math.abs(s - reference[k]), 0) / 2;
    assert.ok(distance < 0.05, `total-variation distance ${distance.toFixed(3)} from the triplets mode`);
  });

  it('still makes valid triplets: anchor and close share the label, far does not', () => {
    const catalogue = skewedCatalogue();
    const sampler = new PoolSampler(catalogue, splitProducts(catalogue, 'train'), 96);
    const label = (p: number) => catalogue.products[p].attributes.color[0];
    const triplets = sampler.sample(384, new Rng(3));
    assert.equal(triplets.length, 384, 'a full batch');
    for (const t of triplets) {
      assert.equal(label(t.anchor), label(t.close), 'anchor and close share the label');
      assert.notEqual(label(t.anchor), label(t.far), 'far has another label');
      assert.notEqual(t.anchor, t.close, 'close is another product');
    }
    assert.ok(new Set(triplets.flatMap((t) => [t.anchor, t.far, t.close])).size <= 96, 'within one pool');
  });

  it('with anchors drawn by product, both modes give each label its share of the products', () => {
    const catalogue = skewedCatalogue();
    const train = splitProducts(catalogue, 'train');
    const productShares = new Array<number>(LABELS).fill(0);
    for (const p of train) productShares[Number(catalogue.products[p].attributes.color[0].slice(1))]++;
    const expected = productShares.map((count) => count / train.length);
    const sampled = shares(
      catalogue,
      splitTriplets(catalogue, { split: 'train', count: 20000, anchors: 'products' }, 42),
    );
    const sampler = new PoolSampler(catalogue, train, 96, { anchors: 'products' });
    const rng = new Rng(7);
    const pooled = shares(catalogue, Array.from({ length: 60 }, () => sampler.sample(384, rng)).flat());
    for (const [mode, got] of [
      ['triplets', sampled],
      ['pool', pooled],
    ] as const) {
      const distance = got.reduce((sum, s, k) => sum + Math.abs(s - expected[k]), 0) / 2;
      assert.ok(
        distance < 0.05,
        `${mode}: total-variation distance ${distance.toFixed(3)} from the products' mix`,
      );
    }
    // The label draw gives the most common label far less than its share of products.
    const byLabel = shares(catalogue, splitTriplets(catalogue, { split: 'train', count: 20000 }, 42));
    assert.ok(byLabel[0] < 0.5 * expected[0], `label draw: ${byLabel[0]} vs ${expected[0]}`);
  });
});
