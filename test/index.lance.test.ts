/**
 * The LanceDB store on real LanceDB tables on local disk: the version table holds the products and vectors, the
 * bundle published next to it answers as the hnswlib bundle built from the same source (filters, combined
 * conditions, recommendations), the recall gate, publishing and the version poller.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as lancedb from '@lancedb/lancedb';
import { buildBundle } from '../src/index/build.ts';
import { openBundle } from '../src/index/bundle.ts';
import { BundleError, IndexQualityError } from '../src/index/types.ts';
import { buildLanceStore } from '../src/index/store/lance-build.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import { matchesFilter } from '../src/index/store/common.ts';
import { resolveCondition, storeCombined, storeFilter, storeRecommend } from '../src/index/query.ts';
import type { StoreFilter, StoreProduct, StoreSwap, StoreVersion } from '../src/index/store/types.ts';
import { blockMasks, CONDITIONS, products, syntheticSource } from './fixtures/index/synthetic.ts';

const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dressmatch-lance-'));
  roots.push(dir);
  return dir;
}

/** Synthetic products with filterable fields: price 0..99, in_stock every other one, a brand of three. */
function withFields(items: ReturnType<typeof products>): StoreProduct[] {
  return items.map((p, i) => ({
    ...p,
    fields: { price: (i * 37) % 100, in_stock: i % 2 === 0, brand: ['acme', 'zed', "o'neil"][i % 3] },
  }));
}

/** A LanceDB store over `count` synthetic products with fields, opened. */
async function indexedWithFields(count: number): Promise<{ store: LanceStore; version: StoreVersion }> {
  const root = await tempDir();
  const items = withFields(products(count));
  await buildLanceStore(join(root, 'lance'), syntheticSource(items), {
    products: items,
    fields: FIELD_TYPES,
  });
  const store = await LanceStore.connect(join(root, 'lance'));
  return { store, version: await store.open() };
}
const FIELD_TYPES = { price: 'number', in_stock: 'boolean', brand: 'string' } as const;

/** Equal structure and strings (same ids, same order), numbers within 1e-5 (two HNSW graphs, built apart). */
function assertClose(actual: unknown, expected: unknown, what: string): void {
  if (typeof expected === 'number' && typeof actual === 'number') {
    assert.ok(
      Math.abs(actual - expected) <= 1e-5 * Math.max(1, Math.abs(expected)),
      `${what}: ${actual} vs ${expected}`,
    );
  } else if (
    expected !== null &&
    typeof expected === 'object' &&
    actual !== null &&
    typeof actual === 'object'
  ) {
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), what);
    for (const [key, value] of Object.entries(expected))
      assertClose((actual as Record<string, unknown>)[key], value, `${what}.${key}`);
  } else {
    assert.equal(actual, expected, what);
  }
}

describe('LanceDB store', () => {
  test('holds the same products, vectors and neighbours as the hnswlib bundle; the table holds them too', async () => {
    const root = await tempDir();
    const items = products(400);
    const source = syntheticSource(items);
    await buildBundle(join(root, 'bundle'), source);
    const report = await buildLanceStore(join(root, 'lance'), source, {
      products: withFields(items),
      fields: FIELD_TYPES,
    });
    assert.equal(report.bundle, join(root, 'lance', 'bundles'), 'the bundle is published next to the tables');
    const bundle = await openBundle(join(root, 'bundle'));
    const db = await lancedb.connect(join(root, 'lance'));
    const table = await db.openTable(report.table);
    assert.equal(await table.countRows(), 400, 'one row per product');
    const [row] = (await table.query().where('slot = 11').toArray()) as {
      id: string;
      vector_0: Float32Array;
    }[];
    assert.equal(row.id, 'p11');
    assert.deepEqual(
      Array.from(row.vector_0),
      Array.from(bundle.vector('color', 11)),
      'the table holds the vectors',
    );
    table.close();
    db.close();
    const store = await LanceStore.connect(join(root, 'lance'));
    const version = await store.open();
    assert.equal(version.version, report.version);
    assert.equal(version.liveCount, 400);
    assert.deepEqual(version.info.masks, bundle.info.masks);
    assert.deepEqual(version.product(7).fields, { price: 59, in_stock: false, brand: 'zed' });
    for (const [c, condition] of CONDITIONS.entries()) {
      assert.deepEqual(version.spaces[c].dims, bundle.spaces[c].dims, `${condition}: same kept dims`);
      assert.deepEqual(
        version.spaces[c].quantiles,
        bundle.spaces[c].quantiles,
        `${condition}: same quantiles`,
      );
    }
    const [rows] = await version.vectors([11]);
    CONDITIONS.forEach((condition, c) =>
      assert.deepEqual(
        Array.from(rows[c]),
        Array.from(bundle.vector(condition, 11)),
        `${condition}: same vector`,
      ),
    );
    for (const condition of CONDITIONS) {
      const lance = await version.search(condition, 5, 10);
      assert.deepEqual(
        lance.map((h) => h.id),
        bundle.exactSearch(condition, 5, 10).map((h) => h.id),
        `${condition}: the true top 10`,
      );
      assert.deepEqual(lance, bundle.search(condition, 5, 10), `${condition}: the bundle's hits, to the bit`);
    }
    const upload = version.fromEmbedding(
      'color',
      Array.from({ length: 24 }, (_, d) => d / 10),
    );
    assert.deepEqual(
      (await version.search('color', upload, 5)).map((h) => h.id),
      bundle
        .exactSearch(
          'color',
          bundle.fromEmbedding(
            'color',
            Array.from({ length: 24 }, (_, d) => d / 10),
          ),
          5,
        )
        .map((h) => h.id),
      'uploads: same neighbours from the same query vector',
    );
    version.close();
    store.close();
  });

  test('a replica loads the published bundle: HNSW answers that pass the recall gate and agree with brute force', async () => {
    const root = await tempDir();
    const source = syntheticSource(products(1500));
    const report = await buildLanceStore(join(root, 'lance'), source);
    for (const q of report.quality) assert.ok(q.recall >= 0.9, `${q.condition}: recall ${q.recall}`);
    const store = await LanceStore.connect(join(root, 'lance'));
    const version = await store.open();
    assert.equal(version.version, report.version);
    let overlap = 0;
    for (let slot = 0; slot < 50; slot++) {
      const approx = new Set((await version.search('sleeve', slot, 10)).map((h) => h.id));
      const exact = await version.exactSearch('sleeve', slot, 10);
      overlap += exact.filter((h) => approx.has(h.id)).length / 10;
    }
    assert.ok(overlap / 50 >= 0.9, `top-10 overlap with brute force ${overlap / 50}`);
    version.close();
    store.close();
  });

  test('the published version carries the checkpoint it was built with, for replicas to load', async () => {
    const root = await tempDir();
    const checkpoint = join(root, 'model.dmck');
    await writeFile(checkpoint, 'model bytes');
    const uri = join(root, 'lance');
    await buildLanceStore(uri, syntheticSource(products(50)));
    const store = await LanceStore.connect(uri);
    assert.equal(await store.publishedModelFile(), undefined, 'a job given no checkpoint copies none');
    const report = await buildLanceStore(uri, {
      ...syntheticSource(products(50)),
      checkpointFile: checkpoint,
    });
    const carried = await store.publishedModelFile();
    assert.equal(carried, join(uri, 'bundles', 'versions', report.version, 'model.dmck'));
    assert.equal(await readFile(carried, 'utf8'), 'model bytes');
    store.close();
  });

  test('an object-store URI is refused with the reason: the bundle needs a local or mounted path', async () => {
    await assert.rejects(
      buildLanceStore('s3://bucket/dressmatch', syntheticSource(products(10))),
      (error: unknown) => error instanceof BundleError && /local or mounted path/.test(error.message),
    );
    await assert.rejects(LanceStore.connect('s3://bucket/dressmatch'), /local or mounted path/);
  });

  test('filters: exact k when enough match, all of them when fewer, equal to filtering brute force', async () => {
    const { store, version } = await indexedWithFields(1500);
    const filters: StoreFilter[] = [
      { clauses: [{ kind: 'label', condition: 'color', values: ['red', 'green'] }] },
      {
        clauses: [
          { kind: 'equals', field: 'brand', values: ["o'neil"] },
          { kind: 'compare', field: 'price', comparisons: [{ op: '<', value: 30 }] },
        ],
      },
      {
        clauses: [
          { kind: 'equals', field: 'in_stock', values: [true] },
          { kind: 'compare', field: 'price', comparisons: [{ op: '>=', value: 99 }] },
        ],
      },
      { clauses: [{ kind: 'equals', field: 'brand', values: ['nobody'] }] },
    ];
    for (const filter of filters) {
      const matching = [...version.entries()]
        .filter(([, p]) => matchesFilter(filter, p))
        .map(([slot]) => slot);
      const hits = await version.search('color', 3, 10, { filter });
      const expected = Math.min(10, matching.filter((slot) => slot !== 3).length);
      assert.equal(hits.length, expected, `${JSON.stringify(filter)}: ${matching.length} match`);
      for (const hit of hits)
        assert.ok(matchesFilter(filter, version.product(hit.index)), 'every hit matches the filter');
      const exact = await version.exactSearch('color', 3, 10, { filter });
      const found = new Set(hits.map((h) => h.id));
      const recall = exact.length === 0 ? 1 : exact.filter((h) => found.has(h.id)).length / exact.length;
      assert.ok(recall >= 0.9, `${JSON.stringify(filter)}: recall ${recall}`);
    }
    version.close();
    store.close();
  });

  for (const kind of ['csn', 'asen'] as const) {
    test(`${kind}: filtered, combined and recommend queries through the store interface give the same ids and distances on both stores (400 products, exact on both)`, async () => {
      const root = await tempDir();
      const items = withFields(products(400));
      const source = syntheticSource(items, { kind });
      await buildBundle(join(root, 'bundle'), source);
      await buildLanceStore(join(root, 'lance'), source, { products: items, fields: FIELD_TYPES });
      const hnsw = await openBundle(join(root, 'bundle'));
      const store = await LanceStore.connect(join(root, 'lance'));
      const lance = await store.open();
      const both: [string, StoreVersion][] = [
        ['hnswlib', hnsw],
        ['lancedb', lance],
      ];
      const same = async (what: string, run: (version: StoreVersion) => Promise<unknown>) => {
        const [a, b] = await Promise.all(both.map(([, version]) => run(version)));
        assertClose(b, a, `${what}: LanceDB answers as the bundle`);
        return a;
      };
      const filters = [
        [],
        ['color:red'],
        ['brand:acme', 'price<50'],
        ['in_stock:true', 'price>=20', 'price<=40'],
      ];
      for (const expressions of filters) {
        const filter = storeFilter(lance, expressions);
        assert.deepEqual(filter, storeFilter(hnsw, expressions), 'one mapping of the API filter');
        const count = await same(`count ${expressions.join('&')}`, (v) => v.count(filter));
        const truth = [...lance.entries()].filter(([, p]) => matchesFilter(filter, p)).length;
        assert.equal(count, truth, `count ${expressions.join('&')}`);
        for (const condition of CONDITIONS) {
          await same(`${condition} ${expressions.join('&')}`, async (v) =>
            v.search(condition, 11, 10, { filter }),
          );
        }
        const combined = resolveCondition(lance, 'color:2,length:1');
        const vector = (c: number) =>
          lance.fromConditionVector(CONDITIONS[c], new Float32Array(lance.info.model.embedDim).fill(0.1));
        await same(`combined ${expressions.join('&')}`, (v) =>
          storeCombined(v, combined, vector, 8, filter, [3]),
        );
        for (const strategy of ['average', 'best'] as const) {
          for (const text of ['sleeve', 'color,sleeve']) {
            const examples = { positives: [5, 40], negatives: [77] };
            await same(`recommend ${strategy} ${text} ${expressions.join('&')}`, (v) =>
              storeRecommend(v, resolveCondition(v, text), examples, strategy, 7, filter),
            );
          }
        }
      }
      hnsw.close();
      lance.close();
      store.close();
    });
  }

  test('the filtered walk: fewer matches than k give exactly those, more give exactly k', async () => {
    const { store, version } = await indexedWithFields(1500);
    // price = (i x 37) mod 100: price < 3 holds for 45 products (3 %).
    const filter = storeFilter(version, ['price<3']);
    const matching = [...version.entries()].filter(([, p]) => matchesFilter(filter, p)).map(([slot]) => slot);
    assert.equal(matching.length, 45, 'the filter matches 45 products');
    assert.equal(await version.count(filter), 45, 'the store counts the matches');
    const all = await version.search('color', matching[0], 100, { filter });
    assert.deepEqual(
      all.map((h) => h.index).sort((a, b) => a - b),
      matching.slice(1),
      'k above the matches: every match but the query itself, and nothing else',
    );
    const ten = await version.search('color', matching[0], 10, { filter });
    assert.equal(ten.length, 10, 'exact k');
    assert.ok(
      ten.every((hit) => matchesFilter(filter, version.product(hit.index))),
      'every hit passes the filter',
    );
    version.close();
    store.close();
  });

  test('the recall gate refuses a lossy mask threshold and keeps the published version; a new one is picked up by the poller', async () => {
    const root = await tempDir();
    const uri = join(root, 'lance');
    const first = await buildLanceStore(uri, syntheticSource(products(300)));
    const store = await LanceStore.connect(uri);
    assert.equal(await store.publishedVersion(), first.version);
    // Off-block mask weights of 0.3 matter: dropping them (threshold 0.5) loses true neighbours.
    const masks = blockMasks(CONDITIONS.length, 24).map((mask) => mask.map((w) => (w > 0.5 ? w : 0.3)));
    await assert.rejects(
      buildLanceStore(uri, syntheticSource(products(300), { masks }), {
        maskThreshold: 0.5,
        minRecall: 0.95,
      }),
      (error: unknown) => error instanceof IndexQualityError,
    );
    assert.equal(await store.publishedVersion(), first.version, 'nothing published after a failed gate');
    const swaps: StoreSwap[] = [];
    const stop = store.subscribe((swap) => swaps.push(swap), { intervalMs: 50, from: first.version });
    const second = await buildLanceStore(uri, syntheticSource(products(320)));
    for (let i = 0; i < 200 && swaps.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    stop();
    assert.equal(swaps.length, 1, 'one swap to the new version');
    assert.equal(swaps[0].current.version, second.version);
    assert.equal(swaps[0].current.liveCount, 320);
    swaps[0].current.close();
    store.close();
  });
});
