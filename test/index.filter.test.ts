/**
 * Filters, filtered search, combined conditions and recommendations over real HNSW indexes on a small synthetic
 * catalogue: every filter form and error, exact k and exactness at 50 / 5 / 0.5 / 0.05 % selectivity.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { combinedSearch, effectiveWeights, parseConditionParts } from '../src/index/combine.ts';
import { FilterTable, filterKey, parseFilter, type Selection } from '../src/index/filter.ts';
import { QueryError, type QueryErrorCode } from '../src/index/query-error.ts';
import { averageQuery, checkExamples, recommend, MAX_EXAMPLES } from '../src/index/recommend.ts';
import { exactBelowSelectivity, exactOver, filteredSearch, type SpaceData } from '../src/index/search.ts';
import { exactSearch, recallAtK } from '../src/index/vectors.ts';
import { filterData, SELECTIVITIES, spaceOf, type FilterData } from './fixtures/index/filter-data.ts';

const N = 4000;
const DIM = 24;
const CONDITIONS = ['color', 'pattern'];
const FIELDS = { bucket: 'number', price: 'number', in_stock: 'boolean', brand: 'string' } as const;

let data: FilterData;
let table: FilterTable;
let color: SpaceData;
let pattern: SpaceData;

before(async () => {
  data = filterData(N, DIM);
  table = new FilterTable(data.records, CONDITIONS, FIELDS);
  const dims = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
  color = await spaceOf(
    data,
    dims(0, 12),
    dims(0, 12).map((d) => 1 - 0.03 * d),
  );
  pattern = await spaceOf(
    data,
    dims(8, 24),
    dims(8, 24).map((d) => 0.5 + 0.02 * d),
  );
});

/** Slots passing a predicate over the raw records: the reference the compiled selection must equal. */
function expected(predicate: (i: number) => boolean): number[] {
  return data.records.flatMap((_, i) => (predicate(i) ? [i] : []));
}

function slots(selection: Selection): number[] {
  return [...selection.bits.keys()].filter((i) => selection.bits[i] === 1);
}

function select(...expressions: string[]): Selection {
  return table.select(parseFilter(expressions, table.schema()));
}

const field = (i: number, name: string) => data.records[i].fields?.[name];
const label = (i: number, c: string) => data.records[i].attributes[c] ?? [];

describe('filter expressions', () => {
  const forms: [string, string[], (i: number) => boolean][] = [
    ['label equality', ['color:red'], (i) => label(i, 'color').includes('red')],
    ['string field equality', ['brand:nova'], (i) => field(i, 'brand') === 'nova'],
    ['boolean field equality', ['in_stock:false'], (i) => field(i, 'in_stock') === false],
    ['number field equality', ['price:42'], (i) => field(i, 'price') === 42],
    ['less than', ['price<20'], (i) => (field(i, 'price') as number) < 20],
    ['at most', ['price<=20'], (i) => (field(i, 'price') as number) <= 20],
    ['greater than', ['price>190.5'], (i) => (field(i, 'price') as number) > 190.5],
    ['at least', ['price>=199'], (i) => (field(i, 'price') as number) >= 199],
    ['same name is OR', ['color:red', 'color:blue'], (i) => ['red', 'blue'].includes(label(i, 'color')[0])],
    [
      'different names AND',
      ['color:red', 'pattern:dots', 'in_stock:true'],
      (i) =>
        label(i, 'color')[0] === 'red' && label(i, 'pattern')[0] === 'dots' && field(i, 'in_stock') === true,
    ],
    [
      'comparisons on one name bound a range',
      ['price>=50', 'price<100'],
      (i) => (field(i, 'price') as number) >= 50 && (field(i, 'price') as number) < 100,
    ],
    ['spaces around the operator', [' brand : acme '], (i) => field(i, 'brand') === 'acme'],
  ];
  for (const [name, expressions, predicate] of forms) {
    test(`${name}: ${expressions.join(' & ')}`, () => {
      const selection = select(...expressions);
      const want = expected(predicate);
      assert.ok(want.length > 0, `the fixture should have matches for ${expressions.join(' & ')}`);
      assert.deepEqual(slots(selection), want);
      assert.equal(selection.count, want.length);
    });
  }

  test('no filter selects every live product; removed slots are never selected', () => {
    const withHoles = new FilterTable([data.records[0], null, data.records[2]], CONDITIONS, FIELDS);
    assert.deepEqual(slots(withHoles.all()), [0, 2]);
    assert.deepEqual(slots(withHoles.select(parseFilter([], withHoles.schema()))), [0, 2]);
  });

  test('a product without the field matches no filter on it', () => {
    const noBrand = expected((i) => field(i, 'brand') === undefined);
    const anyBrand = select('brand:acme', 'brand:zenith', 'brand:nova');
    assert.ok(noBrand.length > 0, 'fixture has products without a brand');
    assert.ok(
      noBrand.every((i) => !anyBrand.bits[i]),
      'no product without a brand passes a brand filter',
    );
  });

  test('a string value no product has matches nothing (200 with an empty list, not an error)', () => {
    const selection = select('brand:unknown-brand');
    assert.equal(selection.count, 0);
    const result = filteredSearch(color, color.rows.subarray(0, color.d), 10, {
      selection,
      liveCount: N,
      efSearch: 64,
    });
    assert.deepEqual(result.neighbours, []);
  });

  test('the schema lists labels per condition and field types', () => {
    const schema = table.schema();
    assert.deepEqual(schema.labels.color, ['black', 'blue', 'green', 'red']);
    assert.deepEqual(schema.fields, FIELDS);
  });

  test('filterKey is the same for the same filter written in another order', () => {
    const schema = table.schema();
    assert.equal(
      filterKey(parseFilter(['price<5', 'color:red', 'color:blue'], schema)),
      filterKey(parseFilter(['color:blue', 'price<5', 'color:red'], schema)),
    );
  });
});

describe('filter errors list what is valid', () => {
  const cases: [string, string, QueryErrorCode, RegExp, string[]][] = [
    ['no operator', 'color', 'malformed-filter', /Malformed filter "color"/, [':', '<', '<=', '>', '>=']],
    ['empty value', 'color:', 'malformed-filter', /write name:value/, [':', '<', '<=', '>', '>=']],
    ['bad name', '-x:1', 'malformed-filter', /Malformed filter/, [':', '<', '<=', '>', '>=']],
    [
      'unknown name',
      'size:m',
      'unknown-filter-name',
      /Unknown filter name "size".*valid names are color, pattern, bucket/,
      ['color', 'pattern', 'bucket', 'price', 'in_stock', 'brand'],
    ],
    [
      'unknown label',
      'color:mauve',
      'unknown-label',
      /Unknown color label "mauve"; valid labels are black, blue, green, red/,
      ['black', 'blue', 'green', 'red'],
    ],
    [
      'comparison on a label',
      'color<3',
      'not-numeric',
      /compares color, which is a condition/,
      ['bucket', 'price'],
    ],
    ['comparison on a string field', 'brand>=a', 'not-numeric', /a string field/, ['bucket', 'price']],
    ['comparison on a boolean field', 'in_stock<1', 'not-numeric', /a boolean field/, ['bucket', 'price']],
    [
      'boolean value',
      'in_stock:yes',
      'invalid-filter-value',
      /in_stock:true or in_stock:false/,
      ['true', 'false'],
    ],
    [
      'number value',
      'price<cheap',
      'invalid-filter-value',
      /"cheap" .* is not a number/,
      ['a decimal number, e.g. 99.5'],
    ],
    [
      'number equality value',
      'price:1e999',
      'invalid-filter-value',
      /is not a number/,
      ['a decimal number, e.g. 99.5'],
    ],
  ];
  for (const [name, expression, code, message, valid] of cases) {
    test(`${name}: ${expression} -> ${code}`, () => {
      assert.throws(
        () => parseFilter(['color:red', expression], table.schema()),
        (error: unknown) => {
          assert.ok(error instanceof QueryError, `expected a QueryError, got ${String(error)}`);
          assert.equal(error.code, code);
          assert.equal(error.expression, expression);
          assert.match(error.message, message);
          assert.deepEqual(error.valid, valid);
          return true;
        },
      );
    });
  }
});

/** Mean tie-aware recall@k of filtered search against brute force over the matching products, and checks per query. */
function checkFiltered(
  space: SpaceData,
  selection: Selection,
  k: number,
  exactBelow?: number,
): { recall: number; methods: Set<string> } {
  let recall = 0;
  const methods = new Set<string>();
  const queries = 40;
  for (let q = 0; q < queries; q++) {
    const slot = (q * 97) % N;
    const exclude = new Set([slot]);
    const query = space.rows.subarray(slot * space.d, (slot + 1) * space.d);
    const result = filteredSearch(space, query, k, {
      selection,
      liveCount: N,
      efSearch: 64,
      exclude,
      exactBelow,
    });
    methods.add(result.method);
    const truth = exactOver(space, query, k, selection, exclude);
    const allowed = selection.count - (selection.bits[slot] ? 1 : 0);
    assert.equal(result.neighbours.length, Math.min(k, allowed), `exact k for query ${slot}`);
    assert.ok(
      result.neighbours.every((n) => selection.bits[n.index] === 1 && n.index !== slot),
      'only matching products, never the query',
    );
    recall += recallAtK(result.neighbours, truth, k);
  }
  return { recall: recall / queries, methods };
}

describe('filtered search', () => {
  for (const [fraction, limit] of SELECTIVITIES) {
    test(`${fraction * 100} % selectivity: exact k, recall@10 >= 0.99 against brute force over the matches`, () => {
      const selection = select(`bucket<${limit}`);
      assert.equal(selection.count, N * fraction);
      const { recall, methods } = checkFiltered(color, selection, 10);
      assert.ok(recall >= 0.99, `recall@10 ${recall.toFixed(3)} at ${fraction * 100} %`);
      const path = fraction >= exactBelowSelectivity(N, 64) ? 'hnsw' : 'exact';
      assert.deepEqual([...methods], [path], `path at ${fraction * 100} %`);
    });
  }

  test('the exact-search threshold is a selectivity that shrinks as the catalogue grows', () => {
    assert.ok(exactBelowSelectivity(N, 64) > 0.25, `small catalogue: ${exactBelowSelectivity(N, 64)}`);
    const at100k = exactBelowSelectivity(100_000, 64);
    assert.ok(at100k > 0.05 && at100k < 0.2, `100k: ${at100k}`);
    assert.ok(exactBelowSelectivity(1_000_000, 64) < at100k, 'smaller at 1M than at 100k');
    assert.ok(exactBelowSelectivity(1_000_000, 256) > exactBelowSelectivity(1_000_000, 64), 'larger with ef');
  });

  test('HNSW with a filter callback keeps exact k and recall when forced at 50, 5 and 0.5 %', () => {
    for (const limit of [5000, 500, 50]) {
      const { recall, methods } = checkFiltered(pattern, select(`bucket<${limit}`), 10, 0);
      assert.deepEqual([...methods], ['hnsw'], `forced HNSW at bucket<${limit}`);
      assert.ok(recall >= 0.99, `recall@10 ${recall.toFixed(3)} at bucket<${limit}`);
    }
  });

  test('fewer matches than k: all of them come back, nearest first', () => {
    const selection = select('bucket<5');
    const query = color.rows.subarray(0, color.d);
    const { neighbours } = filteredSearch(color, query, 10, { selection, liveCount: N, efSearch: 64 });
    assert.deepEqual(
      neighbours.map((n) => n.index).sort((a, b) => a - b),
      slots(selection),
    );
    assert.ok(neighbours[0].distance <= neighbours[1].distance, 'nearest first');
  });
});

describe('combined conditions', () => {
  test('parse: one name, equal weights, explicit weights', () => {
    assert.deepEqual(parseConditionParts('pattern', CONDITIONS), [{ condition: 1, weight: 1 }]);
    assert.deepEqual(parseConditionParts('color,pattern', CONDITIONS), [
      { condition: 0, weight: 1 },
      { condition: 1, weight: 1 },
    ]);
    assert.deepEqual(parseConditionParts(' color:2 , pattern:0.5', CONDITIONS), [
      { condition: 0, weight: 2 },
      { condition: 1, weight: 0.5 },
    ]);
  });

  const errors: [string, QueryErrorCode][] = [
    ['size', 'unknown-condition'],
    ['color,size:2', 'unknown-condition'],
    ['color:0', 'malformed-condition'],
    ['color:-1', 'malformed-condition'],
    ['color:x', 'malformed-condition'],
    ['color,,pattern', 'malformed-condition'],
    ['color,color:2', 'malformed-condition'],
  ];
  for (const [text, code] of errors) {
    test(`parse error: ${JSON.stringify(text)} -> ${code}, listing the conditions`, () => {
      assert.throws(
        () => parseConditionParts(text, CONDITIONS),
        (error: unknown) =>
          error instanceof QueryError && error.code === code && error.valid.join() === CONDITIONS.join(),
      );
    });
  }

  test('effective weights: one part is 1; several are normalised and divided by the typical distance', () => {
    const medians = [2, 4];
    const metric = () => 'l2' as const;
    assert.deepEqual(
      effectiveWeights([{ condition: 1, weight: 5 }], (c) => medians[c], metric),
      [1],
    );
    const [a, b] = effectiveWeights(
      [
        { condition: 0, weight: 3 },
        { condition: 1, weight: 1 },
      ],
      (c) => medians[c],
      metric,
    );
    assert.ok(Math.abs(a - 0.75 / 4) < 1e-12 && Math.abs(b - 0.25 / 16) < 1e-12, `weights ${a}, ${b}`);
  });

  test('L2: equals one combined mask sqrt(sum w m^2) searched by brute force, with shares summing to 1', () => {
    // Masks over the full embedding; the spaces keep every nonzero dim, so the combined mask is exact.
    const mask = (from: number, to: number, w: (d: number) => number) =>
      Array.from({ length: DIM }, (_, d) => (d >= from && d < to ? w(d) : 0));
    const m0 = mask(0, 12, (d) => 1 - 0.03 * d);
    const m1 = mask(8, 24, (d) => 0.5 + 0.02 * d);
    const weights = [0.7, 0.3];
    const combined = m0.map((w, d) => Math.sqrt(weights[0] * w * w + weights[1] * m1[d] ** 2));
    const masked = Float32Array.from(data.embeddings, (v, j) => v * combined[j % DIM]);
    const everything = table.all();
    const filtered = select('color:green', 'price<100');
    for (const [selection, q] of [
      [everything, 3],
      [filtered, 17],
      [everything, 1234],
    ] as const) {
      const parts = [color, pattern].map((space, p) => ({
        space,
        weight: weights[p],
        query: space.rows.subarray(q * space.d, (q + 1) * space.d),
      }));
      const hits = combinedSearch(parts, 10, selection, new Set([q]));
      const truth = exactSearch(masked, DIM, masked.subarray(q * DIM, (q + 1) * DIM), 10, 'l2', {
        live: selection.bits,
        exclude: new Set([q]),
      });
      assert.deepEqual(
        hits.map((h) => h.index),
        truth.map((t) => t.index),
        `combined top 10 of ${q}`,
      );
      hits.forEach((hit, j) => {
        assert.ok(Math.abs(hit.distance - truth[j].distance) < 1e-4, `distance of rank ${j}`);
        const shares = hit.parts.reduce((sum, part) => sum + part.share, 0);
        assert.ok(Math.abs(shares - 1) < 1e-9, `shares sum to 1, got ${shares}`);
        const fromParts = Math.sqrt(
          weights[0] * hit.parts[0].distance ** 2 + weights[1] * hit.parts[1].distance ** 2,
        );
        assert.ok(Math.abs(fromParts - hit.distance) < 1e-4, 'distance = sqrt(sum w d^2)');
      });
    }
  });

  test('cosine (ASEN): ranks by the weighted sum of the parts cosine distances', async () => {
    const a = await spaceOf(data, [0, 1, 2, 3, 4, 5], [1, 1, 1, 1, 1, 1], 'cosine', false);
    const b = await spaceOf(data, [10, 11, 12, 13, 14, 15, 16], [1, 1, 1, 1, 1, 1, 1], 'cosine', false);
    const cos = (space: SpaceData, i: number, j: number) => {
      let dot = 0;
      for (let k = 0; k < space.d; k++) dot += space.rows[i * space.d + k] * space.rows[j * space.d + k];
      return 1 - dot;
    };
    const q = 42;
    const hits = combinedSearch(
      [a, b].map((space, p) => ({
        space,
        weight: [2, 1][p],
        query: space.rows.subarray(q * space.d, (q + 1) * space.d),
      })),
      10,
      table.all(),
      new Set([q]),
    );
    const truth = Array.from({ length: N }, (_, i) => i)
      .filter((i) => i !== q)
      .map((i) => ({ i, key: 2 * cos(a, q, i) + cos(b, q, i) }))
      .sort((x, y) => x.key - y.key || x.i - y.i)
      .slice(0, 10);
    assert.deepEqual(
      hits.map((h) => h.index),
      truth.map((t) => t.i),
    );
    assert.ok(
      Math.abs(hits[0].parts[0].distance - cos(a, q, truth[0].i)) < 1e-5,
      'part distance is 1 - cosine',
    );
  });
});

describe('recommend', () => {
  const positives = [10, 20, 30];
  const negatives = [40];

  test('checkExamples: at least one positive, at most 20 in all, none both', () => {
    assert.throws(
      () => checkExamples([], ['a']),
      (e: unknown) => e instanceof QueryError && e.code === 'invalid-examples',
    );
    const many = Array.from({ length: MAX_EXAMPLES }, (_, i) => `p${i}`);
    assert.throws(() => checkExamples(many, ['x']), /At most 20 examples/);
    assert.throws(() => checkExamples(['a', 'b'], ['b']), /b cannot be both/);
    assert.doesNotThrow(() => checkExamples(many, []));
  });

  test('average: searches from mean(pos) + (mean(pos) - mean(neg)), never returns examples, names the closest positive', () => {
    const selection = select('in_stock:true');
    const hits = recommend({
      parts: [{ space: color, weight: 1 }],
      positives,
      negatives,
      strategy: 'average',
      k: 10,
      selection,
      liveCount: N,
      efSearch: 64,
    });
    const point = averageQuery(color, positives, negatives);
    const truth = exactOver(color, point, 10, selection, new Set([...positives, ...negatives]));
    assert.ok(
      recallAtK(
        hits.map((h) => ({ index: h.index, distance: h.distance })),
        truth,
        10,
      ) >= 0.9,
      'average hits are the point neighbours',
    );
    assert.equal(hits.length, 10);
    for (const hit of hits) {
      assert.ok(![...positives, ...negatives].includes(hit.index), `example ${hit.index} returned`);
      assert.ok(selection.bits[hit.index] === 1, 'hit passes the filter');
      const distances = positives.map((p) => Math.sqrt(sq(color, hit.index, p)));
      assert.equal(
        hit.closestPositive,
        positives[distances.indexOf(Math.min(...distances))],
        'closest positive',
      );
      assert.ok(
        Math.abs(hit.closestPositiveDistance - Math.min(...distances)) < 1e-4,
        'closest positive distance',
      );
    }
    // Without negatives the point is the positives' mean.
    const mean = averageQuery(color, positives, []);
    const p0 = color.rows.subarray(10 * color.d, 11 * color.d);
    assert.ok(
      Math.abs(mean[0] - (p0[0] + color.rows[20 * color.d] + color.rows[30 * color.d]) / 3) < 1e-6,
      'mean of positives',
    );
  });

  test('best: nearest positive minus nearest negative, exact against brute force, combined parts too', () => {
    const parts = [
      { space: color, weight: 0.6 },
      { space: pattern, weight: 0.4 },
    ];
    const selection = select('brand:acme', 'brand:nova');
    const hits = recommend({
      parts,
      positives,
      negatives,
      strategy: 'best',
      k: 10,
      selection,
      liveCount: N,
      efSearch: 64,
    });
    const combined = (i: number, j: number) => Math.sqrt(0.6 * sq(color, i, j) + 0.4 * sq(pattern, i, j));
    const truth = slots(selection)
      .filter((i) => ![...positives, ...negatives].includes(i))
      .map((i) => ({
        i,
        value:
          Math.min(...positives.map((p) => combined(i, p))) -
          Math.min(...negatives.map((m) => combined(i, m))),
      }))
      .sort((x, y) => x.value - y.value || x.i - y.i)
      .slice(0, 10);
    assert.deepEqual(
      hits.map((h) => h.index),
      truth.map((t) => t.i),
    );
    hits.forEach((hit, j) => assert.ok(Math.abs(hit.rankValue - truth[j].value) < 1e-4, `rank value ${j}`));
    const shares = hits[0].parts.reduce((sum, part) => sum + part.share, 0);
    assert.ok(Math.abs(shares - 1) < 1e-9, 'shares against the closest positive sum to 1');
  });

  test('a negative example pushes results away from it', () => {
    const selection = table.all();
    const near = (negs: number[]) =>
      recommend({
        parts: [{ space: color, weight: 1 }],
        positives: [10],
        negatives: negs,
        strategy: 'best',
        k: 10,
        selection,
        liveCount: N,
        efSearch: 64,
      });
    const without = near([]);
    const neighbourOfPositive = without[0].index;
    const withNegative = near([neighbourOfPositive]);
    assert.ok(
      !withNegative.some((h) => h.index === neighbourOfPositive),
      'the negative itself is not returned',
    );
    const meanDistanceToNegative = (hits: typeof without) =>
      hits.reduce((sum, h) => sum + Math.sqrt(sq(color, h.index, neighbourOfPositive)), 0) / hits.length;
    assert.ok(
      meanDistanceToNegative(withNegative) > meanDistanceToNegative(without),
      'results moved away from the negative example',
    );
  });
});

function sq(space: SpaceData, i: number, j: number): number {
  let sum = 0;
  for (let k = 0; k < space.d; k++) sum += (space.rows[i * space.d + k] - space.rows[j * space.d + k]) ** 2;
  return sum;
}
