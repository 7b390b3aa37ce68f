/**
 * `dressmatch refresh`: the schedulable command. Its own flags plus the fine-tune's trainer settings
 * (fine-tune-flags.ts). Exits with the codes of REFRESH_EXIT. Heavy modules load inside the action.
 */
import { Command, Option } from 'commander';
import { fraction, integer } from '../util/cli.ts';
import { addFineTuneFlags, givenFineTune } from './fine-tune-flags.ts';
import { REFRESH_DEFAULTS, defaultRefreshName } from './options.ts';
import { REFRESH_EXIT } from './types.ts';

interface RefreshFlags extends Record<string, unknown> {
  dataDir: string;
  indexDir: string;
  logDir?: string;
  name?: string;
  retrain?: boolean;
  from?: string;
  tolerance: number;
  gateTriplets: number;
  retrainShare: number;
  dryRun?: boolean;
}

const EXIT_HELP = Object.entries(REFRESH_EXIT)
  .map(([name, code]) => `  ${code}  ${name}`)
  .join('\n');

export function registerRefreshCommand(program: Command): void {
  const command = program
    .command('refresh')
    .description(
      'Bring a published index bundle up to date with its catalogue: report what changed, publish the catalogue ' +
        'with the served model, then (when needed) fine-tune from it and publish the new model only if the gate accepts it',
    )
    .requiredOption('--data-dir <dir>', 'the catalogue as it is now (any supported layout)')
    .requiredOption('--index-dir <dir>', 'the published bundle to refresh (holding manifest.json)')
    .option('--log-dir <dir>', "folder that holds run folders (default: the trainer's)")
    .option('--name <name>', 'run folder name (default refresh_yyyymmdd_hhmmss)')
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
      'overall accuracy the new model may lose against the served one (a condition is refused when worse with 95 % confidence)',
      fraction('--tolerance'),
      REFRESH_DEFAULTS.tolerance,
    )
    .option(
      '--gate-triplets <n>',
      'held-out test triplets both models answer at the gate',
      integer('--gate-triplets', 1),
      REFRESH_DEFAULTS.gateTriplets,
    )
    .option(
      '--retrain-share <x>',
      'retrain when more than this share of the served products was added, removed or changed',
      fraction('--retrain-share'),
      REFRESH_DEFAULTS.retrainShare,
    )
    .option('--dry-run', 'only report the changes and the decision');
  addFineTuneFlags(command);
  command
    .addHelpText(
      'after',
      `\nThe fine-tune's settings not given are taken from the served model's own run, then the trainer's defaults.\n` +
        `The run folder {log-dir}/{name} (default name refresh_yyyymmdd_hhmmss) holds refresh.json and the\n` +
        `fine-tune's files. Exit codes:\n${EXIT_HELP}`,
    )
    .action(runRefreshCommand);
}

/** The `refresh` action: exits with the run's code; SIGINT or SIGTERM stop it after the current step. */
async function runRefreshCommand(flags: RefreshFlags, cmd: Command): Promise<void> {
  const [{ runRefresh }, { createLogger }, { TRAIN_DEFAULTS }] = await Promise.all([
    import('./run.ts'),
    import('../util/log.ts'),
    import('../train/index.ts'),
  ]);
  const log = createLogger('refresh');
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn(`${signal}: stopping after the current step; no new model will be published`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const given = (key: string) => cmd.getOptionValueSource(key) === 'cli';
  try {
    const result = await runRefresh({
      dataDir: flags.dataDir,
      indexDir: flags.indexDir,
      retrain: given('retrain') ? flags.retrain : undefined,
      from: flags.from,
      tolerance: flags.tolerance,
      retrainShare: flags.retrainShare,
      gateTriplets: flags.gateTriplets,
      dryRun: flags.dryRun === true,
      logDir: flags.logDir ?? TRAIN_DEFAULTS.logDir,
      name: flags.name ?? defaultRefreshName(),
      fineTune: givenFineTune(flags, given),
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
}
