import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Catalogue, Product } from '../src/catalogue/types.ts';
import { restrictCatalogue } from '../src/catalogue/index.ts';
import { PoolSampler, buildBatch, flipHorizontal } from '../src/train/data.ts';
import { Rng } from '../src/util/rng.ts';

const COLORS = ['red', 'blue', 'green'];
const SLEEVES = ['short', 'long'];

function catalogue(count: number): Catalogue {
  const products: Product[] = Array.from({ length: count }, (_, i) => ({
    id: `p${i}`,
    title: '',
    image: '',
    attributes: {
      color: [COLORS[i % 3]],
      // Every fifth product is unlabelled for sleeve; product 1 has two sleeve labels.
      sleeve: i % 5 === 4 ? [] : i === 1 ? ['short', 'long'] : [SLEEVES[i % 2]],
    },
  }));
  return { root: '/nowhere', name: 'unit', conditions: ['color', 'sleeve'], products };
}

describe('pool sampler', () => {
  const cat = catalogue(60);
  const all = cat.products.map((_, i) => i);

  it('draws valid, distinct triplets inside one pool, spread over conditions', () => {
    const sampler = new PoolSampler(cat, all, 12);
    const triplets = sampler.sample(40, new Rng(1));
    assert.equal(triplets.length, 40);
    const products = new Set(triplets.flatMap((t) => [t.anchor, t.far, t.close]));
    assert.ok(products.size <= 12, `all triplets come from one pool of 12 (used ${products.size})`);
    const keys = new Set(triplets.map((t) => `${t.condition},${t.anchor},${t.far},${t.close}`));
    assert.equal(keys.size, 40, 'no duplicates');
    for (const t of triplets) {
      const name = cat.conditions[t.condition];
      const labels = (p: number) => cat.products[p].attributes[name];
      assert.notEqual(t.anchor, t.close);
      assert.ok(
        labels(t.anchor).some((l) => labels(t.close).includes(l)),
        'anchor and close share a label',
      );
      assert.ok(labels(t.far).length > 0, 'far is labelled');
      assert.ok(
        !labels(t.anchor).some((l) => labels(t.far).includes(l)),
        'far shares no label with the anchor',
      );
    }
    const perCondition = [0, 1].map((c) => triplets.filter((t) => t.condition === c).length);
    assert.deepEqual(perCondition, [20, 20], 'round-robin over conditions');
  });

  it('is deterministic for an rng state and draws new pools for other states', () => {
    const sampler = new PoolSampler(cat, all, 12);
    assert.deepEqual(sampler.sample(30, new Rng(5)), sampler.sample(30, new Rng(5)));
    assert.notDeepEqual(sampler.sample(30, new Rng(5)), sampler.sample(30, new Rng(6)));
  });

  it('only uses the given products and stops when a pool runs dry', () => {
    const train = all.filter((i) => i < 30);
    const sampler = new PoolSampler(cat, train, 6);
    const triplets = sampler.sample(10_000, new Rng(2));
    assert.ok(triplets.length > 0 && triplets.length < 10_000);
    assert.ok(triplets.every((t) => [t.anchor, t.far, t.close].every((p) => p < 30)));
  });

  it('knows when no condition can form a triplet', () => {
    const oneColor = restrictCatalogue(
      { ...cat, products: cat.products.map((p) => ({ ...p, attributes: { color: ['red'], sleeve: [] } })) },
      ['color', 'sleeve'],
    );
    const sampler = new PoolSampler(oneColor, all, 10);
    assert.equal(sampler.usable(), false);
    assert.deepEqual(sampler.sample(5, new Rng(1)), []);
    assert.equal(new PoolSampler(cat, all, 10).usable(), true);
  });
});

describe('batches', () => {
  it('embeds each distinct product once and indexes rows by first appearance', () => {
    const size = 2;
    const images = {
      size,
      batch: (indices: readonly number[]) =>
        Float32Array.from(indices.flatMap((i) => new Array(size * size * 3).fill(i))),
    };
    const batch = buildBatch(
      [
        { anchor: 5, far: 7, close: 9, condition: 1 },
        { anchor: 9, far: 5, close: 2, condition: 0 },
      ],
      images,
    );
    assert.deepEqual(batch.images.shape, [4, 2, 2, 3]);
    assert.deepEqual([...batch.anchor.dataSync()], [0, 2]);
    assert.deepEqual([...batch.far.dataSync()], [1, 0]);
    assert.deepEqual([...batch.close.dataSync()], [2, 3]);
    assert.deepEqual([...batch.condition.dataSync()], [1, 0]);
    assert.deepEqual(
      [...batch.images.dataSync()].filter((_, i) => i % 12 === 0),
      [5, 7, 9, 2],
    );
  });

  it('mirrors an image left-right', () => {
    // One 2x2 RGB image: pixels (0,0)=1, (0,1)=2, (1,0)=3, (1,1)=4 in every channel.
    const pixels = Float32Array.from([1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
    flipHorizontal(pixels, 0, 2);
    assert.deepEqual([...pixels], [2, 2, 2, 1, 1, 1, 4, 4, 4, 3, 3, 3]);
  });

  it('renumbers conditions and shipped lists when restricting', () => {
    const cat: Catalogue = {
      ...catalogue(6),
      triplets: {
        train: [
          { anchor: 0, far: 1, close: 2, condition: 1 },
          { anchor: 0, far: 1, close: 3, condition: 0 },
        ],
      },
    };
    const view = restrictCatalogue(cat, ['sleeve']);
    assert.deepEqual(view.conditions, ['sleeve']);
    assert.deepEqual(view.triplets?.train, [{ anchor: 0, far: 1, close: 2, condition: 0 }]);
    assert.equal(view.products, cat.products);
  });
});
