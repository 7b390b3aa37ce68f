/**
 * The hostile battery of issue 16, over real HTTP against real servers on 127.0.0.1 (a seeded CSN in its worker
 * thread, a real HNSW bundle, real images): every row is one test that failed on the code before the fix. The main
 * server runs the whole battery without going down (checked at the end).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { crc32, deflateSync } from 'node:zlib';
import { pino } from 'pino';
import type { RunningServer } from '../src/serve/server.ts';
import {
  startLocalServer,
  startServedFixture,
  type ServeFixture,
  type ServedFixture,
} from './fixtures/serve/build.ts';
import { expectProblem, type Problem } from './fixtures/serve/problem.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MAX_UPLOAD = 256 * 1024;
let served: ServedFixture;
let root: string;
let fixture: ServeFixture;
let server: RunningServer;
/** JSON log lines of the main server. */
const logs: { level: number; msg: string }[] = [];

before(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as never);
      done();
    },
  });
  served = await startServedFixture(
    'dressmatch-serve-hostile-',
    {},
    {
      maxUploadBytes: MAX_UPLOAD,
      pollIntervalMs: 100,
      // Short enough for test 9 to wait out, long enough that a first request on a busy machine (three test
      // files at once) is not cut off while the server still warms up.
      requestTimeoutMs: 5000,
      headersTimeoutMs: 4000,
      maxQueuedHeatmaps: 2,
      logger: pino({ level: 'info' }, sink),
    },
  );
  ({ root, fixture, server } = served);
});

after(() => served?.close());

function url(path: string): string {
  return `${server.url}${path}`;
}

function form(files: { bytes: Uint8Array; name: string }[]): FormData {
  const body = new FormData();
  for (const file of files)
    body.append('image', new Blob([new Uint8Array(file.bytes)], { type: 'image/png' }), file.name);
  return body;
}

/** One PNG chunk: length, type, data, CRC of type and data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  const typed = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  crc.writeUInt32BE(crc32(typed));
  return Buffer.concat([length, typed, crc]);
}

/** A tiny PNG file whose header declares `side` x `side` pixels. */
function bombPng(side: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(side, 0);
  header.writeUInt32BE(side, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Send raw bytes on a fresh connection; resolves with what the server sent before it closed the connection. */
function rawExchange(bytes: string): Promise<string> {
  const address = new URL(server.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(address.port), address.hostname, () => socket.write(bytes));
    let received = '';
    socket.on('data', (chunk) => {
      received += chunk.toString();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(received));
  });
}

describe('issue 16: every bad input gets a precise answer', () => {
  test('1: a multipart body that cannot be parsed is a 400, not a 500', async () => {
    const garbage = await fetch(url('/similar'), {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=X' },
      body: 'garbage that is no multipart body at all',
    });
    await expectProblem(garbage, 400, 'garbage body');
    const part =
      '--X\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n';
    const truncated = await fetch(url('/similar'), {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=X' },
      body: `${part}\u0089PNG half a file`,
    });
    await expectProblem(truncated, 400, 'truncated body');
    const wrongBoundary = await fetch(url('/similar'), {
      method: 'POST',
      headers: { 'Content-Type': 'multipart/form-data; boundary=Y' },
      body: `${part}bytes\r\n--X--\r\n`,
    });
    await expectProblem(wrongBoundary, 400, 'wrong boundary');
  });

  test('2: a zero-byte upload is a 400 problem', async () => {
    const response = await fetch(url('/similar'), {
      method: 'POST',
      body: form([{ bytes: new Uint8Array(0), name: 'empty.png' }]),
    });
    const problem = await expectProblem(response, 400, 'empty file');
    assert.match(problem.detail ?? '', /empty/i, 'the detail says the file is empty');
  });

  test('3: + is a space in a query string, and unencoded sub-delimiters are accepted in q', async () => {
    const colour = fixture.products[0].attributes.color[0];
    const both = fixture.products[0].title.split(' ').slice(0, 2).join('+');
    const plus = await fetch(url(`/products?q=${both}`));
    assert.equal(plus.status, 200, `q=${both}: ${await plus.clone().text()}`);
    const spaced = (await (
      await fetch(url(`/products?q=${encodeURIComponent(both.replace('+', ' '))}`))
    ).json()) as {
      total: number;
    };
    assert.equal(((await plus.json()) as { total: number }).total, spaced.total, '+ reads as a space');
    assert.ok(spaced.total >= 1, 'the two words of a title find that product');
    const odd = await fetch(url(`/products?q=${colour}(*!',:/@$;`));
    assert.equal(odd.status, 200, `unencoded sub-delimiters: ${await odd.text()}`);
  });

  test('4: /readyz without an index names no file-system path', async () => {
    const empty = join(root, 'no-index-here');
    await mkdir(empty, { recursive: true });
    const bare = await startLocalServer({ indexDir: empty });
    try {
      const problem = await expectProblem(await fetch(`${bare.url}/readyz`), 503, 'no index');
      assert.ok(!(problem.detail ?? '').includes(root), `no path in the detail: ${problem.detail}`);
      assert.doesNotMatch(problem.detail ?? '', /\/[\w.-]+\//, 'nothing that looks like a path');
    } finally {
      await bare.stop();
    }
  });

  test('5: a PNG declaring 50000x50000 pixels is a 413 naming the pixel limit', async () => {
    const response = await fetch(url('/similar'), {
      method: 'POST',
      body: form([{ bytes: bombPng(50_000), name: 'bomb.png' }]),
    });
    const problem = await expectProblem(response, 413, 'pixel bomb');
    assert.match(
      problem.detail ?? '',
      /40000000|40,000,000/,
      `the limit is in the detail: ${problem.detail}`,
    );
  });

  test('6: every 405 lists the allowed methods in Allow', async () => {
    for (const [method, path, allowed] of [
      ['DELETE', '/healthz', ['GET', 'HEAD']],
      ['POST', '/products', ['GET', 'HEAD']],
      ['PUT', '/similar', ['POST']],
    ] as const) {
      const response = await fetch(url(path), { method });
      await expectProblem(response, 405, `${method} ${path}`);
      const allow = (response.headers.get('allow') ?? '').split(/,\s*/);
      for (const m of allowed)
        assert.ok(allow.includes(m), `${method} ${path}: Allow "${allow.join(', ')}" has ${m}`);
    }
  });

  test('7: integer parameters accept only plain decimal integers', async () => {
    const id = fixture.products[0].id;
    for (const k of ['0x10', '1e1', '%2B5', '%205', '5.0']) {
      await expectProblem(await fetch(url(`/similar/${id}?condition=color&k=${k}`)), 400, `k=${k}`);
    }
    await expectProblem(await fetch(url('/products?limit=0x10')), 400, 'limit=0x10');
    assert.equal((await fetch(url(`/similar/${id}?condition=color&k=5`))).status, 200, 'k=5 still works');
  });

  test('8: encoded traversal answers a problem+json 404, never a redirect', async () => {
    for (const path of [
      '/similar/x%2F..%2F..',
      '/docs/%2e%2e/%2e%2e/etc/passwd',
      '/%2e%2e/%2e%2e/etc/passwd',
    ]) {
      const response = await fetch(url(path), { redirect: 'manual' });
      assert.equal(response.headers.get('location'), null, `${path}: no redirect`);
      await expectProblem(response, 404, path);
    }
  });

  test(
    '9: a client that sends headers and then a slow body is cut off by the request timeout',
    { timeout: 20_000 },
    async () => {
      const answer = await rawExchange(
        'POST /similar HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=X\r\nContent-Length: 100000\r\n\r\n--X\r\n',
      );
      assert.match(answer, /^HTTP\/1\.1 408/, `cut off with 408: ${answer.slice(0, 80)}`);
      const headersOnly = await rawExchange('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      assert.match(headersOnly, /^HTTP\/1\.1 408/, `unfinished headers cut off: ${headersOnly.slice(0, 80)}`);
      assert.ok(
        server.server.maxConnections > 0 && Number.isFinite(server.server.maxConnections),
        'maxConnections is set',
      );
      assert.ok(server.server.keepAliveTimeout > 0, 'keep-alive timeout is set');
    },
  );

  test('10: a burst of heat maps cannot starve uploads', async () => {
    const products = fixture.products;
    const heatmaps = products
      .slice(0, 12)
      .flatMap((a, i) =>
        products
          .slice(12, 16)
          .map((b) => fetch(url(`/similar/${a.id}/${b.id}/heatmap.png?condition=color&size=${96 + i}`))),
      );
    const image = await readFile(join(fixture.catalogue.root, products[3].image));
    const upload = await fetch(url('/similar?condition=color&k=3'), {
      method: 'POST',
      body: form([{ bytes: image, name: 'a.png' }]),
    });
    assert.equal(upload.status, 200, `the upload is answered: ${await upload.text()}`);
    const answers = await Promise.all(heatmaps);
    const refused = answers.filter((response) => response.status === 503);
    assert.ok(refused.length > 0, 'some heat maps were refused (the burst is larger than their queue)');
    for (const response of refused) {
      assert.equal(response.headers.get('retry-after'), '1', 'refused heat maps say when to retry');
      assert.match(
        ((await response.json()) as Problem).detail ?? '',
        /heat maps/,
        'the detail names the kind that is full',
      );
    }
    for (const response of answers) if (response.status === 200) await response.arrayBuffer();
  });

  test('11: resized images are cached, and computed once for concurrent requests', async () => {
    const id = fixture.products[7].id;
    const answers = await Promise.all(
      Array.from({ length: 24 }, () => fetch(url(`/products/${id}/image?size=1000`))),
    );
    const bodies = await Promise.all(answers.map((response) => response.arrayBuffer()));
    assert.ok(
      answers.every((response) => response.status === 200),
      'all thumbnails are served',
    );
    assert.ok(
      bodies.every((body) => Buffer.from(body).equals(Buffer.from(bodies[0]))),
      'all the same image',
    );
    const metrics = await (await fetch(url('/metrics'))).text();
    const count = (outcome: string) =>
      Number(
        metrics.match(
          new RegExp(
            `dressmatch_image_cache_lookups_total\\{cache="thumbnail",outcome="${outcome}"\\} (\\d+)`,
          ),
        )?.[1] ?? NaN,
      );
    assert.equal(count('miss'), 1, 'rendered once');
    assert.equal(count('hit'), 23, 'the other 23 requests were served from the cache');
  });

  test('12: a garbage manifest next to a good version is logged once, not on every poll', async () => {
    const manifest = join(fixture.indexDir, 'manifest.json');
    const good = join(root, 'manifest.good.json');
    await copyFile(manifest, good);
    const before = server.state.index?.version;
    try {
      // Written whole, then renamed into place: the server polls every 100 ms, and a read of a half-written file
      // would be a second, different problem (this test failed that way under load).
      await writeFile(`${manifest}.tmp`, '{"current": 12, garbage');
      await rename(`${manifest}.tmp`, manifest);
      // 15 polls at 100 ms
      for (let i = 0; i < 15; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        await server.state.check();
      }
      const errors = logs.filter((line) => line.level >= 50 && /manifest/.test(line.msg));
      assert.equal(errors.length, 1, `logged at error level once, not ${errors.length} times`);
      assert.equal(server.state.index?.version, before, 'still serving the good version');
      assert.equal((await fetch(url('/readyz'))).status, 200, 'still ready');
    } finally {
      await copyFile(good, manifest);
    }
  });

  test('13: the 413 for too many files or too large a file names the limit hit', async () => {
    const image = await readFile(join(fixture.catalogue.root, fixture.products[0].image));
    const two = await fetch(url('/similar'), {
      method: 'POST',
      body: form([
        { bytes: image, name: 'a.png' },
        { bytes: image, name: 'b.png' },
      ]),
    });
    const files = await expectProblem(two, 413, 'two files');
    assert.match(
      files.detail ?? '',
      /files?.*limit of 1|limit of 1.*files?/i,
      `names the file-count limit: ${files.detail}`,
    );
    const big = await fetch(url('/similar'), {
      method: 'POST',
      body: form([{ bytes: new Uint8Array(MAX_UPLOAD + 1), name: 'big.png' }]),
    });
    const size = await expectProblem(big, 413, 'large file');
    assert.match(size.detail ?? '', new RegExp(String(MAX_UPLOAD)), `names the size limit: ${size.detail}`);
  });
});

describe('issue 16: also', () => {
  test('HSTS is not sent over plain HTTP, unless --hsts says TLS ends in front', async () => {
    const plain = await fetch(url('/healthz'));
    assert.equal(plain.headers.get('strict-transport-security'), null, 'no HSTS over plain HTTP');
    const fronted = await startLocalServer({ indexDir: fixture.indexDir, hsts: true });
    try {
      const response = await fetch(`${fronted.url}/healthz`);
      assert.match(
        response.headers.get('strict-transport-security') ?? '',
        /max-age=\d+/,
        'HSTS with --hsts',
      );
    } finally {
      await fronted.stop();
    }
  });

  test('rate limiting is off by default, and when on answers 429 with Retry-After (probes are not limited)', async () => {
    assert.equal((await fetch(url('/conditions'))).headers.get('ratelimit'), null, 'off by default');
    const limited = await startLocalServer({ indexDir: fixture.indexDir, rateLimitPerMinute: 3 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${limited.url}/conditions`)).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429], 'the fourth request in a minute is refused');
      const refused = await fetch(`${limited.url}/conditions`);
      const problem = await expectProblem(refused, 429, 'over the limit');
      assert.equal(problem.type, '/problems/too-many-requests');
      assert.match(refused.headers.get('retry-after') ?? '', /^\d+$/, 'Retry-After in seconds');
      assert.equal((await fetch(`${limited.url}/healthz`)).status, 200, 'probes are not limited');
    } finally {
      await limited.stop();
    }
  });

  test('/metrics can move to a port of its own and sit behind a bearer token', async () => {
    const guarded = await startLocalServer({
      indexDir: fixture.indexDir,
      metricsPort: 0,
      metricsToken: 's3cret',
    });
    try {
      await expectProblem(await fetch(`${guarded.url}/metrics`), 404, 'no /metrics on the API port');
      assert.ok(guarded.metricsUrl, 'the metrics port is reported');
      await expectProblem(await fetch(`${guarded.metricsUrl}/metrics`), 401, 'no token');
      await expectProblem(
        await fetch(`${guarded.metricsUrl}/metrics`, { headers: { Authorization: 'Bearer wrong!' } }),
        401,
        'wrong token',
      );
      const scraped = await fetch(`${guarded.metricsUrl}/metrics`, {
        headers: { Authorization: 'Bearer s3cret' },
      });
      assert.equal(scraped.status, 200);
      assert.match(await scraped.text(), /dressmatch_index_version_info/);
    } finally {
      await guarded.stop();
    }
  });

  // Slow: the real `demo` command in a child process indexes the catalogue with the model, then starts its serve child, which loads the model again.
  test(
    'SIGTERM to demo reaches its serve child, which drains and exits; nothing is left listening',
    { timeout: 300_000 },
    async () => {
      const models = join(root, 'models');
      await mkdir(join(models, 'demo'), { recursive: true });
      await copyFile(fixture.modelPath, join(models, 'demo', 'model_best.dmck'));
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          MAIN,
          'demo',
          '--data-dir',
          fixture.catalogue.root,
          '--models-dir',
          models,
          '--index-dir',
          join(root, 'demo-index'),
          '--port',
          '0',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
      );
      let output = '';
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let servePid: number | undefined;
      try {
        const served = await new Promise<string>((resolve, reject) => {
          const read = (chunk: Buffer) => {
            output += chunk.toString();
            const match = output.match(/"pid":(\d+)[^\n]*"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
            if (match) {
              servePid = Number(match[1]);
              resolve(match[2]);
            }
          };
          child.stdout.on('data', read);
          child.stderr.on('data', read);
          child.on('exit', () => reject(new Error(`demo exited before serving:\n${output}`)));
        });
        assert.equal((await fetch(`${served}/healthz`)).status, 200, 'the demo serves');
        child.kill('SIGTERM');
        assert.equal(await exited, 0, `demo exits 0 after its serve child drained:\n${output.slice(-2000)}`);
        assert.match(output, /shutting down/, 'serve got the signal');
        await assert.rejects(fetch(`${served}/healthz`), 'nothing listens on the port any more');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        if (servePid) {
          try {
            process.kill(servePid, 'SIGKILL');
          } catch {
            // already gone, as it should be
          }
        }
      }
    },
  );

  test('the main server answered the whole battery and still serves', async () => {
    assert.equal((await fetch(url('/readyz'))).status, 200, 'still ready');
    const id = fixture.products[0].id;
    assert.equal(
      (await fetch(url(`/similar/${id}?condition=color&k=3`))).status,
      200,
      'still answers /similar',
    );
  });
});
