import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerTrainCommands, resolveTrainOptions } from '../src/train/cli.ts';
import { writeCheckpoint } from '../src/checkpoint/index.ts';
import {
  OptionsError,
  TRAIN_DEFAULTS,
  TRAIN_IMAGE_SIZES,
  defaultRunName,
  validateOptions,
  type TrainOptions,
} from '../src/train/options.ts';
import { resolveConditions } from '../src/catalogue/index.ts';

/** Parse `train` flags with the real command definition; the action is replaced so nothing trains. */
async function parseTrain(args: string[]): Promise<TrainOptions> {
  const program = new Command().exitOverride();
  program.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  registerTrainCommands(program);
  const train = program.commands.find((c) => c.name() === 'train')!;
  train.exitOverride();
  let resolved: TrainOptions | undefined;
  train.action(async (flags, command: Command) => {
    resolved = await resolveTrainOptions(flags, (key) => command.getOptionValueSource(key) === 'cli');
  });
  await program.parseAsync(['node', 'dressmatch', 'train', ...args]);
  return resolved!;
}

async function parseError(args: string[]): Promise<string> {
  try {
    await parseTrain(args);
  } catch (error) {
    assert.ok(error instanceof CommanderError, `expected a commander error, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`train ${args.join(' ')} was accepted`);
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dressmatch-flags-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('train flags', () => {
  it('has every upstream flag with its default, plus ours', async () => {
    const options = await parseTrain([]);
    assert.equal(options.dataDir, 'data/demo');
    assert.equal(options.batchSize, TRAIN_DEFAULTS.batchSize);
    assert.equal(options.startEpoch, 1);
    assert.equal(options.seed, 42);
    assert.equal(options.logInterval, 20);
    assert.equal(options.margin, 0.2);
    assert.equal(options.embedLossCoeff, 5e-3);
    assert.equal(options.maskLossCoeff, 5e-4);
    assert.equal(options.embedDim, 64);
    assert.equal(options.test, false);
    assert.equal(options.maskMode, 'learned');
    assert.equal(options.logDir, 'runs');
    assert.equal(options.lrDecay, 0.015);
    // The best model measured on real photos (bench/results/real-photos.md) is the default.
    assert.equal(options.model, 'asen');
    assert.deepEqual([options.colourHistogram, options.labelLoss, options.controlled], [true, 1, 8]);
    assert.equal(options.imageSize, 64);
    assert.equal(options.backend, 'auto');
    assert.equal(options.augment, true);
    assert.match(options.name, /^asen_\d{8}_\d{6}$/);
    assert.equal(options.lr, 1e-3, 'ASEN has its own default rate');
    const csn = await parseTrain(['--model', 'csn']);
    assert.equal(csn.lr, 3e-3);
    assert.match(csn.name, /^csn_\d{8}_\d{6}$/);
    assert.equal((await parseTrain(['--model', 'asen', '--lr', '0.01'])).lr, 0.01);
    assert.equal((await parseTrain(['--backbone', 'resnet18'])).imageSize, 112);
  });

  it('parses values and upstream spellings', async () => {
    const options = await parseTrain([
      '--batch-size',
      '8',
      '--epochs',
      '3',
      '--lr',
      '5e-5',
      '--margin',
      '0.5',
      '--train-triplets',
      '100',
      '--conditions',
      'color',
      'sleeve',
      '--prein',
      '--name',
      'x',
      '--model',
      'unconditional',
      '--no-cuda',
      '--tensorboard',
      '--no-augment',
    ]);
    assert.equal(options.batchSize, 8);
    assert.equal(options.epochs, 3);
    assert.equal(options.lr, 5e-5);
    assert.equal(options.margin, 0.5);
    assert.equal(options.trainTriplets, 100);
    assert.deepEqual(options.conditions, ['color', 'sleeve']);
    assert.equal(options.maskMode, 'prein');
    assert.equal(options.model, 'unconditional');
    assert.equal(options.backend, 'wasm', '--no-cuda maps to the wasm backend');
    assert.equal(options.augment, false);
    assert.equal((await parseTrain(['--fixed-masks'])).maskMode, 'fixed');
  });

  it('rejects bad values with the flag name', async () => {
    assert.match(
      await parseError(['--batch-size', 'abc']),
      /--batch-size must be an integer >= 1, got "abc"/,
    );
    assert.match(await parseError(['--batch-size', '0']), /--batch-size must be an integer >= 1/);
    assert.match(await parseError(['--lr', '-1']), /--lr must be a positive number/);
    assert.match(await parseError(['--lr-decay', '1']), /--lr-decay must be in \[0, 1\)/);
    assert.match(await parseError(['--model', 'vgg']), /Allowed choices are csn, asen, unconditional/);
    assert.match(await parseError(['--backend', 'gpu']), /Allowed choices are auto, tensorflow, wasm, cpu/);
    assert.match(await parseError(['--prein', '--fixed-masks']), /cannot be used with/);
    assert.match(await parseError(['--bogus']), /unknown option '--bogus'/);
  });

  it('validates combinations', () => {
    const base: TrainOptions = { ...TRAIN_DEFAULTS, name: 'ok' };
    assert.doesNotThrow(() => validateOptions(base));
    assert.throws(
      () => validateOptions({ ...base, startEpoch: 5, epochs: 3 }),
      /--start-epoch 5 is after --epochs 3/,
    );
    assert.throws(() => validateOptions({ ...base, test: true }), /--test .* --resume/);
    assert.throws(() => validateOptions({ ...base, name: '../escape' }), /--name .* plain folder name/);
    assert.throws(() => validateOptions({ ...base, imageSize: 8 }), OptionsError);
  });

  it('resolves conditions by name or upstream index and lists valid ones for unknown names', () => {
    const available = ['color', 'sleeve', 'length'];
    assert.deepEqual(resolveConditions(undefined, available), available);
    assert.deepEqual(resolveConditions(['length', '0'], available), ['length', 'color']);
    assert.throws(
      () => resolveConditions(['colour'], available),
      /unknown condition "colour"; valid conditions: color \(0\), sleeve \(1\), length \(2\)/,
    );
    assert.throws(() => resolveConditions(['color', 'color'], available), /listed twice/);
  });

  it('names runs like upstream', () => {
    assert.equal(defaultRunName('csn', new Date(2024, 0, 2, 3, 4, 5)), 'csn_20240102_030405');
  });

  it('keeps the default image size in step with the per-backbone sizes', () => {
    assert.equal(TRAIN_DEFAULTS.imageSize, TRAIN_IMAGE_SIZES.small);
  });

  it("takes a resumed run's settings from its checkpoint unless given again", async () => {
    const runDir = join(dir, 'runs', 'old');
    const path = join(runDir, 'checkpoint_latest.dmck');
    await writeCheckpoint(path, {
      model: {
        config: {
          kind: 'unconditional',
          backbone: 'small',
          imageSize: 32,
          embedDim: 16,
          conditions: ['sleeve'],
          maskMode: 'learned',
          seed: 7,
        },
        weights: [],
      },
      training: {
        epoch: 2,
        stepInEpoch: 0,
        globalStep: 10,
        rngState: [1, 2, 3, 4],
        bestValAccuracy: 0.5,
        bestEpoch: 1,
      },
      args: {
        ...TRAIN_DEFAULTS,
        seed: 7,
        lr: 0.01,
        batchSize: 16,
        epochs: 4,
        dataDir: 'data/other',
        name: 'old',
      },
    });
    const options = await parseTrain(['--resume', path, '--epochs', '6']);
    assert.equal(options.seed, 7);
    assert.equal(options.lr, 0.01);
    assert.equal(options.batchSize, 16);
    assert.equal(options.epochs, 6, 'explicit flags win');
    assert.equal(options.dataDir, 'data/other');
    assert.equal(options.model, 'unconditional');
    assert.equal(options.imageSize, 32);
    assert.deepEqual(options.conditions, ['sleeve']);
    assert.equal(options.logDir, join(dir, 'runs'));
    assert.equal(options.name, 'old', "continues in the checkpoint's run folder");
  });
});
