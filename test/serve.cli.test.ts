/**
 * `dressmatch serve` as a user runs it: a separate process started through the CLI, answering on the port it
 * logs, and shutting down gracefully on SIGTERM (a request already running still gets its answer).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildServeFixture, type ServeFixture } from './fixtures/serve/build.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

let root: string;
let fixture: ServeFixture;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-serve-cli-'));
  fixture = await buildServeFixture(root, { products: 20 });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('serve --index --model --port 0 serves the bundle and stops cleanly on SIGTERM', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'serve',
      '--index',
      fixture.indexDir,
      '--model',
      fixture.modelPath,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  let logs = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" log line:\n${logs}`)), 30_000);
      child.stderr.on('data', (chunk: Buffer) => {
        logs += chunk.toString();
        const match = logs.match(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.on('exit', () => reject(new Error(`serve exited early:\n${logs}`)));
    });
    const ready = await fetch(`${url}/readyz`);
    assert.equal(ready.status, 200);
    const [a, b] = fixture.products;
    // A model call in flight when SIGTERM arrives is finished and answered before the process exits.
    const running = fetch(`${url}/similar/${a.id}/${b.id}/heatmap.png?condition=pattern&size=128`);
    await new Promise((resolve) => setTimeout(resolve, 30));
    child.kill('SIGTERM');
    const response = await running;
    assert.equal(response.status, 200);
    assert.equal((await response.arrayBuffer()).byteLength > 0, true);
    assert.equal(await exited, 0);
    assert.match(logs, /shutting down/);
    // every request was logged with its id
    assert.match(logs, /"req":\{"id":"[0-9a-f-]{36}","method":"GET","url":"\/readyz"\}/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
