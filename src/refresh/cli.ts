/**
 * `dressmatch refresh`: the schedulable command. Its own flags plus every trainer flag for the fine-tune (defined
 * once, by the trainer's command). Exits with the codes of REFRESH_EXIT. Heavy modules load inside the action.
 */
import { Command, Option } from 'commander';
import { registerTrainCommands } from '../train/cli.ts';
import { fraction } from '../util/cli.ts';
import { REFRESH_DEFAULTS, defaultRefreshName } from './options.ts';
import { REFRESH_EXIT } from './types.ts';
import type { TrainFlags } from './retrain.ts';

interface RefreshFlags extends TrainFlags {
  indexDir: string;
  retrain?: boolean;
  from?: string;
  tolerance: number;
  retrainShare: number;
  dryRun?: boolean;
}

const EXIT_HELP = Object.entries(REFRESH_EXIT)
  .map(([name, code]) => `  ${code}  ${name}`)
  .join('\n');

/** Trainer flags that make no sense for a fine-tune started by refresh (it always starts a fresh run). */
const NOT_FOR_REFRESH = ['resume', 'test', 'overwrite', 'startEpoch'];

/**
 * Add the `train` command's own options (parsers, defaults, help and all) to `command`: they are read off a
 * throwaway program on which the trainer registered itself, so their definitions keep one home.
 */
function addTrainOptions(command: Command): void {
  const scratch = new Command();
  registerTrainCommands(scratch);
  const trainCommand = scratch.commands.find((c) => c.name() === 'train');
  if (!trainCommand) throw new Error('the train command is not registered');
  for (const option of trainCommand.options) {
    if (!NOT_FOR_REFRESH.includes(option.attributeName())) command.addOption(option);
  }
}

export function registerRefreshCommand(program: Command): void {
  const command = program
    .command('refresh')
    .description(
      'Bring a published index bundle up to date with its catalogue: report what changed, then re-index ' +
        'incrementally or fine-tune from the served model, and publish the candidate only if the gate accepts it',
    )
    .requiredOption('--index-dir <dir>', 'the published bundle to refresh (holding manifest.json)')
    .addOption(
      new Option('--retrain', 'always fine-tune (default: when the rule in src/refresh/README.md says so)'),
    )
    .addOption(new Option('--no-retrain', 'never fine-tune: re-index with the served model only'))
    .option(
      '--from <checkpoint>',
      'warm-start the fine-tune from this checkpoint instead of the served model',
    )
    .option(
      '--tolerance <x>',
      'accuracy the candidate may lose against the served model, overall and per condition',
      fraction('--tolerance'),
      REFRESH_DEFAULTS.tolerance,
    )
    .option(
      '--retrain-share <x>',
      'retrain when more than this share of the served products was added, removed or changed',
      fraction('--retrain-share'),
      REFRESH_DEFAULTS.retrainShare,
    )
    .option('--dry-run', 'only report the changes and the decision');
  addTrainOptions(command);
  command
    .addHelpText(
      'after',
      `\nThe trainer's flags set the fine-tune; those not given are taken from the served model's own run.\n` +
        `The run folder {log-dir}/{name} (default name refresh_yyyymmdd_hhmmss) holds refresh.json and the\n` +
        `fine-tune's files. Exit codes:\n${EXIT_HELP}`,
    )
    .action(async (flags: RefreshFlags, cmd: Command) => {
      const [{ runRefresh }, { createLogger }] = await Promise.all([
        import('./run.ts'),
        import('../util/log.ts'),
      ]);
      const log = createLogger('refresh');
      const controller = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        log.warn(`${signal}: stopping after the current step; nothing will be published`);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const explicit = (key: string) => cmd.getOptionValueSource(key) === 'cli';
      try {
        const result = await runRefresh({
          dataDir: flags.dataDir,
          indexDir: flags.indexDir,
          retrain: explicit('retrain') ? flags.retrain : undefined,
          from: flags.from,
          tolerance: flags.tolerance,
          retrainShare: flags.retrainShare,
          dryRun: flags.dryRun === true,
          logDir: flags.logDir,
          name: flags.name ?? defaultRefreshName(),
          trainFlags: flags,
          explicit,
          log,
          out: process.stdout,
          signal: controller.signal,
        });
        const error = result.report.error;
        if (error) process.stderr.write(`error: ${error.message}\n`);
        process.stdout.write(`report: ${result.runDir}/${REFRESH_DEFAULTS.reportFile}\n`);
        process.exitCode = result.exitCode;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
