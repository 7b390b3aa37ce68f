/**
 * The demo model ships in models/demo: it loads, it was trained with the demo's current settings, and it scores
 * the accuracy the README states on the demo's test split (which needs the demo catalogue: data/demo when it is
 * there, else the test split's products alone, rendered once per run into the fixture cache: the same records and
 * image bytes as in the full catalogue, and the test split's triplets draw only on them).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { generateDemoCatalogue } from '../src/catalogue/index.ts';
import { DEMO_DATA_DIR } from '../src/catalogue/defaults.ts';
import { DEMO_CHECKPOINT, loadModelFromCheckpoint, readCheckpoint } from '../src/checkpoint/index.ts';
import { runEval } from '../src/eval/run.ts';
import { demoTrainSettings, recordedAccuracy, settingsDrift } from '../scripts/demo-model.ts';
import { cachedFixture } from './fixtures/cache.ts';

async function demoCatalogue(): Promise<string> {
  if (existsSync(join(DEMO_DATA_DIR, 'products.jsonl'))) return DEMO_DATA_DIR;
  const dir = await cachedFixture('demo-test-split', { splits: ['test'] }, (into) =>
    generateDemoCatalogue(join(into, 'catalogue'), { splits: ['test'] }).then(() => undefined),
  );
  return join(dir, 'catalogue');
}

/** The overall figure of the demo model's row in README.md, e.g. "80.7". */
function readmeFigure(): string {
  const row = /^\| demo CSN \(`models\/demo`\)[^|]*\|\s*([\d.]+) %/m.exec(readFileSync('README.md', 'utf8'));
  assert.ok(row, 'README.md has a "demo CSN (`models/demo`)" row with its test accuracy');
  return row[1];
}

describe('the shipped demo model', () => {
  it("loads, and was trained with the demo's current settings", async () => {
    const model = await loadModelFromCheckpoint(DEMO_CHECKPOINT);
    try {
      assert.equal(model.config.kind, 'csn');
    } finally {
      model.dispose();
    }
    const { args } = await readCheckpoint(DEMO_CHECKPOINT);
    assert.deepEqual(
      settingsDrift((args ?? {}) as Record<string, unknown>, await demoTrainSettings()),
      [],
      'retrain it: npm run demo -- --retrain --no-serve',
    );
  });

  it("scores the README's accuracy on the demo's test split", async () => {
    const report = await runEval(
      {
        model: DEMO_CHECKPOINT,
        dataDir: await demoCatalogue(),
        split: 'test',
        mapQueries: 1,
        map: false,
        backend: 'wasm',
      },
      new Writable({ write: (_chunk, _encoding, done) => done() }),
    );
    assert.equal(report.triplets.triplets, 4000);
    assert.equal(
      report.triplets.overall,
      recordedAccuracy(),
      'the accuracy models/demo/test_results.json records',
    );
    assert.equal((report.triplets.overall * 100).toFixed(1), readmeFigure(), 'the accuracy README.md states');
  });
});
