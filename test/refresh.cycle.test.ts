/**
 * The whole refresh cycle over real parts (issue 14's "done when"): catalogue v1 rendered, a tiny CSN trained,
 * indexed with the `index` command and served over HTTP; catalogue v2 (products added and removed, a colour the
 * model never saw) refreshed with the `refresh` command in a child process while a client polls the server
 * without pause: the server switches to the retrained model with no failed request. A refresh killed with SIGKILL
 * in its fine-tune changes nothing and the next run marks it abandoned; a refresh forced to train with an absurd
 * learning rate is refused by the gate with its exit code, and the old version stays served.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generateDemoCatalogue } from '../src/catalogue/index.ts';
import { readManifest } from '../src/index/index.ts';
import { REFRESH_DEFAULTS, REFRESH_EXIT, type RefreshReport } from '../src/refresh/index.ts';
import type { RunningServer } from '../src/serve/server.ts';
import { TRAIN_DEFAULTS } from '../src/train/options.ts';
import { RUN_FILES, train } from '../src/train/trainer.ts';
import { startLocalServer } from './fixtures/serve/build.ts';

const CLI = join(process.cwd(), 'src/cli/main.ts');
/** The colour catalogue v1 leaves out and v2 brings: a label value the served model never saw. */
const NEW_COLOUR = 'purple';

let root: string;
let v1: string;
let v2: string;
let bundle: string;
let runs: string;
let server: RunningServer | undefined;
/** A product in both catalogues (polled during the switch), one only in v2, one only in v1. */
let stable: string;
let added: string;
let removed: string;
let expected: { added: number; removed: number };

interface Line {
  id: string;
  attributes: Record<string, string[]>;
}

async function writeCatalogue(dir: string, source: string, lines: string[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'conditions.txt'), await readFile(join(source, 'conditions.txt')));
  await writeFile(join(dir, 'products.jsonl'), `${lines.join('\n')}\n`);
  await symlink(join(source, 'images'), join(dir, 'images'));
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-refresh-cycle-'));
  const generated = join(root, 'generated');
  await generateDemoCatalogue(generated, { count: 240, imageSize: 32, seed: 5 });
  const lines = (await readFile(join(generated, 'products.jsonl'), 'utf8')).trim().split('\n');
  const parsed = lines.map((text) => ({ text, line: JSON.parse(text) as Line }));
  const isNew = (entry: { line: Line }) => entry.line.attributes.color?.includes(NEW_COLOUR);
  const first = parsed.slice(0, 200).filter((entry) => !isNew(entry));
  const dropped = first.slice(0, 15);
  const later = parsed.filter((entry, i) => i >= 200 || isNew(entry));
  v1 = join(root, 'v1');
  v2 = join(root, 'v2');
  await writeCatalogue(
    v1,
    generated,
    first.map((e) => e.text),
  );
  await writeCatalogue(
    v2,
    generated,
    [...first.slice(15), ...later].map((e) => e.text),
  );
  stable = first[20].line.id;
  added = later.find(isNew)!.line.id;
  removed = dropped[0].line.id;
  expected = { added: later.length, removed: dropped.length };
  bundle = join(root, 'bundle');
  runs = join(root, 'runs');
});

after(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI in a child process; with `killWhen`, SIGKILL it as soon as that becomes true (checked every 20 ms). */
function cli(args: string[], killWhen?: () => boolean): Promise<Exit> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const watch = killWhen && setInterval(() => killWhen() && child.kill('SIGKILL'), 20);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      if (watch) clearInterval(watch);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

async function reportOf(name: string): Promise<RefreshReport> {
  return JSON.parse(await readFile(join(runs, name, REFRESH_DEFAULTS.reportFile), 'utf8')) as RefreshReport;
}

/** Fine-tune settings small enough for a test (the rest is inherited from the v1 run). */
const FINE_TUNE = ['--epochs', '1', '--backend', 'wasm', '--no-progress'];

function refresh(name: string, extra: string[] = [], killWhen?: () => boolean): Promise<Exit> {
  const args = ['refresh', '--data-dir', v2, '--index-dir', bundle, '--log-dir', runs, '--name', name];
  return cli([...args, ...FINE_TUNE, ...extra], killWhen);
}

interface Readiness {
  version: string;
  provenance: {
    modelId: string;
    trainedAt: string | null;
    testAccuracy: number | null;
    refresh: string | null;
  };
}

async function readiness(): Promise<Readiness> {
  const response = await fetch(`${server!.url}/readyz`);
  assert.equal(response.status, 200, 'the server is ready');
  return (await response.json()) as Readiness;
}

/** GET /similar for `id` without pause until stopped: every answer must be a 200 with neighbours. */
function pollContinuously(id: string) {
  let stopped = false;
  const stats = { ok: 0, failed: 0, failures: [] as string[], versions: new Set<string>() };
  const loop = (async () => {
    while (!stopped) {
      try {
        const response = await fetch(`${server!.url}/similar/${id}?k=3`);
        const body = (await response.json()) as { version?: string; groups?: unknown[] };
        if (response.status === 200 && Array.isArray(body.groups) && body.groups.length > 0) {
          stats.ok++;
          stats.versions.add(String(body.version));
        } else {
          stats.failed++;
          if (stats.failures.length < 10)
            stats.failures.push(`${response.status} ${JSON.stringify(body).slice(0, 200)}`);
        }
      } catch (error) {
        stats.failed++;
        if (stats.failures.length < 10) stats.failures.push(String(error));
      }
    }
  })();
  return {
    stats,
    stop: async () => {
      stopped = true;
      await loop;
      return stats;
    },
  };
}

test('catalogue v1 trained, indexed and served', async () => {
  await train(
    {
      ...TRAIN_DEFAULTS,
      dataDir: v1,
      logDir: runs,
      name: 'v1',
      imageSize: 32,
      embedDim: 16,
      width: 8,
      batchSize: 64,
      poolSize: 48,
      trainTriplets: 1024,
      valTriplets: 200,
      testTriplets: 600,
      mapQueries: 20,
      epochs: 2,
      backend: 'wasm',
      progress: false,
    },
    { out: null },
  );
  const model = join(runs, 'v1', RUN_FILES.best);
  const indexed = await cli([
    'index',
    '--model',
    model,
    '--data-dir',
    v1,
    '--out',
    bundle,
    '--backend',
    'wasm',
  ]);
  assert.equal(indexed.code, 0, indexed.stderr);
  server = await startLocalServer({
    indexDir: bundle,
    modelPath: model,
    pollIntervalMs: 100,
    backend: 'wasm',
  });
  const ready = await readiness();
  const manifest = await readManifest(bundle);
  assert.equal(ready.version, manifest?.current);
  assert.equal(
    typeof ready.provenance.testAccuracy,
    'number',
    'the index job recorded the run test accuracy',
  );
  assert.equal(ready.provenance.refresh, null, 'published by the index job, not by a refresh');
});

test('a refresh killed with SIGKILL in its fine-tune changes nothing; the next run marks it abandoned', async () => {
  const before = await readManifest(bundle);
  const killed = await refresh('killed', [], () => existsSync(join(runs, 'killed', RUN_FILES.metrics)));
  assert.equal(
    killed.signal,
    'SIGKILL',
    `killed in the fine-tune, not exited (${killed.code}): ${killed.stderr}`,
  );
  assert.deepEqual(await readManifest(bundle), before, 'the published manifest is untouched');
  assert.equal((await reportOf('killed')).status, 'running', 'the killed run could not finish its report');
  // The killed run's lock was refreshed up to its death; it may be taken over once it is lockStaleMs old. A run
  // started sooner answers busy (exit 4), which is what a scheduler retries.
  await new Promise((resolve) => setTimeout(resolve, REFRESH_DEFAULTS.lockStaleMs + 500));
  const dry = await refresh('dry', ['--dry-run']);
  assert.equal(dry.code, REFRESH_EXIT.ok, dry.stderr);
  assert.equal((await reportOf('killed')).status, 'abandoned');
  const report = await reportOf('dry');
  assert.equal(report.outcome, 'dry-run');
  assert.equal(report.changes?.added.length, expected.added);
  assert.equal(report.changes?.removed.length, expected.removed);
  assert.deepEqual(report.changes?.labels.find((l) => l.condition === 'color')?.added, [NEW_COLOUR]);
  assert.equal(report.decision?.action, 'retrain');
  assert.match(report.decision?.reasons.join('\n') ?? '', /new label value\(s\) of color: purple/);
});

test('catalogue v2 refreshed: retrained, gated, published, and the server switches without a failed request', async (t) => {
  const before = await readiness();
  const poller = pollContinuously(stable);
  const result = await refresh('good', ['--tolerance', '0.1']);
  assert.equal(result.code, REFRESH_EXIT.ok, `${result.stdout}\n${result.stderr}`);
  const report = await reportOf('good');
  assert.equal(report.outcome, 'published');
  assert.equal(report.gate?.passed, true);
  const published = report.published!.version;
  for (let i = 0; i < 200 && (await readiness()).version !== published; i++) {
    await new Promise((done) => setTimeout(done, 50));
  }
  // A few more answers after the switch, then stop (bounded, so a broken server fails the test instead of hanging it).
  const during = poller.stats.ok + poller.stats.failed;
  const deadline = Date.now() + 10_000;
  while (poller.stats.ok + poller.stats.failed < during + 20 && Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 10));
  }
  const stats = await poller.stop();
  t.diagnostic(
    `${stats.ok} answers during the refresh, ${stats.failed} failed; gate overall ` +
      `${report.gate?.overall.candidate} vs served ${report.gate?.overall.served}; timings ${JSON.stringify(report.timings)}`,
  );
  assert.equal(
    stats.failed,
    0,
    `failed requests during the switch: ${stats.failures.slice(0, 5).join('\n')}`,
  );
  assert.ok(stats.ok > 50, `the client kept asking during the refresh (${stats.ok} answers)`);
  assert.deepEqual(
    [...stats.versions],
    [before.version, published],
    'answers came from the old, then the new version',
  );
  const after = await readiness();
  assert.equal(after.version, published, 'the server serves the new version');
  assert.notEqual(after.provenance.modelId, before.provenance.modelId, 'with the retrained model');
  assert.equal(after.provenance.modelId, report.candidate?.modelId);
  assert.equal(after.provenance.refresh, 'good');
  assert.equal(
    after.provenance.testAccuracy,
    report.candidate?.testAccuracy,
    'its accuracy on the gate triplets',
  );
  assert.equal((await fetch(`${server!.url}/similar/${added}?k=3`)).status, 200, 'a new product is served');
  assert.equal((await fetch(`${server!.url}/similar/${removed}?k=3`)).status, 404, 'a removed one is gone');
  const metrics = await (await fetch(`${server!.url}/metrics`)).text();
  assert.match(metrics, /dressmatch_model_test_accuracy\{model_id="[0-9a-f]{64}"\} 0\.\d+/);
  assert.match(metrics, /dressmatch_model_info\{[^}]*refresh="good"[^}]*\} 1/);
});

test('a refresh forced to train with an absurd learning rate is refused by the gate; the old version stays', async (t) => {
  const before = await readManifest(bundle);
  const served = await readiness();
  const result = await refresh('absurd', ['--retrain', '--lr', '1']);
  assert.equal(result.code, REFRESH_EXIT.refused, `${result.stdout}\n${result.stderr}`);
  const report = await reportOf('absurd');
  assert.deepEqual([report.outcome, report.exitCode, report.gate?.passed], ['refused', 3, false]);
  t.diagnostic(
    `absurd lr: candidate ${report.gate?.overall.candidate} vs served ${report.gate?.overall.served}`,
  );
  assert.ok(report.gate!.overall.candidate < report.gate!.overall.served, 'the candidate is worse');
  assert.match(result.stdout, /gate refused/);
  assert.deepEqual(await readManifest(bundle), before, 'nothing was published');
  assert.equal((await readiness()).version, served.version, 'the old version stays served');
});
