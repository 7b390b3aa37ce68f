/**
 * `runRefresh` in-process over real parts (a rendered catalogue, a real checkpoint, real HNSW bundles on disk): each
 * outcome and exit code of a run. Nothing changed; re-index only; images that do not decode (named, nothing
 * published); a second refresh of a busy bundle; a retrain that adds a condition (fresh mask) and drops one: the
 * catalogue first published with the served model without both, then the candidate gated and published; and a
 * catalogue that lost a condition under --no-retrain, published without it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { generateDemoCatalogue, loadCatalogue } from '../src/catalogue/index.ts';
import { modelId, writeCheckpoint } from '../src/checkpoint/index.ts';
import {
  buildBundle,
  createModelSource,
  fingerprintProducts,
  openBundle,
  readManifest,
} from '../src/index/index.ts';
import { createModel, defaultModelConfig, selectBackend } from '../src/model/index.ts';
import { acquireRefreshLock, REFRESH_EXIT } from '../src/refresh/index.ts';
import { runRefresh, type RefreshOptions } from '../src/refresh/run.ts';
import { quiet } from './fixtures/model/synthetic.ts';

let root: string;
let generated: string;
let bundle: string;
let runCount = 0;

interface Line {
  id: string;
  image: string;
  attributes: Record<string, string[]>;
  [key: string]: unknown;
}
let lines: Line[];

/** A catalogue next to the generated one: its images (symlinked), the conditions and products given. */
async function catalogue(name: string, conditions: string[], products: Line[]): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await symlink(join(generated, 'images'), join(dir, 'images'));
  await writeFile(join(dir, 'conditions.txt'), `${conditions.join('\n')}\n`);
  await writeFile(join(dir, 'products.jsonl'), `${products.map((p) => JSON.stringify(p)).join('\n')}\n`);
  return dir;
}

const conditionsOf = async () =>
  (await readFile(join(generated, 'conditions.txt'), 'utf8')).trim().split('\n');

/** Fine-tune settings a test can afford; `explicit` says they were given on the command line. */
const SMALL = {
  epochs: 1,
  batchSize: 32,
  poolSize: 24,
  trainTriplets: 64,
  valTriplets: 30,
  testTriplets: 120,
  mapQueries: 10,
  imageSize: 32,
  backend: 'wasm' as const,
  progress: false,
};

function options(dataDir: string, overrides: Partial<RefreshOptions> = {}): RefreshOptions {
  return {
    dataDir,
    indexDir: bundle,
    tolerance: 0.01,
    retrainShare: 0.25,
    dryRun: false,
    logDir: join(root, 'runs'),
    name: `run-${++runCount}`,
    gateTriplets: 300,
    fineTune: { ...SMALL },
    log: pino({ level: 'silent' }),
    out: null,
    ...overrides,
  };
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-refresh-run-'));
  generated = join(root, 'generated');
  await generateDemoCatalogue(generated, { count: 60, imageSize: 32, seed: 8 });
  lines = (await readFile(join(generated, 'products.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((text) => JSON.parse(text) as Line);
  assert.equal(await selectBackend('wasm', quiet), 'wasm');
  const served = await loadCatalogue(generated);
  const config = defaultModelConfig(served.conditions, { imageSize: 32, width: 4, embedDim: 8, seed: 2 });
  const model = createModel(config);
  const checkpoint = join(root, 'served.dmck');
  await writeCheckpoint(checkpoint, { model: model.snapshot(), args: { imageSize: 32, seed: 3 } });
  bundle = join(root, 'bundle');
  const products = await fingerprintProducts(served);
  const source = await createModelSource({
    model,
    modelId: modelId(model.snapshot()),
    catalogue: served,
    products,
  });
  await buildBundle(
    bundle,
    {
      ...source,
      checkpointFile: checkpoint,
      provenance: { trainedAt: null, testAccuracy: 0.5, refresh: null },
    },
    { minRecall: 0, recallSample: 10, quantilePairs: 200 },
  );
  model.dispose();
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('refresh runs', () => {
  it('does nothing when the catalogue is what the served version indexed, but removes a killed build', async () => {
    const before = await readManifest(bundle);
    const killedBuild = join(bundle, 'versions', '.tmp-v000009-20260101T000000Z');
    await mkdir(killedBuild, { recursive: true });
    await writeFile(join(killedBuild, 'products.json'), '{"slots": [');
    const result = await runRefresh(options(generated));
    assert.equal(result.exitCode, REFRESH_EXIT.ok, result.report.error?.message);
    assert.equal(result.report.outcome, 'nothing-to-do');
    assert.equal(result.report.changes?.unchanged, lines.length);
    assert.deepEqual(await readManifest(bundle), before);
    assert.equal(existsSync(killedBuild), false, 'the temp directory of a killed build is gone');
  });

  it('names every product whose image does not decode and publishes nothing', async () => {
    const dir = await catalogue('broken', await conditionsOf(), [
      ...lines,
      { ...lines[0], id: 'broken-1', image: 'extra/broken-1.jpg' },
      { ...lines[1], id: 'broken-2', image: 'extra/broken-2.png' },
    ]);
    await mkdir(join(dir, 'extra'));
    await writeFile(join(dir, 'extra/broken-1.jpg'), 'not a jpeg');
    await writeFile(join(dir, 'extra/broken-2.png'), Buffer.alloc(0));
    const before = await readManifest(bundle);
    const result = await runRefresh(options(dir));
    assert.equal(result.exitCode, REFRESH_EXIT.badInput, result.report.error?.message);
    assert.deepEqual(result.report.error?.products, ['broken-1', 'broken-2']);
    assert.match(
      result.report.error?.message ?? '',
      /2 product image\(s\) cannot be decoded: broken-1 .*; broken-2/,
    );
    assert.deepEqual(await readManifest(bundle), before, 'nothing was published');
  });

  it('answers busy while another refresh holds the bundle', async () => {
    const lock = await acquireRefreshLock(bundle);
    try {
      const result = await runRefresh(options(generated));
      assert.equal(result.exitCode, REFRESH_EXIT.busy);
      assert.match(result.report.error?.message ?? '', /another refresh/);
    } finally {
      await lock.release();
    }
  });

  it('re-indexes small changes incrementally with the served model', async () => {
    const relabelled = {
      ...lines[3],
      attributes: { ...lines[3].attributes, color: lines[4].attributes.color },
    };
    const dir = await catalogue('small-change', await conditionsOf(), [
      ...lines.slice(2, 3),
      relabelled,
      ...lines.slice(4),
    ]);
    const result = await runRefresh(options(dir));
    assert.equal(result.exitCode, REFRESH_EXIT.ok, result.report.error?.message);
    assert.equal(result.report.decision?.action, 'reindex', result.report.decision?.reasons.join('; '));
    assert.deepEqual(result.report.changes?.removed, [lines[0].id, lines[1].id]);
    assert.deepEqual(result.report.changes?.changed, [{ id: lines[3].id, what: ['labels'] }]);
    assert.equal(result.report.published?.mode, 'incremental');
    const served = await openBundle(bundle);
    try {
      assert.equal(served.version, result.report.published?.version);
      assert.equal(served.liveCount, lines.length - 2);
      assert.equal(served.info.provenance?.refresh, result.report.run, 'the version names the refresh');
      assert.equal(served.info.provenance?.testAccuracy, 0.5, 'the model and its accuracy are unchanged');
    } finally {
      served.close();
    }
  });

  it('retrains when a condition is added and one removed: fresh mask, dropped mask, gated, published', async () => {
    const conditions = await conditionsOf();
    const dropped = conditions[0];
    const kept = conditions.slice(1);
    const products = lines.map((p, i) => {
      const attributes: Record<string, string[]> = { ...p.attributes, fit: [i % 2 === 0 ? 'slim' : 'loose'] };
      delete attributes[dropped];
      return { ...p, attributes };
    });
    const dir = await catalogue('new-condition', [...kept, 'fit'], products);
    const result = await runRefresh(options(dir, { tolerance: 1 }));
    assert.equal(result.exitCode, REFRESH_EXIT.ok, result.report.error?.message);
    const report = result.report;
    assert.equal(report.decision?.action, 'retrain');
    assert.deepEqual(report.changes?.conditionsAdded, ['fit']);
    assert.deepEqual(report.changes?.conditionsRemoved, [dropped]);
    assert.deepEqual(report.warmStart?.added, ['fit']);
    assert.deepEqual(report.warmStart?.dropped, [dropped]);
    assert.deepEqual(
      report.reindexed?.conditions,
      kept,
      'first the catalogue with the served model, without fit',
    );
    assert.deepEqual(report.reindexed?.notServable, ['fit'], 'fit: not servable before a model learned it');
    const fit = report.gate?.conditions.find((c) => c.condition === 'fit');
    assert.deepEqual(
      [fit?.paired, fit?.verdict, fit?.passed],
      [null, 'new', true],
      'a new condition is reported, not gated',
    );
    assert.equal(report.published?.mode, 'full');
    assert.notEqual(report.published?.version, report.reindexed?.version, 'then the new model');
    const served = await openBundle(bundle);
    try {
      assert.deepEqual([...served.conditions], [...kept, 'fit']);
      assert.equal(served.modelId, report.candidate?.modelId);
      assert.equal(served.info.provenance?.testAccuracy, report.candidate?.testAccuracy);
      assert.ok(served.modelFile, 'the version carries the candidate');
    } finally {
      served.close();
    }
  });
  it('under --no-retrain, a catalogue that lost a condition is published without it, with the served model', async () => {
    const before = await openBundle(bundle);
    before.close();
    const conditions = [...before.conditions];
    const lost = conditions[conditions.length - 1];
    const kept = conditions.slice(0, -1);
    const products = lines.map((p) => ({
      ...p,
      attributes: Object.fromEntries(Object.entries(p.attributes).filter(([name]) => kept.includes(name))),
    }));
    const dir = await catalogue('lost-condition', kept, products);
    const result = await runRefresh(options(dir, { retrain: false }));
    assert.equal(result.exitCode, REFRESH_EXIT.ok, result.report.error?.message);
    assert.deepEqual(result.report.changes?.conditionsRemoved, [lost]);
    assert.deepEqual(result.report.reindexed?.conditions, kept);
    const served = await openBundle(bundle);
    try {
      assert.equal(served.version, result.report.published?.version);
      assert.deepEqual([...served.conditions], kept, `${lost} is left out`);
      assert.equal(served.modelId, before.modelId, 'the served model still serves the other conditions');
    } finally {
      served.close();
    }
  });
});
