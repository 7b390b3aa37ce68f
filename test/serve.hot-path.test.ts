/**
 * The hot path (src/serve/hot-path.ts) answers plain GET /similar URLs ahead of the express chain. Two real servers
 * on the same bundle, one with it and one without, get the same URLs: plain ones it must answer, and every kind
 * it must hand to the full path (filters, escapes, repeated or unknown parameters, values the contract refuses,
 * unknown products). Status, headers and body bytes must be the same from both, and /metrics must show which
 * path answered.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { RunningServer } from '../src/serve/server.ts';
import {
  GOLDEN_FIXTURE,
  startLocalServer,
  startServedFixture,
  type ServeFixture,
  type ServedFixture,
} from './fixtures/serve/build.ts';

let served: ServedFixture;
let fixture: ServeFixture;
let hot: RunningServer;
let full: RunningServer;
/** With the answer cache, as served by default. */
let cached: RunningServer;

before(async () => {
  // No answer cache: every answer is computed by the path under test.
  const options = { answerCacheBytes: 0, validateResponses: false };
  served = await startServedFixture('dressmatch-hot-path-', GOLDEN_FIXTURE, { ...options, hotPath: true });
  ({ fixture, server: hot } = served);
  full = await startLocalServer({
    ...fixture.served,
    modelPath: fixture.modelPath,
    ...options,
    hotPath: false,
  });
  await full.ready;
  cached = await startLocalServer({
    ...fixture.served,
    modelPath: fixture.modelPath,
    validateResponses: false,
  });
  await cached.ready;
});

after(async () => {
  await full?.stop();
  await cached?.stop();
  await served?.close();
});

/** URLs the hot path answers itself. */
function plainUrls(): string[] {
  const [a, b] = [fixture.products[0].id, fixture.products[7].id];
  const [c0, c1, c2] = fixture.catalogue.conditions;
  return [
    `/similar/${a}`,
    `/similar/${a}?condition=${c0}&k=5`,
    `/similar/${b}?k=3&condition=${c2}&explain=summary`,
    `/similar/${b}?explain=none`,
    `/similar/${a}?k=1`,
    `/similar/${a}?k=100&condition=${c1}`,
    `/similar/${b}?condition=${c0}:2,${c1}:1&k=4`,
  ];
}

/** URLs the hot path must hand to the full path: each is an error, or needs decoding or filtering. */
function handedOnUrls(): string[] {
  const a = fixture.products[0].id;
  const [c0] = fixture.catalogue.conditions;
  return [
    `/similar/no-such-product?k=3`,
    `/similar/${a}?condition=no-such-condition`,
    `/similar/${a}?condition=${c0}:2,no-such:1`,
    `/similar/${a}?condition=`,
    `/similar/${a}?k=0`,
    `/similar/${a}?k=101`,
    `/similar/${a}?k=01`,
    `/similar/${a}?k=1e1`,
    `/similar/${a}?k=+5`,
    `/similar/${a}?k=%205`,
    `/similar/${a}?k=3&k=4`,
    `/similar/${a}?explain=most`,
    `/similar/${a}?colour=red`,
    `/similar/${a}?k`,
    `/similar/${a}?=5`,
    `/similar/${a}?`,
    `/similar/${a}?k=3&`,
    `/similar/${a}?condition=${c0}&filter=${c0}:red`,
    `/similar/${encodeURIComponent(a).replace('-', '%2D')}?k=2`,
    `/similar/${a}/`,
    `/Similar/${a}?k=2`,
    `/similar/${'x'.repeat(257)}`,
  ];
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * A raw GET over node:http (fetch would normalise the URL and add headers), with the same request id for both
 * servers: problems carry it.
 */
function rawGet(
  server: RunningServer,
  path: string,
  method = 'GET',
  extraHeaders: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const { hostname, port } = new URL(server.url);
    const headers = { 'x-request-id': 'hot-path-test', ...extraHeaders };
    const call = request({ hostname, port, path, method, headers }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
      );
    });
    call.on('error', reject).end();
  });
}

/** Headers that differ between any two responses (the clock, the socket). */
const PER_RESPONSE = new Set(['date', 'connection', 'keep-alive']);

function sameAnswer(url: string, fromHot: Answer, fromFull: Answer): void {
  assert.equal(fromHot.status, fromFull.status, `${url}: same status`);
  assert.equal(fromHot.body, fromFull.body, `${url}: same body bytes`);
  const headers = (answer: Answer) =>
    Object.entries(answer.headers).filter(([name]) => !PER_RESPONSE.has(name));
  assert.deepEqual(headers(fromHot), headers(fromFull), `${url}: same headers, in the same order`);
}

async function counter(server: RunningServer, series: string): Promise<number> {
  const text = (await rawGet(server, '/metrics')).body;
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

function hotPathCount(outcome: 'answered' | 'handed_on'): Promise<number> {
  return counter(hot, `dressmatch_hot_path_requests_total{outcome="${outcome}"}`);
}

test('plain GET /similar URLs: the hot path answers them, with the bytes and headers of the full path', async () => {
  const before = await hotPathCount('answered');
  for (const url of plainUrls()) {
    const [fromHot, fromFull] = [await rawGet(hot, url), await rawGet(full, url)];
    assert.equal(fromFull.status, 200, `${url}: ${fromFull.body}`);
    sameAnswer(url, fromHot, fromFull);
  }
  assert.equal(
    (await hotPathCount('answered')) - before,
    plainUrls().length,
    'every plain URL took the hot path',
  );
});

test('errors, filters, escapes and odd queries go to the full path and get its answers', async () => {
  const answered = await hotPathCount('answered');
  for (const url of handedOnUrls()) {
    const [fromHot, fromFull] = [await rawGet(hot, url), await rawGet(full, url)];
    sameAnswer(url, fromHot, fromFull);
  }
  for (const url of [`/similar/${fixture.products[0].id}?k=2`]) {
    sameAnswer(`HEAD ${url}`, await rawGet(hot, url, 'HEAD'), await rawGet(full, url, 'HEAD'));
  }
  const unknownProducts = handedOnUrls().filter((url) => url.includes('no-such')).length;
  assert.equal(await hotPathCount('answered'), answered, 'the hot path answered none of them');
  assert.ok(
    (await hotPathCount('handed_on')) >= unknownProducts,
    'the URLs that passed its check but named unknown things were handed on',
  );
});

test('answers from the cache, 304s, HEAD and the probe, all given ahead of express, match the full path', async () => {
  const hits = () => counter(cached, 'dressmatch_image_cache_lookups_total{cache="answer",outcome="hit"}');
  const before = await hits();
  for (const url of plainUrls().slice(0, 3)) {
    const fromFull = await rawGet(full, url);
    const etag = String(fromFull.headers.etag);
    assert.match(etag, /^"[0-9a-f]+-/, `${url}: the full path sends a strong ETag`);
    const held = { 'if-none-match': etag };
    // First the computed answer (a 304 straight away: the client already holds it), then cached ones.
    sameAnswer(
      `${url} computed, held`,
      await rawGet(cached, url, 'GET', held),
      await rawGet(full, url, 'GET', held),
    );
    sameAnswer(`${url} cached`, await rawGet(cached, url), fromFull);
    sameAnswer(
      `${url} cached, held`,
      await rawGet(cached, url, 'GET', held),
      await rawGet(full, url, 'GET', held),
    );
    const reload = { ...held, 'cache-control': 'no-cache' };
    sameAnswer(
      `${url} reload`,
      await rawGet(cached, url, 'GET', reload),
      await rawGet(full, url, 'GET', reload),
    );
    sameAnswer(`HEAD ${url} cached`, await rawGet(cached, url, 'HEAD'), await rawGet(full, url, 'HEAD'));
    assert.equal(
      (await rawGet(cached, url, 'GET', held)).status,
      304,
      `${url}: held answers are not sent again`,
    );
  }
  assert.equal(await hits(), before + 3 * 5, 'every repeated request was answered from the cache');
  const probe = await rawGet(cached, '/healthz');
  assert.equal(probe.body, '{"status":"ok"}', 'the probe answers');
  const held = { 'if-none-match': String(probe.headers.etag) };
  assert.equal(
    (await rawGet(cached, '/healthz', 'GET', held)).status,
    304,
    'the probe honours If-None-Match',
  );
});
