/**
 * `train` (every flag of the upstream CSN trainer, plus model choice). Heavy modules load inside the action so
 * that `--help` stays fast.
 */
import { basename, dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import { BACKBONES, BACKEND_PREFERENCES, MODEL_KINDS } from '../model/defaults.ts';
import {
  BATCH_MODES,
  TRAIN_DEFAULTS,
  defaultLearningRate,
  defaultRunName,
  type TrainOptions,
} from './options.ts';
import { choice, integer, number } from '../util/cli.ts';

/** Raw commander values of `train` (mask flags and upstream aliases not yet folded into TrainOptions). */
interface TrainFlags extends Omit<TrainOptions, 'maskMode' | 'name' | 'lr'> {
  name?: string;
  lr?: number;
  learned?: boolean;
  prein?: boolean;
  fixedMasks?: boolean;
  cuda?: boolean;
  tensorboard?: boolean;
  visdom?: boolean;
}

/** Option keys a resumed run takes from its checkpoint unless they are given on the command line. */
const INHERITED: (keyof TrainOptions)[] = [
  'dataDir',
  'batchSize',
  'batchMode',
  'poolSize',
  'epochs',
  'lr',
  'lrDecay',
  'seed',
  'logInterval',
  'margin',
  'embedLossCoeff',
  'maskLossCoeff',
  'trainTriplets',
  'valTriplets',
  'testTriplets',
  'embedDim',
  'maskMode',
  'conditions',
  'model',
  'backbone',
  'imageSize',
  'width',
  'valEvery',
  'checkpointEvery',
  'augment',
  'mapQueries',
];

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
    ...(flags as Omit<TrainOptions, 'maskMode' | 'name' | 'lr'>),
    maskMode: maskModeOf(flags),
    name: flags.name ?? defaultRunName(flags.model),
    lr: flags.lr ?? defaultLearningRate(flags.model),
  };
  if (fromCommandLine('cuda') && flags.cuda === false && !fromCommandLine('backend'))
    options.backend = 'wasm';
  // `train --test --name x` evaluates the best model of run x.
  if (options.test && !options.resume && flags.name) {
    options.resume = join(options.logDir, flags.name, 'model_best.dmck');
    flags = { ...flags, resume: options.resume };
  }
  if (!flags.resume) return options;

  const { readCheckpoint } = await import('../checkpoint/index.ts');
  const checkpoint = await readCheckpoint(flags.resume);
  const saved = (checkpoint.args ?? {}) as Partial<TrainOptions>;
  const explicit = (key: keyof TrainOptions) =>
    key === 'maskMode'
      ? fromCommandLine('learned') || fromCommandLine('prein') || fromCommandLine('fixedMasks')
      : fromCommandLine(key);
  const merged = options as unknown as Record<string, unknown>;
  for (const key of INHERITED) {
    if (!explicit(key) && saved[key] !== undefined) merged[key] = saved[key];
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
        'Writes {log-dir}/{name}/: model_best.dmck, checkpoint_latest.dmck, metrics.jsonl, metrics.png, args.json, test_results.json',
    );
  addUpstreamFlags(addModelAndOutputOptions(addResumeAndLossOptions(addDataOptions(command))));
  command.action(runTrainCommand);
}

/** Catalogue, batches and the optimiser schedule. */
function addDataOptions(command: Command): Command {
  const d = TRAIN_DEFAULTS;
  return command
    .option('--data-dir <dir>', 'catalogue folder (any supported layout)', d.dataDir)
    .option('--batch-size <n>', 'triplets per batch (upstream 512)', integer('--batch-size', 1), d.batchSize)
    .addOption(
      new Option(
        '--batch-mode <mode>',
        'pool: each batch draws its triplets among --pool-size random products, so images are shared (fast on a ' +
          "CPU); triplets: upstream's fixed list of --train-triplets unique triplets",
      )
        .choices(BATCH_MODES)
        .default(d.batchMode),
    )
    .option('--pool-size <n>', 'products per batch in pool mode', integer('--pool-size', 3), d.poolSize)
    .option('--epochs <n>', 'last epoch to train (upstream 30)', integer('--epochs', 1), d.epochs)
    .option(
      '--start-epoch <n>',
      'number of the first epoch (sets the lr decay position)',
      integer('--start-epoch', 1),
      d.startEpoch,
    )
    .option(
      '--lr <x>',
      'Adam learning rate (default 3e-3 for csn and unconditional, 1e-3 for asen; upstream 5e-5 fine-tunes a ' +
        'pretrained ResNet, we train from scratch)',
      number('--lr', (n) => n > 0, 'a positive number'),
    )
    .option(
      '--lr-decay <x>',
      'per-epoch decay: lr × (1 − x)^epoch, as upstream adjust_learning_rate',
      number('--lr-decay', (n) => n >= 0 && n < 1, 'in [0, 1)'),
      d.lrDecay,
    )
    .option(
      '--seed <n>',
      'random seed: same seed, same triplets, weights and metrics',
      integer('--seed', 0),
      d.seed,
    )
    .option('--log-interval <n>', 'steps between metrics lines', integer('--log-interval', 1), d.logInterval)
    .option(
      '--margin <x>',
      'margin of the triplet loss',
      number('--margin', (n) => n >= 0, '>= 0'),
      d.margin,
    );
}

/** Resuming, run name, losses, triplet counts and the mask mode. */
function addResumeAndLossOptions(command: Command): Command {
  const d = TRAIN_DEFAULTS;
  return command
    .option('--resume <path>', 'continue from a checkpoint (weights, optimiser, epoch, rng, best so far)')
    .option(
      '--name <name>',
      "run name (default: {model}_yyyymmdd_hhmmss; the checkpoint's run when resuming)",
    )
    .option(
      '--embed-loss-coeff <x>',
      'weight of the embedding norm loss',
      number('--embed-loss-coeff', (n) => n >= 0, '>= 0'),
      d.embedLossCoeff,
    )
    .option(
      '--mask-loss-coeff <x>',
      'weight of the mask L1 norm loss',
      number('--mask-loss-coeff', (n) => n >= 0, '>= 0'),
      d.maskLossCoeff,
    )
    .option(
      '--train-triplets <n>',
      'unique training triplets (upstream 100000); in pool mode, triplets drawn per epoch',
      integer('--train-triplets', 1),
      d.trainTriplets,
    )
    .option(
      '--val-triplets <n>',
      'unique validation triplets (upstream 20000; 0 = no validation)',
      integer('--val-triplets', 0),
      d.valTriplets,
    )
    .option(
      '--test-triplets <n>',
      'unique test triplets (upstream 40000)',
      integer('--test-triplets', 0),
      d.testTriplets,
    )
    .option('--embed-dim <n>', 'embedding dimensions', integer('--embed-dim', 1), d.embedDim)
    .option('--test', 'only evaluate the --resume checkpoint on the test split', d.test)
    .addOption(new Option('--learned', 'learn masks from a random initialisation (default)'))
    .addOption(
      new Option('--prein', 'initialise masks to disjoint blocks (still trained)').conflicts(['fixedMasks']),
    )
    .addOption(
      new Option('--fixed-masks', 'disjoint 0/1 masks, not trained (the paper\'s "fixed" CSN)').conflicts([
        'learned',
      ]),
    );
}

/** Run folder, conditions, backend, network, validation, checkpoints and output. */
function addModelAndOutputOptions(command: Command): Command {
  const d = TRAIN_DEFAULTS;
  return command
    .option('--log-dir <dir>', 'folder that holds run folders', d.logDir)
    .option(
      '--conditions <names...>',
      'similarity notions to train (names or upstream indices; default: all)',
    )
    .addOption(
      new Option(
        '--backend <name>',
        'tfjs backend (upstream --cuda): auto tries tfjs-node-gpu, tfjs-node, wasm, cpu',
      )
        .choices(BACKEND_PREFERENCES)
        .default(d.backend),
    )
    .addOption(
      new Option(
        '--model <kind>',
        'csn, asen, or the unconditional baseline (one shared embedding, no masks)',
      )
        .argParser(choice('--model', MODEL_KINDS))
        .default(d.model),
    )
    .addOption(
      new Option('--backbone <name>', 'image network')
        .argParser(choice('--backbone', BACKBONES))
        .default(d.backbone),
    )
    .option('--image-size <px>', 'square input side', integer('--image-size', 16), d.imageSize)
    .option('--width <n>', 'channels of the first backbone layer (model default 16)', integer('--width', 1))
    .option(
      '--val-every <n>',
      'validate every n epochs (the last epoch always)',
      integer('--val-every', 1),
      d.valEvery,
    )
    .option(
      '--checkpoint-every <n>',
      'also write checkpoint_latest every n steps (0 = at epoch ends only)',
      integer('--checkpoint-every', 0),
      d.checkpointEvery,
    )
    .option('--no-augment', 'no random horizontal flips of training images')
    .option(
      '--map-queries <n>',
      'retrieval MAP queries per condition at test time',
      integer('--map-queries', 1),
      d.mapQueries,
    )
    .option('--overwrite', 'replace an existing run folder of the same name', d.overwrite)
    .option('--no-progress', 'no progress bar');
}

/** Upstream flags accepted for compatibility (hidden from --help), and the help epilogue. */
function addUpstreamFlags(command: Command): Command {
  return command
    .addOption(
      new Option('--cuda', 'upstream flag: same as --backend auto (tries tfjs-node-gpu first)').hideHelp(),
    )
    .addOption(new Option('--no-cuda', 'upstream flag: same as --backend wasm').hideHelp())
    .addOption(
      new Option(
        '--tensorboard',
        'upstream flag, accepted: metrics.jsonl and metrics.png are always written',
      ).hideHelp(),
    )
    .addOption(
      new Option(
        '--visdom',
        'upstream flag, accepted: metrics.jsonl and metrics.png are always written',
      ).hideHelp(),
    )
    .addHelpText(
      'after',
      '\nUpstream flags --cuda/--no-cuda map to --backend auto/wasm; --tensorboard/--visdom are accepted and ignored\n' +
        '(every run writes metrics.jsonl and metrics.png). Ctrl-C or SIGTERM finishes the current step, saves\n' +
        'checkpoint_latest.dmck and exits (130/143); continue with --resume.',
    );
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
