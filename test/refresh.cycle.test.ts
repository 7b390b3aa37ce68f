/**
 * The whole refresh cycle over real parts: catalogue v1 rendered, a tiny CSN trained, indexed with the `index`
 * command and served over HTTP; then `refresh` commands in child processes while a client asks the server without
 * pause. Catalogue v2 (products removed, others recoloured to a colour the model never saw, new ones added) is
 * published with the served model first, then the fine-tune is gated: either way (exit 0 or 3) the server shows
 * v2 with no removed product in any answer and no failed request. A fine-tune forced to be bad is refused (exit 3)
 * while its catalogue is still published with the old model; one equal to the served model is accepted; one killed
 * with SIGKILL leaves its catalogue published with the served model, and the next run marks it abandoned.
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
import { TRIPLETS_ONLY } from './fixtures/train/settings.ts';

const CLI = join(process.cwd(), 'src/cli/main.ts');
/** The colour catalogue v1 leaves out and v2 brings: a label value the served model never saw. */
const NEW_COLOUR = 'purple';

let root: string;
let bundle: string;
let runs: string;
let server: RunningServer | undefined;
/** Catalogues: v1 served first; v2, v3, v4 each a step further (see before()). */
const dirs: Record<'v1' | 'v2' | 'v3' | 'v4', string> = { v1: '', v2: '', v3: '', v4: '' };
/** Products removed by v2, v3 and v4 (cumulative), added by v2, in every catalogue (polled), and counts. */
const removedBy: Record<'v2' | 'v3' | 'v4', string[]> = { v2: [], v3: [], v4: [] };
let added: string[];
let stable: string[];
let expected: { v2: number; added: number; removed: number; recoloured: number };

interface Line {
  id: string;
  attributes: Record<string, string[]>;
}

async function writeCatalogue(dir: string, source: string, lines: Line[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'conditions.txt'), await readFile(join(source, 'conditions.txt')));
  await writeFile(join(dir, 'products.jsonl'), `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`);
  await symlink(join(source, 'images'), join(dir, 'images'));
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-refresh-cycle-'));
  const generated = join(root, 'generated');
  await generateDemoCatalogue(generated, { count: 240, imageSize: 32, seed: 5 });
  const lines = (await readFile(join(generated, 'products.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((text) => JSON.parse(text) as Line);
  const isNew = (line: Line) => line.attributes.color?.includes(NEW_COLOUR);
  const first = lines.slice(0, 200).filter((line) => !isNew(line));
  const later = lines.filter((line, i) => i >= 200 || isNew(line));
  // v2: 15 removed, 15 recoloured to the colour v1 never had, the rest of the rendered products added.
  const recoloured = first
    .slice(15, 30)
    .map((line) => ({ ...line, attributes: { ...line.attributes, color: [NEW_COLOUR] } }));
  const v2 = [...recoloured, ...first.slice(30), ...later];
  const ids = (part: Line[]) => part.map((line) => line.id);
  removedBy.v2 = ids(first.slice(0, 15));
  removedBy.v3 = [...removedBy.v2, ...ids(first.slice(30, 35))];
  removedBy.v4 = [...removedBy.v3, ...ids(first.slice(35, 40))];
  added = ids(later);
  stable = ids(first.slice(40, 60));
  expected = { v2: v2.length, added: later.length, removed: 15, recoloured: 15 };
  for (const [name, part] of Object.entries({
    v1: first,
    v2,
    v3: v2.filter((line) => !removedBy.v3.includes(line.id)),
    v4: v2.filter((line) => !removedBy.v4.includes(line.id)),
  })) {
    dirs[name as keyof typeof dirs] = join(root, name);
    await writeCatalogue(dirs[name as keyof typeof dirs], generated, part);
  }
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
const FINE_TUNE = ['--backend', 'wasm', '--no-progress'];

function refresh(
  name: string,
  catalogue: keyof typeof dirs,
  extra: string[],
  killWhen?: () => boolean,
): Promise<Exit> {
  const args = [
    'refresh',
    '--data-dir',
    dirs[catalogue],
    '--index-dir',
    bundle,
    '--log-dir',
    runs,
    '--name',
    name,
  ];
  return cli([...args, ...FINE_TUNE, ...extra], killWhen);
}

interface Readiness {
  version: string;
  products: number;
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

interface SimilarAnswer {
  version?: string;
  groups?: { neighbours: { product: { id: string } }[] }[];
}

/** Neighbour ids of an answer (every condition's group). */
const neighbourIds = (body: SimilarAnswer) =>
  (body.groups ?? []).flatMap((group) => group.neighbours.map((n) => n.product.id));

/**
 * GET /similar for each of `ids` in turn, without pause until stopped: every answer must be a 200 with neighbours.
 * Keeps the neighbours each version answered with.
 */
function pollContinuously(ids: readonly string[]) {
  let stopped = false;
  const stats = {
    ok: 0,
    failed: 0,
    failures: [] as string[],
    versions: [] as string[],
    neighbours: new Map<string, Set<string>>(),
  };
  const record = (response: Response, body: SimilarAnswer) => {
    const version = String(body.version);
    if (response.status !== 200 || !Array.isArray(body.groups) || body.groups.length === 0) {
      stats.failed++;
      if (stats.failures.length < 10)
        stats.failures.push(`${response.status} ${JSON.stringify(body).slice(0, 200)}`);
      return;
    }
    stats.ok++;
    if (stats.versions.at(-1) !== version) stats.versions.push(version);
    const seen = stats.neighbours.get(version) ?? new Set<string>();
    for (const id of neighbourIds(body)) seen.add(id);
    stats.neighbours.set(version, seen);
  };
  const loop = (async () => {
    for (let i = 0; !stopped; i++) {
      try {
        const response = await fetch(`${server!.url}/similar/${ids[i % ids.length]}?k=10`);
        record(response, (await response.json()) as SimilarAnswer);
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

/** Wait until the server serves `version` (it polls the manifest every 100 ms). */
async function servedVersion(version: string): Promise<Readiness> {
  for (let i = 0; i < 200; i++) {
    const ready = await readiness();
    if (ready.version === version) return ready;
    await new Promise((done) => setTimeout(done, 50));
  }
  assert.fail(`the server never switched to ${version}`);
}

/** Every product of `ids` answers 200 without any of `removed` among its neighbours; each removed one is a 404. */
async function assertServedCatalogue(ids: readonly string[], removed: readonly string[]): Promise<void> {
  const gone = new Set(removed);
  for (const id of ids) {
    const response = await fetch(`${server!.url}/similar/${id}?k=10`);
    assert.equal(response.status, 200, `${id} can be queried`);
    const found = neighbourIds((await response.json()) as SimilarAnswer).filter((n) => gone.has(n));
    assert.deepEqual(found, [], `${id}: no removed product among its neighbours`);
  }
  for (const id of removed) {
    assert.equal((await fetch(`${server!.url}/similar/${id}?k=3`)).status, 404, `${id} was removed`);
  }
}

// Slow: trains a model (two epochs with validation and test), runs the `index` command in a child process and
// starts a server whose worker loads the model.
test('catalogue v1 trained, indexed and served', async () => {
  await train(
    {
      ...TRAIN_DEFAULTS,
      ...TRIPLETS_ONLY,
      dataDir: dirs.v1,
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
    dirs.v1,
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

// Slow: a `refresh` child process fine-tunes the model, gates it and re-indexes while a client queries without pause.
test('catalogue v2 refreshed under a steady stream of requests: the catalogue follows first, then the gate decides', async (t) => {
  const before = await readiness();
  const poller = pollContinuously(stable);
  const result = await refresh('follow', 'v2', ['--epochs', '1']);
  assert.ok(
    result.code === REFRESH_EXIT.ok || result.code === REFRESH_EXIT.refused,
    `exit 0 or 3, got ${result.code}: ${result.stdout}\n${result.stderr}`,
  );
  const report = await reportOf('follow');
  assert.equal(report.changes?.removed.length, expected.removed);
  assert.equal(report.changes?.added.length, expected.added);
  assert.equal(report.changes?.changed.length, expected.recoloured);
  assert.deepEqual(report.changes?.labels.find((l) => l.condition === 'color')?.added, [NEW_COLOUR]);
  assert.equal(report.decision?.action, 'retrain');
  assert.equal(report.reindexed?.mode, 'incremental', 'the catalogue was re-indexed with the served model');
  assert.equal(report.reindexed?.modelId, before.provenance.modelId);
  assert.deepEqual(report.reindexed?.notServable, []);
  const ready = await servedVersion(report.published!.version);
  const during = poller.stats.ok + poller.stats.failed;
  const deadline = Date.now() + 10_000;
  while (poller.stats.ok + poller.stats.failed < during + 40 && Date.now() < deadline) {
    await new Promise((done) => setTimeout(done, 10));
  }
  const stats = await poller.stop();
  t.diagnostic(
    `exit ${result.code}: ${report.gate?.reason}; ${stats.ok} answers during the refresh, ${stats.failed} failed; ` +
      `versions ${stats.versions.join(' → ')}; timings ${JSON.stringify(report.timings)}`,
  );
  assert.equal(stats.failed, 0, `failed requests: ${stats.failures.slice(0, 5).join('\n')}`);
  assert.ok(stats.ok > 50, `the client kept asking during the refresh (${stats.ok} answers)`);
  assert.equal(stats.versions[0], before.version);
  assert.equal(
    stats.versions[1],
    report.reindexed?.version,
    'the catalogue version is served before any other',
  );
  const gone = new Set(removedBy.v2);
  for (const version of stats.versions.slice(1)) {
    const leaked = [...(stats.neighbours.get(version) ?? [])].filter((id) => gone.has(id));
    assert.deepEqual(leaked, [], `version ${version} never answers with a removed product`);
  }
  assert.equal(ready.products, expected.v2, 'the server shows the new catalogue');
  await assertServedCatalogue([...stable, ...added], removedBy.v2);
  if (result.code === REFRESH_EXIT.ok) {
    assert.equal(ready.provenance.modelId, report.candidate?.modelId, 'accepted: the new model is served');
    assert.notEqual(report.published?.version, report.reindexed?.version);
  } else {
    assert.equal(ready.provenance.modelId, before.provenance.modelId, 'refused: the served model stays');
    assert.equal(report.published?.version, report.reindexed?.version);
  }
  assert.equal(ready.provenance.refresh, 'follow');
  for (const c of report.gate!.conditions) {
    assert.ok(c.paired, `${c.condition}: compared paired`);
    assert.ok(c.paired.interval[0] <= c.paired.delta && c.paired.delta <= c.paired.interval[1]);
  }
  assert.match(result.stdout, /95\.00 % interval/);
});

// Slow: a `refresh` child process fine-tunes, tests and re-indexes.
test('a fine-tune forced to be bad is refused (exit 3): the old model stays, the catalogue still follows', async (t) => {
  const served = await readiness();
  const result = await refresh('bad', 'v3', ['--retrain', '--lr', '50', '--epochs', '1']);
  assert.equal(result.code, REFRESH_EXIT.refused, `${result.stdout}\n${result.stderr}`);
  const report = await reportOf('bad');
  assert.deepEqual([report.outcome, report.exitCode], ['refused', 3]);
  t.diagnostic(`--lr 50: ${report.error?.message}`);
  assert.match(
    report.error?.message ?? '',
    /the new model was refused: .*; version \S+ \(the catalogue as it is now/,
  );
  if (report.gate) {
    assert.equal(report.gate.passed, false);
    assert.ok(report.gate.overall.candidate < report.gate.overall.served, 'the candidate is worse');
    assert.match(result.stdout, /gate refused: /);
  }
  const ready = await servedVersion(report.reindexed!.version);
  assert.equal(report.published?.version, report.reindexed?.version);
  assert.equal(ready.provenance.modelId, served.provenance.modelId, 'the served model stays');
  assert.equal(ready.products, expected.v2 - 5);
  await assertServedCatalogue(stable, removedBy.v3);
});

test('a fine-tune equal to the served model (--epochs 0) is accepted', async () => {
  const served = await readiness();
  const manifest = await readManifest(bundle);
  const result = await refresh('equal', 'v3', ['--retrain', '--epochs', '0']);
  assert.equal(result.code, REFRESH_EXIT.ok, `${result.stdout}\n${result.stderr}`);
  const report = await reportOf('equal');
  assert.equal(report.gate?.passed, true, report.gate?.reason);
  assert.deepEqual([report.gate?.overall.delta, report.gate?.overall.interval], [0, [0, 0]]);
  assert.equal(report.candidate?.modelId, served.provenance.modelId, 'the same weights');
  assert.equal(report.reindexed, null, 'the catalogue had not changed');
  assert.deepEqual(await readManifest(bundle), manifest, 'nothing new to publish');
  assert.match(result.stdout, /gate accepted: /);
});

// Slow: two `refresh` child processes, the first killed in its fine-tune.
test('a refresh killed with SIGKILL in its fine-tune leaves its catalogue served; the next run marks it abandoned', async () => {
  const served = await readiness();
  const killed = await refresh('killed', 'v4', ['--retrain', '--epochs', '1'], () =>
    existsSync(join(runs, 'killed', RUN_FILES.metrics)),
  );
  assert.equal(
    killed.signal,
    'SIGKILL',
    `killed in the fine-tune, not exited (${killed.code}): ${killed.stderr}`,
  );
  const report = await reportOf('killed');
  assert.equal(report.status, 'running', 'the killed run could not finish its report');
  const ready = await servedVersion(report.reindexed!.version);
  assert.equal(ready.provenance.modelId, served.provenance.modelId, 'with the served model');
  assert.equal(ready.products, expected.v2 - 10);
  await assertServedCatalogue(stable, removedBy.v4);
  // The killed run's lock was refreshed up to its death; it may be taken over once it is lockStaleMs old. A run
  // started sooner answers busy (exit 4), which is what a scheduler retries.
  await new Promise((resolve) => setTimeout(resolve, REFRESH_DEFAULTS.lockStaleMs + 500));
  const dry = await refresh('dry', 'v4', ['--dry-run']);
  assert.equal(dry.code, REFRESH_EXIT.ok, dry.stderr);
  assert.equal((await reportOf('killed')).status, 'abandoned');
  const changes = (await reportOf('dry')).changes;
  assert.deepEqual([changes?.added.length, changes?.removed.length, changes?.changed.length], [0, 0, 0]);
});
