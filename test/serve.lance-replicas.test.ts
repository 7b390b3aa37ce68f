/**
 * Stateless replicas on one LanceDB store: two `dressmatch serve --store lancedb` processes (the CLI, as deployed)
 * answer from one store while it is re-indexed; both switch to the new version without a restart, and not one
 * request fails meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServeFixture, type ServeFixture } from './fixtures/serve/build.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

let root: string;
let fixture: ServeFixture;
const children: ChildProcess[] = [];

before(async () => {
  process.env.DRESSMATCH_TEST_STORE = 'lancedb';
  root = await mkdtemp(join(tmpdir(), 'dressmatch-serve-replicas-'));
  fixture = await buildServeFixture(root);
});

after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await rm(root, { recursive: true, force: true });
});

/** One replica: `serve --store lancedb --uri <store> --port 0`; resolves with the URL it logs. */
function startReplica(): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      ...['--import', 'tsx', MAIN, 'serve', '--store', 'lancedb', '--uri', fixture.served.indexDir],
      // A free port, and a fast poll so that the test need not wait long for the switch.
      ...['--host', '127.0.0.1', '--port', '0', '--poll', '200'],
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info', RUST_LOG: 'error' },
    },
  );
  children.push(child);
  let logs = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" log line:\n${logs}`)), 60_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      logs += chunk.toString();
      const match = logs.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', () => reject(new Error(`serve exited early:\n${logs}`)));
  });
}

// Slow: two `serve` processes, each loading the model, and a re-index (embedding the catalogue) into the LanceDB store while they answer.
test('two serve replicas on one LanceDB store switch to a re-index with zero failed requests', async () => {
  const urls = await Promise.all([startReplica(), startReplica()]);
  const first = fixture.products[0].id;
  const versions = new Map<string, Set<string>>(urls.map((url) => [url, new Set<string>()]));
  const failures: string[] = [];
  let requests = 0;
  let stop = false;
  const hammer = async (url: string): Promise<void> => {
    while (!stop) {
      const response = await fetch(
        `${url}/similar/${first}?condition=${fixture.catalogue.conditions[0]}&k=5`,
      );
      const body = (await response.json()) as { version?: string; groups?: { neighbours: unknown[] }[] };
      requests++;
      if (response.status !== 200 || body.groups?.[0]?.neighbours.length !== 5) {
        failures.push(`${url}: ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
      } else versions.get(url)!.add(body.version!);
    }
  };
  const load = urls.map((url) => hammer(url));
  while (requests < 20) await new Promise((resolve) => setTimeout(resolve, 50));
  const report = await fixture.publish(fixture.products.slice(0, 25));
  const deadline = Date.now() + 60_000;
  while ([...versions.values()].some((seen) => !seen.has(report.version!)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const settled = requests;
  while (requests < settled + 20) await new Promise((resolve) => setTimeout(resolve, 50));
  stop = true;
  await Promise.all(load);
  assert.deepEqual(failures, [], 'no request failed during the switch');
  for (const [url, seen] of versions) {
    assert.equal(seen.size, 2, `${url} served the old and then the new version: ${[...seen].join(', ')}`);
    assert.ok(seen.has(report.version!), `${url} switched to ${report.version}`);
  }
  const ready = await Promise.all(urls.map(async (url) => (await fetch(`${url}/readyz`)).json()));
  for (const body of ready as { products?: number }[])
    assert.equal(body.products, 25, 'the new version has 25 products');
});
