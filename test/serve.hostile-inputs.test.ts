/**
 * Hostile inputs over real HTTP against a real server on 127.0.0.1 (seeded CSN in its worker thread, real HNSW
 * bundle, real images), and hostile start-ups of the real `serve` command: each one answered precisely.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { components } from '../src/serve/generated/api-types.ts';
import { startServedFixture, type ServeFixture, type ServedFixture } from './fixtures/serve/build.ts';
import { expectProblem, type Problem } from './fixtures/serve/problem.ts';

type SimilarResponse = components['schemas']['SimilarResponse'];

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
let served: ServedFixture;
let fixture: ServeFixture;

before(async () => {
  served = await startServedFixture('dressmatch-serve-hostile-inputs-', {}, { maxQueuedHeatmaps: 2 });
  fixture = served.fixture;
});

after(() => served?.close());

function url(path: string): string {
  return `${served.server.url}${path}`;
}

function upload(bytes: Uint8Array, type: string): FormData {
  const body = new FormData();
  body.append('image', new Blob([new Uint8Array(bytes)], { type }), 'photo');
  return body;
}

function ids(answer: SimilarResponse): string[][] {
  return answer.groups.map((group) => group.neighbours.map((n) => n.product.id));
}

describe('query inputs', () => {
  test('filter names that are built-in object properties are unknown filter names (400), everywhere', async () => {
    const [a] = fixture.products;
    const image = await readFile(join(fixture.catalogue.root, a.image));
    // `__proto__` is not even a name (names start with a letter or digit): a malformed filter, also a 400.
    const expected = (name: string) =>
      name === '__proto__' ? '/problems/malformed-filter' : '/problems/unknown-filter-name';
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      const filter = encodeURIComponent(`${name}:x`);
      const get = await expectProblem(
        await fetch(url(`/similar/${a.id}?filter=${filter}`)),
        400,
        `GET ${name}`,
      );
      assert.equal(get.type, expected(name), `GET ${name}`);
      const post = await fetch(url(`/similar?filter=${filter}`), {
        method: 'POST',
        body: upload(image, 'image/png'),
      });
      assert.equal((await expectProblem(post, 400, `POST ${name}`)).type, expected(name));
      const recommend = await fetch(url('/recommend'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          positive: [a.id],
          condition: fixture.catalogue.conditions[0],
          filter: [`${name}:x`],
        }),
      });
      assert.equal((await expectProblem(recommend, 400, `recommend ${name}`)).type, expected(name));
    }
  });

  test('huge condition weights keep their proportions: 1e308 each ranks as equal weights', async () => {
    const [c0, c1] = fixture.catalogue.conditions;
    const id = fixture.products[2].id;
    const huge = await fetch(url(`/similar/${id}?condition=${c0}:1e308,${c1}:1e308&k=8&explain=none`));
    assert.equal(huge.status, 200);
    const equal = await fetch(url(`/similar/${id}?condition=${c0},${c1}&k=8&explain=none`));
    const [hugeBody, equalBody] = [
      (await huge.json()) as SimilarResponse,
      (await equal.json()) as SimilarResponse,
    ];
    assert.deepEqual(ids(hugeBody), ids(equalBody), 'the same ranking as equal weights');
    const distances = hugeBody.groups[0].neighbours.map((n) => n.distance);
    assert.ok(
      distances.some((d) => d > 0),
      `distances are not all 0: ${distances.join(', ')}`,
    );
    assert.deepEqual(
      distances,
      equalBody.groups[0].neighbours.map((n) => n.distance),
    );
  });

  test('one number syntax: hex weights are refused like hex k; k=01 is a decimal integer', async () => {
    const [c0, c1] = fixture.catalogue.conditions;
    const id = fixture.products[2].id;
    const hex = await expectProblem(
      await fetch(url(`/similar/${id}?condition=${c0}:0x10,${c1}:1`)),
      400,
      'hex',
    );
    assert.equal(hex.type, '/problems/malformed-condition');
    await expectProblem(await fetch(url(`/similar/${id}?k=0x10`)), 400, 'hex k');
    const padded = await fetch(url(`/similar/${id}?condition=${c0}&k=01`));
    assert.equal(padded.status, 200, 'k=01 is the integer 1, as the contract types it');
    assert.equal(((await padded.json()) as SimilarResponse).k, 1);
  });

  test('a burst of 200 distinct heat maps is refused at the queue, and /similar keeps answering', async () => {
    const products = fixture.products;
    const [c0] = fixture.catalogue.conditions;
    const burst = Array.from({ length: 200 }, (_, i) => {
      const [a, b] = [products[i % 12], products[12 + (i % 12)]];
      return fetch(url(`/similar/${a.id}/${b.id}/heatmap.png?condition=${c0}&size=${64 + i}`));
    });
    const similar = await fetch(url(`/similar/${products[1].id}?k=3`));
    assert.equal(similar.status, 200, '/similar is answered during the burst');
    const answers = await Promise.all(burst);
    const refused = answers.filter((response) => response.status === 503);
    assert.ok(refused.length > 150, `most of the burst is refused: ${refused.length} of 200`);
    for (const response of answers) await response.arrayBuffer();
  });
});

describe('bodies and paths', () => {
  test('a JSON body over its limit is a 413 naming the limit', async () => {
    const big = JSON.stringify({ positive: ['x'.repeat(20_000)], condition: 'color' });
    const response = await fetch(url('/recommend'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big,
    });
    const problem = await expectProblem(response, 413, 'JSON body');
    assert.match(problem.detail ?? '', /16384 bytes/);
  });

  test('POST to an unknown path is a 404 and to a GET path a 405, before any body limit', async () => {
    const body = 'x'.repeat(2_000_000);
    const unknown = await fetch(url('/nothing-here'), { method: 'POST', body });
    await expectProblem(unknown, 404, 'unknown path');
    const getOnly = await fetch(url(`/similar/${fixture.products[0].id}`), { method: 'POST', body });
    await expectProblem(getOnly, 405, 'GET path');
  });

  test("headers over Node's limit get a 431 problem (clientError), not a bare status line", async () => {
    const address = new URL(served.server.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(address.port), address.hostname, () =>
        socket.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`),
      );
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 431/);
    assert.match(answer, /Content-Type: application\/problem\+json/);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Problem;
    assert.equal(body.status, 431);
  });
});

describe('uploads', () => {
  test('a CMYK JPEG without an ICC profile is read in the colours of the same photo in RGB', async () => {
    // The photo itself comes first for both; its distance measures how far the decoded colours drifted. The
    // seeded untrained model reorders near ties on any change of pixels (RGB JPEG against PNG too), so the test
    // compares the drift: without a CMYK profile the pixels drifted 3.5 times as far as with it.
    const [c0] = fixture.catalogue.conditions;
    let [rgbDrift, cmykDrift] = [0, 0];
    for (const product of fixture.products.slice(0, 4)) {
      const png = await readFile(join(fixture.catalogue.root, product.image));
      const rgb = await sharp(png).jpeg({ quality: 100 }).toBuffer();
      const cmyk = await sharp(png).toColourspace('cmyk').jpeg({ quality: 100 }).toBuffer();
      const meta = await sharp(cmyk).metadata();
      assert.equal(meta.space, 'cmyk');
      assert.equal(meta.icc, undefined, 'no ICC profile in the CMYK file');
      const self: number[] = [];
      for (const bytes of [rgb, cmyk]) {
        const response = await fetch(url(`/similar?condition=${c0}&k=5&explain=none`), {
          method: 'POST',
          body: upload(new Uint8Array(bytes), 'image/jpeg'),
        });
        assert.equal(response.status, 200);
        const [first] = ((await response.json()) as SimilarResponse).groups[0].neighbours;
        assert.equal(first.product.id, product.id, 'the photo finds its own product first');
        self.push(first.distance);
      }
      rgbDrift += self[0];
      cmykDrift += self[1];
    }
    assert.ok(cmykDrift <= 2 * rgbDrift + 1e-6, `CMYK drift ${cmykDrift} against RGB JPEG drift ${rgbDrift}`);
  });
});

/** Run `dressmatch serve` with these flags until it exits; its exit code and stderr. */
function serveOnce(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--host', '127.0.0.1', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    }),
  );
}

/** The one error line of a failed start, with no usage text. */
function errorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line.startsWith('error:'));
  assert.equal(lines.length, 1, `one error line: ${stderr}`);
  assert.doesNotMatch(stderr, /Usage:|Options:/, 'no usage text');
  return lines[0];
}

describe('serve start-up', () => {
  // Slow: starts the real `serve` command four times, each a new Node process loading the serve and model stages.
  test(
    'a port in use, a missing or corrupt model, a missing index directory: one clear line each',
    { timeout: 300_000 },
    async () => {
      const taken = createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = String((taken.address() as AddressInfo).port);
      try {
        const inUse = await serveOnce(['--index', fixture.indexDir, '--port', port]);
        assert.equal(inUse.code, 1);
        assert.match(errorLine(inUse.stderr), new RegExp(`port ${port} .*in use`));
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
      const missing = await serveOnce([
        '--index',
        fixture.indexDir,
        '--model',
        join(served.root, 'nope.dmck'),
        '--port',
        '0',
      ]);
      assert.equal(missing.code, 1);
      assert.match(errorLine(missing.stderr), /no model checkpoint at .*nope\.dmck/);
      const corruptPath = join(served.root, 'corrupt.dmck');
      await writeFile(corruptPath, 'not a checkpoint at all');
      const corrupt = await serveOnce(['--index', fixture.indexDir, '--model', corruptPath, '--port', '0']);
      assert.equal(corrupt.code, 1);
      assert.match(errorLine(corrupt.stderr), /model checkpoint .*corrupt\.dmck cannot be loaded/);
      const noIndex = await serveOnce(['--index', join(served.root, 'no-such-index'), '--port', '0']);
      assert.equal(noIndex.code, 1);
      assert.match(errorLine(noIndex.stderr), /no index directory .*no-such-index/);
      // An existing but empty directory is an index still to be published: that server waits (tested elsewhere).
      await mkdir(join(served.root, 'empty-index'), { recursive: true });
    },
  );

  test('--help says the rate limit counts per worker process', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve', '--help'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => child.on('exit', resolve));
    assert.match(out.replace(/\s+/g, ' '), /--rate-limit <n>.*counted in each worker process/);
  });
});
