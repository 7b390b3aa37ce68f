import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  hashSplit,
  productSplit,
  sampleTriplets,
  splitTriplets,
  SPLITS,
  type Catalogue,
  type Product,
  type Split,
} from '../src/catalogue/index.ts';
import { Rng } from '../src/util/rng.ts';

const COLORS = ['red', 'blue', 'green', 'black'];
const SLEEVES = ['short', 'long'];

/** 120 products: colours (some products with two), sleeves, a pattern known only in train with a single label. */
function makeCatalogue(): Catalogue {
  const products: Product[] = [];
  for (let i = 0; i < 120; i++) {
    const colors = i % 7 === 0 ? [COLORS[i % 4], COLORS[(i + 1) % 4]] : [COLORS[i % 4]];
    const split: Split = i < 80 ? 'train' : i < 100 ? 'val' : 'test';
    const attributes: Record<string, string[]> = { color: colors, sleeve: [SLEEVES[i % 2]] };
    if (i % 3 === 0) attributes.pattern = ['solid'];
    products.push({ id: `p${i}`, title: `Product ${i}`, image: `images/p${i}.jpg`, attributes, split });
  }
  return { root: '/nowhere', name: 'synthetic', conditions: ['color', 'sleeve', 'pattern'], products };
}

describe('sampleTriplets', () => {
  const catalogue = makeCatalogue();

  test('anchor and close share a label, far shares none with the anchor, all from the split', () => {
    for (const split of SPLITS) {
      const triplets = sampleTriplets(catalogue, { split, count: 60 }, new Rng(1));
      assert.equal(triplets.length, 60);
      for (const t of triplets) {
        const condition = catalogue.conditions[t.condition];
        const [anchor, far, close] = [t.anchor, t.far, t.close].map((i) => catalogue.products[i]);
        for (const product of [anchor, far, close]) assert.equal(product.split, split);
        assert.notEqual(t.anchor, t.close);
        const a = anchor.attributes[condition];
        assert.ok(
          a.some((label) => close.attributes[condition].includes(label)),
          'close shares a label',
        );
        assert.ok(!a.some((label) => far.attributes[condition].includes(label)), 'far shares none');
      }
    }
  });

  test('multi-label products: "share at least one" and "share none"', () => {
    const triplets = sampleTriplets(catalogue, { split: 'train', count: 300 }, new Rng(5));
    const multi = triplets.filter(
      (t) => t.condition === 0 && catalogue.products[t.anchor].attributes.color.length === 2,
    );
    assert.ok(multi.length > 0, 'some anchors carry two colours');
    for (const t of multi) {
      const anchorColors = catalogue.products[t.anchor].attributes.color;
      for (const color of catalogue.products[t.far].attributes.color)
        assert.ok(!anchorColors.includes(color));
    }
  });

  test('triplets are unique and spread evenly over usable conditions', () => {
    const triplets = sampleTriplets(catalogue, { split: 'train', count: 301 }, new Rng(2));
    assert.equal(triplets.length, 301);
    const keys = new Set(triplets.map((t) => `${t.condition}:${t.anchor}:${t.far}:${t.close}`));
    assert.equal(keys.size, triplets.length);
    // "pattern" has a single label, so nothing can be far: the budget goes to color and sleeve.
    const perCondition = [0, 1, 2].map((c) => triplets.filter((t) => t.condition === c).length);
    assert.equal(perCondition[2], 0);
    assert.ok(Math.abs(perCondition[0] - perCondition[1]) <= 1, `unbalanced: ${perCondition}`);
    // Conditions are interleaved rather than in blocks, so any batch mixes them.
    assert.ok(new Set(triplets.slice(0, 20).map((t) => t.condition)).size === 2);
  });

  test('deterministic for a seed, different for another seed', () => {
    const a = sampleTriplets(catalogue, { split: 'val', count: 50 }, new Rng(42));
    const b = sampleTriplets(catalogue, { split: 'val', count: 50 }, new Rng(42));
    const c = sampleTriplets(catalogue, { split: 'val', count: 50 }, new Rng(43));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
  });

  test('a split that cannot supply enough distinct triplets returns all it can, without repeats', () => {
    const small: Catalogue = {
      ...catalogue,
      products: catalogue.products
        .slice(0, 4)
        .map((p) => ({ ...p, attributes: { color: p.attributes.color.slice(0, 1) } })),
    };
    // 4 products with 4 different colours: no two share a label, so no triplet exists at all.
    assert.deepEqual(sampleTriplets(small, { split: 'train', count: 10 }, new Rng(1)), []);
    const pairs: Catalogue = {
      ...small,
      products: ['red', 'red', 'blue'].map((color, i) => ({
        id: `q${i}`,
        title: '',
        image: 'x.jpg',
        attributes: { color: [color] },
        split: 'train' as const,
      })),
    };
    // Exactly two triplets exist: (0, 2, 1) and (1, 2, 0).
    const all = sampleTriplets(pairs, { split: 'train', count: 100 }, new Rng(3));
    assert.deepEqual(all.map((t) => [t.anchor, t.far, t.close]).sort(), [
      [0, 2, 1],
      [1, 2, 0],
    ]);
  });

  test('rejects bad arguments', () => {
    assert.throws(
      () => sampleTriplets(catalogue, { split: 'holdout' as Split, count: 1 }, new Rng(1)),
      /unknown split/,
    );
    assert.throws(
      () => sampleTriplets(catalogue, { split: 'train', count: -1 }, new Rng(1)),
      /non-negative integer/,
    );
  });

  test('splitTriplets prefers the triplets a catalogue ships', () => {
    const shipped = [
      { anchor: 0, far: 1, close: 4, condition: 0 },
      { anchor: 4, far: 1, close: 0, condition: 0 },
      { anchor: 1, far: 0, close: 3, condition: 1 },
    ];
    const withTriplets: Catalogue = { ...catalogue, triplets: { train: shipped } };
    const chosen = splitTriplets(withTriplets, { split: 'train', count: 2 }, 1);
    assert.equal(chosen.length, 2);
    for (const t of chosen) assert.ok(shipped.some((s) => JSON.stringify(s) === JSON.stringify(t)));
    // No shipped val triplets: sampled from labels instead.
    assert.equal(splitTriplets(withTriplets, { split: 'val', count: 10 }, 1).length, 10);
  });
});

describe('productSplit', () => {
  test('keeps the layout split and hashes the id otherwise, stably and close to 70/10/20', () => {
    const products: Product[] = Array.from({ length: 20000 }, (_, i) => ({
      id: `item-${i}`,
      title: '',
      image: 'x.jpg',
      attributes: {},
    }));
    products[0].split = 'test';
    const splits = productSplit({ products });
    assert.equal(splits[0], 'test');
    assert.equal(splits[1], hashSplit('item-1'));
    // Independent of order and of the other products.
    assert.equal(productSplit({ products: [products[5]] })[0], splits[5]);
    const share = (split: Split) => splits.filter((s) => s === split).length / splits.length;
    assert.ok(Math.abs(share('train') - 0.7) < 0.015, `train ${share('train')}`);
    assert.ok(Math.abs(share('val') - 0.1) < 0.015, `val ${share('val')}`);
    assert.ok(Math.abs(share('test') - 0.2) < 0.015, `test ${share('test')}`);
  });
});
