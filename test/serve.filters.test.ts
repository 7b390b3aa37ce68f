/**
 * Filters, combined conditions and POST /recommend over real HTTP against a real server on 127.0.0.1 (demo
 * catalogue with price, in_stock and category fields, an untrained seeded CSN, a real HNSW bundle or, when
 * DRESSMATCH_TEST_STORE=lancedb (test/serve.filters.lancedb.test.ts), a LanceDB store of the same vectors). Responses
 * are checked against openapi.yaml by the server; rankings against brute force over the bundle's own vectors.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openBundle, resolveCondition, type IndexBundle } from '../src/index/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import type { RunningServer } from '../src/serve/server.ts';
import { startServedFixture, type ServeFixture, type ServedFixture } from './fixtures/serve/build.ts';

type Schemas = components['schemas'];

let served: ServedFixture;
let fixture: ServeFixture;
let server: RunningServer;
let bundle: IndexBundle;

before(async () => {
  served = await startServedFixture('dressmatch-serve-filters-', { products: 80 });
  ({ fixture, server } = served);
  bundle = await openBundle(fixture.indexDir);
});

after(() => served?.close());

async function json<T>(path: string, init?: RequestInit): Promise<{ response: Response; body: T }> {
  const response = await fetch(`${server.url}${path}`, init);
  return { response, body: (await response.clone().json()) as T };
}

function similar(
  id: string,
  params: [string, string][],
): Promise<{ response: Response; body: Schemas['SimilarResponse'] }> {
  return json(`/similar/${id}?${new URLSearchParams(params).toString()}`);
}

function recommend(
  body: unknown,
): Promise<{ response: Response; body: Schemas['RecommendResponse'] & Schemas['Problem'] }> {
  return json('/recommend', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function expectProblem(response: Response, status: number, type: string): Promise<Schemas['Problem']> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = (await response.json()) as Schemas['Problem'];
  assert.equal(problem.type, `/problems/${type}`, problem.detail);
  return problem;
}

const ids = (neighbours: Schemas['Neighbour'][]) => neighbours.map((n) => n.product.id);
/** The full explanation (the default `explain=full`). */
const full = (neighbour: Schemas['Neighbour']) => neighbour.explanation as Schemas['Explanation'];
const fieldsOf = (id: string) => bundle.product(bundle.productIndex(id) as number).fields ?? {};
const labelsOf = (id: string) => bundle.product(bundle.productIndex(id) as number).attributes;

/** Brute-force neighbours of `id` under one condition among the products passing `passes`. */
function bruteForce(id: string, condition: string, k: number, passes: (id: string) => boolean): string[] {
  return bundle
    .exactSearch(condition, bundle.productIndex(id) as number, bundle.liveCount)
    .filter((hit) => passes(hit.id))
    .slice(0, k)
    .map((hit) => hit.id);
}

describe('filters over HTTP', () => {
  test('GET /conditions lists the fields with their types, values and ranges', async () => {
    const { body } = await json<Schemas['ConditionList']>('/conditions');
    assert.deepEqual(
      body.fields.map((f) => [f.name, f.type]),
      [
        ['category', 'string'],
        ['in_stock', 'boolean'],
        ['price', 'number'],
      ],
    );
    const price = body.fields.find((f) => f.name === 'price');
    assert.ok(price?.min !== undefined && price.max !== undefined && price.min < price.max, 'price range');
    const stock = body.fields.find((f) => f.name === 'in_stock');
    assert.deepEqual(stock?.values?.map((v) => v.value).sort(), ['false', 'true']);
  });

  test('label, string, boolean and numeric filters: exactly the brute-force ranking among the matches', async () => {
    const query = fixture.products[0].id;
    const { response, body } = await similar(query, [
      ['condition', 'color'],
      ['k', '5'],
      ['filter', 'in_stock:true'],
      ['filter', 'price<150'],
      ['filter', 'category:casual'],
      ['filter', 'category:evening'],
    ]);
    assert.equal(response.status, 200);
    const passes = (id: string) => {
      const f = fieldsOf(id);
      return (
        f.in_stock === true &&
        (f.price as number) < 150 &&
        ['casual', 'evening'].includes(f.category as string)
      );
    };
    const [group] = body.groups;
    assert.deepEqual(ids(group.neighbours), bruteForce(query, 'color', 5, passes));
    assert.equal(group.neighbours.length, 5, 'exact k');
    assert.ok(group.matching !== undefined && group.matching >= 5, `matching ${group.matching}`);
    assert.ok(
      group.neighbours.every((n) => n.product.fields !== undefined),
      'products carry their fields',
    );
  });

  test('the documented URL form works unencoded: ?condition=color:2,pattern:1&filter=pattern:dots&filter=price<150', async () => {
    const response = await fetch(
      `${server.url}/similar/${fixture.products[2].id}?condition=color:2,pattern:1&filter=pattern:dots&filter=pattern:stripes&filter=price<150`,
    );
    assert.equal(response.status, 200, await response.clone().text());
    const body = (await response.json()) as Schemas['SimilarResponse'];
    assert.equal(body.groups[0].condition, 'color:2,pattern:1');
    assert.ok(
      body.groups[0].neighbours.every((n) =>
        ['dots', 'stripes'].includes(n.product.attributes.pattern?.[0] ?? ''),
      ),
      'pattern filter honoured',
    );
  });

  test('filter on a condition label, for every condition when none is asked', async () => {
    const query = fixture.products[3].id;
    const { body } = await similar(query, [
      ['filter', 'pattern:stripes'],
      ['filter', 'pattern:dots'],
      ['k', '3'],
    ]);
    assert.equal(body.groups.length, bundle.conditions.length);
    for (const group of body.groups) {
      const passes = (id: string) => ['stripes', 'dots'].includes(labelsOf(id).pattern?.[0] ?? '');
      assert.deepEqual(ids(group.neighbours), bruteForce(query, group.condition, 3, passes), group.condition);
    }
  });

  test('fewer matches than k: all of them; none: 200 with an empty list', async () => {
    const query = fixture.products[1].id;
    const cheapest =
      (await json<Schemas['ConditionList']>('/conditions')).body.fields.find((f) => f.name === 'price')
        ?.min ?? 0;
    const few = await similar(query, [
      ['condition', 'length'],
      ['filter', `price<=${cheapest}`],
    ]);
    const matching = few.body.groups[0].matching ?? 0;
    const expected = matching - ((fieldsOf(query).price as number) <= cheapest ? 1 : 0);
    assert.equal(few.body.groups[0].neighbours.length, expected);
    const none = await similar(query, [
      ['condition', 'length'],
      ['filter', 'price<0'],
    ]);
    assert.equal(none.response.status, 200);
    assert.deepEqual(none.body.groups[0].neighbours, []);
    assert.equal(none.body.groups[0].matching, 0);
  });

  const errors: [string, string, string, string[]][] = [
    ['colour:red', 'unknown-filter-name', 'names', ['color', 'category', 'price']],
    ['color:mauve', 'unknown-label', 'labels', ['red', 'blue']],
    ['price', 'malformed-filter', 'operators', [':', '<=']],
    ['category>3', 'not-numeric', 'number fields', ['price']],
    ['in_stock:maybe', 'invalid-filter-value', 'values', ['true', 'false']],
    ['price<cheap', 'invalid-filter-value', 'number', []],
  ];
  for (const [filter, type, what, valid] of errors) {
    test(`filter ${filter}: 400 ${type} listing the valid ${what}`, async () => {
      const { response } = await similar(fixture.products[0].id, [['filter', filter]]);
      const problem = await expectProblem(response, 400, type);
      assert.equal(problem.expression, filter);
      for (const item of valid)
        assert.ok(problem.valid?.includes(item), `valid lists ${item}: ${problem.valid}`);
    });
  }

  test('POST /similar honours filters; a bad filter is refused before the model runs', async () => {
    const image = await readFile(join(fixture.catalogue.root, fixture.catalogue.products[2].image));
    const form = () => {
      const data = new FormData();
      data.append('image', new Blob([new Uint8Array(image)], { type: 'image/jpeg' }), 'q.jpg');
      return data;
    };
    const ok = await json<Schemas['SimilarResponse']>('/similar?condition=color&k=4&filter=in_stock:false', {
      method: 'POST',
      body: form(),
    });
    assert.equal(ok.response.status, 200, JSON.stringify(ok.body));
    assert.ok(
      ok.body.groups[0].neighbours.every((n) => n.product.fields?.in_stock === false),
      'only out of stock',
    );
    const bad = await fetch(`${server.url}/similar?filter=size:m`, { method: 'POST', body: form() });
    await expectProblem(bad, 400, 'unknown-filter-name');
  });
});

describe('combined conditions over HTTP', () => {
  test("color:2,pattern:1 is one group ranked by the weighted squared distances, with each part's share", async () => {
    const query = fixture.products[4].id;
    const { body } = await similar(query, [
      ['condition', 'color:2,pattern:1'],
      ['k', '6'],
    ]);
    assert.equal(body.groups.length, 1);
    const [group] = body.groups;
    assert.equal(group.condition, 'color:2,pattern:1');
    assert.deepEqual(group.parts, [
      { condition: 'color', weight: 2 },
      { condition: 'pattern', weight: 1 },
    ]);
    const { weights } = resolveCondition(bundle, 'color:2,pattern:1');
    const q = bundle.productIndex(query) as number;
    const truth = [...bundle.entries()]
      .filter(([slot]) => slot !== q)
      .map(([slot, p]) => ({
        id: p.id,
        key:
          weights[0] * bundle.distance('color', q, slot) ** 2 +
          weights[1] * bundle.distance('pattern', q, slot) ** 2,
      }))
      .sort((a, b) => a.key - b.key)
      .slice(0, 6);
    assert.deepEqual(
      ids(group.neighbours),
      truth.map((t) => t.id),
    );
    for (const neighbour of group.neighbours) {
      const parts = full(neighbour).parts ?? [];
      assert.deepEqual(
        parts.map((p) => p.condition),
        ['color', 'pattern'],
      );
      const shares = parts.reduce((sum, p) => sum + p.share, 0);
      assert.ok(Math.abs(shares - 1) < 1e-6, `shares sum to 1: ${shares}`);
      assert.match(full(neighbour).summary, /^Combined distance: color \d+ %, pattern \d+ %/);
    }
  });

  test('combined with a filter, and the errors: unknown part 400 listing conditions, bad weight 400', async () => {
    const query = fixture.products[5].id;
    const { body } = await similar(query, [
      ['condition', 'color,sleeve'],
      ['filter', 'in_stock:true'],
    ]);
    assert.ok(
      body.groups[0].neighbours.every((n) => n.product.fields?.in_stock === true),
      'filter honoured',
    );
    const unknown = await similar(query, [['condition', 'color,shape']]);
    const problem = await expectProblem(unknown.response, 400, 'unknown-condition');
    assert.deepEqual(problem.validConditions, [...bundle.conditions]);
    const weight = await similar(query, [['condition', 'color:0,sleeve']]);
    await expectProblem(weight.response, 400, 'malformed-condition');
  });
});

describe('POST /recommend', () => {
  const positive = () => [fixture.products[6].id, fixture.products[7].id];
  const negative = () => [fixture.products[8].id];

  for (const strategy of ['average', 'best'] as const) {
    test(`${strategy}: examples never returned, each result names its closest positive, filters honoured`, async () => {
      const { response, body } = await recommend({
        positive: positive(),
        negative: negative(),
        condition: 'color',
        k: 5,
        strategy,
        filter: ['in_stock:true'],
      });
      assert.equal(response.status, 200);
      assert.equal(body.strategy, strategy);
      assert.equal(body.neighbours.length, 5);
      assert.deepEqual(
        body.positive.map((p) => p.id),
        positive(),
      );
      for (const neighbour of body.neighbours) {
        const id = neighbour.product.id;
        assert.ok(![...positive(), ...negative()].includes(id), `example ${id} returned`);
        assert.equal(neighbour.product.fields?.in_stock, true);
        const closest = full(neighbour).closestPositive;
        const slot = bundle.productIndex(id) as number;
        const nearest = positive().sort(
          (a, b) =>
            bundle.distance('color', slot, bundle.productIndex(a) as number) -
            bundle.distance('color', slot, bundle.productIndex(b) as number),
        )[0];
        assert.equal(closest?.id, nearest, `closest positive of ${id}`);
        assert.match(full(neighbour).summary, new RegExp(`^Closest to ${nearest}\\.`));
      }
    });
  }

  test("a combined condition gives each part's share", async () => {
    const { body } = await recommend({ positive: positive(), condition: 'color:1,length:1', k: 3 });
    for (const neighbour of body.neighbours) {
      assert.equal(full(neighbour).parts?.length, 2);
    }
  });

  test('errors: unknown ids 404 listing them, no positive 400, overlap 400, too many 400, bad filter 400', async () => {
    const missing = await recommend({
      positive: [positive()[0], 'nope-1'],
      negative: ['nope-2'],
      condition: 'color',
    });
    const problem = await expectProblem(missing.response, 404, 'unknown-product');
    assert.deepEqual(problem.unknownProducts, ['nope-1', 'nope-2']);
    await expectProblem(
      (await recommend({ positive: [], condition: 'color' })).response,
      400,
      'invalid-request',
    );
    const both = await recommend({ positive: positive(), negative: [positive()[0]], condition: 'color' });
    assert.deepEqual((await expectProblem(both.response, 400, 'invalid-examples')).valid, [positive()[0]]);
    const many = fixture.products.slice(0, 21).map((p) => p.id);
    const tooMany = await recommend({
      positive: many.slice(0, 15),
      negative: many.slice(15),
      condition: 'color',
    });
    await expectProblem(tooMany.response, 400, 'invalid-examples');
    const filter = await recommend({ positive: positive(), condition: 'color', filter: ['color<2'] });
    await expectProblem(filter.response, 400, 'not-numeric');
    const strategy = await recommend({ positive: positive(), condition: 'color', strategy: 'worst' });
    await expectProblem(strategy.response, 400, 'invalid-request');
    const malformed = await fetch(`${server.url}/recommend`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"positive": [',
    });
    await expectProblem(malformed, 400, 'invalid-request');
  });
});
