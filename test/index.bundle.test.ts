import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { buildBundle } from '../src/index/build.ts';
import { openBundle, type IndexBundle } from '../src/index/bundle.ts';
import { readManifest, versionPath } from '../src/index/files.ts';
import { BundleError, IndexQualityError } from '../src/index/types.ts';
import {
  blockMasks,
  CONDITIONS,
  embeddingOf,
  product,
  products,
  syntheticSource,
} from './fixtures/index/synthetic.ts';

const DIM = 24;
const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dressmatch-index-'));
  roots.push(dir);
  return dir;
}

/** Brute force written out independently of the index code: masked L2 over the full embedding. */
function bruteForce(items: ReturnType<typeof products>, mask: number[], query: number, k: number): string[] {
  const q = embeddingOf(items[query], DIM);
  return items
    .map((p, i) => {
      const e = embeddingOf(p, DIM);
      let sum = 0;
      for (let d = 0; d < DIM; d++) sum += (mask[d] * (e[d] - q[d])) ** 2;
      return { id: p.id, i, distance: Math.sqrt(sum) };
    })
    .filter((x) => x.i !== query)
    .sort((a, b) => a.distance - b.distance)
    .slice(0, k)
    .map((x) => x.id);
}

async function expectBundleError(promise: Promise<unknown>, code: BundleError['code']): Promise<BundleError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof BundleError, `expected BundleError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected BundleError ${code}`);
}

async function hashTree(dir: string): Promise<string> {
  const hash = createHash('sha256');
  for (const name of (await readdir(dir)).sort()) hash.update(name).update(await readFile(join(dir, name)));
  return hash.digest('hex');
}

describe('index bundle', () => {
  test('HNSW search equals brute force over the full mask when the threshold keeps every nonzero dim', async () => {
    const dir = await tempDir();
    const items = products(400);
    const report = await buildBundle(dir, syntheticSource(items, { dim: DIM }), { maskThreshold: 0 });
    assert.equal(report.published, true);
    assert.equal(report.mode, 'full');
    const bundle = await openBundle(dir);
    assert.equal(bundle.liveCount, 400);
    const masks = blockMasks(CONDITIONS.length, DIM);
    for (const [c, condition] of CONDITIONS.entries()) {
      assert.equal(bundle.space(condition).dims.length, DIM, 'threshold 0 keeps every nonzero dim');
      for (const query of [0, 17, 123, 399]) {
        const hits = bundle.search(condition, query, 10);
        assert.deepEqual(
          hits.map((h) => h.id),
          bruteForce(items, masks[c], query, 10),
          `${condition} neighbours of p${query}`,
        );
        assert.ok(!hits.some((h) => h.index === query), 'the query product itself is left out');
        for (const hit of hits) {
          assert.ok(Math.abs(hit.distance - bundle.distance(condition, query, hit.index)) < 1e-4);
          assert.ok(hit.score >= 0 && hit.score <= 1);
        }
        // Scores fall as distances grow: nearest neighbours are closer than almost every random pair.
        assert.ok(hits[0].score >= hits[hits.length - 1].score);
        assert.ok(hits[0].score > 0.9, `score ${hits[0].score}`);
      }
      assert.equal(report.quality[c].recall, 1);
    }
  });

  test('CSN masks: only dims above the threshold are indexed, each multiplied by its weight', async () => {
    const dir = await tempDir();
    const items = products(200);
    const report = await buildBundle(dir, syntheticSource(items, { dim: DIM }), { maskThreshold: 0.1 });
    const bundle = await openBundle(dir);
    const masks = blockMasks(CONDITIONS.length, DIM);
    const block = DIM / CONDITIONS.length;
    for (const [c, condition] of CONDITIONS.entries()) {
      const space = bundle.space(condition);
      assert.deepEqual(
        space.dims,
        Array.from({ length: block }, (_, k) => c * block + k),
        'the 0.02 weights are dropped',
      );
      assert.deepEqual(
        space.weights,
        space.dims.map((d) => masks[c][d]),
      );
      const slot = bundle.productIndex('p5')!;
      const e = embeddingOf(items[5], DIM);
      const expected = space.dims.map((d) => e[d] * masks[c][d]);
      const actual = Array.from(bundle.vector(condition, slot));
      expected.forEach((value, k) => assert.ok(Math.abs(value - actual[k]) < 1e-5));
      assert.deepEqual(Array.from(bundle.embedding(slot)!), Array.from(e));
      assert.deepEqual(Array.from(bundle.fromEmbedding(condition, e)), actual);
      // What dropping the small weights costs is measured against the full mask, and recorded.
      const quality = report.quality[c];
      assert.ok(quality.subspaceRecall !== null && quality.subspaceRecall > 0.9, `${quality.subspaceRecall}`);
      assert.equal(space.quality.recall, quality.recall);
      assert.equal(space.quantiles.length, 101);
    }
  });

  test('ASEN bundles compare unit vectors by cosine, and HNSW agrees with brute force', async () => {
    const dir = await tempDir();
    const items = products(300);
    await buildBundle(dir, syntheticSource(items, { dim: 16, kind: 'asen' }));
    const bundle = await openBundle(dir);
    assert.equal(bundle.embedding(0), undefined);
    for (const condition of CONDITIONS) {
      const space = bundle.space(condition);
      assert.equal(space.metric, 'cosine');
      assert.equal(space.dims.length, 16);
      const v = bundle.vector(condition, 7);
      assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
      const approximate = bundle.search(condition, 7, 10);
      const exact = bundle.exactSearch(condition, 7, 10);
      assert.deepEqual(
        approximate.map((h) => h.id),
        exact.map((h) => h.id),
      );
      assert.ok(approximate.every((h) => h.distance >= -1e-6 && h.distance <= 2));
    }
  });

  test('a damaged, truncated or foreign bundle is refused with a typed error', async () => {
    const dir = await tempDir();
    await expectBundleError(openBundle(dir), 'not-found');
    await buildBundle(dir, syntheticSource(products(120), { dim: DIM }));
    const manifest = (await readManifest(dir))!;
    const versionDir = versionPath(dir, manifest.current);

    await expectBundleError(openBundle(dir, { expectedModelId: 'model-b' }), 'model-mismatch');
    await expectBundleError(openBundle(dir, { expectedConditions: ['color'] }), 'conditions-mismatch');
    assert.equal(
      (await openBundle(dir, { expectedModelId: 'model-a', expectedConditions: CONDITIONS })).liveCount,
      120,
    );

    const vectorsFile = join(versionDir, 'vectors-sleeve.f32');
    const original = await readFile(vectorsFile);
    const flipped = Buffer.from(original);
    flipped[40] ^= 0x01;
    await writeFile(vectorsFile, flipped);
    const error = await expectBundleError(openBundle(dir), 'checksum');
    assert.match(error.message, /vectors-sleeve\.f32/);
    await writeFile(vectorsFile, original);

    const indexFile = join(versionDir, 'color.hnsw');
    const index = await readFile(indexFile);
    await truncate(indexFile, index.length - 100);
    await expectBundleError(openBundle(dir), 'corrupt');
    await expectBundleError(openBundle(dir, { verify: false }), 'corrupt');
    await writeFile(indexFile, index);

    const infoFile = join(versionDir, 'version.json');
    const info = await readFile(infoFile, 'utf8');
    await writeFile(infoFile, info.replace('"model-a"', '"model-x"'));
    await expectBundleError(openBundle(dir), 'checksum');
    await writeFile(infoFile, info);

    await writeFile(join(dir, 'manifest.json'), '{"current": ');
    await expectBundleError(openBundle(dir), 'corrupt');
  });

  test('incremental add, update and remove give the same neighbours as a full rebuild, embedding only what changed', async () => {
    const incrementalDir = await tempDir();
    const fullDir = await tempDir();
    const before = products(300);
    await buildBundle(incrementalDir, syntheticSource(before, { dim: DIM }));
    const firstVersion = (await readManifest(incrementalDir))!.current;
    const firstTree = await hashTree(versionPath(incrementalDir, firstVersion));

    // Remove p0-p19, change p20-p29 (new image → new fingerprint), add p300-p339.
    const afterwards = [
      ...Array.from({ length: 10 }, (_, i) => product(20 + i, 1)),
      ...before.slice(30),
      ...products(40, 300),
    ];
    const counter = { embedded: 0 };
    const report = await buildBundle(incrementalDir, syntheticSource(afterwards, { dim: DIM, counter }), {
      incremental: true,
    });
    assert.equal(report.mode, 'incremental');
    assert.deepEqual(report.changes, {
      added: 40,
      updated: 10,
      removed: 20,
      unchanged: 270,
      compacted: false,
    });
    assert.equal(counter.embedded, 50, 'only new and changed products are embedded');
    assert.equal(
      await hashTree(versionPath(incrementalDir, firstVersion)),
      firstTree,
      'the old version is untouched',
    );

    await buildBundle(fullDir, syntheticSource(afterwards, { dim: DIM }));
    const incremental = await openBundle(incrementalDir);
    const full = await openBundle(fullDir);
    assert.equal(incremental.info.mode, 'incremental');
    assert.equal(incremental.size, 320, 'the 20 holes were filled by new products first');
    assert.equal(incremental.liveCount, full.liveCount);
    assert.equal(incremental.productIndex('p0'), undefined);
    for (const condition of CONDITIONS) {
      for (const id of ['p20', 'p25', 'p31', 'p150', 'p305', 'p339']) {
        const a = incremental.search(condition, incremental.productIndex(id)!, 10);
        const b = full.search(condition, full.productIndex(id)!, 10);
        assert.deepEqual(
          a.map((h) => h.id),
          b.map((h) => h.id),
          `${condition} neighbours of ${id}`,
        );
        a.forEach((hit, j) => assert.ok(Math.abs(hit.distance - b[j].distance) < 1e-5));
        assert.ok(!a.some((h) => ['p0', 'p5', 'p19'].includes(h.id)), 'removed products are never returned');
      }
      assert.equal(incremental.space(condition).quality.recall, 1);
    }

    // Nothing changed: nothing is written.
    const again = await buildBundle(incrementalDir, syntheticSource(afterwards, { dim: DIM }), {
      incremental: true,
    });
    assert.equal(again.published, false);
    assert.equal((await readManifest(incrementalDir))!.current, incremental.version);

    // Removals only: the products are marked deleted in place and leave holes.
    const gone = new Set(['p40', 'p41', 'p42', 'p43', 'p44', 'p45', 'p46', 'p47', 'p48', 'p49']);
    const fewer = afterwards.filter((p) => !gone.has(p.id));
    const removal = await buildBundle(incrementalDir, syntheticSource(fewer, { dim: DIM }), {
      incremental: true,
    });
    assert.deepEqual(removal.changes, {
      added: 0,
      updated: 0,
      removed: 10,
      unchanged: 310,
      compacted: false,
    });
    const fullFewerDir = await tempDir();
    await buildBundle(fullFewerDir, syntheticSource(fewer, { dim: DIM }));
    const holed = await openBundle(incrementalDir);
    const fullFewer = await openBundle(fullFewerDir);
    assert.equal(holed.size, 320);
    assert.equal(holed.liveCount, 310);
    assert.equal(holed.products.filter((p) => p === null).length, 10);
    for (const condition of CONDITIONS) {
      for (const id of ['p50', 'p39', 'p51', 'p310']) {
        const a = holed.search(condition, holed.productIndex(id)!, 15);
        assert.ok(!a.some((h) => gone.has(h.id)), `${condition}: a removed product was returned for ${id}`);
        assert.deepEqual(
          a.map((h) => h.id),
          fullFewer.search(condition, fullFewer.productIndex(id)!, 15).map((h) => h.id),
        );
      }
    }

    // Removing most products compacts the slot table (no re-embedding of the rest).
    const counter2 = { embedded: 0 };
    const few = fewer.slice(0, 100);
    const compacted = await buildBundle(
      incrementalDir,
      syntheticSource(few, { dim: DIM, counter: counter2 }),
      {
        incremental: true,
      },
    );
    assert.equal(compacted.changes.compacted, true);
    assert.equal(counter2.embedded, 0);
    const small = await openBundle(incrementalDir);
    assert.equal(small.size, 100);
    assert.equal(small.liveCount, 100);
    const hits = small.search('color', small.productIndex('p20')!, 5);
    assert.deepEqual(
      hits.map((h) => h.id),
      small.exactSearch('color', small.productIndex('p20')!, 5).map((h) => h.id),
    );

    // Another model: incremental is impossible, the job rebuilds everything and says why.
    const other = await buildBundle(incrementalDir, syntheticSource(few, { dim: DIM, modelId: 'model-b' }), {
      incremental: true,
    });
    assert.equal(other.mode, 'full');
    assert.equal(other.fallbackReason, 'the model changed');
  });

  test('the old version keeps serving while a new one is published, and a reopen finds the new one', async () => {
    const dir = await tempDir();
    await buildBundle(dir, syntheticSource(products(150), { dim: DIM }), { keepVersions: 1 });
    const old: IndexBundle = await openBundle(dir);
    const oldHits = old.search('color', 3, 5);

    // A new catalogue: different products, published while `old` is in use. keepVersions 1 deletes the old files.
    const report = await buildBundle(dir, syntheticSource(products(150, 1000), { dim: DIM }), {
      keepVersions: 1,
    });
    assert.deepEqual(report.removedVersions, [old.version]);
    assert.deepEqual(
      old.search('color', 3, 5),
      oldHits,
      'a request holding the old version still gets its answers',
    );

    const current = await openBundle(dir);
    assert.equal(current.version, report.version);
    assert.equal(current.productIndex('p3'), undefined);
    assert.ok(current.productIndex('p1003') !== undefined, 'the new catalogue is served');
    assert.deepEqual(old.search('color', 3, 5), oldHits);

    // A broken newer version is refused, and the bundles already open keep serving.
    const broken = await buildBundle(dir, syntheticSource(products(150, 2000), { dim: DIM }), {
      keepVersions: 2,
    });
    // Same length, other bytes: only the checksum can tell.
    const damaged = join(versionPath(dir, broken.version!), 'vectors-color.f32');
    await writeFile(damaged, Buffer.alloc((await readFile(damaged)).length));
    await assert.rejects(openBundle(dir), (error: unknown) => {
      assert.ok(error instanceof BundleError, String(error));
      assert.equal(error.code, 'checksum', error.message);
      return true;
    });
    assert.equal(current.search('color', current.productIndex('p1003')!, 5).length, 5);
  });

  test('a build below the recall threshold is not published', async () => {
    const dir = await tempDir();
    await buildBundle(dir, syntheticSource(products(100), { dim: DIM }));
    const before = await readManifest(dir);
    await assert.rejects(
      buildBundle(dir, syntheticSource(products(3000), { dim: DIM }), {
        m: 2,
        efConstruction: 2,
        efSearch: 1,
        minRecall: 0.999,
        maskThreshold: 0,
      }),
      (error: unknown) => {
        assert.ok(error instanceof IndexQualityError);
        assert.ok(error.quality.some((q) => q.recall < 0.999));
        assert.match(error.message, /not published/);
        return true;
      },
    );
    assert.deepEqual(await readManifest(dir), before);
    assert.deepEqual(await readdir(join(dir, 'versions')), [before!.current], 'nothing is left behind');
  });

  test('a mask threshold that drops dims the ranking needs fails the gate on subspace recall', async () => {
    const dir = await tempDir();
    // Off-block weights of 0.3 are under half the largest weight, yet 16 of them outweigh noise in 8 block dims.
    const masks = blockMasks(CONDITIONS.length, DIM).map((mask) => mask.map((w) => (w > 0.5 ? w : 0.3)));
    const source = syntheticSource(products(400), { dim: DIM, masks });
    const gate = { minRecall: 0.95, efSearch: 400 };
    await assert.rejects(buildBundle(dir, source, { ...gate, maskThreshold: 0.5 }), (error: unknown) => {
      assert.ok(error instanceof IndexQualityError, String(error));
      assert.ok(
        error.quality.some((q) => q.subspaceRecall !== null && q.subspaceRecall < 0.95),
        JSON.stringify(error.quality),
      );
      assert.match(error.message, /subspace recall@10 below 0\.95 .*lower --mask-threshold.*not published/);
      return true;
    });
    assert.equal(await readManifest(dir), null, 'nothing was published');
    const report = await buildBundle(dir, source, { ...gate, maskThreshold: 0.2 });
    assert.ok(report.version, 'keeping the 0.3 dims passes');
  });

  test('two jobs on one bundle take turns: each publishes a complete version', async () => {
    const dir = await tempDir();
    const [a, b] = await Promise.all([
      buildBundle(dir, syntheticSource(products(200), { dim: DIM }), { lockStaleMs: 2000 }),
      buildBundle(dir, syntheticSource(products(200, 500), { dim: DIM }), { lockStaleMs: 2000 }),
    ]);
    const versions = [a.version, b.version].sort();
    assert.notEqual(versions[0], versions[1]);
    const manifest = (await readManifest(dir))!;
    assert.equal(manifest.current, versions[1]);
    assert.deepEqual(manifest.history, versions);
    const bundle = await openBundle(dir);
    assert.equal(bundle.liveCount, 200);
  });
});
