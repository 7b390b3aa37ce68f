/**
 * Filters, combined conditions and recommendations on a real published bundle: the bundle keeps the products'
 * labels and fields, so queries filter without the catalogue, and an incremental run picks up changed fields.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildBundle, openBundle, type IndexBundle, type IndexedProduct } from '../src/index/index.ts';
import {
  filterSchema,
  queryVersion,
  resolveCondition,
  selectProducts,
  storeFilter,
} from '../src/index/query.ts';
import { QueryError } from '../src/index/query-error.ts';
import { product, syntheticSource } from './fixtures/index/synthetic.ts';

const COUNT = 600;
const DIM = 24;

function withFields(i: number, revision = 0): IndexedProduct {
  return {
    ...product(i),
    fields: {
      price: 10 + (i % 100),
      in_stock: (i + revision) % 4 !== 0,
      ...(i % 2 ? { brand: 'acme' } : {}),
    },
  };
}

let dir: string;
let bundle: IndexBundle;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dressmatch-query-'));
  const items = Array.from({ length: COUNT }, (_, i) => withFields(i));
  await buildBundle(dir, syntheticSource(items, { dim: DIM }), { maskThreshold: 0, keepVersions: 2 });
  bundle = await openBundle(dir);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('queries on a published bundle', () => {
  test('the bundle knows the field types and labels without the catalogue', () => {
    assert.deepEqual(filterSchema(bundle).fields, { brand: 'string', in_stock: 'boolean', price: 'number' });
    assert.deepEqual(filterSchema(bundle).labels.color, ['blue', 'green', 'red']);
    assert.deepEqual(bundle.product(3).fields, { price: 13, in_stock: true, brand: 'acme' });
  });

  test('filtered search equals brute force filtered afterwards', async () => {
    const selection = selectProducts(bundle, ['color:red', 'price<40', 'in_stock:true']);
    const passes = (slot: number) => {
      const p = bundle.product(slot);
      return (
        p.attributes.color?.[0] === 'red' && (p.fields?.price as number) < 40 && p.fields?.in_stock === true
      );
    };
    assert.ok(selection.count > 10, `enough matches: ${selection.count}`);
    for (const slot of [0, 7, 123]) {
      const filter = storeFilter(bundle, ['color:red', 'price<40', 'in_stock:true']);
      const hits = await queryVersion(bundle, resolveCondition(bundle, 'sleeve'), {
        from: { slot },
        k: 10,
        filter,
      });
      const truth = bundle
        .exactSearch('sleeve', slot, COUNT)
        .filter((hit) => passes(hit.index))
        .slice(0, 10);
      assert.deepEqual(
        hits.map((h) => h.id),
        truth.map((t) => t.id),
        `filtered neighbours of slot ${slot}`,
      );
      assert.ok(
        hits.every((h) => h.parts[0].score >= 0 && h.parts[0].score <= 1),
        'scores in [0, 1]',
      );
    }
  });

  test('errors are QueryErrors listing what is valid', () => {
    assert.throws(
      () => selectProducts(bundle, ['colour:red']),
      (e: unknown) =>
        e instanceof QueryError && e.code === 'unknown-filter-name' && e.valid.includes('price'),
    );
    assert.throws(
      () => resolveCondition(bundle, 'color:2,shape'),
      (e: unknown) => e instanceof QueryError && e.code === 'unknown-condition' && e.valid.includes('length'),
    );
  });

  test('combined condition: one group, parts with weights, scores and shares', async () => {
    const resolved = resolveCondition(bundle, 'color:2,length:1');
    const hits = await queryVersion(bundle, resolved, {
      from: { slot: 5 },
      k: 10,
      filter: storeFilter(bundle, []),
    });
    assert.equal(hits.length, 10);
    assert.ok(!hits.some((h) => h.index === 5), 'the query product is left out');
    for (const hit of hits) {
      assert.deepEqual(
        hit.parts.map((p) => [p.condition, p.weight]),
        [
          ['color', 2],
          ['length', 1],
        ],
      );
      const shares = hit.parts.reduce((sum, p) => sum + p.share, 0);
      assert.ok(Math.abs(shares - 1) < 1e-9, `shares sum to 1: ${shares}`);
      assert.ok(
        Math.abs(hit.parts[0].distance - bundle.distance('color', 5, hit.index)) < 1e-4,
        'part distance',
      );
    }
  });

  test('recommend: examples never returned, closest positive named, filter honoured', async () => {
    const filter = storeFilter(bundle, ['brand:acme']);
    const resolved = resolveCondition(bundle, 'color');
    for (const strategy of ['average', 'best'] as const) {
      const from = { positives: [1, 3], negatives: [5], strategy };
      const hits = await queryVersion(bundle, resolved, { from, k: 8, filter });
      assert.equal(hits.length, 8, strategy);
      for (const hit of hits) {
        assert.ok(![1, 3, 5].includes(hit.index), `${strategy} returned an example`);
        assert.equal(bundle.product(hit.index).fields?.brand, 'acme', `${strategy} hit passes the filter`);
        const nearer = [1, 3].sort(
          (a, b) => bundle.distance('color', hit.index, a) - bundle.distance('color', hit.index, b),
        )[0];
        assert.equal(hit.closestPositive?.index, nearer, `${strategy} closest positive`);
        assert.equal(hit.closestPositive?.id, bundle.product(nearer).id);
      }
    }
  });

  test('an incremental run with changed fields only re-embeds nothing and serves the new fields', async () => {
    const counter = { embedded: 0 };
    const items = Array.from({ length: COUNT }, (_, i) => withFields(i, 1));
    const report = await buildBundle(dir, syntheticSource(items, { dim: DIM, counter }), {
      maskThreshold: 0,
      incremental: true,
      keepVersions: 2,
    });
    assert.equal(counter.embedded, 0, 'fields are not part of the fingerprint');
    assert.equal(report.changes.unchanged, COUNT);
    const next = await openBundle(dir);
    const inStock = selectProducts(next, ['in_stock:true']);
    const expected = items.filter((p) => p.fields?.in_stock === true).length;
    assert.equal(inStock.count, expected);
    assert.equal(next.product(3).fields?.in_stock, false, 'product 3 went out of stock');
  });
});
