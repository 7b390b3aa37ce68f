import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ProductVectors } from '../src/eval/evaluate.ts';
import { nearest, neighbourAgreement, pairBaseRate } from '../src/eval/neighbours.ts';

/** Products on a line under both conditions: colour follows position, type alternates. */
function catalogue() {
  const colours = ['red', 'red', 'red', 'blue', 'blue', 'blue'];
  const types = ['shirt', 'shoe', 'shirt', 'shoe', 'shirt', 'shoe'];
  return {
    conditions: ['colour', 'type'],
    products: colours.map((colour, i) => ({
      id: `p${i}`,
      title: '',
      image: '',
      attributes: { colour: [colour], type: [types[i]] },
    })),
  };
}

/** Under colour, product i sits at x = i (reds 0–2, blues 3–5); under type, shirts at 0, shoes at 10. */
function vectors(): ProductVectors {
  const data = new Float32Array(6 * 2);
  for (let i = 0; i < 6; i++) {
    data[i * 2] = i;
    data[i * 2 + 1] = i % 2 === 0 ? (i === 3 ? 10 : 0) : i === 4 ? 0 : 10;
  }
  return { rows: new Map([0, 1, 2, 3, 4, 5].map((p) => [p, p])), data, conditions: 2, dim: 1 };
}

describe('eval: what the nearest products share', () => {
  it('base rate: the share of pairs with a common label', () => {
    // 6 products, 3 red and 3 blue: 3 + 3 of 15 pairs share a colour.
    assert.equal(pairBaseRate(catalogue(), [0, 1, 2, 3, 4, 5], 0), 6 / 15);
  });

  it('nearest leaves the query out and breaks ties by product order', () => {
    assert.deepEqual(nearest(vectors(), [0, 1, 2, 3, 4, 5], 1, 0, 2), [0, 2]);
  });

  it('precision@k and leakage by hand', () => {
    const result = neighbourAgreement(vectors(), catalogue(), [0, 1, 2, 3, 4, 5], 2);
    // Under colour each product's two nearest: 0→1,2; 1→0,2; 2→1,3; 3→2,4; 4→3,5; 5→4,3.
    // Same colour: 2+2+1+1+2+2 = 10 of 12. Same type: 1+0+0+0+0+1 = 2 of 12, base rate 6/15.
    assert.equal(result.colour.precision, 10 / 12);
    assert.ok(Math.abs(result.colour.leakage.type - 2 / 12 / (6 / 15)) < 1e-12);
    assert.equal(result.colour.queries, 6);
  });
});
