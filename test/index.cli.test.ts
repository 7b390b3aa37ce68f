/**
 * The index job as a user runs it: `dressmatch index` on a demo catalogue with a (small, untrained) model
 * checkpoint, then `index --incremental` after the catalogue changed, then `index-info` and `index-query`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { generateDemoCatalogue } from '../src/catalogue/demo.ts';
import { createModel, defaultModelConfig } from '../src/model/create.ts';
import { modelId, writeCheckpoint } from '../src/checkpoint/index.ts';

const main = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
let root = '';
let dataDir = '';
let checkpoint = '';
let id = '';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function json<T>(text: string): T {
  return JSON.parse(text) as T;
}

describe('index CLI', () => {
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'dressmatch-index-cli-'));
    dataDir = join(root, 'data');
    const catalogue = await generateDemoCatalogue(dataDir, { count: 90, seed: 5, imageSize: 48 });
    const model = createModel(
      defaultModelConfig(catalogue.conditions, { imageSize: 32, embedDim: 32, width: 4, seed: 1 }),
    );
    const snapshot = model.snapshot();
    id = modelId(snapshot);
    checkpoint = join(root, 'model.dmck');
    await writeCheckpoint(checkpoint, { model: snapshot });
    model.dispose();
  });
  after(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  // Slow: five CLI processes, each loading the model and embedding (part of) the catalogue or opening the bundle.
  test('index, re-index incrementally after catalogue edits, inspect and query', async () => {
    const out = join(root, 'index');
    const first = await cli(['index', '--model', checkpoint, '--data-dir', dataDir, '--out', out, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const report = json<{
      published: boolean;
      mode: string;
      version: string;
      embedded: number;
      imagesPerSecond: number;
      quality: { condition: string; recall: number }[];
    }>(first.stdout);
    assert.equal(report.published, true);
    assert.equal(report.mode, 'full');
    assert.equal(report.embedded, 90);
    assert.ok(report.imagesPerSecond > 0);
    assert.equal(report.quality.length, 6);
    assert.ok(report.quality.every((q) => q.recall >= 0.9));

    // Edit the catalogue: drop the last product, retitle the first, add one with a new image.
    const productsFile = join(dataDir, 'products.jsonl');
    const lines = (await readFile(productsFile, 'utf8')).trim().split('\n');
    const firstProduct = JSON.parse(lines[0]) as { id: string; title: string; image: string };
    const removed = JSON.parse(lines[lines.length - 1]) as { id: string };
    const added = { ...JSON.parse(lines[1]), id: 'dress-new', image: 'images/dress-new.png' } as Record<
      string,
      unknown
    >;
    await copyFile(join(dataDir, firstProduct.image), join(dataDir, 'images/dress-new.png'));
    lines[0] = JSON.stringify({ ...firstProduct, title: `${firstProduct.title} (new season)` });
    lines.pop();
    lines.push(JSON.stringify(added));
    await writeFile(productsFile, `${lines.join('\n')}\n`);

    const second = await cli([
      'index',
      '--model',
      checkpoint,
      '--data-dir',
      dataDir,
      '--out',
      out,
      '--incremental',
      '--json',
    ]);
    assert.equal(second.code, 0, second.stderr);
    const update = json<{
      mode: string;
      embedded: number;
      changes: Record<string, unknown>;
      version: string;
    }>(second.stdout);
    assert.equal(update.mode, 'incremental');
    assert.deepEqual(update.changes, { added: 1, updated: 1, removed: 1, unchanged: 88, compacted: false });
    assert.equal(update.embedded, 2);
    assert.notEqual(update.version, report.version);
    assert.deepEqual((await readdir(join(out, 'versions'))).sort(), [report.version, update.version].sort());

    const info = await cli(['index-info', out, '--json']);
    assert.equal(info.code, 0, info.stderr);
    const described = json<{
      manifest: { current: string };
      version: { model: { id: string }; live: number };
    }>(info.stdout);
    assert.equal(described.manifest.current, update.version);
    assert.equal(described.version.model.id, id);
    assert.equal(described.version.live, 90);
    const table = await cli(['index-info', out]);
    assert.match(table.stdout, /checksums verified/);
    assert.match(table.stdout, /color\s+l2/);

    const query = await cli([
      'index-query',
      out,
      '--product',
      'dress-new',
      '--condition',
      'color',
      '-k',
      '5',
      '--json',
    ]);
    assert.equal(query.code, 0, query.stderr);
    const hits = json<{ results: { condition: string; neighbours: { id: string }[] }[] }>(query.stdout);
    assert.equal(hits.results[0].neighbours.length, 5);
    // dress-new has the same image as the first product: under every condition they are each other's nearest.
    assert.equal(hits.results[0].neighbours[0].id, firstProduct.id);
    assert.ok(!hits.results[0].neighbours.some((n) => n.id === removed.id));
  });

  test('errors are one clear line and a non-zero exit code', async () => {
    const missing = await cli(['index-info', join(root, 'nothing-here')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no index has been published here yet/);

    const wrongModel = await cli([
      'index',
      '--model',
      join(root, 'missing.dmck'),
      '--data-dir',
      dataDir,
      '--out',
      join(root, 'other'),
    ]);
    assert.equal(wrongModel.code, 1);
    assert.match(wrongModel.stderr, /missing\.dmck/);
    assert.doesNotMatch(wrongModel.stderr, /Usage:/, 'a failed job is not a usage mistake');
  });

  test('demo reuses a trained model to index, and refuses a run folder that holds another kind', async () => {
    const models = join(root, 'models');
    for (const name of ['demo', 'demo-asen']) {
      await mkdir(join(models, name), { recursive: true });
      await copyFile(checkpoint, join(models, name, 'model_best.dmck'));
    }
    const common = ['--data-dir', dataDir, '--models-dir', models, '--no-serve'];
    const csnIndex = join(root, 'demo-index');
    const csn = await cli(['demo', ...common, '--index-dir', csnIndex]);
    assert.equal(csn.code, 0, csn.stderr);
    assert.equal(
      json<{ modelId: string }>(await readFile(join(csnIndex, 'manifest.json'), 'utf8')).modelId,
      id,
    );

    const asenIndex = join(root, 'demo-asen-index');
    const asen = await cli(['demo', ...common, '--model', 'asen', '--index-dir', asenIndex]);
    assert.equal(asen.code, 1);
    assert.match(asen.stderr, /demo-asen[/\\]model_best\.dmck holds a csn model, not asen/);
    assert.ok(!existsSync(asenIndex), 'nothing was indexed');
  });
});
