/**
 * `dressmatch serve` as a user runs it: a separate process started through the CLI, answering on the port it
 * logs, and shutting down gracefully on SIGTERM (a request already running still gets its answer); with
 * --workers, as a cluster whose /metrics, /readyz and hot swap hold across workers.
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
  fixture = await buildServeFixture(root);
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

// Slow: starts the real `serve` command in a child process, which loads the model in its worker thread.
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
      const timer = setTimeout(() => reject(new Error(`no "listening" log line:\n${logs}`)), 120_000);
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

// Slow: a cluster of three processes (primary and two workers, each loading the model), and a re-index while it serves.
test('serve --workers 2: /metrics sums over the workers, a new version reaches every worker, SIGTERM drains both', async () => {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'serve',
      '--index',
      fixture.indexDir,
      '--host',
      '127.0.0.1',
      '--port',
      '0',
      '--workers',
      '2',
      '--poll',
      '200',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'info' } },
  );
  let logs = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    // Both workers log their "listening" line; wait for two different pids.
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        logs += chunk.toString();
        const lines = [
          ...logs.matchAll(/"pid":(\d+)[^\n]*"msg":"listening on (http:\/\/127\.0\.0\.1:\d+)"/g),
        ];
        if (new Set(lines.map((m) => m[1])).size === 2) resolve(lines[0][2]);
      });
      child.on('exit', () => reject(new Error(`serve exited early:\n${logs}`)));
    });
    for (let i = 0; i < 10; i++) assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const count = Number(
      metrics.match(
        /dressmatch_http_request_duration_seconds_count\{[^}]*route="\/healthz"[^}]*\} (\d+)/,
      )?.[1],
    );
    // the ten of the test, whichever worker answered which
    assert.equal(count, 10, `healthz counted over both workers:\n${metrics.slice(0, 400)}`);
    const report = await fixture.publish();
    for (let attempt = 0; ; attempt++) {
      const versions = new Set<string>();
      for (let i = 0; i < 8; i++) {
        versions.add(((await (await fetch(`${url}/readyz`)).json()) as { version: string }).version);
      }
      if (versions.size === 1 && versions.has(report.version ?? '')) break;
      assert.ok(attempt < 100, `every worker serves ${report.version}; seen ${[...versions].join(', ')}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, 'the primary exits 0 once both workers drained');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
