/**
 * The `eval` command: score a checkpoint on a split (triplet accuracy and retrieval MAP per condition). The
 * evaluation code loads inside the action so that `--help` stays fast.
 */
import type { Command } from 'commander';
import { BACKEND_OPTION } from '../model/defaults.ts';
import { addOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';
import { EVAL_DEFAULTS } from './defaults.ts';

/** `eval`'s flags (src/train/README.md shows them). */
export const EVAL_OPTIONS = {
  model: { type: 'string', arg: 'checkpoint', help: 'checkpoint file (.dmck)', required: true },
  dataDir: {
    type: 'string',
    arg: 'dir',
    help: 'catalogue folder',
    defaultText: `the one the model was trained on, else ${EVAL_DEFAULTS.dataDir}`,
  },
  split: {
    type: 'choice',
    arg: 'split',
    choices: ['train', 'val', 'test'] as const,
    help: 'split to evaluate',
    default: 'test' as 'train' | 'val' | 'test',
  },
  out: { type: 'string', arg: 'file', help: 'also write the report as JSON' },
  triplets: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'triplets to sample when the catalogue ships none',
    defaultText: "the run's count for the split",
  },
  seed: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'sampling seed',
    defaultText: "the run's, which reproduces its test triplets",
  },
  mapQueries: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'retrieval queries per condition',
    default: EVAL_DEFAULTS.mapQueries,
  },
  map: { type: 'switch', form: 'off', help: 'skip retrieval MAP', default: true },
  backend: BACKEND_OPTION,
} satisfies OptionTable;

export function registerEvalCommands(program: Command): void {
  const command = program
    .command('eval')
    .description(
      'Evaluate a checkpoint: triplet accuracy and attribute-specific retrieval MAP per condition',
    );
  addOptions(command, EVAL_OPTIONS).action(async (flags: ValuesOf<typeof EVAL_OPTIONS>, command: Command) => {
    try {
      const { runEval } = await import('./run.ts');
      await runEval(flags);
    } catch (error) {
      if (process.env.LOG_LEVEL === 'debug' && error instanceof Error)
        process.stderr.write(`${error.stack}\n`);
      command.error(`error: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
    }
  });
}
