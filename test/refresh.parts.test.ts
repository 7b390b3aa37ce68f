/**
 * Refresh parts over real files and processes: both models scored on the very same test triplets of a rendered
 * catalogue, the refresh lock (busy for a second run, taken over after the holder is killed with SIGKILL), and the
 * run report (written atomically, abandoned runs marked by the next run).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoCatalogue, loadCatalogue } from '../src/catalogue/index.ts';
import { createModel, selectBackend } from '../src/model/index.ts';
import { createModelSource, fingerprintProducts } from '../src/index/index.ts';
import { answerSharedTriplets } from '../src/refresh/compare.ts';
import { restrictSource } from '../src/refresh/publish.ts';
import { acquireRefreshLock } from '../src/refresh/lock.ts';
import { REFRESH_DEFAULTS } from '../src/refresh/options.ts';
import { markAbandoned, newReport, ReportWriter } from '../src/refresh/report.ts';
import { REFRESH_EXIT, RefreshError } from '../src/refresh/types.ts';
import { quiet } from './fixtures/model/synthetic.ts';

let root: string;
let dataDir: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-refresh-parts-'));
  dataDir = join(root, 'catalogue');
  await generateDemoCatalogue(dataDir, { count: 80, imageSize: 32, seed: 4 });
  assert.equal(await selectBackend('wasm', quiet), 'wasm');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('refresh: shared test triplets', () => {
  it('both models answer the same triplets, the served one only under the conditions it knows', async () => {
    const catalogue = await loadCatalogue(dataDir);
    const conditions = catalogue.conditions;
    const config = { imageSize: 32, width: 4, embedDim: 8, backbone: 'small' as const, seed: 1 };
    const candidate = createModel({ kind: 'csn', maskMode: 'learned', conditions, ...config });
    const twin = createModel({ kind: 'csn', maskMode: 'learned', conditions, ...config });
    const older = createModel({
      kind: 'csn',
      maskMode: 'learned',
      conditions: [...conditions.slice(1)].reverse(),
      ...config,
      seed: 2,
    });
    try {
      const sampling = { count: 60, seed: 7 };
      const same = await answerSharedTriplets(catalogue, conditions, { candidate, served: twin }, sampling);
      assert.ok(same.triplets.length > 0, 'test triplets were drawn');
      assert.deepEqual(same.served, same.candidate, 'same weights, same answer on every triplet');
      const mixed = await answerSharedTriplets(catalogue, conditions, { candidate, served: older }, sampling);
      assert.deepEqual(mixed.triplets, same.triplets, 'the same triplets again');
      assert.deepEqual(mixed.candidate, same.candidate, 'the candidate answers them the same way again');
      mixed.triplets.forEach((t, i) => {
        const known = t.condition !== 0;
        assert.equal(
          mixed.served[i] !== null,
          known,
          `triplet ${i}: answered by the served model iff it knows ${conditions[t.condition]}`,
        );
      });
      assert.ok(
        mixed.served.some((right, i) => right !== null && right !== mixed.candidate[i]),
        'another model disagrees somewhere',
      );
    } finally {
      candidate.dispose();
      twin.dispose();
      older.dispose();
    }
  });
});

/** A child process that takes the refresh lock, prints LOCKED and waits to be killed. */
function lockHolder(bundle: string): Promise<{ kill: () => Promise<void> }> {
  const code =
    `import { acquireRefreshLock } from ${JSON.stringify(join(process.cwd(), 'src/refresh/lock.ts'))};\n` +
    `await acquireRefreshLock(${JSON.stringify(bundle)}, 2000);\n` +
    `process.stdout.write('LOCKED\\n');\nsetInterval(() => undefined, 1 << 30);\n`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (status) => reject(new Error(`lock holder exited with ${status}`)));
    child.stdout.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes('LOCKED')) return;
      child.removeAllListeners('exit');
      resolve({
        kill: () =>
          new Promise((done) => {
            child.once('exit', () => done());
            child.kill('SIGKILL');
          }),
      });
    });
  });
}

describe("refresh: a version without some of the model's conditions", () => {
  it('an ASEN source restricted to two conditions gives their masks and vectors, in the order asked', async () => {
    const catalogue = await loadCatalogue(dataDir);
    const conditions = catalogue.conditions;
    const model = createModel({
      kind: 'asen',
      maskMode: 'learned',
      conditions,
      imageSize: 32,
      width: 4,
      embedDim: 8,
      backbone: 'small',
      seed: 3,
    });
    try {
      const products = await fingerprintProducts(catalogue);
      const full = await createModelSource({
        model,
        modelId: 'asen',
        catalogue,
        products,
        keepPixels: false,
      });
      const wanted = [conditions[conditions.length - 1], conditions[0]];
      const restricted = restrictSource(full, wanted);
      assert.deepEqual(restricted.conditions, wanted);
      assert.deepEqual(restricted.masks, [full.masks[conditions.length - 1], full.masks[0]]);
      const all = await full.embed([0, 1]);
      const some = await restricted.embed([0, 1]);
      assert.deepEqual(some.conditionVectors, [
        all.conditionVectors![conditions.length - 1],
        all.conditionVectors![0],
      ]);
      assert.equal(restrictSource(full, conditions), full, 'all conditions in order: the source itself');
      assert.throws(() => restrictSource(full, ['no-such']), /no condition no-such/);
      await full.finish?.();
    } finally {
      model.dispose();
    }
  });
});

describe('refresh: lock', () => {
  it('refuses a second refresh of the same bundle with the busy code, and takes over after kill -9', async () => {
    const bundle = join(root, 'bundle-lock');
    const holder = await lockHolder(bundle);
    await assert.rejects(
      acquireRefreshLock(bundle, 2000),
      (error: unknown) => error instanceof RefreshError && error.exitCode === REFRESH_EXIT.busy,
    );
    await holder.kill();
    // The killed holder's lock is no longer refreshed: once stale, the next run takes it over (retry until then).
    let lock = null;
    for (let attempt = 0; attempt < 40 && !lock; attempt++) {
      lock = await acquireRefreshLock(bundle, 2000).catch(async (error: unknown) => {
        assert.ok(
          error instanceof RefreshError,
          `only busy errors while the lock is fresh: ${String(error)}`,
        );
        await new Promise((done) => setTimeout(done, 250));
        return null;
      });
    }
    assert.ok(lock, 'the lock of a killed refresh is taken over');
    const other = join(root, 'bundle-other');
    const independent = await acquireRefreshLock(other, 2000);
    await independent.release();
    await lock.release();
    const again = await acquireRefreshLock(bundle, 2000);
    await again.release();
  });
});

describe('refresh: run report', () => {
  it('writes refresh.json and marks runs of the same bundle left running as abandoned', async () => {
    const logDir = join(root, 'runs');
    const bundle = join(root, 'bundle-report');
    const killed = new ReportWriter(
      join(logDir, 'old'),
      newReport({ run: 'old', bundle, dataDir, dryRun: false }),
    );
    await killed.save();
    const elsewhere = new ReportWriter(
      join(logDir, 'elsewhere'),
      newReport({ run: 'elsewhere', bundle: join(root, 'x'), dataDir, dryRun: false }),
    );
    await elsewhere.save();
    await mkdir(join(logDir, 'not-a-run'), { recursive: true });
    await writeFile(join(logDir, 'not-a-run', REFRESH_DEFAULTS.reportFile), 'garbage');
    const current = new ReportWriter(
      join(logDir, 'new'),
      newReport({ run: 'new', bundle, dataDir, dryRun: false }),
    );
    await current.save();
    assert.deepEqual(await markAbandoned(logDir, bundle, 'new'), ['old']);
    const read = async (run: string) =>
      JSON.parse(await readFile(join(logDir, run, REFRESH_DEFAULTS.reportFile), 'utf8'));
    assert.equal((await read('old')).status, 'abandoned');
    assert.equal((await read('elsewhere')).status, 'running', 'another bundle is not ours to judge');
    assert.equal((await read('new')).status, 'running');
    await current.time('phase', async () => undefined);
    await current.finish('nothing-to-do', REFRESH_EXIT.ok);
    const done = await read('new');
    assert.deepEqual([done.status, done.outcome, done.exitCode], ['finished', 'nothing-to-do', 0]);
    assert.equal(typeof done.timings.phase, 'number');
  });
});
