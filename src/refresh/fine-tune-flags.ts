/**
 * The trainer settings `refresh` accepts for its fine-tune, declared once: flag, TrainOptions key, parser and help.
 * Only the schedule: the network (model kind, backbone, image size, width, embedding, masks) is the served model's,
 * so are the batch mode and the validation metric, and the run folder and data are refresh's. A setting not given is the served model's own run's, else the
 * trainer's default (retrain.ts), so none has a default here.
 */
import { Option, type Command } from 'commander';
import { BACKEND_PREFERENCES } from '../model/defaults.ts';
import type { TrainOptions } from '../train/index.ts';
import { choice, integer, number } from '../util/cli.ts';

interface FineTuneFlag {
  flags: string;
  key: keyof TrainOptions;
  help: string;
  parse?: (value: string) => unknown;
  choices?: readonly string[];
}

const positive = (flag: string) => number(flag, (n) => n > 0, 'a positive number');
const nonNegative = (flag: string) => number(flag, (n) => n >= 0, '>= 0');

export const FINE_TUNE_FLAGS: readonly FineTuneFlag[] = [
  {
    flags: '--epochs <n>',
    key: 'epochs',
    help: 'fine-tune epochs (0: the candidate is the served model, re-shaped)',
    parse: integer('--epochs', 0),
  },
  { flags: '--lr <x>', key: 'lr', help: 'Adam learning rate', parse: positive('--lr') },
  {
    flags: '--lr-decay <x>',
    key: 'lrDecay',
    help: 'per-epoch decay: lr × (1 − x)^epoch',
    parse: number('--lr-decay', (n) => n >= 0 && n < 1, 'in [0, 1)'),
  },
  {
    flags: '--seed <n>',
    key: 'seed',
    help: 'random seed of the fine-tune and of the gate',
    parse: integer('--seed', 0),
  },
  {
    flags: '--batch-size <n>',
    key: 'batchSize',
    help: 'triplets per batch',
    parse: integer('--batch-size', 1),
  },
  {
    flags: '--pool-size <n>',
    key: 'poolSize',
    help: 'products per batch in pool mode',
    parse: integer('--pool-size', 3),
  },
  {
    flags: '--train-triplets <n>',
    key: 'trainTriplets',
    help: 'training triplets per epoch',
    parse: integer('--train-triplets', 1),
  },
  {
    flags: '--val-triplets <n>',
    key: 'valTriplets',
    help: 'validation triplets (0 = no validation)',
    parse: integer('--val-triplets', 0),
  },
  {
    flags: '--test-triplets <n>',
    key: 'testTriplets',
    help: "triplets of the fine-tune's own test report",
    parse: integer('--test-triplets', 0),
  },
  {
    flags: '--margin <x>',
    key: 'margin',
    help: 'margin of the triplet loss',
    parse: nonNegative('--margin'),
  },
  {
    flags: '--embed-loss-coeff <x>',
    key: 'embedLossCoeff',
    help: 'weight of the embedding norm loss',
    parse: nonNegative('--embed-loss-coeff'),
  },
  {
    flags: '--mask-loss-coeff <x>',
    key: 'maskLossCoeff',
    help: 'weight of the mask L1 norm loss',
    parse: nonNegative('--mask-loss-coeff'),
  },
  {
    flags: '--val-every <n>',
    key: 'valEvery',
    help: 'validate every n epochs',
    parse: integer('--val-every', 1),
  },
  {
    flags: '--checkpoint-every <n>',
    key: 'checkpointEvery',
    help: 'also write checkpoint_latest every n steps',
    parse: integer('--checkpoint-every', 0),
  },
  {
    flags: '--map-queries <n>',
    key: 'mapQueries',
    help: 'retrieval MAP queries per condition at test time',
    parse: integer('--map-queries', 1),
  },
  {
    flags: '--log-interval <n>',
    key: 'logInterval',
    help: 'steps between metrics lines',
    parse: integer('--log-interval', 1),
  },
  {
    flags: '--conditions <names...>',
    key: 'conditions',
    help: 'conditions the new model learns (default: all of the catalogue)',
  },
  {
    flags: '--backend <name>',
    key: 'backend',
    help: 'tfjs backend (default auto)',
    choices: BACKEND_PREFERENCES,
  },
  { flags: '--no-augment', key: 'augment', help: 'no random horizontal flips of training images' },
  { flags: '--no-progress', key: 'progress', help: 'no progress bar' },
];

/** Add the fine-tune flags to `command` (no defaults: see the header). */
export function addFineTuneFlags(command: Command): void {
  for (const flag of FINE_TUNE_FLAGS) {
    const option = new Option(flag.flags, flag.help);
    if (flag.choices) option.argParser(choice(flag.flags.split(' ')[0], flag.choices));
    else if (flag.parse) option.argParser(flag.parse);
    command.addOption(option);
  }
}

/** The fine-tune settings given on the command line (`given(key)`: was it?). */
export function givenFineTune(
  values: Record<string, unknown>,
  given: (key: string) => boolean,
): Partial<TrainOptions> {
  const settings: Record<string, unknown> = {};
  for (const flag of FINE_TUNE_FLAGS) {
    if (given(flag.key) && values[flag.key] !== undefined) settings[flag.key] = values[flag.key];
  }
  return settings as Partial<TrainOptions>;
}
