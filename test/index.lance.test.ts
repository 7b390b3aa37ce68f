/**
 * The LanceDB store on real LanceDB tables on local disk: same vectors and neighbours as the hnswlib bundle built
 * from the same source, ANN index checked against brute force, filters as prefilters, the recall gate, publishing
 * and the version poller.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildBundle } from '../src/index/build.ts';
import { openBundle } from '../src/index/bundle.ts';
import { IndexQualityError } from '../src/index/types.ts';
import { buildLanceStore } from '../src/index/store/lance-build.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import { matchesFilter } from '../src/index/store/common.ts';
import type { StoreFilter, StoreProduct, StoreSwap } from '../src/index/store/types.ts';
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
const FIELD_TYPES = { price: 'number', in_stock: 'boolean', brand: 'string' } as const;

describe('LanceDB store', () => {
  test('holds the same products, vectors and neighbours as the hnswlib bundle (exact scans below the index threshold)', async () => {
    const root = await tempDir();
    const items = products(400);
    const source = syntheticSource(items);
    await buildBundle(join(root, 'bundle'), source);
    const report = await buildLanceStore(join(root, 'lance'), source, {
      products: withFields(items),
      fields: FIELD_TYPES,
    });
    assert.equal(report.index.type, 'none', '400 rows are below the ANN threshold: exact scans');
    const bundle = await openBundle(join(root, 'bundle'));
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
      const exact = bundle.exactSearch(condition, 5, 10);
      assert.deepEqual(
        lance.map((h) => h.id),
        exact.map((h) => h.id),
        `${condition}: same top 10`,
      );
      lance.forEach((hit, i) => {
        assert.ok(
          Math.abs(hit.distance - exact[i].distance) < 1e-5,
          `${condition}: same distance at rank ${i + 1}`,
        );
        assert.ok(Math.abs(hit.score - exact[i].score) < 1e-9, `${condition}: same score at rank ${i + 1}`);
      });
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

  test('builds an HNSW-SQ index per condition that passes the recall gate and agrees with brute force', async () => {
    const root = await tempDir();
    const source = syntheticSource(products(1500));
    const report = await buildLanceStore(join(root, 'lance'), source, { minIndexedRows: 0 });
    assert.equal(report.index.type, 'hnsw-sq');
    for (const q of report.quality) assert.ok(q.recall >= 0.9, `${q.condition}: recall ${q.recall}`);
    const store = await LanceStore.connect(join(root, 'lance'));
    const version = await store.open();
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

  test('filters are prefilters: exact k when enough match, all of them when fewer, equal to filtering brute force', async () => {
    const root = await tempDir();
    const items = withFields(products(1500));
    const source = syntheticSource(items);
    await buildLanceStore(join(root, 'lance'), source, {
      products: items,
      fields: FIELD_TYPES,
      minIndexedRows: 0,
    });
    const store = await LanceStore.connect(join(root, 'lance'));
    const version = await store.open();
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
