/** `train` and `eval` as processes: SIGINT saves and exits 130, --resume finishes the run, eval prints a table. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateDemoCatalogue } from '../src/catalogue/index.ts';
import { readCheckpoint } from '../src/checkpoint/index.ts';
import { readMetrics } from '../src/train/metrics.ts';
import { TRIPLETS_ONLY_FLAGS } from './fixtures/train/settings.ts';

const cli = fileURLToPath(new URL('./fixtures/train/cli.ts', import.meta.url));
let root: string;
let dataDir: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-train-cli-'));
  dataDir = join(root, 'catalogue');
  await generateDemoCatalogue(dataDir, { count: 60, imageSize: 32, seed: 5 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI; `whenRunning` is polled every 50 ms with the child until it returns true. */
function runCli(args: string[], whenRunning?: (child: ReturnType<typeof spawn>) => boolean): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOG_LEVEL: 'info' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = whenRunning
      ? setInterval(() => {
          if (whenRunning(child)) clearInterval(timer);
        }, 50)
      : undefined;
    child.on('error', reject);
    child.on('exit', (code) => {
      if (timer) clearInterval(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const common = (name: string) => [
  'train',
  ...TRIPLETS_ONLY_FLAGS,
  '--data-dir',
  dataDir,
  '--log-dir',
  join(root, 'runs'),
  '--name',
  name,
  '--image-size',
  '32',
  '--embed-dim',
  '16',
  '--batch-size',
  '8',
  '--train-triplets',
  '400',
  '--val-triplets',
  '30',
  '--test-triplets',
  '30',
  '--map-queries',
  '10',
  '--epochs',
  '2',
  '--log-interval',
  '1',
  '--backend',
  'wasm',
];

describe('train CLI', () => {
  // Slow: three CLI processes: a training run stopped by SIGINT, its resume through 100 steps with validation and test, and an eval.
  it('on SIGINT finishes the step, saves checkpoint_latest and exits 130; --resume completes the run', async () => {
    const runDir = join(root, 'runs', 'sig');
    const metrics = join(runDir, 'metrics.jsonl');
    let sent = false;
    const stopped = await runCli(common('sig'), (child) => {
      if (sent || !existsSync(metrics)) return sent;
      if (readMetrics(metrics).filter((r) => r.type === 'step').length >= 3) {
        child.kill('SIGINT');
        sent = true;
      }
      return sent;
    });
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /SIGINT: finishing the current step/);
    assert.match(stopped.stderr, /continue with --resume/);
    const saved = await readCheckpoint(join(runDir, 'checkpoint_latest.dmck'));
    assert.equal(saved.training!.epoch, 1);
    assert.ok(
      saved.training!.stepInEpoch >= 3 && saved.training!.stepInEpoch < 50,
      `stopped at step ${saved.training!.stepInEpoch}`,
    );

    const resumed = await runCli([
      'train',
      '--resume',
      join(runDir, 'checkpoint_latest.dmck'),
      '--no-progress',
    ]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /test split\n.*condition\s+triplets\s+accuracy\s+queries\s+MAP/);
    assert.match(resumed.stdout, /overall\s+30\s+/);
    const results = JSON.parse(await readFile(join(runDir, 'test_results.json'), 'utf8'));
    assert.equal(results.triplets.triplets, 30);
    const steps = readMetrics(metrics)
      .filter((r) => r.type === 'step')
      .map((r) => (r.type === 'step' ? r.globalStep : 0));
    assert.deepEqual(
      steps,
      [...new Set(steps)].sort((a, b) => a - b),
      'no step logged twice after the resume',
    );
    assert.equal(steps.at(-1), 100);

    const evaluated = await runCli([
      'eval',
      '--model',
      join(runDir, 'model_best.dmck'),
      '--out',
      join(root, 'e.json'),
    ]);
    assert.equal(evaluated.code, 0, evaluated.stderr);
    assert.match(evaluated.stdout, /overall\s+30\s+/);
    assert.deepEqual(JSON.parse(await readFile(join(root, 'e.json'), 'utf8')).triplets, results.triplets);
  });

  // Slow: two CLI processes, each starting Node and loading the train and model stages.
  it('reports bad flags and unknown conditions as one clear line', async () => {
    const bad = await runCli([...common('bad'), '--conditions', 'colour']);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /error: unknown condition "colour"; valid conditions: color \(0\), sleeve \(1\), neckline \(2\)/,
    );
    assert.doesNotMatch(bad.stderr, /at .*\.ts:\d+/, 'no stack trace');
    const missing = await runCli(['eval', '--model', join(root, 'missing.dmck')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /checkpoint .*missing\.dmck: file not found/);
  });
});
