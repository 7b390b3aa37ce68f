/**
 * The `eval` command: score a checkpoint on a split (triplet accuracy and retrieval MAP per condition). The
 * evaluation code loads inside the action so that `--help` stays fast.
 */
import { Option, type Command } from 'commander';
import { BACKEND_PREFERENCES } from '../model/defaults.ts';
import { integer } from '../util/cli.ts';
import { EVAL_DEFAULTS } from './defaults.ts';
import type { EvalFlags } from './run.ts';

export function registerEvalCommands(program: Command): void {
  const d = EVAL_DEFAULTS;
  program
    .command('eval')
    .description('Evaluate a checkpoint: triplet accuracy and attribute-specific retrieval MAP per condition')
    .requiredOption('--model <checkpoint>', 'checkpoint file (.dmck)')
    .option(
      '--data-dir <dir>',
      'catalogue folder (default: the one the model was trained on, else data/demo)',
    )
    .addOption(
      new Option('--split <split>', 'split to evaluate').choices(['train', 'val', 'test']).default('test'),
    )
    .option('--out <file>', 'also write the report as JSON')
    .option(
      '--triplets <n>',
      "triplets to sample when the catalogue ships none (default: the run's count for the split)",
      integer('--triplets', 0),
    )
    .option(
      '--seed <n>',
      "sampling seed (default: the run's, which reproduces its test triplets)",
      integer('--seed', 0),
    )
    .option('--map-queries <n>', 'retrieval queries per condition', integer('--map-queries', 1), d.mapQueries)
    .option('--no-map', 'skip retrieval MAP')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_PREFERENCES).default(d.backend))
    .action(async (flags: EvalFlags, command: Command) => {
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
