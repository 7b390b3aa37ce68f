/** One table per command: the table drives commander, the defaults, the resume rules, validation and the README. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Command } from 'commander';
import { registerTrainCommands } from '../src/train/cli.ts';
import {
  INHERITED,
  inheritedFrom,
  OptionsError,
  TRAIN_DEFAULTS,
  TRAIN_OPTIONS,
  validateOptions,
  type TrainOptions,
} from '../src/train/options.ts';
import { addOptions, defaultsOf, flagOf, type OptionTable } from '../src/util/options-table.ts';
import { FLAG_TABLES } from '../scripts/flag-tables.ts';
import { renderFlagTables } from '../scripts/options-readme.ts';

function trainCommand(): Command {
  const program = new Command();
  registerTrainCommands(program);
  return program.commands.find((c) => c.name() === 'train')!;
}

describe('option tables', () => {
  it('give train one commander option per row (two for switches of both forms), in table order', () => {
    const flags = trainCommand().options.map((o) => o.long);
    const expected = Object.entries(TRAIN_OPTIONS).flatMap(([key, spec]) =>
      'form' in spec && spec.form === 'both'
        ? [flagOf(key, spec), `--no-${flagOf(key, spec).slice(2)}`]
        : [flagOf(key, spec)],
    );
    assert.deepEqual(flags, expected);
    const help = trainCommand().helpInformation();
    for (const [key, spec] of Object.entries(TRAIN_OPTIONS)) {
      const shown = new RegExp(`^ +${flagOf(key, spec)}\\b`, 'm').test(help);
      assert.equal(shown, !('hidden' in spec && spec.hidden), `${key} in --help`);
    }
  });

  it('give a checkpoint that predates an option the behaviour before it existed', () => {
    const old = inheritedFrom({ epochs: 3, lr: 0.01 });
    assert.equal(old.epochs, 3);
    assert.equal(old.lr, 0.01);
    assert.deepEqual([old.colourHistogram, old.labelLoss, old.controlled], [false, 0, 0]);
    assert.equal(old.batchSize, undefined, 'an option with no record and no absent value is not inherited');
    assert.equal(inheritedFrom({ labelLoss: 2 }).labelLoss, 2);
  });

  it('keep the options a resumed run inherits', () => {
    assert.deepEqual(
      [...INHERITED].sort(),
      [
        'augment',
        'anchors',
        'attentionTanh',
        'backbone',
        'batchMode',
        'batchSize',
        'checkpointEvery',
        'colourHistogram',
        'conditions',
        'controlled',
        'dataDir',
        'embedDim',
        'embedLossCoeff',
        'epochs',
        'imageSize',
        'labelLoss',
        'logInterval',
        'lr',
        'lrDecay',
        'mapQueries',
        'margin',
        'maskLossCoeff',
        'maskMode',
        'model',
        'poolSize',
        'seed',
        'selectOn',
        'testTriplets',
        'trainTriplets',
        'valEvery',
        'valTriplets',
        'width',
      ].sort(),
    );
  });

  it('check library values with the rule of their row, naming the flag', () => {
    const base: TrainOptions = { ...TRAIN_DEFAULTS, name: 'ok' };
    assert.throws(
      () => validateOptions({ ...base, batchSize: 0 }),
      /--batch-size must be an integer >= 1, got 0/,
    );
    assert.throws(() => validateOptions({ ...base, poolSize: 2 }), /--pool-size must be an integer >= 3/);
    assert.throws(() => validateOptions({ ...base, lr: -1 }), /--lr must be a positive number/);
    assert.throws(() => validateOptions({ ...base, lrDecay: 1 }), /--lr-decay must be in \[0, 1\)/);
    assert.throws(
      () => validateOptions({ ...base, model: 'vgg' as TrainOptions['model'] }),
      /--model must be one of csn, asen, unconditional, got "vgg"/,
    );
    assert.throws(() => validateOptions({ ...base, width: 600 }), OptionsError);
    assert.doesNotThrow(() => validateOptions({ ...base, test: true, resume: 'x.dmck', trainTriplets: 0 }));
  });

  it('give a table of any command its defaults and parsers', async () => {
    const table = {
      size: { type: 'integer', arg: 'n', min: 2, max: 9, help: 'size', default: 4 },
      mode: {
        type: 'choice',
        arg: 'm',
        choices: ['a', 'b'] as const,
        help: 'mode',
        default: 'a' as 'a' | 'b',
      },
      colour: { type: 'switch', form: 'off', help: 'no colour', default: true },
      note: { type: 'string', arg: 'text', help: 'note' },
    } satisfies OptionTable;
    assert.deepEqual(defaultsOf(table), { size: 4, mode: 'a', colour: true });
    const command = addOptions(new Command().exitOverride(), table).configureOutput({ writeErr: () => {} });
    command.parse(['--size', '7', '--no-colour', '--mode', 'b'], { from: 'user' });
    assert.deepEqual(command.opts(), { size: 7, mode: 'b', colour: false });
    assert.throws(
      () =>
        addOptions(new Command().exitOverride(), table)
          .configureOutput({ writeErr: () => {} })
          .parse(['--size', '10'], { from: 'user' }),
      /--size must be an integer from 2 to 9, got "10"/,
    );
  });

  it('keep every README flag table in step, and notice a drifted one', async () => {
    for (const entry of FLAG_TABLES) {
      const text = readFileSync(entry.readme, 'utf8');
      assert.equal(
        await renderFlagTables(entry.readme, text, [entry]),
        text,
        `${entry.readme} (${entry.name})`,
      );
    }
    const train = FLAG_TABLES.find((entry) => entry.name === 'train')!;
    const text = readFileSync(train.readme, 'utf8');
    const grown = {
      ...train,
      table: {
        ...train.table,
        warmupEpochs: { type: 'integer', arg: 'n', min: 0, help: 'warm-up', default: 0 },
      },
    } as typeof train;
    const rendered = await renderFlagTables(train.readme, text, [grown]);
    assert.notEqual(rendered, text);
    assert.match(rendered, /\| `--warmup-epochs <n>` +\| 0 /);
  });
});
