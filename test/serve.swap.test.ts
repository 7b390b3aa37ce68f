/**
 * Index versions published while the service runs: readiness before the first one, hot swap under load without a
 * failed request, leases that keep a version alive for the requests using it, and refusal of a version built
 * from another model (the previous one keeps serving).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBundle, createModelSource } from '../src/index/index.ts';
import { createModel, type SimilarityModel } from '../src/model/index.ts';
import { modelId, writeCheckpoint } from '../src/checkpoint/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import type { RunningServer } from '../src/serve/server.ts';
import { buildServeFixture, startLocalServer, type ServeFixture } from './fixtures/serve/build.ts';

type Schemas = components['schemas'];

let root: string;
let fixture: ServeFixture;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-serve-swap-'));
  fixture = await buildServeFixture(join(root, 'fixture'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function version(server: RunningServer): Promise<string | undefined> {
  const response = await fetch(`${server.url}/readyz`);
  if (response.status !== 200) return undefined;
  return ((await response.json()) as Schemas['Readiness']).version;
}

test('not ready until a first index is published, then ready without a restart', async () => {
  const indexDir = join(root, 'empty-index');
  const server = await startLocalServer({
    indexDir,
    pollIntervalMs: 50,
  });
  try {
    const notReady = await fetch(`${server.url}/readyz`);
    assert.equal(notReady.status, 503);
    assert.match(notReady.headers.get('content-type') ?? '', /problem\+json/);
    assert.equal(((await notReady.json()) as Schemas['Problem']).type, '/problems/not-ready');
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200, 'alive while not ready');
    const similar = await fetch(`${server.url}/similar/${fixture.products[0].id}`);
    assert.equal(similar.status, 503);
    assert.equal(similar.headers.get('retry-after'), '2');

    const source = await createModelSource({
      model: fixture.model,
      modelId: fixture.modelId,
      catalogue: fixture.catalogue,
      products: fixture.products,
    });
    const report = await buildBundle(indexDir, source, {
      minRecall: 0,
      recallSample: 10,
      quantilePairs: 200,
    });
    assert.equal(await waitFor(() => version(server)), report.version);
    // no model was given: catalogue queries work, model endpoints say why they do not
    assert.equal((await fetch(`${server.url}/similar/${fixture.products[0].id}?k=2`)).status, 200);
    const heatmap = await fetch(
      `${server.url}/similar/${fixture.products[0].id}/${fixture.products[1].id}/heatmap.png?condition=color`,
    );
    assert.equal(heatmap.status, 503);
    assert.equal(((await heatmap.json()) as Schemas['Problem']).type, '/problems/model-unavailable');
  } finally {
    await server.stop();
  }
});

// Slow: a new index version (embedding the catalogue, HNSW with its recall check) is built while four clients query without pause.
test('a newly published version is picked up under load without failing a request', async () => {
  const server = await startLocalServer({
    indexDir: fixture.indexDir,
    modelPath: fixture.modelPath,
    pollIntervalMs: 50,
  });
  try {
    await server.ready;
    const before = await waitFor(() => version(server));
    const dropped = fixture.products[fixture.products.length - 1];
    const kept = fixture.products.slice(0, -1);

    // Four clients query continuously while a new version (without `dropped`) is built and published.
    const failures: string[] = [];
    const seen = new Map<string, number>();
    let running = true;
    const client = async (worker: number) => {
      for (let i = 0; running; i++) {
        const product = kept[(worker * 7 + i) % kept.length];
        const response = await fetch(`${server.url}/similar/${product.id}?k=5`);
        const body = (await response.json()) as Schemas['SimilarResponse'];
        if (response.status !== 200) failures.push(`${response.status} ${JSON.stringify(body)}`);
        else {
          if (response.headers.get('x-index-version') !== body.version)
            failures.push('header/body version differ');
          seen.set(body.version, (seen.get(body.version) ?? 0) + 1);
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    await new Promise((resolve) => setTimeout(resolve, 150));
    const report = await fixture.publish(kept);
    const after = await waitFor(async () => {
      const current = await version(server);
      return current === report.version ? current : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    running = false;
    await Promise.all(clients);

    assert.deepEqual(failures, []);
    assert.notEqual(before, after);
    assert.ok((seen.get(before) ?? 0) > 0, 'requests were answered by the old version');
    assert.ok((seen.get(after) ?? 0) > 0, 'and then by the new one');
    // URLs answered (and cached) under the old version are answered by the new one now.
    for (const product of kept) {
      const again = await fetch(`${server.url}/similar/${product.id}?k=5`);
      const body = (await again.json()) as Schemas['SimilarResponse'];
      assert.equal(body.version, after, `${product.id}: answered by the new version after the swap`);
      assert.equal(again.headers.get('x-index-version'), after, `${product.id}: header of the new version`);
    }
    const gone = await fetch(`${server.url}/products/${dropped.id}`);
    assert.equal(gone.status, 404, 'the new version is the one being served');
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.ok(metrics.includes(`dressmatch_index_version_info{version="${after}"} 1`));
    assert.ok(!metrics.includes(`dressmatch_index_version_info{version="${before}"} 1`));
    assert.match(metrics, /dressmatch_index_swaps_total\{outcome="loaded"\} 2/);
  } finally {
    await server.stop();
  }
});

test('a request keeps the version it leased; the old version closes when its last lease is released', async () => {
  const server = await startLocalServer({
    indexDir: fixture.indexDir,
  });
  try {
    await server.ready;
    const lease = server.state.lease();
    assert.ok(lease);
    const old = lease.index;
    const report = await fixture.publish(fixture.products);
    await server.state.check();
    assert.equal(server.state.index?.version, report.version, 'new requests get the new version');
    assert.notEqual(old.version, report.version);
    // the leased version still answers while it is held...
    const color = { condition: old.store.conditions.indexOf('color'), weight: 1 };
    const hits = await old.store.query({ parts: [color], from: { slot: 0 }, k: 3 });
    assert.equal(hits.length, 3);
    lease.release();
    // ...and is closed once released
    await assert.rejects(old.store.query({ parts: [color], from: { slot: 0 }, k: 3 }), /closed/);
  } finally {
    await server.stop();
  }
});

// Slow: a server with its model worker, and an index version built by embedding the whole catalogue with a second model.
test('a version built from another model is refused and the current one keeps serving', async () => {
  const server = await startLocalServer({
    indexDir: fixture.indexDir,
    modelPath: fixture.modelPath,
  });
  try {
    await server.ready;
    const current = server.state.index?.version;
    const stranger = createModel({ ...fixture.model.config, seed: 99 });
    try {
      const source = await createModelSource({
        model: stranger,
        modelId: modelId(stranger.snapshot()),
        catalogue: fixture.catalogue,
        products: fixture.products,
      });
      await buildBundle(fixture.indexDir, source, { minRecall: 0, recallSample: 10, quantilePairs: 200 });
    } finally {
      stranger.dispose();
    }
    await server.state.check();
    assert.equal(server.state.index?.version, current, 'still serving the version that matches the model');
    assert.match(server.state.lastError ?? '', /model/);
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(((await ready.json()) as Schemas['Readiness']).version, current);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /dressmatch_index_swaps_total\{outcome="rejected"\} 1/);
    // publishing a version of the right model again is picked up
    const report = await fixture.publish();
    await server.state.check();
    assert.equal(server.state.index?.version, report.version);
  } finally {
    await server.stop();
  }
});

// Slow: two index versions built by embedding the catalogue, and the server's worker loading a second model.
test('a version built from a retrained checkpoint reloads the model; leased versions keep theirs', async () => {
  const dir = join(root, 'retrain');
  const modelPath = join(dir, 'model.dmck');
  const indexDir = join(dir, 'index');
  await mkdir(dir, { recursive: true });
  await copyFile(fixture.modelPath, modelPath);
  const publishWith = async (model: SimilarityModel) => {
    const source = await createModelSource({
      model,
      modelId: modelId(model.snapshot()),
      catalogue: fixture.catalogue,
      products: fixture.products,
    });
    return buildBundle(indexDir, source, { minRecall: 0, recallSample: 10, quantilePairs: 200 });
  };
  await publishWith(fixture.model);
  const server = await startLocalServer({
    indexDir,
    modelPath,
  });
  const retrained = createModel({ ...fixture.model.config, seed: 1234 });
  try {
    await server.ready;
    const lease = server.state.lease();
    assert.ok(lease?.index.model);
    const oldModel = lease.index.model;
    assert.equal(oldModel.description.id, fixture.modelId);

    // retrain in place: a new checkpoint at the same path, then a new index from it
    await writeCheckpoint(modelPath, { model: retrained.snapshot() });
    const report = await publishWith(retrained);
    await server.state.check();
    const current = server.state.index;
    assert.equal(current?.version, report.version);
    assert.equal(current?.model?.description.id, modelId(retrained.snapshot()));

    // the request that leased the old version still has a working old model
    const image = new Float32Array(oldModel.description.imageSize ** 2 * 3).fill(0.5);
    const vectors = await oldModel.vectors(image, 1);
    assert.equal(vectors.count, 1);
    lease.release();
    // once released, the old model is shut down (its calls fail), the new one answers over HTTP
    await assert.rejects(() => oldModel.vectors(image, 1));
    const [a, b] = fixture.products;
    const heatmap = await fetch(`${server.url}/similar/${a.id}/${b.id}/heatmap.png?condition=color&size=32`);
    assert.equal(heatmap.status, 200);
  } finally {
    retrained.dispose();
    await server.stop();
  }
});
