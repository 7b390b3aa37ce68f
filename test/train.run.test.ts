/**
 * The training loop end to end on a tiny generated catalogue (60 products, 32 px): determinism, exact resume
 * (at an epoch boundary and mid-epoch), run files, and evaluation of the written checkpoints.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import sharp from 'sharp';
import { generateDemoCatalogue } from '../src/catalogue/index.ts';
import { loadModelFromCheckpoint, readCheckpoint, type Checkpoint } from '../src/checkpoint/index.ts';
import { readMetrics, TIMING_FIELDS, type MetricsRecord } from '../src/train/metrics.ts';
import { TRAIN_DEFAULTS, type TrainOptions } from '../src/train/options.ts';
import { RUN_FILES, train } from '../src/train/trainer.ts';
import { runEval } from '../src/eval/run.ts';
import { modelProvenance } from '../src/index/model-source.ts';
import { TRIPLETS_ONLY } from './fixtures/train/settings.ts';

let root: string;
let dataDir: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-train-'));
  dataDir = join(root, 'catalogue');
  await generateDemoCatalogue(dataDir, { count: 60, imageSize: 32, seed: 3 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function options(name: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    ...TRAIN_DEFAULTS,
    ...TRIPLETS_ONLY,
    dataDir,
    logDir: join(root, 'runs'),
    name,
    imageSize: 32,
    embedDim: 16,
    batchSize: 16,
    trainTriplets: 72,
    valTriplets: 40,
    testTriplets: 40,
    mapQueries: 20,
    epochs: 2,
    logInterval: 2,
    backend: 'wasm',
    progress: false,
    ...overrides,
  };
}

const quiet = { out: null } as const;

/** Metrics without wall-clock fields and run events: what must match between equivalent runs. */
async function comparableMetrics(runDir: string): Promise<MetricsRecord[]> {
  return readMetrics(join(runDir, RUN_FILES.metrics))
    .filter((record) => record.type !== 'event')
    .map((record) => {
      const copy = JSON.parse(JSON.stringify(record)) as Record<string, unknown>;
      for (const field of TIMING_FIELDS) delete copy[field];
      if (copy.type === 'test') delete (copy.test as Record<string, unknown>).imagesPerSecond;
      return copy as unknown as MetricsRecord;
    });
}

function weightsOf(checkpoint: Checkpoint): number[][] {
  return [...checkpoint.model.weights, ...(checkpoint.optimizer?.slots ?? [])].map((w) => [...w.data]);
}

describe('training runs', () => {
  let straight: string;

  // Slow: a whole training run: epochs of triplets, validation, test and MAP, checkpoints.
  it('writes every run file and a usable model', async () => {
    const before = tf.memory().numTensors;
    const result = await train(options('straight'), quiet);
    assert.equal(tf.memory().numTensors, before, 'no tensors leak from a whole run');
    straight = result.runDir;
    assert.equal(result.interrupted, false);
    assert.equal(result.epoch, 2);
    for (const file of Object.values(RUN_FILES))
      assert.ok(existsSync(join(straight, file)), `${file} exists`);

    const png = await readFile(join(straight, RUN_FILES.plot));
    assert.deepEqual(
      [...png.subarray(0, 8)],
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
      'PNG signature',
    );
    const meta = await sharp(png).metadata();
    assert.equal(meta.format, 'png');
    assert.ok(meta.width! > 400 && meta.height! > 200);

    const records = readMetrics(join(straight, RUN_FILES.metrics));
    const epochs = records.filter((r) => r.type === 'epoch');
    assert.equal(epochs.length, 2);
    assert.ok(records.filter((r) => r.type === 'step').length >= 4, 'step lines every --log-interval');
    for (const epoch of epochs) {
      if (epoch.type !== 'epoch') continue;
      assert.deepEqual(Object.keys(epoch.val!.perCondition).sort(), [
        'color',
        'length',
        'neckline',
        'pattern',
        'silhouette',
        'sleeve',
      ]);
    }
    assert.equal(records.at(-1)?.type, 'event');

    const results = JSON.parse(await readFile(join(straight, RUN_FILES.testResults), 'utf8'));
    assert.equal(results.split, 'test');
    assert.equal(results.triplets.triplets, 40);
    assert.ok(results.retrieval.overall.queries > 0);
    assert.equal(results.model.checkpoint, join(straight, RUN_FILES.best));

    const best = await readCheckpoint(join(straight, RUN_FILES.best));
    assert.equal(best.training!.bestEpoch, result.bestEpoch);
    assert.equal(best.optimizer, undefined, 'model_best carries no optimiser state');
    const model = await loadModelFromCheckpoint(join(straight, RUN_FILES.best));
    assert.deepEqual(model.config.conditions, [
      'color',
      'sleeve',
      'neckline',
      'length',
      'pattern',
      'silhouette',
    ]);
    model.dispose();
  });

  it('is deterministic for a seed and differs for another seed', async () => {
    const again = await train(options('again'), quiet);
    assert.deepEqual(await comparableMetrics(again.runDir), await comparableMetrics(straight));
    const latest = await readCheckpoint(join(again.runDir, RUN_FILES.latest));
    assert.deepEqual(weightsOf(latest), weightsOf(await readCheckpoint(join(straight, RUN_FILES.latest))));

    const other = await train(options('other-seed', { seed: 7 }), quiet);
    assert.notDeepEqual(await comparableMetrics(other.runDir), await comparableMetrics(straight));
  });

  it('resumed at an epoch boundary, ends exactly where the straight run ends', async () => {
    const first = await train(options('resumed', { epochs: 1 }), quiet);
    assert.equal(first.epoch, 1);
    const resume = join(first.runDir, RUN_FILES.latest);
    // A temp file left by a writer that was killed mid-write (its pid is gone) is cleaned up on the next start.
    const stale = join(first.runDir, `.${RUN_FILES.latest}.4194303.1700000000000.tmp`);
    await writeFile(stale, 'partial');
    const second = await train(options('resumed', { epochs: 2, resume }), quiet);
    assert.equal(second.epoch, 2);
    assert.ok(!existsSync(stale), 'stale temp file removed');
    const a = await readCheckpoint(join(straight, RUN_FILES.latest));
    const b = await readCheckpoint(join(second.runDir, RUN_FILES.latest));
    assert.deepEqual(weightsOf(b), weightsOf(a), 'weights and Adam moments');
    assert.deepEqual(b.training, a.training, 'epoch, step, rng state and best so far');
    assert.equal(b.optimizer!.iterations, a.optimizer!.iterations);
    assert.equal(b.optimizer!.accBeta1, a.optimizer!.accBeta1);
    assert.deepEqual(await comparableMetrics(second.runDir), await comparableMetrics(straight));
  });

  it('stopped mid-epoch (like SIGINT), resumes to the same result', async () => {
    const controller = new AbortController();
    const stopped = await train(options('interrupted'), {
      ...quiet,
      signal: controller.signal,
      onStep: ({ globalStep }) => {
        if (globalStep === 7) controller.abort();
      },
    });
    assert.equal(stopped.interrupted, true);
    assert.equal(stopped.globalStep, 7);
    const latest = join(stopped.runDir, RUN_FILES.latest);
    const saved = await readCheckpoint(latest);
    assert.equal(saved.training!.epoch, 2);
    assert.equal(saved.training!.stepInEpoch, 2, '5 steps per epoch: step 7 is the 2nd of epoch 2');
    assert.ok(!existsSync(join(stopped.runDir, RUN_FILES.testResults)), 'no test after an interruption');

    const resumed = await train(options('interrupted', { resume: latest }), quiet);
    assert.equal(resumed.interrupted, false);
    const a = await readCheckpoint(join(straight, RUN_FILES.latest));
    const b = await readCheckpoint(join(resumed.runDir, RUN_FILES.latest));
    assert.deepEqual(weightsOf(b), weightsOf(a));
    assert.deepEqual(await comparableMetrics(resumed.runDir), await comparableMetrics(straight));
    const events = readMetrics(join(resumed.runDir, RUN_FILES.metrics)).flatMap((r) =>
      r.type === 'event' ? [r.event] : [],
    );
    assert.deepEqual(events, ['start', 'interrupted', 'resume', 'finished']);
  });

  it('in upstream triplet-list mode, also resumes exactly', async () => {
    const upstream = { batchMode: 'triplets' as const };
    const whole = await train(options('list-straight', upstream), quiet);
    const epochs = readMetrics(join(whole.runDir, RUN_FILES.metrics)).filter((r) => r.type === 'epoch');
    assert.equal(epochs.length, 2);
    assert.equal(whole.globalStep, 10, '72 listed triplets in batches of 16: 5 steps per epoch');
    await train(options('list-resumed', { ...upstream, epochs: 1 }), quiet);
    const resumed = await train(
      options('list-resumed', { ...upstream, resume: join(root, 'runs', 'list-resumed', RUN_FILES.latest) }),
      quiet,
    );
    const a = await readCheckpoint(join(whole.runDir, RUN_FILES.latest));
    const b = await readCheckpoint(join(resumed.runDir, RUN_FILES.latest));
    assert.deepEqual(weightsOf(b), weightsOf(a));
    assert.deepEqual(await comparableMetrics(resumed.runDir), await comparableMetrics(whole.runDir));
    assert.notDeepEqual(
      await comparableMetrics(whole.runDir),
      await comparableMetrics(straight),
      'modes differ',
    );
  });

  for (const kind of ['asen', 'unconditional'] as const) {
    it(`trains, checkpoints and tests the ${kind} model`, async () => {
      const result = await train(options(kind, { model: kind, epochs: 1 }), quiet);
      assert.equal(result.test?.triplets.triplets, 40);
      const model = await loadModelFromCheckpoint(join(result.runDir, RUN_FILES.best));
      assert.equal(model.config.kind, kind);
      model.dispose();
    });
  }

  it('refuses to overwrite a run unless asked, and rejects unknown conditions', async () => {
    await assert.rejects(train(options('straight'), quiet), /already holds a run: continue it with --resume/);
    await assert.rejects(
      train(options('bad-condition', { conditions: ['colour'] }), quiet),
      /unknown condition "colour"; valid conditions: color \(0\), sleeve \(1\)/,
    );
  });

  it('--test only evaluates the given checkpoint', async () => {
    const result = await train(
      options('test-only', { test: true, resume: join(straight, RUN_FILES.best) }),
      quiet,
    );
    const trained = JSON.parse(await readFile(join(straight, RUN_FILES.testResults), 'utf8'));
    assert.deepEqual(result.test!.triplets, trained.triplets);
    assert.ok(existsSync(join(result.runDir, RUN_FILES.testResults)));
    assert.ok(!existsSync(join(result.runDir, RUN_FILES.latest)), 'nothing trained');
  });

  it("evaluates a checkpoint on the run's own test triplets", async () => {
    const lines: string[] = [];
    const sink = { write: (text: string) => lines.push(text) } as unknown as NodeJS.WritableStream;
    const out = join(root, 'eval.json');
    const report = await runEval(
      {
        model: join(straight, RUN_FILES.best),
        split: 'test',
        mapQueries: 20,
        map: true,
        backend: 'wasm',
        out,
      },
      sink,
    );
    const trained = JSON.parse(await readFile(join(straight, RUN_FILES.testResults), 'utf8'));
    assert.deepEqual(report.triplets, trained.triplets, 'same triplets, same model, same accuracy');
    assert.deepEqual(report.retrieval, trained.retrieval);
    assert.match(lines.join(''), /overall\s+40\s+\d+\.\d\d%/);
    assert.deepEqual(JSON.parse(await readFile(out, 'utf8')).triplets, report.triplets);
  });
});

describe('training for real photos: colour channels and the in-batch label loss', () => {
  it('trains deterministically with both, and the best checkpoint carries its own test scores', async () => {
    const settings = { colourHistogram: true, labelLoss: 1, controlled: 4, epochs: 1, embedDim: 24 };
    const first = await train(options('real-a', settings), quiet);
    const second = await train(options('real-b', settings), quiet);
    assert.deepEqual(await comparableMetrics(first.runDir), await comparableMetrics(second.runDir));
    const best = await readCheckpoint(join(first.runDir, RUN_FILES.best));
    assert.equal(best.model.config.colourHistogram, true);
    const report = JSON.parse(await readFile(join(first.runDir, RUN_FILES.testResults), 'utf8'));
    assert.deepEqual(best.metrics?.test, report.triplets);
    assert.equal(best.metrics?.testMap?.overall, report.retrieval.overall.map);
    for (const condition of report.conditions as string[]) {
      assert.equal(
        best.metrics?.testMap?.perCondition[condition],
        report.retrieval.perCondition[condition].map,
      );
    }
    // What the index records for the service: per-condition scores, from test_results.json or the checkpoint.
    const fromReport = await modelProvenance(join(first.runDir, RUN_FILES.best), report.model.id);
    await rm(join(first.runDir, RUN_FILES.testResults));
    const fromCheckpoint = await modelProvenance(join(first.runDir, RUN_FILES.best), report.model.id);
    for (const provenance of [fromReport, fromCheckpoint]) {
      assert.equal(provenance.testAccuracy, report.triplets.overall);
      for (const condition of report.conditions as string[]) {
        assert.deepEqual(provenance.conditionScores?.[condition], {
          testAccuracy: report.triplets.perCondition[condition].accuracy,
          testMap: report.retrieval.perCondition[condition].map,
        });
      }
    }
    const plain = await train(options('real-plain', { epochs: 1, embedDim: 24 }), quiet);
    const loss = async (dir: string) =>
      (await comparableMetrics(dir)).filter((r) => r.type === 'epoch').map((r) => JSON.stringify(r));
    assert.notDeepEqual(await loss(first.runDir), await loss(plain.runDir));
  });
});
