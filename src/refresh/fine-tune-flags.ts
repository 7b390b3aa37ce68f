/**
 * The trainer settings `refresh` accepts for its fine-tune: rows of the trainer's own option table (type, parser,
 * help, one home), without their defaults, since a setting not given is the served model's own run's, then the
 * trainer's default (retrain.ts). Only the schedule and the losses: the network (model kind, backbone, image size,
 * width, embedding, masks, colour channels) is the served model's, so are the batch mode and the validation
 * metric, and the run folder and data are refresh's. `--epochs` also takes 0: no training, the candidate is the
 * served model re-shaped for the updated conditions.
 */
import type { Command } from 'commander';
import type { TrainOptions } from '../train/index.ts';
import { TRAIN_OPTIONS } from '../train/defaults.ts';
import { addOptions, type OptionSpec, type OptionTable } from '../util/options-table.ts';

const SCHEDULE = [
  'epochs',
  'lr',
  'lrDecay',
  'seed',
  'batchSize',
  'poolSize',
  'trainTriplets',
  'valTriplets',
  'testTriplets',
  'margin',
  'embedLossCoeff',
  'maskLossCoeff',
  'labelLoss',
  'controlled',
  'valEvery',
  'checkpointEvery',
  'mapQueries',
  'logInterval',
  'conditions',
  'backend',
  'augment',
  'progress',
] as const satisfies readonly (keyof typeof TRAIN_OPTIONS & keyof TrainOptions)[];

/** Where the settings a fine-tune does not take from the served model's run come from. */
const NOT_INHERITED: Partial<Record<(typeof SCHEDULE)[number], string>> = {
  conditions: 'every condition of the catalogue',
  backend: 'auto',
};

/** A trainer row as refresh shows it: no default or upstream note, the served run's value instead. */
function fineTuneRow(key: (typeof SCHEDULE)[number]): OptionSpec {
  const row: OptionSpec = { ...TRAIN_OPTIONS[key] };
  delete row.default;
  delete row.upstream;
  delete row.inherit;
  if (row.type === 'switch') return row;
  if (row.type === 'integer' && key === 'epochs')
    return {
      ...row,
      min: 0,
      help: 'fine-tune epochs (0: no training, the served model is the candidate)',
      defaultText: "the served model's run",
    };
  return { ...row, defaultText: NOT_INHERITED[key] ?? "the served model's run" };
}

/** Refresh's fine-tune options, in the trainer's --help order. */
export const FINE_TUNE_OPTIONS: OptionTable = Object.fromEntries(
  SCHEDULE.map((key) => [key, fineTuneRow(key)]),
);

export function addFineTuneFlags(command: Command): void {
  addOptions(command, FINE_TUNE_OPTIONS);
}

/** The fine-tune settings given on the command line (`given(key)`: was it?). */
export function givenFineTune(
  values: Record<string, unknown>,
  given: (key: string) => boolean,
): Partial<TrainOptions> {
  const settings: Record<string, unknown> = {};
  for (const key of SCHEDULE) {
    if (given(key) && values[key] !== undefined) settings[key] = values[key];
  }
  return settings as Partial<TrainOptions>;
}
