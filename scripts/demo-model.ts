/**
 * Is the shipped demo model (models/demo/model_best.dmck) still what `npm run demo -- --retrain` produces?
 *
 *   npx tsx scripts/demo-model.ts             its recorded training settings against the demo's current ones
 *   npx tsx scripts/demo-model.ts --score     also its test triplet accuracy against models/demo/test_results.json
 *                                             (needs the demo catalogue: npm run demo -- --no-serve renders it)
 *   npx tsx scripts/demo-model.ts --retrain   also trains it again in .tmp/demo-retrain (~10 min on 2 cores) and
 *                                             compares the weights (training is deterministic on one backend)
 *
 * Exits 1 with the differences when the shipped model is out of date: retrain it with
 * `npm run demo -- --retrain --no-serve` and commit models/demo/model_best.dmck and test_results.json.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command } from 'commander';
import { DEMO_DATA_DIR } from '../src/catalogue/defaults.ts';
import { DEMO_CHECKPOINT, DEMO_MODELS_DIR, modelId, readCheckpoint } from '../src/checkpoint/index.ts';
import { demoTrainArgs } from '../src/cli/demo.ts';
import { registerTrainCommands, resolveTrainOptions } from '../src/train/cli.ts';
import { TRAIN_OPTIONS, type TrainOptions } from '../src/train/options.ts';
import { absentValues } from '../src/util/options-table.ts';

/** Written by the trainer beside the options (which backend ran, the resume path, whether a folder was replaced): not settings. */
const RUN_FACTS = new Set(['activeBackend', 'resume', 'overwrite']);

export const DEMO_RESULTS = `${DEMO_MODELS_DIR}/demo/test_results.json`;

/** The options `npm run demo -- --retrain` trains the demo CSN with, resolved as the train command does. */
export async function demoTrainSettings(
  flags = { model: 'csn' as const, dataDir: DEMO_DATA_DIR, modelsDir: DEMO_MODELS_DIR },
): Promise<TrainOptions> {
  const program = new Command().exitOverride();
  registerTrainCommands(program);
  const train = program.commands.find((c) => c.name() === 'train')!;
  let resolved: TrainOptions | undefined;
  train.action(async (values, command: Command) => {
    resolved = await resolveTrainOptions(values, (key) => command.getOptionValueSource(key) === 'cli');
  });
  await program.parseAsync(['node', 'dressmatch', ...demoTrainArgs({ ...flags, name: undefined })]);
  return resolved!;
}

/**
 * Settings that differ between a checkpoint's recorded args and `expected`, as `key: recorded → expected`. An
 * option the checkpoint predates counts as its `absent` value: the behaviour it was trained with.
 */
export function settingsDrift(recorded: Record<string, unknown>, expected: TrainOptions): string[] {
  const keys = new Set([...Object.keys(recorded), ...Object.keys(expected)]);
  const wanted = expected as Record<string, unknown>;
  const absent = absentValues(TRAIN_OPTIONS);
  const trainedWith = (key: string) => recorded[key] ?? absent[key];
  return [...keys]
    .filter((key) => !RUN_FACTS.has(key))
    .filter((key) => JSON.stringify(trainedWith(key)) !== JSON.stringify(wanted[key]))
    .map((key) => `${key}: ${JSON.stringify(recorded[key])} → ${JSON.stringify(wanted[key])}`);
}

/** The shipped run's test triplet accuracy, as the trainer recorded it. */
export function recordedAccuracy(): number {
  return (JSON.parse(readFileSync(DEMO_RESULTS, 'utf8')) as { triplets: { overall: number } }).triplets
    .overall;
}

async function scoreAgainstRecord(): Promise<string[]> {
  const { runEval } = await import('../src/eval/run.ts');
  const report = await runEval(
    { model: DEMO_CHECKPOINT, split: 'test', mapQueries: 1, map: false, backend: 'wasm' },
    process.stderr,
  );
  const recorded = recordedAccuracy();
  return report.triplets.overall === recorded
    ? []
    : [`test accuracy ${report.triplets.overall} where ${DEMO_RESULTS} records ${recorded}`];
}

async function retrainAndCompare(shippedId: string): Promise<string[]> {
  const { spawnSync } = await import('node:child_process');
  const args = demoTrainArgs({ model: 'csn', dataDir: DEMO_DATA_DIR, modelsDir: '.tmp/demo-retrain' });
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args, '--overwrite'], {
    stdio: 'inherit',
  });
  if (run.status !== 0) return [`retraining failed (exit code ${run.status})`];
  const retrained = await readCheckpoint('.tmp/demo-retrain/demo/model_best.dmck');
  const id = modelId(retrained.model);
  return id === shippedId
    ? []
    : [`retrained weights differ: model id ${id} against the shipped ${shippedId}`];
}

async function main(argv: string[]): Promise<number> {
  const shipped = await readCheckpoint(DEMO_CHECKPOINT);
  const problems = settingsDrift((shipped.args ?? {}) as Record<string, unknown>, await demoTrainSettings());
  if (argv.includes('--score')) problems.push(...(await scoreAgainstRecord()));
  if (argv.includes('--retrain')) problems.push(...(await retrainAndCompare(modelId(shipped.model))));
  for (const problem of problems) process.stdout.write(`${DEMO_CHECKPOINT}: ${problem}\n`);
  if (problems.length > 0) {
    process.stdout.write('retrain it: npm run demo -- --retrain --no-serve, then commit models/demo\n');
    return 1;
  }
  const checked = [
    'settings',
    argv.includes('--score') && 'test accuracy',
    argv.includes('--retrain') && 'weights',
  ];
  process.stdout.write(
    `${DEMO_CHECKPOINT}: ${checked.filter(Boolean).join(', ')} match what npm run demo -- --retrain produces\n`,
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.slice(2));
}
