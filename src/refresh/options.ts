/**
 * `refresh`'s own options, one table (src/util/options-table.ts: commander, defaults and the README's flag table
 * follow from it), and the run's fixed settings; the fine-tune's options are the trainer's rows
 * (fine-tune-flags.ts). Each default with why.
 */
import { TRAIN_DEFAULTS } from '../train/defaults.ts';
import { defaultsOf, type OptionTable } from '../util/options-table.ts';

const fraction = { check: (n: number) => n >= 0 && n <= 1, rule: 'in [0, 1]' };

export const REFRESH_OPTIONS = {
  dataDir: {
    type: 'string',
    arg: 'dir',
    help: 'the catalogue as it is now (any supported layout)',
    required: true,
  },
  indexDir: {
    type: 'string',
    arg: 'dir',
    help: 'the published bundle to refresh (holding manifest.json)',
    required: true,
  },
  logDir: {
    type: 'string',
    arg: 'dir',
    help: "folder that holds run folders (the trainer's)",
    default: TRAIN_DEFAULTS.logDir,
  },
  name: { type: 'string', arg: 'name', help: 'run folder name', defaultText: 'refresh_yyyymmdd_hhmmss' },
  retrain: {
    type: 'switch',
    form: 'both',
    help: 'fine-tune always (--no-retrain: never; the catalogue is published either way)',
    defaultText: 'the decision rule',
  },
  from: {
    type: 'string',
    arg: 'checkpoint',
    help: 'warm-start the fine-tune from this checkpoint instead of the served model',
  },
  /**
   * Overall accuracy (a fraction) the candidate may lose against the served model on the gate's triplets. A
   * condition is refused on its own only when it is worse with `confidence`, so this point rule guards against a
   * model a little worse everywhere, where no single condition is clearly worse.
   */
  tolerance: {
    type: 'number',
    arg: 'x',
    ...fraction,
    help: 'overall accuracy the new model may lose against the served one (a condition: when worse with 95 % confidence)',
    default: 0.01,
  },
  /**
   * Test triplets both models answer at the gate. If the models disagree on 15 % of the triplets, a condition's
   * 95 % interval over n independent triplets is about ±1.96·√(0.15 / n): ±2.9 points at the trainer's 4000 test
   * triplets over 6 conditions (670 each), too wide to tell a 2-point loss from noise; ±1.2 points at 24000 (4000
   * each). Triplets sharing anchors widen it (the bootstrap resamples anchors), so more triplets than products
   * still help only up to a point. The gate embeds each test product once per model and compares triplets in
   * microseconds, so the larger count costs seconds.
   */
  gateTriplets: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'held-out test triplets both models answer at the gate',
    default: 24_000,
  },
  /** Retrain (rather than re-index) when more than this share of the served products was added, removed or changed. */
  retrainShare: {
    type: 'number',
    arg: 'x',
    ...fraction,
    help: 'retrain when more than this share of the served products was added, removed or changed',
    default: 0.25,
  },
  dryRun: { type: 'switch', help: 'only report the changes and the decision', default: false },
} satisfies OptionTable;

export const REFRESH_DEFAULTS = {
  ...defaultsOf(REFRESH_OPTIONS),
  /** Two-sided confidence of the gate's intervals: a condition whose whole interval is below zero is refused. */
  confidence: 0.95,
  /** Bootstrap resamples per interval: 50 of them lie beyond each end of a 95 % percentile interval. */
  resamples: 2000,
  /** Report file in the run folder. */
  reportFile: 'refresh.json',
  /** The served model with the updated conditions, as the fine-tune's starting checkpoint. */
  warmStartFile: 'warm-start.dmck',
  /** Lock file (proper-lockfile) in the bundle: one refresh per bundle at a time. */
  lockFile: '.refresh.lock',
  /** A lock not refreshed for this long belongs to a killed refresh and is taken over. */
  lockStaleMs: 10_000,
} as const;

/** Default run folder name: refresh_yyyymmdd_hhmmss (UTC), like the trainer's {model}_yyyymmdd_hhmmss. */
export function defaultRefreshName(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '_')
    .replace(/\.\d+Z$/, '');
  return `refresh_${stamp}`;
}
