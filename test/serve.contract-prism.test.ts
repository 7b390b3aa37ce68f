/**
 * Every answer is in the contract, as an independent validator sees it: a broad set of requests goes through
 * Prism (`@stoplight/prism-cli`) as a validating proxy in front of a real server on 127.0.0.1. Requests the
 * contract allows go through `prism proxy openapi.yaml <server> --errors`, which turns any response violation
 * into an error answer; requests the contract refuses (Prism would answer those itself with --errors) go through
 * a second proxy without --errors, whose `sl-violations` header must name no response violation. Uploads are
 * checked without Prism (it re-encodes binary multipart bodies): the server checks its own bytes against the
 * contract in tests (response-checks.ts) and answers 500 on any violation.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServedFixture, type ServeFixture, type ServedFixture } from './fixtures/serve/build.ts';

const PRISM = fileURLToPath(new URL('../node_modules/.bin/prism', import.meta.url));
const SPEC = fileURLToPath(new URL('../openapi.yaml', import.meta.url));

let served: ServedFixture;
let fixture: ServeFixture;
const proxies: { process: ChildProcess; url: string }[] = [];

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A Prism proxy in front of `upstream`; resolves once it listens. */
async function startPrism(
  upstream: string,
  errors: boolean,
): Promise<{ process: ChildProcess; url: string }> {
  const port = await freePort();
  const args = [
    'proxy',
    SPEC,
    upstream,
    '-h',
    '127.0.0.1',
    '-p',
    String(port),
    ...(errors ? ['--errors'] : []),
  ];
  const child = spawn(PRISM, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`prism did not start: ${output}`)), 90_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Prism is listening/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`prism exited with ${code}: ${output}`)));
  });
  const proxy = { process: child, url: `http://127.0.0.1:${port}` };
  proxies.push(proxy);
  return proxy;
}

before(async () => {
  served = await startServedFixture('dressmatch-serve-prism-');
  fixture = served.fixture;
});

after(async () => {
  for (const proxy of proxies) proxy.process.kill();
  await served?.close();
});

interface Ask {
  path: string;
  init?: RequestInit;
  /** The status the server should give. */
  status: number;
}

/** A GET with If-None-Match over node:http: its status and its `sl-violations` header. */
function conditionalGet(url: string, etag: string): Promise<{ status: number; violations?: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { 'if-none-match': etag } }, (response) => {
      response.resume();
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          violations: response.headers['sl-violations'] as string | undefined,
        }),
      );
    }).on('error', reject);
  });
}

function validRequests(): Ask[] {
  const [a, b, c] = [fixture.products[0], fixture.products[5], fixture.products[9]];
  const [c0, c1] = fixture.catalogue.conditions;
  const json = (body: unknown): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return [
    { path: '/healthz', status: 200 },
    { path: '/readyz', status: 200 },
    { path: '/conditions', status: 200 },
    { path: '/products', status: 200 },
    { path: '/products?q=a&offset=1&limit=5', status: 200 },
    { path: `/products/${a.id}`, status: 200 },
    { path: '/products/no-such-product', status: 404 },
    { path: `/products/${a.id}/image`, status: 200 },
    { path: `/products/${a.id}/image?size=64`, status: 200 },
    { path: `/similar/${a.id}`, status: 200 },
    { path: `/similar/${a.id}?condition=${c0}&k=3&explain=summary`, status: 200 },
    { path: `/similar/${a.id}?condition=${c0}&k=01`, status: 200 },
    { path: `/similar/${a.id}?k=2&explain=none&filter=in_stock:true`, status: 200 },
    { path: `/similar/${b.id}?condition=${c0}:2,${c1}:1&k=4&filter=price<120`, status: 200 },
    { path: `/similar/${a.id}?condition=no-such-condition`, status: 400 },
    { path: `/similar/${a.id}?filter=constructor:x`, status: 400 },
    { path: '/similar/no-such-product', status: 404 },
    { path: `/similar/${a.id}/${b.id}/heatmap.png?condition=${c0}&size=64`, status: 200 },
    { path: '/openapi.yaml', status: 200 },
    { path: '/problems/not-found', status: 200 },
    { path: '/problems/no-such-problem', status: 404 },
    { path: '/metrics', status: 200 },
    {
      path: '/recommend',
      init: json({ positive: [a.id, b.id], negative: [c.id], condition: c0, k: 3 }),
      status: 200,
    },
    { path: '/recommend', init: json({ positive: ['nobody'], condition: c0 }), status: 404 },
    {
      path: '/recommend',
      init: json({ positive: [a.id], condition: c0, filter: ['toString:x'] }),
      status: 400,
    },
  ];
}

function invalidRequests(): Ask[] {
  const a = fixture.products[0];
  return [
    { path: `/similar/${a.id}?k=0`, status: 400 },
    { path: `/similar/${a.id}?k=abc`, status: 400 },
    { path: `/similar/${a.id}?explain=some`, status: 400 },
    { path: `/similar/${a.id}?unknown=1`, status: 400 },
    { path: '/healthz?x=1', status: 400 },
    { path: '/products?limit=0', status: 400 },
    {
      path: '/recommend',
      init: { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"positive": 5}' },
      status: 400,
    },
  ];
}

// Slow: starts Prism (a separate Node process that loads openapi.yaml) and sends every request through it.
test(
  'every answer to a valid request passes Prism --errors (a validating proxy)',
  { timeout: 180_000 },
  async () => {
    const prism = await startPrism(served.server.url, true);
    for (const ask of validRequests()) {
      const response = await fetch(`${prism.url}${ask.path}`, ask.init);
      const text = await response.text();
      const what = `${ask.init?.method ?? 'GET'} ${ask.path}`;
      assert.equal(
        response.headers.get('sl-violations'),
        null,
        `${what}: no violation (${text.slice(0, 300)})`,
      );
      assert.equal(response.status, ask.status, `${what}: ${text.slice(0, 300)}`);
    }
    // 304, which the ETag'd GETs send (node:http: fetch adds Cache-Control: no-cache to conditional requests).
    // Through the proxy the answer must carry no violation; straight to the server it must be the 304, which
    // the server's own checks of its answers (response-checks.ts) would turn into a 500 if undeclared.
    const path = `/similar/${fixture.products[1].id}?k=2`;
    const etag = (await fetch(`${served.server.url}${path}`)).headers.get('etag') ?? '';
    const proxied = await conditionalGet(`${prism.url}${path}`, etag);
    assert.equal(proxied.violations, undefined, 'a conditional GET through the proxy');
    assert.equal((await conditionalGet(`${served.server.url}${path}`, etag)).status, 304);
  },
);

// Slow: a second Prism process, as above.
test(
  'every answer to a refused request is in the contract (Prism without --errors)',
  { timeout: 180_000 },
  async () => {
    const prism = await startPrism(served.server.url, false);
    for (const ask of invalidRequests()) {
      const response = await fetch(`${prism.url}${ask.path}`, ask.init);
      const text = await response.text();
      const what = `${ask.init?.method ?? 'GET'} ${ask.path}`;
      assert.equal(response.status, ask.status, `${what}: ${text.slice(0, 300)}`);
      const violations = JSON.parse(response.headers.get('sl-violations') ?? '[]') as {
        location: string[];
      }[];
      const ofResponse = violations.filter((v) => v.location[0] === 'response');
      assert.deepEqual(ofResponse, [], `${what}: the answer breaks the contract`);
    }
  },
);

test("GET /conditions names each condition's test accuracy and MAP (null: this version records none)", async () => {
  const body = (await (await fetch(`${served.server.url}/conditions`)).json()) as {
    conditions: { name: string; testAccuracy: unknown; testMap: unknown }[];
  };
  for (const condition of body.conditions) {
    assert.equal(condition.testAccuracy, null, condition.name);
    assert.equal(condition.testMap, null, condition.name);
  }
});

test('uploads: the server checks its own bytes against the contract (200, or 500 naming the violation)', async () => {
  const image = await readFile(join(fixture.catalogue.root, fixture.products[3].image));
  for (const query of ['?k=3', `?condition=${fixture.catalogue.conditions[0]}&k=2&filter=in_stock:true`]) {
    const body = new FormData();
    body.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), 'a.png');
    const response = await fetch(`${served.server.url}/similar${query}`, { method: 'POST', body });
    assert.equal(response.status, 200, `${query}: ${await response.text()}`);
  }
});
