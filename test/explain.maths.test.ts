import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareAttributes,
  describeScore,
  conditionDistance,
  dimensionBreakdown,
  explainPair,
  overlaySaliency,
  QuantileReference,
  rampColour,
  resizeMap,
  summarizeMask,
  type SpaceDescription,
} from '../src/explain/index.ts';

const close = (actual: number, expected: number, message?: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ''} expected ${expected}, got ${actual}`);

// Raw embeddings a, b (dims 1, 3, 4 kept) and mask weights m: m = [2, 0.5, 1] on those dims.
// Condition-space vectors are m * a and m * b on the kept dims.
const colour: SpaceDescription = { condition: 'color', metric: 'l2', dims: [1, 3, 4], weights: [2, 0.5, 1] };
const a = [2 * 1, 0.5 * 4, 1 * 0]; // a1 = 1, a3 = 4, a4 = 0
const b = [2 * 0, 0.5 * 2, 1 * 1]; // b1 = 0, b3 = 2, b4 = 1

test('masked L2 distance is sqrt of sum_d (m_d (a_d - b_d))^2', () => {
  // (2*1)^2 + (0.5*2)^2 + (1*-1)^2 = 4 + 1 + 1 = 6
  close(conditionDistance(a, b, 'l2'), Math.sqrt(6));
});

test('each kept dimension gets its share of the squared masked distance', () => {
  const breakdown = dimensionBreakdown(a, b, colour, 2);
  close(breakdown.distance, Math.sqrt(6));
  assert.equal(breakdown.keptDims, 3);
  assert.deepEqual(
    breakdown.top.map((c) => [c.dim, c.maskWeight, c.difference]),
    [
      [1, 2, 2],
      [3, 0.5, 1], // ties broken by position: dim 3 before dim 4
    ],
  );
  close(breakdown.top[0].share, 4 / 6);
  close(breakdown.top[1].share, 1 / 6);
  close(breakdown.restShare, 1 / 6);
  const all = dimensionBreakdown(a, b, colour, 10);
  assert.equal(all.top.length, 3);
  close(
    all.top.reduce((s, c) => s + c.share, 0),
    1,
  );
  close(all.restShare, 0);
});

test('identical vectors have zero distance and zero shares', () => {
  const breakdown = dimensionBreakdown(a, a, colour, 3);
  assert.equal(breakdown.distance, 0);
  assert.ok(breakdown.top.every((c) => c.share === 0));
  assert.equal(breakdown.restShare, 0);
});

test('the top dimensions are the head of a full sort by share, ties to the lower dimension', () => {
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  // Coordinates on a coarse grid, so that equal terms (ties) are common.
  const coordinate = () => Math.round(random() * 4) / 2;
  for (let round = 0; round < 2000; round++) {
    const n = 1 + Math.floor(random() * 70);
    const [u, v] = [Array.from({ length: n }, coordinate), Array.from({ length: n }, coordinate)];
    const space: SpaceDescription = {
      condition: 'c',
      metric: random() < 0.5 ? 'l2' : 'cosine',
      dims: Array.from({ length: n }, (_, i) => 3 * i),
      weights: Array.from({ length: n }, () => 1),
    };
    const top = Math.floor(random() * 8);
    const breakdown = dimensionBreakdown(u, v, space, top);
    // The squared terms, worked out here (normalised vectors for cosine, scaled as the explain stage does, so
    // that ties stay ties).
    const scale = (w: number[]) =>
      space.metric === 'cosine' ? 1 / (Math.sqrt(w.reduce((sum, x) => sum + x * x, 0)) || 1) : 1;
    const [su, sv] = [scale(u), scale(v)];
    const sorted = u
      .map((x, i) => ({ term: (x * su - v[i] * sv) ** 2, dim: 3 * i }))
      .sort((x, y) => y.term - x.term || x.dim - y.dim)
      .slice(0, Math.min(top, n));
    assert.deepEqual(
      breakdown.top.map((c) => c.dim),
      sorted.map((x) => x.dim),
      `round ${round}: the ${top} largest of ${n}`,
    );
  }
});

test('cosine spaces: distance is 1 - cos and shares come from the normalised vectors', () => {
  const space: SpaceDescription = { condition: 'sleeve', metric: 'cosine', dims: [0, 1], weights: [1, 1] };
  // cos([3,4],[4,3]) = 24/25; normalised difference [-0.2, 0.2], squared sum 0.08 = 2 (1 - 0.96)
  close(conditionDistance([3, 4], [4, 3], 'cosine'), 0.04);
  const breakdown = dimensionBreakdown([3, 4], [4, 3], space, 2);
  close(breakdown.distance, 0.04);
  close(breakdown.top[0].share, 0.5);
  close(breakdown.top[1].share, 0.5);
  close(breakdown.top[0].difference, -0.2);
  assert.equal(breakdown.top[0].maskWeight, 1);
});

test('vectors that do not match the space are rejected', () => {
  assert.throws(() => dimensionBreakdown([1, 2], [1, 2], colour), RangeError);
  assert.throws(() => conditionDistance([1], [1, 2], 'l2'), RangeError);
});

test('attributes are compared per condition: shared, differing, unlabelled', () => {
  const comparison = compareAttributes(
    { color: ['red', 'white'], sleeve: ['long'], length: [] },
    { color: ['white'], sleeve: ['short'], length: ['mini'], collar: ['v'] },
    ['color', 'sleeve', 'length', 'collar'],
  );
  assert.deepEqual(comparison, {
    shared: [{ condition: 'color', values: ['white'] }],
    differing: [{ condition: 'sleeve', query: ['long'], neighbour: ['short'] }],
    unlabelled: ['length', 'collar'],
  });
});

test('mask summary: weights over the embedding, participation ratio, heaviest dims', () => {
  const summary = summarizeMask({ condition: 'c', metric: 'l2', dims: [0, 2], weights: [3, 1] }, 4);
  assert.deepEqual(summary.weights, [3, 0, 1, 0]);
  assert.equal(summary.keptDims, 2);
  assert.equal(summary.totalDims, 4);
  close(summary.effectiveDims, 16 / 10); // (3 + 1)^2 / (9 + 1)
  assert.equal(summary.maxWeight, 3);
  assert.equal(summary.meanWeight, 2);
  assert.deepEqual(summary.topDims, [
    { dim: 0, weight: 3 },
    { dim: 2, weight: 1 },
  ]);
  close(
    summarizeMask({ condition: 'flat', metric: 'cosine', dims: [0, 1, 2], weights: [1, 1, 1] }).effectiveDims,
    3,
  );
});

test('a pair explanation covers the asked condition, every other condition and the labels', () => {
  const sleeve: SpaceDescription = { condition: 'sleeve', metric: 'l2', dims: [0], weights: [1] };
  const queryVectors = [a, [0]];
  const neighbourVectors = [b, [3]];
  const explanation = explainPair({
    condition: 0,
    spaces: [colour, sleeve],
    // Random pairs spread evenly from 0 to twice the pair's distance: the pair sits at their median.
    references: [new QuantileReference([0, 2 * Math.sqrt(6)]), new QuantileReference([0, 6])],
    queryVector: (c) => queryVectors[c],
    neighbourVector: (c) => neighbourVectors[c],
    queryAttributes: { color: ['red'], sleeve: ['long'] },
    neighbourAttributes: { color: ['red'], sleeve: ['short'] },
    topDims: 1,
  });
  close(explanation.distance, Math.sqrt(6)); // 2.449: half of the random pairs are closer
  close(explanation.score, 0.5);
  assert.equal(explanation.dimensions.top[0].dim, 1);
  assert.equal(explanation.otherConditions.length, 1);
  assert.equal(explanation.otherConditions[0].condition, 'sleeve');
  close(explanation.otherConditions[0].distance, 3);
  close(explanation.otherConditions[0].score, 0.5);
  assert.deepEqual(explanation.attributes?.shared, [{ condition: 'color', values: ['red'] }]);
  assert.match(explanation.summary, /closer than 50% of random pairs/);
  assert.match(explanation.summary, /Dimensions? 1 /);
  assert.match(explanation.summary, /Both are labelled color: red/);
  const upload = explainPair({
    condition: 1,
    spaces: [colour, sleeve],
    references: [new QuantileReference([1, 1]), new QuantileReference([1, 1])],
    queryVector: (c) => queryVectors[c],
    neighbourVector: (c) => neighbourVectors[c],
  });
  assert.equal(upload.attributes, null);
});

test('heat map overlay keeps the photo where saliency is 0 and blends the ramp where it is high', () => {
  assert.deepEqual(rampColour(0), [40, 20, 110]);
  assert.deepEqual(rampColour(1), [255, 235, 70]);
  assert.deepEqual(rampColour(Number.NaN), [40, 20, 110]);
  const image = [1, 1, 1, 0, 0, 0]; // two 1×1 images: white, then black
  const white = overlaySaliency(image.slice(0, 3), [0], 1, 0.5, 1);
  assert.deepEqual([...white], [255, 255, 255]);
  const hot = overlaySaliency(image.slice(3), [1], 1, 0.5, 1);
  assert.deepEqual([...hot], [Math.round(255 * 0.5), Math.round(235 * 0.5), Math.round(70 * 0.5)]);
  assert.throws(() => overlaySaliency(image, [0], 1), RangeError);
  // gamma 2 at half saliency: opacity 0.8 * 0.25 = 0.2 of the ramp colour at 0.5 over black
  const half = overlaySaliency([0, 0, 0], [0.5], 1, 0.8, 2);
  const colour = rampColour(0.5);
  assert.deepEqual(
    [...half],
    colour.map((c) => Math.round(c * 0.2)),
  );
});

test('saliency maps are resized bilinearly at pixel centres', () => {
  // 2×2 → 4×4: corners keep their values, inner pixels interpolate a quarter of the way
  const map = [0, 1, 2, 3];
  const big = resizeMap(map, 2, 4);
  close(big[0], 0);
  close(big[3], 1);
  close(big[12], 2);
  close(big[15], 3);
  close(big[1], 0.25); // x at source 0.25 between 0 and 1
  close(big[5], 0.25 + 0.5); // plus y at 0.25 between rows 0 and 2
  const same = resizeMap(map, 2, 2);
  assert.deepEqual([...same], map);
  const small = resizeMap([0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4, 0, 0, 4, 4], 4, 2);
  assert.deepEqual([...small], [0, 4, 0, 4]);
  assert.throws(() => resizeMap([1, 2, 3], 2, 4), RangeError);
});

test('a quantile table scores by linear interpolation between its levels', () => {
  // 0%, 25%, 50%, 75%, 100% of random pairs are within 0, 1, 2, 4, 8
  const reference = new QuantileReference([0, 1, 2, 4, 8]);
  close(reference.score(1), 0.75); // exactly the 25% level
  close(reference.score(3), 1 - 2.5 / 4); // halfway between the 50% and 75% levels
  close(reference.score(-1), 1);
  close(reference.score(9), 0);
  close(reference.quantile(0.5), 2);
  close(reference.quantile(0.625), 3);
  // a run of equal levels (many identical pairs): the distance sits in the middle of the run
  close(new QuantileReference([0, 1, 1, 1, 2]).score(1), 0.5);
  assert.equal(new QuantileReference([]).score(1), 0);
  assert.throws(() => new QuantileReference([2, 1]), RangeError);
});

test('scores are described with a decimal where near neighbours sit', () => {
  assert.equal(describeScore(0.934), 'closer than 93% of random pairs');
  assert.equal(describeScore(0.9987), 'closer than 99.8% of random pairs');
  assert.equal(describeScore(0.99999), 'closer than 99.9% of random pairs');
  assert.equal(describeScore(1), 'closer than every sampled random pair');
  assert.equal(describeScore(0), 'closer than 0% of random pairs');
});
