/**
 * `dressmatch refresh`: the schedulable command. Its own flags plus the fine-tune's trainer settings
 * (fine-tune-flags.ts). Exits with the codes of REFRESH_EXIT. Heavy modules load inside the action.
 */
import type { Command } from 'commander';
import { addOptions, type ValuesOf } from '../util/options-table.ts';
import { addFineTuneFlags, givenFineTune } from './fine-tune-flags.ts';
import { REFRESH_DEFAULTS, REFRESH_OPTIONS, defaultRefreshName } from './options.ts';
import { REFRESH_EXIT } from './types.ts';

type RefreshFlags = ValuesOf<typeof REFRESH_OPTIONS> & Record<string, unknown>;

const EXIT_HELP = Object.entries(REFRESH_EXIT)
  .map(([name, code]) => `  ${code}  ${name}`)
  .join('\n');

export function registerRefreshCommand(program: Command): void {
  const command = program
    .command('refresh')
    .description(
      'Bring a published index bundle up to date with its catalogue: report what changed, publish the catalogue ' +
        'with the served model, then (when needed) fine-tune from it and publish the new model only if the gate accepts it',
    );
  addOptions(command, REFRESH_OPTIONS);
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
  const [{ runRefresh }, { createLogger }] = await Promise.all([
    import('./run.ts'),
    import('../util/log.ts'),
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
      logDir: flags.logDir,
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
