/**
 * `train` (every flag of the upstream CSN trainer, plus model choice). Heavy modules load inside the action so
 * that `--help` stays fast.
 */
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { BEST_CHECKPOINT, LATEST_CHECKPOINT } from '../checkpoint/defaults.ts';
import {
  INHERITED,
  inheritedFrom,
  TRAIN_IMAGE_SIZES,
  TRAIN_OPTIONS,
  defaultLearningRate,
  defaultRunName,
  defaultSelectOn,
  type TrainFlags,
  type TrainOptions,
} from './options.ts';
import { addOptions, flagsSetting } from '../util/options-table.ts';

export type { TrainFlags } from './options.ts';

/** Upstream mask flags → one mask mode; --prein and --fixed-masks win over the default --learned. */
function maskModeOf(flags: TrainFlags): TrainOptions['maskMode'] {
  if (flags.fixedMasks) return 'fixed';
  if (flags.prein) return 'prein';
  return 'learned';
}

/**
 * Final options: command line, then (when resuming or testing) the checkpoint's own args for everything not given
 * explicitly, then defaults. The run folder of a resumed run is the checkpoint's folder unless --name is given.
 */
export async function resolveTrainOptions(
  flags: TrainFlags,
  fromCommandLine: (key: string) => boolean,
): Promise<TrainOptions> {
  const options: TrainOptions = {
    ...flags,
    maskMode: maskModeOf(flags),
    name: flags.name ?? defaultRunName(flags.model),
    lr: flags.lr ?? defaultLearningRate(flags.model),
  };
  if (fromCommandLine('cuda') && flags.cuda === false && !fromCommandLine('backend'))
    options.backend = 'wasm';
  // Each backbone has its own input size (resnet18: upstream's 112 px) unless --image-size says otherwise.
  if (!fromCommandLine('imageSize')) options.imageSize = TRAIN_IMAGE_SIZES[options.backbone];
  options.selectOn ??= defaultSelectOn(options.model);
  // `train --test --name x` evaluates the best model of run x.
  if (options.test && !options.resume && flags.name) {
    options.resume = join(options.logDir, flags.name, BEST_CHECKPOINT);
    flags = { ...flags, resume: options.resume };
  }
  if (!flags.resume) return options;

  const { readCheckpoint } = await import('../checkpoint/index.ts');
  const checkpoint = await readCheckpoint(flags.resume);
  const saved = (checkpoint.args ?? {}) as Partial<TrainOptions>;
  const explicit = (key: keyof TrainOptions) => flagsSetting(TRAIN_OPTIONS, key).some(fromCommandLine);
  const merged = options as unknown as Record<string, unknown>;
  const inherited = inheritedFrom(saved);
  for (const key of INHERITED) {
    if (!explicit(key) && key in inherited) merged[key] = inherited[key];
  }
  // A model without saved args (exported elsewhere) still knows its own architecture.
  const config = checkpoint.model.config;
  if (!explicit('model')) options.model = config.kind;
  if (!explicit('backbone')) options.backbone = config.backbone;
  if (!explicit('imageSize')) options.imageSize = config.imageSize;
  if (!explicit('embedDim')) options.embedDim = config.embedDim;
  if (!explicit('maskMode')) options.maskMode = config.maskMode;
  if (!explicit('width') && config.width !== undefined) options.width = config.width;
  if (!explicit('conditions')) options.conditions = config.conditions;
  if (!flags.name && !explicit('logDir')) {
    options.logDir = dirname(dirname(flags.resume));
    options.name = basename(dirname(flags.resume));
  }
  return options;
}

export function registerTrainCommands(program: Command): void {
  const command = program
    .command('train')
    .description(
      'Train a conditional similarity network (CSN), ASEN or the unconditional baseline on a catalogue. ' +
        `Writes {log-dir}/{name}/: ${BEST_CHECKPOINT}, ${LATEST_CHECKPOINT}, metrics.jsonl, metrics.png, args.json, test_results.json`,
    );
  addOptions(command, TRAIN_OPTIONS)
    .addHelpText(
      'after',
      '\nUpstream flags --cuda/--no-cuda map to --backend auto/wasm; --tensorboard/--visdom are accepted and ignored\n' +
        '(every run writes metrics.jsonl and metrics.png). Ctrl-C or SIGTERM finishes the current step, saves\n' +
        'checkpoint_latest.dmck and exits (130/143); continue with --resume.',
    )
    .action(runTrainCommand);
}

/** The `train` action: Ctrl-C or SIGTERM finish the current step, save checkpoint_latest and exit 130/143. */
async function runTrainCommand(flags: TrainFlags, command: Command): Promise<void> {
  const { createLogger } = await import('../util/log.ts');
  const log = createLogger('train');
  const controller = new AbortController();
  let signalName: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalName) {
      log.error(`second ${signal}: stopping without saving`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    signalName = signal;
    log.warn(`${signal}: finishing the current step and saving checkpoint_latest (again to abort at once)`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const options = await resolveTrainOptions(flags, (key) => command.getOptionValueSource(key) === 'cli');
    if (flags.tensorboard || flags.visdom) {
      log.info('--tensorboard/--visdom: metrics go to metrics.jsonl and metrics.png in the run folder');
    }
    const { train } = await import('./trainer.ts');
    const result = await train(options, { logger: log, signal: controller.signal });
    if (result.interrupted) process.exitCode = signalName === 'SIGTERM' ? 143 : 130;
  } catch (error) {
    if (process.env.LOG_LEVEL === 'debug' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    command.error(`error: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
