/**
 * Every endpoint and every documented error of the HTTP API, over real HTTP against a real server on 127.0.0.1:
 * a generated catalogue, an untrained seeded CSN loaded from a checkpoint (in the model worker thread) and an HNSW
 * bundle built by the index stage. Responses are also checked against openapi.yaml by the server itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { parse as parseYaml } from 'yaml';
import { openBundle, type IndexBundle } from '../src/index/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import type { RunningServer } from '../src/serve/server.ts';
import {
  startLocalServer,
  startServedFixture,
  type ServeFixture,
  type ServedFixture,
} from './fixtures/serve/build.ts';

type Schemas = components['schemas'];

const MAX_UPLOAD = 200 * 1024;
let served: ServedFixture;
let fixture: ServeFixture;
let server: RunningServer;
let bundle: IndexBundle;

before(async () => {
  served = await startServedFixture('dressmatch-serve-api-', {}, { maxUploadBytes: MAX_UPLOAD });
  ({ fixture, server } = served);
  bundle = await openBundle(fixture.indexDir);
});

after(() => served?.close());

async function get(path: string, init?: RequestInit): Promise<Response> {
  return fetch(`${server.url}${path}`, init);
}

async function json<T>(path: string, init?: RequestInit): Promise<{ response: Response; body: T }> {
  const response = await get(path, init);
  return { response, body: (await response.json()) as T };
}

/** A problem+json answer with the given status, no stack trace and no internal paths. */
async function expectProblem(response: Response, status: number, type: string): Promise<Schemas['Problem']> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const text = await response.text();
  assert.doesNotMatch(text, /\bat [^ ]+ \(|node_modules|\/work\/|"stack"/, `leaks internals: ${text}`);
  const problem = JSON.parse(text) as Schemas['Problem'];
  assert.equal(problem.status, status);
  assert.equal(problem.type, `/problems/${type}`);
  assert.ok(problem.title && problem.detail && problem.instance, 'title, detail and instance are set');
  return problem;
}

/** HEAD answers carry the problem's status and media type but no body. */
async function expectProblemHead(response: Response, status: number): Promise<void> {
  assert.equal(response.status, status);
  assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal((await response.arrayBuffer()).byteLength, 0);
}

function product(i: number) {
  return fixture.products[i];
}

function upload(bytes: Uint8Array, filename: string, type: string, field = 'image'): FormData {
  const form = new FormData();
  form.append(field, new Blob([new Uint8Array(bytes)], { type }), filename);
  return form;
}

describe('operations', () => {
  test('GET /healthz answers ok', async () => {
    const { response, body } = await json<Schemas['Health']>('/healthz');
    assert.equal(response.status, 200);
    assert.deepEqual(body, { status: 'ok' });
    // A plain probe is answered ahead of validation; with a query string it takes the full path: same answer.
    const full = await get('/healthz?');
    assert.equal(full.status, 200);
    for (const header of ['content-type', 'content-length', 'etag']) {
      assert.equal(response.headers.get(header), full.headers.get(header), `same ${header} on both paths`);
    }
    assert.equal((await get('/healthz?verbose=1')).status, 400, 'an unknown parameter is refused');
  });

  test('HEAD works wherever GET does, without a body', async () => {
    for (const path of ['/healthz', '/readyz', `/products/${product(0).id}/image`]) {
      const response = await get(path, { method: 'HEAD' });
      assert.equal(response.status, 200, path);
      assert.equal((await response.arrayBuffer()).byteLength, 0);
    }
    await expectProblemHead(await get('/products/no-such-product', { method: 'HEAD' }), 404);
  });

  test('GET /readyz reports the served version, the products and the model', async () => {
    const { response, body } = await json<Schemas['Readiness']>('/readyz');
    assert.equal(response.status, 200);
    assert.equal(body.status, 'ready');
    assert.equal(body.version, bundle.version);
    assert.equal(body.products, fixture.products.length);
    assert.deepEqual(body.conditions, fixture.catalogue.conditions);
    assert.equal(body.model.loaded, true);
    assert.equal(body.model.kind, 'csn');
    assert.equal(body.model.imageSize, fixture.model.config.imageSize);
  });

  test('GET /openapi.yaml serves the contract and /docs renders it with local assets', async () => {
    const response = await get('/openapi.yaml');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /yaml/);
    const spec = parseYaml(await response.text()) as { openapi: string; paths: Record<string, unknown> };
    assert.equal(spec.openapi, '3.1.0');
    assert.ok(spec.paths['/similar/{productId}']);
    const docs = await get('/docs/');
    assert.equal(docs.status, 200);
    const html = await docs.text();
    assert.match(html, /swagger-ui/);
    assert.doesNotMatch(html, /(src|href)=["']?(https?:)?\/\//i, 'assets are served locally, not from a CDN');
    // the docs' inline styles are allowed there, and only there
    assert.match(docs.headers.get('content-security-policy') ?? '', /style-src 'self' 'unsafe-inline'/);
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /style-src 'self';/);
    const css = await get('/docs/swagger-ui.css');
    assert.equal(css.status, 200);
    const init = await (await get('/docs/swagger-ui-init.js')).text();
    assert.match(init, /\/openapi\.yaml/);
  });

  test('GET /problems/{slug} documents each problem type; unknown ones are 404', async () => {
    const response = await get('/problems/unknown-condition');
    assert.equal(response.status, 200);
    assert.match(await response.text(), /Unknown condition/);
    await expectProblem(await get('/problems/no-such-problem'), 404, 'not-found');
  });

  test('GET /metrics exposes request histograms by route and the index version', async () => {
    await get(`/similar/${product(0).id}?condition=color&k=2`);
    await get(`/similar/${product(0).id}?k=0`);
    const response = await get('/metrics');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    assert.match(text, /process_cpu_user_seconds_total/);
    assert.match(
      text,
      /dressmatch_http_request_duration_seconds_count\{[^}]*route="\/similar\/\{productId\}"[^}]*status="200"[^}]*\} [1-9]/,
    );
    // requests the validator rejects are counted under their route template too
    assert.match(
      text,
      /dressmatch_http_request_duration_seconds_count\{[^}]*route="\/similar\/\{productId\}"[^}]*status="400"[^}]*\} [1-9]/,
    );
    assert.doesNotMatch(text, new RegExp(`route="[^"]*${product(0).id}`), 'no raw paths as labels');
    assert.ok(text.includes(`dressmatch_index_version_info{version="${bundle.version}"} 1`));
  });

  test('responses carry security headers and a request id (echoed when the client sends one)', async () => {
    const response = await get('/healthz', { headers: { 'X-Request-Id': 'test-req-42' } });
    assert.equal(response.headers.get('x-request-id'), 'test-req-42');
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(response.headers.get('x-powered-by'), null);
    const generated = await get('/healthz', { headers: { 'X-Request-Id': 'bad id with spaces' } });
    assert.match(generated.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const problem = await expectProblem(
      await get('/similar/no-such-product', { headers: { 'X-Request-Id': 'trace-7' } }),
      404,
      'unknown-product',
    );
    assert.equal(problem.requestId, 'trace-7');
  });
});

describe('catalogue', () => {
  test('GET /conditions lists every condition with its mask summary and label counts', async () => {
    const { body } = await json<Schemas['ConditionList']>('/conditions');
    assert.equal(body.version, bundle.version);
    assert.deepEqual(
      body.conditions.map((c) => c.name),
      fixture.catalogue.conditions,
    );
    const masks = fixture.model.masks();
    body.conditions.forEach((condition, c) => {
      const space = bundle.spaces[c];
      assert.equal(condition.index, c);
      assert.equal(condition.metric, 'l2');
      assert.equal(condition.mask.totalDims, fixture.model.config.embedDim);
      assert.equal(condition.mask.keptDims, space.dims.length);
      // the summary's weights are the model's mask on the kept dims and 0 elsewhere
      condition.mask.weights.forEach((w, d) =>
        assert.ok(
          Math.abs(w - (space.dims.includes(d) ? masks[c][d] : 0)) < 1e-6,
          `${condition.name} dim ${d}`,
        ),
      );
      const labelled = fixture.products.filter((p) => (p.attributes[condition.name] ?? []).length > 0).length;
      assert.equal(
        condition.values.reduce((sum, v) => sum + v.count, 0),
        labelled,
      );
      assert.ok(condition.medianRandomDistance !== undefined && condition.medianRandomDistance > 0);
    });
  });

  test('GET /products pages through the catalogue and searches ids, titles and labels', async () => {
    const { body: first } = await json<Schemas['ProductPage']>('/products?limit=10');
    assert.equal(first.total, fixture.products.length);
    assert.deepEqual(
      first.items.map((p) => p.id),
      fixture.products.slice(0, 10).map((p) => p.id),
    );
    const { body: second } = await json<Schemas['ProductPage']>('/products?limit=10&offset=10');
    assert.equal(second.items[0].id, product(10).id);
    const colour = product(0).attributes.color[0];
    const { body: search } = await json<Schemas['ProductPage']>(
      `/products?q=${encodeURIComponent(colour.toUpperCase())}`,
    );
    const expected = fixture.products.filter(
      (p) => p.title.toLowerCase().includes(colour) || Object.values(p.attributes).flat().includes(colour),
    );
    assert.ok(search.total >= 1);
    assert.equal(search.total, expected.length);
    const { body: none } = await json<Schemas['ProductPage']>('/products?q=zzzz-nothing');
    assert.equal(none.total, 0);
    await expectProblem(await get('/products?limit=0'), 400, 'invalid-request');
    await expectProblem(await get('/products?limit=201'), 400, 'invalid-request');
    await expectProblem(await get('/products?colour=red'), 400, 'invalid-request');
  });

  test('GET /products/{id} returns the product; an unknown id is 404', async () => {
    const { response, body } = await json<Schemas['Product']>(`/products/${product(3).id}`);
    assert.equal(response.status, 200);
    assert.equal(body.id, product(3).id);
    assert.equal(body.title, product(3).title);
    assert.deepEqual(body.attributes, product(3).attributes);
    assert.equal(body.imageUrl, `/products/${product(3).id}/image`);
    await expectProblem(await get('/products/no-such-product'), 404, 'unknown-product');
  });

  test('GET /products/{id}/image serves the file, or a square thumbnail with size', async () => {
    const response = await get(`/products/${product(2).id}/image`);
    assert.equal(response.status, 200);
    const onDisk = await readFile(join(fixture.catalogue.root, product(2).image));
    const served = Buffer.from(await response.arrayBuffer());
    assert.ok(served.equals(onDisk));
    const format = (await sharp(onDisk).metadata()).format;
    assert.equal(response.headers.get('content-type'), `image/${format === 'jpeg' ? 'jpeg' : format}`);
    const thumb = await get(`/products/${product(2).id}/image?size=48`);
    assert.equal(thumb.headers.get('content-type'), 'image/webp');
    const meta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 48, 48]);
    await expectProblem(await get(`/products/${product(2).id}/image?size=8`), 400, 'invalid-request');
    await expectProblem(await get('/products/no-such-product/image'), 404, 'unknown-product');
  });
});

describe('similar products', () => {
  test('GET /similar/{id}?condition=c: the exact k nearest under c, each explained', async () => {
    const query = product(5);
    const { response, body } = await json<Schemas['SimilarResponse']>(
      `/similar/${query.id}?condition=sleeve&k=5`,
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-index-version'), bundle.version);
    assert.equal(body.version, bundle.version);
    assert.equal(body.k, 5);
    assert.equal(body.query.source, 'product');
    assert.equal(body.query.product?.id, query.id);
    assert.equal(body.groups.length, 1);
    const [group] = body.groups;
    assert.equal(group.condition, 'sleeve');
    const slot = bundle.productIndex(query.id) as number;
    const exact = bundle.exactSearch('sleeve', slot, 5);
    assert.deepEqual(
      group.neighbours.map((n) => n.product.id),
      exact.map((hit) => hit.id),
      'HNSW on a small catalogue finds the exact neighbours',
    );
    const catalogueById = new Map(fixture.products.map((p) => [p.id, p]));
    group.neighbours.forEach((neighbour, i) => {
      assert.equal(neighbour.rank, i + 1);
      assert.notEqual(neighbour.product.id, query.id);
      const other = bundle.productIndex(neighbour.product.id) as number;
      assert.ok(Math.abs(neighbour.distance - bundle.distance('sleeve', slot, other)) < 1e-5);
      assert.ok(Math.abs(neighbour.score - bundle.score('sleeve', neighbour.distance)) < 1e-6);
      if (i > 0) {
        assert.ok(neighbour.distance >= group.neighbours[i - 1].distance);
        assert.ok(neighbour.score <= group.neighbours[i - 1].score + 1e-12);
      }
      const { dimensions, otherConditions, attributes, summary } =
        neighbour.explanation as Schemas['Explanation'];
      const space = bundle.space('sleeve');
      assert.equal(dimensions.keptDims, space.dims.length);
      const shares = dimensions.top.reduce((sum, d) => sum + d.share, 0) + dimensions.restShare;
      assert.ok(Math.abs(shares - 1) < 1e-9, 'shares add up to the whole squared distance');
      for (const d of dimensions.top) {
        assert.equal(d.maskWeight, space.weights[space.dims.indexOf(d.dim)]);
        const a = bundle.vector('sleeve', slot)[space.dims.indexOf(d.dim)];
        const b = bundle.vector('sleeve', other)[space.dims.indexOf(d.dim)];
        assert.ok(Math.abs(d.share - (a - b) ** 2 / neighbour.distance ** 2) < 1e-4);
      }
      assert.deepEqual(
        otherConditions.map((o) => o.condition),
        fixture.catalogue.conditions.filter((c) => c !== 'sleeve'),
      );
      for (const o of otherConditions) {
        assert.ok(Math.abs(o.distance - bundle.distance(o.condition, slot, other)) < 1e-5);
      }
      const theirs = catalogueById.get(neighbour.product.id)!;
      const sharesSleeve = query.attributes.sleeve.some((v) => theirs.attributes.sleeve.includes(v));
      assert.equal(
        attributes?.shared.some((s) => s.condition === 'sleeve'),
        sharesSleeve,
      );
      assert.equal(
        attributes?.differing.some((d) => d.condition === 'sleeve'),
        !sharesSleeve,
      );
      assert.match(summary, /closer than (\d+(\.\d)?% of random pairs|every sampled random pair)/);
      assert.equal(
        neighbour.heatmapUrl,
        `/similar/${query.id}/${neighbour.product.id}/heatmap.png?condition=sleeve`,
      );
    });
  });

  test('GET /similar/{id} without condition: one group per condition in one response', async () => {
    const { body } = await json<Schemas['SimilarResponse']>(`/similar/${product(1).id}?k=3`);
    assert.deepEqual(
      body.groups.map((g) => g.condition),
      fixture.catalogue.conditions,
    );
    for (const group of body.groups) assert.equal(group.neighbours.length, 3);
    const { body: defaults } = await json<Schemas['SimilarResponse']>(`/similar/${product(1).id}`);
    assert.equal(defaults.k, 10);
    assert.equal(defaults.groups[0].neighbours.length, 10);
  });

  test('GET /similar errors: unknown product 404, unknown condition 400 listing valid ones, bad k 400', async () => {
    await expectProblem(await get('/similar/no-such-product?condition=color'), 404, 'unknown-product');
    const problem = await expectProblem(
      await get(`/similar/${product(0).id}?condition=fabric`),
      400,
      'unknown-condition',
    );
    assert.deepEqual(problem.validConditions, fixture.catalogue.conditions);
    assert.match(problem.detail ?? '', /fabric/);
    for (const k of ['0', '101', 'abc', '2.5', '-3']) {
      const bad = await expectProblem(await get(`/similar/${product(0).id}?k=${k}`), 400, 'invalid-request');
      assert.ok(
        bad.errors?.some((e) => e.path?.includes('k')),
        `k=${k} names the parameter`,
      );
    }
  });

  test('unknown routes are 404 and wrong methods 405, as problems', async () => {
    await expectProblem(await get('/no/such/route'), 404, 'not-found');
    await expectProblem(
      await get(`/similar/${product(0).id}`, { method: 'DELETE' }),
      405,
      'method-not-allowed',
    );
  });
});

describe('query by uploaded image', () => {
  test('POST /similar embeds the upload: a product image finds that product first, at distance ~0', async () => {
    const target = product(7);
    const bytes = await readFile(join(fixture.catalogue.root, target.image));
    const { response, body } = await json<Schemas['SimilarResponse']>('/similar?k=3', {
      method: 'POST',
      // the declared type is wrong on purpose: the format is read from the bytes
      body: upload(bytes, 'photo.bin', 'application/octet-stream'),
    });
    assert.equal(response.status, 200, JSON.stringify(body));
    assert.equal(body.query.source, 'upload');
    assert.equal(body.query.product, undefined);
    assert.equal(body.groups.length, fixture.catalogue.conditions.length);
    for (const group of body.groups) {
      assert.equal(group.neighbours.length, 3);
      assert.equal(
        group.neighbours[0].product.id,
        target.id,
        `${group.condition}: the product itself comes first`,
      );
      assert.ok(group.neighbours[0].distance < 1e-3);
      assert.equal((group.neighbours[0].explanation as Schemas['Explanation']).attributes, null);
      assert.equal(group.neighbours[0].heatmapUrl, undefined);
    }
    const one = await json<Schemas['SimilarResponse']>('/similar?condition=color&k=2', {
      method: 'POST',
      body: upload(bytes, 'photo.png', 'image/png'),
    });
    assert.deepEqual(
      one.body.groups.map((g) => g.condition),
      ['color'],
    );
  });

  test('POST /similar errors: non-image 415, oversized 413, not multipart 415, no file 400, bad condition 400', async () => {
    const text = new TextEncoder().encode('this is not an image at all');
    await expectProblem(
      await get('/similar', { method: 'POST', body: upload(text, 'notes.txt', 'text/plain') }),
      415,
      'unsupported-media-type',
    );
    // lying about the type does not help: the bytes are sniffed
    await expectProblem(
      await get('/similar', { method: 'POST', body: upload(text, 'fake.png', 'image/png') }),
      415,
      'unsupported-media-type',
    );
    const svg = new TextEncoder().encode(
      '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"></svg>',
    );
    await expectProblem(
      await get('/similar', { method: 'POST', body: upload(svg, 'x.svg', 'image/svg+xml') }),
      415,
      'unsupported-media-type',
    );
    const big = await sharp({
      create: {
        width: 400,
        height: 400,
        channels: 3,
        background: '#808080',
        noise: { type: 'gaussian', mean: 128, sigma: 60 },
      },
    })
      .png({ compressionLevel: 0 })
      .toBuffer();
    assert.ok(big.length > MAX_UPLOAD);
    await expectProblem(
      await get('/similar', { method: 'POST', body: upload(big, 'big.png', 'image/png') }),
      413,
      'upload-too-large',
    );
    await expectProblem(
      await get('/similar', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ image: 'x' }),
      }),
      415,
      'unsupported-media-type',
    );
    const png = await readFile(join(fixture.catalogue.root, product(0).image));
    await expectProblem(
      await get('/similar', { method: 'POST', body: upload(png, 'a.png', 'image/png', 'picture') }),
      400,
      'invalid-request',
    );
    const problem = await expectProblem(
      await get('/similar?condition=fabric', { method: 'POST', body: upload(png, 'a.png', 'image/png') }),
      400,
      'unknown-condition',
    );
    assert.deepEqual(problem.validConditions, fixture.catalogue.conditions);
  });
});

describe('heat maps', () => {
  test('GET heatmap.png paints the saliency over the neighbour (or the query) image', async () => {
    const [a, b] = [product(0).id, product(1).id];
    const response = await get(`/similar/${a}/${b}/heatmap.png?condition=color`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/png');
    const png = Buffer.from(await response.arrayBuffer());
    const meta = await sharp(png).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['png', 224, 224]);
    const small = Buffer.from(
      await (await get(`/similar/${a}/${b}/heatmap.png?condition=color&size=64`)).arrayBuffer(),
    );
    assert.equal((await sharp(small).metadata()).width, 64);
    // the map depends on the condition's mask, and side=query paints the other product's image
    const otherCondition = Buffer.from(
      await (await get(`/similar/${a}/${b}/heatmap.png?condition=length&size=64`)).arrayBuffer(),
    );
    assert.ok(!otherCondition.equals(small));
    const querySide = Buffer.from(
      await (await get(`/similar/${a}/${b}/heatmap.png?condition=color&size=64&side=query`)).arrayBuffer(),
    );
    assert.ok(!querySide.equals(small));
  });

  test('heat map errors: condition required, unknown condition 400, unknown products 404', async () => {
    const [a, b] = [product(0).id, product(1).id];
    await expectProblem(await get(`/similar/${a}/${b}/heatmap.png`), 400, 'invalid-request');
    await expectProblem(
      await get(`/similar/${a}/${b}/heatmap.png?condition=fabric`),
      400,
      'unknown-condition',
    );
    await expectProblem(await get(`/similar/${a}/nope/heatmap.png?condition=color`), 404, 'unknown-product');
    await expectProblem(await get(`/similar/nope/${b}/heatmap.png?condition=color`), 404, 'unknown-product');
    await expectProblem(
      await get(`/similar/${a}/${b}/heatmap.png?condition=color&side=left`),
      400,
      'invalid-request',
    );
  });
});

describe('model on the main thread', () => {
  test('--model-thread main answers uploads and heat maps the same way', async () => {
    const local = await startLocalServer({
      ...fixture.served,
      modelPath: fixture.modelPath,
      modelThread: 'main',
    });
    try {
      await local.ready;
      const target = product(9);
      const bytes = await readFile(join(fixture.catalogue.root, target.image));
      const form = upload(bytes, 'p.png', 'image/png');
      const response = await fetch(`${local.url}/similar?condition=pattern&k=1`, {
        method: 'POST',
        body: form,
      });
      const body = (await response.json()) as Schemas['SimilarResponse'];
      assert.equal(body.groups[0].neighbours[0].product.id, target.id);
      const worker = await fetch(
        `${server.url}/similar/${product(0).id}/${product(1).id}/heatmap.png?condition=color&size=64`,
      );
      const main = await fetch(
        `${local.url}/similar/${product(0).id}/${product(1).id}/heatmap.png?condition=color&size=64`,
      );
      assert.equal(main.status, 200);
      assert.ok(Buffer.from(await main.arrayBuffer()).equals(Buffer.from(await worker.arrayBuffer())));
    } finally {
      await local.stop();
    }
  });
});
