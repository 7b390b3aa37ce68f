import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  averagePrecision,
  meanAveragePrecision,
  queryAveragePrecision,
  rankByDistance,
  squaredDistances,
  weightedMap,
} from '../src/eval/retrieval.ts';
import {
  retrievalFromProducts,
  retrievalFromSet,
  retrievalMap,
  tripletAccuracy,
  type ProductVectors,
} from '../src/eval/evaluate.ts';

const close = (actual: number, expected: number, message?: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} expected ${expected}, got ${actual}`);

describe('average precision', () => {
  it('matches hand-computed values', () => {
    // Relevant at ranks 1, 3, 6: (1/1 + 2/3 + 3/6) / 3.
    close(averagePrecision([true, false, true, false, false, true])!, (1 + 2 / 3 + 0.5) / 3);
    // Relevant at ranks 2, 3: (1/2 + 2/3) / 2.
    close(averagePrecision([false, true, true])!, (0.5 + 2 / 3) / 2);
    close(averagePrecision([true, true, false, false])!, 1);
    close(averagePrecision([false, false, false, true])!, 0.25);
  });

  it('is undefined when nothing is relevant', () => {
    assert.equal(averagePrecision([false, false]), undefined);
    assert.equal(averagePrecision([]), undefined);
  });

  it('ranks by distance with ties in candidate order', () => {
    assert.deepEqual(rankByDistance([0.5, 0.1, 0.5, 0.2]), [1, 3, 0, 2]);
  });

  it('scores one query, leaving excluded candidates out', () => {
    // Order by distance: 2 (relevant), 0 (self, excluded), 1, 3 (relevant) → [rel, no, rel] → (1 + 2/3) / 2.
    const ap = queryAveragePrecision({
      distances: [0.2, 0.5, 0.1, 0.9],
      relevant: [true, false, true, true],
      exclude: new Set([0]),
    });
    close(ap!, (1 + 2 / 3) / 2);
  });
});

describe('mean average precision', () => {
  it('scores a query without relevant candidates as AP 0 (as upstream) and counts it as skipped', () => {
    const result = meanAveragePrecision([1, 0.5, undefined, 0.25]);
    close(result.map, 1.75 / 4);
    assert.equal(result.queries, 4);
    assert.equal(result.skipped, 1);
    assert.deepEqual(meanAveragePrecision([undefined]), { map: 0, queries: 1, skipped: 1 });
  });

  it('weights conditions by their number of queries and sums their skipped counts', () => {
    const overall = weightedMap([
      { map: 0.5, queries: 2, skipped: 1 },
      { map: 1, queries: 6, skipped: 0 },
      { map: 0, queries: 3, skipped: 3 },
    ]);
    close(overall.map, (0.5 * 2 + 1 * 6) / 11);
    assert.equal(overall.queries, 11);
    assert.equal(overall.skipped, 4, 'overall skipped is the true total');
  });

  it('computes squared L2 distance matrices', () => {
    const d = squaredDistances(Float32Array.from([0, 0, 1, 1]), Float32Array.from([3, 4, 1, 1, 0, 0]), 2);
    assert.deepEqual([...d], [25, 2, 0, 13, 0, 2]);
  });
});

/** One-dimensional vectors: product i sits at positions[c][i] under condition c. */
function vectorsFrom(positions: number[][]): ProductVectors {
  const conditions = positions.length;
  const count = positions[0].length;
  const data = new Float32Array(count * conditions);
  for (let p = 0; p < count; p++)
    for (let c = 0; c < conditions; c++) data[p * conditions + c] = positions[c][p];
  return { rows: new Map(Array.from({ length: count }, (_, p) => [p, p])), data, conditions, dim: 1 };
}

describe('retrieval MAP on embedded products', () => {
  const catalogue = {
    conditions: ['color', 'length'],
    products: [
      { id: 'p0', title: '', image: '', attributes: { color: ['red'], length: ['mini'] } },
      { id: 'p1', title: '', image: '', attributes: { color: ['red'], length: ['maxi'] } },
      { id: 'p2', title: '', image: '', attributes: { color: ['blue'], length: ['mini'] } },
      { id: 'p3', title: '', image: '', attributes: { color: ['blue'], length: [] } },
    ],
  };

  it('matches a hand-worked leave-one-out example', () => {
    // color positions 0, 1, 0.1, 1.1: every query's nearest other product has the other colour.
    // Worked by hand: APs 1/2, 1/3, 1/3, 1/2 → MAP 5/12.
    // length: p3 unlabelled; p0 & p2 (mini) at 0 and 5, p1 (maxi) at 1: p0 → [p1 no, p2 yes] AP 1/2;
    // p2 → [p1 no, p0 yes] AP 1/2; p1 has no other maxi → AP 0, skipped.
    const vectors = vectorsFrom([
      [0, 1, 0.1, 1.1],
      [0, 1, 5, 9],
    ]);
    const protocol = retrievalFromProducts(catalogue, [0, 1, 2, 3]);
    assert.equal(protocol[1].candidates.length, 3, 'products without a label are not candidates');
    const result = retrievalMap(vectors, protocol, catalogue.conditions, 'split');
    close(result.perCondition.color.map, 5 / 12, 'color MAP');
    assert.equal(result.perCondition.color.queries, 4);
    close(result.perCondition.length.map, 1 / 3, 'length MAP, the unmatched query scored 0');
    assert.equal(result.perCondition.length.queries, 3);
    assert.equal(result.perCondition.length.skipped, 1);
    close(result.overall.map, ((5 / 12) * 4 + (1 / 3) * 3) / 7, 'overall weighted by queries');
    assert.equal(result.overall.skipped, 1, 'overall skipped counts every condition');
  });

  it('uses shipped query and candidate lists as given (ASEN protocol)', () => {
    // Queries p0 (red) and p2 (blue) under color; candidates p1 (red), p3 (blue) only — queries are not ranked.
    const vectors = vectorsFrom([
      [0, 1, 0.1, 1.1],
      [0, 0, 0, 0],
    ]);
    const protocol = retrievalFromSet(
      {
        queries: [
          { product: 0, condition: 0, value: 'red' },
          { product: 2, condition: 0, value: 'blue' },
        ],
        candidates: [
          { product: 1, condition: 0, value: 'red' },
          { product: 3, condition: 0, value: 'blue' },
        ],
      },
      2,
    );
    const result = retrievalMap(vectors, protocol, catalogue.conditions, 'catalogue');
    // p0 at 0: p1 (1, red) before p3 (1.1) → AP 1. p2 at 0.1: p1 (0.9, red) before p3 (1.0, blue) → AP 1/2.
    close(result.perCondition.color.map, 0.75);
    assert.deepEqual(result.perCondition.length, { map: 0, queries: 0, skipped: 0 });
    close(result.overall.map, 0.75);
    assert.equal(result.protocol, 'catalogue');
  });

  it('is 1 when every product is nearest to its own kind', () => {
    const vectors = vectorsFrom([
      [0, 0.1, 1, 1.1],
      [0, 0, 0, 0],
    ]);
    const result = retrievalMap(
      vectors,
      retrievalFromProducts(catalogue, [0, 1, 2, 3]),
      catalogue.conditions,
      'split',
    );
    close(result.perCondition.color.map, 1);
  });

  it('counts triplet accuracy strictly (ties are wrong) and per condition', () => {
    const vectors = vectorsFrom([
      [0, 0.1, 1, 1],
      [0, 1, 1, 0],
    ]);
    const summary = tripletAccuracy(
      vectors,
      [
        { anchor: 0, close: 1, far: 2, condition: 0 }, // 0.1 < 1: right
        { anchor: 2, close: 3, far: 0, condition: 0 }, // 0 < 1: right
        { anchor: 0, close: 2, far: 1, condition: 1 }, // tie 1 vs 1: wrong
      ],
      catalogue.conditions,
      0.2,
    );
    assert.equal(summary.perCondition.color.accuracy, 1);
    assert.equal(summary.perCondition.length.accuracy, 0);
    close(summary.overall, 2 / 3);
    // Losses: max(0, 0.2 + 0.1 - 1) = 0, max(0, 0.2 + 0 - 1) = 0, max(0, 0.2 + 1 - 1) = 0.2 → mean 0.2/3.
    close(summary.loss!, 0.2 / 3);
  });
});
