/**
 * The API over an ASEN model: cosine condition spaces without masks. Same server, same contract; the
 * explanations are computed on the normalised vectors (distance = 1 − cosine) and every mask weight is 1.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { openBundle, type IndexBundle } from '../src/index/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import type { RunningServer } from '../src/serve/server.ts';
import { startServedFixture, type ServeFixture, type ServedFixture } from './fixtures/serve/build.ts';

type Schemas = components['schemas'];

let served: ServedFixture;
let fixture: ServeFixture;
let server: RunningServer;
let bundle: IndexBundle;

before(async () => {
  served = await startServedFixture('dressmatch-serve-asen-', { kind: 'asen', products: 24 });
  ({ fixture, server } = served);
  bundle = await openBundle(fixture.indexDir);
});

after(() => served?.close());

test('ASEN: cosine neighbours, unit mask weights, shares of the normalised distance', async () => {
  const ready = (await (await fetch(`${server.url}/readyz`)).json()) as Schemas['Readiness'];
  assert.equal(ready.model.kind, 'asen');
  const conditions = (await (await fetch(`${server.url}/conditions`)).json()) as Schemas['ConditionList'];
  for (const condition of conditions.conditions) {
    assert.equal(condition.metric, 'cosine');
    assert.ok(condition.mask.weights.every((w) => w === 1));
    assert.equal(condition.mask.effectiveDims, fixture.model.config.embedDim);
  }

  const query = fixture.products[2];
  const slot = bundle.productIndex(query.id) as number;
  const response = await fetch(`${server.url}/similar/${query.id}?condition=length&k=4`);
  assert.equal(response.status, 200);
  const body = (await response.json()) as Schemas['SimilarResponse'];
  const [group] = body.groups;
  assert.equal(group.metric, 'cosine');
  assert.deepEqual(
    group.neighbours.map((n) => n.product.id),
    bundle.exactSearch('length', slot, 4).map((hit) => hit.id),
  );
  for (const neighbour of group.neighbours) {
    const other = bundle.productIndex(neighbour.product.id) as number;
    assert.ok(Math.abs(neighbour.distance - bundle.distance('length', slot, other)) < 1e-5);
    assert.ok(neighbour.distance >= 0 && neighbour.distance <= 2);
    const { dimensions } = neighbour.explanation as Schemas['Explanation'];
    assert.ok(dimensions.top.every((d) => d.maskWeight === 1));
    const total = dimensions.top.reduce((sum, d) => sum + d.share, 0) + dimensions.restShare;
    assert.ok(Math.abs(total - 1) < 1e-9);
    // ||â − b̂||² = 2 (1 − cos): each share is that dimension's squared difference of normalised coordinates over it
    for (const d of dimensions.top.filter((d) => d.share > 1e-6)) {
      assert.ok(
        Math.abs(d.difference ** 2 / d.share - 2 * neighbour.distance) <
          1e-4 * Math.max(1, neighbour.distance),
      );
    }
  }

  // an upload finds the product it came from; the attention-based heat map renders
  const target = fixture.products[5];
  const form = new FormData();
  form.append(
    'image',
    new Blob([new Uint8Array(await readFile(join(fixture.catalogue.root, target.image)))]),
    'p.png',
  );
  const uploaded = (await (
    await fetch(`${server.url}/similar?k=1`, { method: 'POST', body: form })
  ).json()) as Schemas['SimilarResponse'];
  for (const g of uploaded.groups) assert.equal(g.neighbours[0].product.id, target.id);
  const heatmap = await fetch(
    `${server.url}/similar/${query.id}/${target.id}/heatmap.png?condition=length&size=48`,
  );
  assert.equal(heatmap.status, 200);
  assert.equal((await sharp(Buffer.from(await heatmap.arrayBuffer())).metadata()).width, 48);
});
