/**
 * Golden responses of the hot path: a fixed bundle (seeded demo catalogue of real rendered images, a seeded untrained
 * CSN on the pure-JS cpu backend, a seeded HNSW build with a fixed clock) is served over real HTTP, and full
 * /similar answers, explanations included, must equal test/golden/serve-similar.json byte for byte. Refactors and
 * speed work on the serve stage must not change a single byte of them.
 *
 * Regenerate (only for an intended change of the answers): UPDATE_GOLDEN=1 node --import tsx --test test/serve.golden.test.ts
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RunningServer } from '../src/serve/server.ts';
import {
  GOLDEN_FIXTURE,
  startServedFixture,
  type ServeFixture,
  type ServedFixture,
} from './fixtures/serve/build.ts';

// The cpu backend is plain JavaScript: the same floats on every machine (native or SIMD kernels may differ in the
// last bits). Set before the fixture builds the model; the server's model worker inherits it.
process.env.DRESSMATCH_BACKEND = 'cpu';

const GOLDEN = fileURLToPath(new URL('./golden/serve-similar.json', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

interface GoldenEntry {
  request: string;
  status: number;
  contentType: string | null;
  body: unknown;
}

let served: ServedFixture;
let fixture: ServeFixture;
let server: RunningServer;

before(async () => {
  // As served in production: the contract does not check responses, so GET /similar takes the hot path.
  served = await startServedFixture('dressmatch-serve-golden-', GOLDEN_FIXTURE, { validateResponses: false });
  ({ fixture, server } = served);
});

after(() => served?.close());

/** The requests whose answers are pinned: one condition and all conditions, by product and by upload. */
function requests(): { label: string; path: string; init?: RequestInit; image?: string }[] {
  const [a, b] = [fixture.products[0], fixture.products[5]];
  const conditions = fixture.catalogue.conditions;
  return [
    {
      label: `GET /similar/${a.id}?condition=${conditions[0]}&k=5`,
      path: `/similar/${a.id}?condition=${conditions[0]}&k=5`,
    },
    {
      label: `GET /similar/${b.id}?condition=${conditions[2]}&k=3`,
      path: `/similar/${b.id}?condition=${conditions[2]}&k=3`,
    },
    { label: `GET /similar/${a.id}?k=4`, path: `/similar/${a.id}?k=4` },
    { label: `GET /similar/${b.id}`, path: `/similar/${b.id}` },
    { label: `POST /similar?k=3 (image of ${b.id})`, path: '/similar?k=3', image: b.image },
    {
      label: `POST /similar?condition=${conditions[1]}&k=5 (image of ${a.id})`,
      path: `/similar?condition=${conditions[1]}&k=5`,
      image: a.image,
    },
  ];
}

async function answer(
  path: string,
  image?: string,
): Promise<{ status: number; type: string | null; text: string }> {
  let init: RequestInit | undefined;
  if (image) {
    const form = new FormData();
    const bytes = await readFile(join(fixture.catalogue.root, image));
    form.append('image', new Blob([new Uint8Array(bytes)], { type: 'image/png' }), 'upload.png');
    init = { method: 'POST', body: form };
  }
  const response = await fetch(`${server.url}${path}`, init);
  return { status: response.status, type: response.headers.get('content-type'), text: await response.text() };
}

test('/similar answers (explanations included) are byte-identical to the golden file', async () => {
  const seen: GoldenEntry[] = [];
  const raw: string[] = [];
  for (const { label, path, image } of requests()) {
    const { status, type, text } = await answer(path, image);
    assert.equal(status, 200, `${label}: ${text}`);
    seen.push({ request: label, status, contentType: type, body: JSON.parse(text) as unknown });
    raw.push(text);
  }
  if (UPDATE) {
    await mkdir(dirname(GOLDEN), { recursive: true });
    await writeFile(GOLDEN, `${JSON.stringify(seen, null, 1)}\n`);
  }
  const golden = JSON.parse(await readFile(GOLDEN, 'utf8')) as GoldenEntry[];
  assert.deepEqual(
    seen.map((entry) => entry.request),
    golden.map((entry) => entry.request),
    'the same requests as the golden file',
  );
  golden.forEach((expected, i) => {
    assert.equal(seen[i].status, expected.status, expected.request);
    assert.equal(seen[i].contentType, expected.contentType, expected.request);
    // JSON.stringify of the parsed golden body is exactly what res.json sends: compare the bytes on the wire.
    assert.equal(
      raw[i],
      JSON.stringify(expected.body),
      `${expected.request}: bytes differ from the golden file`,
    );
  });
});

test('a repeated GET is answered from the answer cache: the same bytes and ETag, 304 when the client has it', async () => {
  const gets = requests().filter((r) => !r.image);
  const hitsBefore = await answerCacheHits();
  for (const { label, path } of gets) {
    const first = await fetch(`${server.url}${path}`);
    const firstText = await first.text();
    const again = await fetch(`${server.url}${path}`);
    assert.equal(await again.text(), firstText, `${label}: the cached answer has the same bytes`);
    for (const header of ['content-type', 'content-length', 'etag', 'x-index-version']) {
      assert.equal(again.headers.get(header), first.headers.get(header), `${label}: same ${header}`);
    }
    const etag = first.headers.get('etag') ?? '';
    assert.match(etag, /^"[0-9a-f]+-[\w+/]+"$/, `${label}: a strong ETag`);
    const conditional = await conditionalGet(`${server.url}${path}`, etag);
    assert.equal(conditional.status, 304, `${label}: If-None-Match of the current answer`);
    assert.equal(conditional.body, '', `${label}: a 304 has no body`);
  }
  assert.ok(
    (await answerCacheHits()) - hitsBefore >= 2 * gets.length,
    'the repeated and the conditional requests were cache hits',
  );
});

/** A GET with If-None-Match over node:http (fetch adds Cache-Control: no-cache to conditional requests). */
function conditionalGet(url: string, etag: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { 'if-none-match': etag } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

/** dressmatch_image_cache_lookups_total{cache="answer",outcome="hit"} from /metrics. */
async function answerCacheHits(): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('dressmatch_image_cache_lookups_total{cache="answer",outcome="hit"}'));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('explain=summary and explain=none give the full answer, less the explanation parts not asked for', async () => {
  const strip = (body: string, keep: (explanation: { summary: string }) => object | undefined) => {
    const parsed = JSON.parse(body) as { groups: { neighbours: { explanation?: { summary: string } }[] }[] };
    for (const group of parsed.groups) {
      for (const neighbour of group.neighbours) {
        const kept = keep(neighbour.explanation as { summary: string });
        if (kept) neighbour.explanation = kept as { summary: string };
        else delete neighbour.explanation;
      }
    }
    return JSON.stringify(parsed);
  };
  for (const { label, path, image } of requests()) {
    const full = await answer(path, image);
    const joiner = path.includes('?') ? '&' : '?';
    const summary = await answer(`${path}${joiner}explain=summary`, image);
    const none = await answer(`${path}${joiner}explain=none`, image);
    assert.equal(
      summary.text,
      strip(full.text, (e) => ({ summary: e.summary })),
      `${label}: explain=summary`,
    );
    assert.equal(
      none.text,
      strip(full.text, () => undefined),
      `${label}: explain=none`,
    );
  }
  const wrong = await fetch(`${server.url}/similar/${fixture.products[0].id}?explain=some`);
  assert.equal(wrong.status, 400, 'an unknown level is refused');
});

/**
 * Filtered, combined and recommend answers are pinned in their own golden file (written from the hnswlib bundle),
 * so the LanceDB run of this suite proves the prefiltered store answers them with the same bytes: same neighbours,
 * distances, shares, closest positives and explanations.
 */
const FILTERED_GOLDEN = fileURLToPath(new URL('./golden/serve-filtered.json', import.meta.url));

function filteredRequests(): { label: string; path: string; body?: unknown }[] {
  const [a, b, c] = [fixture.products[0], fixture.products[5], fixture.products[9]];
  const [c0, c1, c2] = fixture.catalogue.conditions;
  return [
    { label: 'filter, one condition', path: `/similar/${a.id}?condition=${c0}&k=5&filter=in_stock:true` },
    { label: 'filters, all conditions', path: `/similar/${b.id}?k=3&filter=price<120&filter=price>=20` },
    { label: 'fewer matches than k', path: `/similar/${a.id}?condition=${c1}&k=10&filter=price<100` },
    { label: 'combined', path: `/similar/${a.id}?condition=${c0}:2,${c1}:1&k=4` },
    { label: 'combined, filtered', path: `/similar/${b.id}?condition=${c0},${c2}&k=4&filter=in_stock:false` },
    {
      label: 'recommend average, filtered',
      path: '/recommend',
      body: { positive: [a.id, b.id], negative: [c.id], condition: c0, k: 4, filter: ['in_stock:true'] },
    },
    {
      label: 'recommend best, combined',
      path: '/recommend',
      body: {
        positive: [a.id, c.id],
        negative: [b.id],
        condition: `${c1}:1,${c2}:3`,
        k: 4,
        strategy: 'best',
      },
    },
  ];
}

test('filtered, combined and recommend answers are byte-identical to their golden file (both stores)', async () => {
  const seen: GoldenEntry[] = [];
  const raw: string[] = [];
  for (const { label, path, body } of filteredRequests()) {
    const init: RequestInit | undefined =
      body === undefined
        ? undefined
        : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
    const response = await fetch(`${server.url}${path}`, init);
    const text = await response.text();
    assert.equal(response.status, 200, `${label}: ${text}`);
    seen.push({
      request: label,
      status: 200,
      contentType: response.headers.get('content-type'),
      body: JSON.parse(text),
    });
    raw.push(text);
  }
  if (UPDATE) await writeFile(FILTERED_GOLDEN, `${JSON.stringify(seen, null, 1)}\n`);
  const golden = JSON.parse(await readFile(FILTERED_GOLDEN, 'utf8')) as GoldenEntry[];
  assert.deepEqual(
    seen.map((entry) => entry.request),
    golden.map((entry) => entry.request),
    'the same requests as the golden file',
  );
  golden.forEach((expected, i) => {
    assert.equal(seen[i].contentType, expected.contentType, expected.request);
    assert.equal(
      raw[i],
      JSON.stringify(expected.body),
      `${expected.request}: bytes differ from the golden file`,
    );
  });
  const few = seen[2].body as { groups: { matching: number; neighbours: unknown[] }[] };
  assert.ok(
    few.groups[0].matching < 10,
    `the fewer-than-k request matches ${few.groups[0].matching} products`,
  );
});
