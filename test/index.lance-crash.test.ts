/**
 * The LanceDB store across processes: kill -9 of the index job at every stage (version table, bundle build, bundle
 * publish, manifest append) and at random moments leaves the previously published version served, whole; and two
 * shard processes embed one catalogue that a commit publishes.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import * as lancedb from '@lancedb/lancedb';
import { BundleError } from '../src/index/types.ts';
import { buildLanceStore } from '../src/index/store/lance-build.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import { commitShards } from '../src/index/store/lance-shards.ts';
import { Rng } from '../src/util/rng.ts';
import { exited, killHard, startChild, waitFor } from './fixtures/index/processes.ts';
import { product, syntheticSource } from './fixtures/index/synthetic.ts';

const script = fileURLToPath(new URL('./fixtures/index/lance-child.ts', import.meta.url));
const COUNT = 600;
const roots: string[] = [];
after(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dressmatch-lance-crash-'));
  roots.push(dir);
  return dir;
}

const revision = (r: number) => Array.from({ length: COUNT }, (_, i) => product(i, r));

/** The published version is `expected`, opens whole, and its index answers like brute force. */
async function assertServing(uri: string, expected: string): Promise<void> {
  const store = await LanceStore.connect(uri);
  try {
    assert.equal(await store.publishedVersion(), expected, 'the published version');
    const version = await store.open();
    assert.equal(version.version, expected);
    assert.equal(version.liveCount, COUNT, 'every product of the version is there');
    const slot = version.productIndex('p7')!;
    const approx = (await version.search('color', slot, 10)).map((h) => h.id);
    const exact = (await version.exactSearch('color', slot, 10)).map((h) => h.id);
    assert.ok(exact.filter((id) => approx.includes(id)).length >= 9, `index answers: ${approx} vs ${exact}`);
    version.close();
  } finally {
    store.close();
  }
}

test('kill -9 at any point of a LanceDB index job leaves the published version served, and the next run cleans up', async () => {
  const uri = join(await tempDir(), 'store');
  let served = (await buildLanceStore(uri, syntheticSource(revision(0)))).version;
  await assertServing(uri, served);

  for (const stage of ['embedded', 'written', 'indexed', 'checked', 'bundled', 'published']) {
    const child = startChild(script, ['build', uri, String(COUNT), '1', stage]);
    await waitFor(child, new RegExp(`PAUSED ${stage}|STAGE ${stage}`));
    await killHard(child.child);
    if (stage === 'published') {
      const store = await LanceStore.connect(uri);
      const now = await store.publishedVersion();
      store.close();
      assert.notEqual(now, served, 'killed after the manifest append: the new version is served');
      served = now!;
    }
    await assertServing(uri, served);
  }

  const rng = new Rng(7);
  for (let trial = 0; trial < 3; trial++) {
    const child = startChild(script, ['build', uri, String(COUNT), String(2 + trial), '', '30']);
    await waitFor(child, /STAGE started/);
    await new Promise((resolve) => setTimeout(resolve, rng.int(100, 2500)));
    await killHard(child.child);
    const store = await LanceStore.connect(uri);
    const now = (await store.publishedVersion())!;
    store.close();
    assert.ok(
      now === served || /STAGE published/.test(child.output()),
      'the manifest only moves once a version is whole',
    );
    served = now;
    await assertServing(uri, served);
  }

  const last = startChild(script, ['build', uri, String(COUNT), '9']);
  await waitFor(last, /DONE v\d+/);
  await exited(last.child);
  const published = /DONE (v\S+)/.exec(last.output())![1];
  await assertServing(uri, published);
  const db = await lancedb.connect(uri);
  const tables = (await db.tableNames()).filter((name) => name.startsWith('dressmatch_v'));
  db.close();
  assert.ok(tables.length <= 2, `keepVersions 2 and no leftovers, found ${tables.join(', ')}`);
  const bundles = await readdir(join(uri, 'bundles', 'versions'));
  assert.ok(bundles.length <= 2, `bundle versions go with the kept tables, found ${bundles.join(', ')}`);
  assert.deepEqual(
    bundles.sort(),
    tables.map((name) => name.slice('dressmatch_'.length)).sort(),
    'one bundle version per kept table, same names',
  );
});

test('two shard processes embed one catalogue; the commit checks every shard and publishes it whole', async () => {
  const uri = join(await tempDir(), 'store');
  const items = revision(3);
  const source = syntheticSource(items);
  const one = startChild(script, ['shard', uri, String(COUNT), '3', '0/2']);
  await waitFor(one, /DONE/);
  await exited(one.child);
  await assert.rejects(commitShards(uri, source), (error: unknown) => {
    assert.ok(error instanceof BundleError, String(error));
    assert.match(error.message, /shards 1\/2 are missing/);
    return true;
  });
  assert.equal(
    await (await LanceStore.connect(uri)).publishedVersion(),
    null,
    'nothing published without every shard',
  );
  // Both shards at once in two processes (shard 0 again: a rerun replaces its earlier output).
  const shards = ['0/2', '1/2'].map((spec) => startChild(script, ['shard', uri, String(COUNT), '3', spec]));
  await Promise.all(shards.map((child) => waitFor(child, /DONE/)));
  await Promise.all(shards.map((child) => exited(child.child)));
  const report = await commitShards(uri, source);
  assert.equal(report.shards, 2);
  assert.equal(report.rows, COUNT);

  const full = join(await tempDir(), 'full');
  await buildLanceStore(full, source);
  const [a, b] = await Promise.all([LanceStore.connect(uri), LanceStore.connect(full)]);
  const [sharded, whole] = await Promise.all([a.open(), b.open()]);
  assert.equal(sharded.liveCount, COUNT);
  const slots = [0, 299, 300, 599];
  assert.deepEqual(
    (await sharded.vectors(slots)).map((rows) => rows.map((row) => Array.from(row))),
    (await whole.vectors(slots)).map((rows) => rows.map((row) => Array.from(row))),
    'the sharded version holds the same vectors as a single-process build',
  );
  const db = await lancedb.connect(uri);
  const left = (await db.tableNames()).filter((name) => name.includes('_shard_'));
  db.close();
  assert.deepEqual(left, [], 'staging tables are dropped after the commit');
  sharded.close();
  whole.close();
  a.close();
  b.close();
});
