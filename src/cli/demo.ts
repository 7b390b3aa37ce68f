/**
 * `dressmatch demo`: the pipeline on the demo catalogue, one stage per process, one progress line per stage. The
 * demo model ships in models/demo, so a fresh clone renders the catalogue, indexes and serves without training.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { DEMO_DATA_DIR } from '../catalogue/defaults.ts';
import { BEST_CHECKPOINT, DEMO_MODELS_DIR } from '../checkpoint/defaults.ts';
import { MODEL_KINDS } from '../model/defaults.ts';
import { runCommand } from '../util/cli.ts';
import { addOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';
import { progressLine, runStage } from './stage-process.ts';

/** How often the demo asks the service whether it is ready. */
const READY_POLL_MS = 250;

/** `demo`'s flags. */
export const DEMO_OPTIONS = {
  dataDir: { type: 'string', arg: 'dir', help: 'demo catalogue directory', default: DEMO_DATA_DIR },
  modelsDir: { type: 'string', arg: 'dir', help: 'where the demo run folders are', default: DEMO_MODELS_DIR },
  model: {
    type: 'choice',
    arg: 'kind',
    choices: MODEL_KINDS,
    help: 'model to serve (trained first when its run folder has none)',
    default: 'csn' as (typeof MODEL_KINDS)[number],
  },
  name: {
    type: 'string',
    arg: 'name',
    help: 'demo run name',
    defaultText: 'demo for csn, demo-<model> otherwise',
  },
  retrain: {
    type: 'switch',
    help: 'train the model again even when its run folder has one (models/demo ships with the repository)',
  },
  indexDir: { type: 'string', arg: 'dir', help: 'index bundle directory', defaultText: 'indexes/<name>' },
  host: { type: 'string', arg: 'host', help: 'address to listen on', default: '127.0.0.1' },
  port: { type: 'string', arg: 'port', help: 'port to listen on', default: '8080' },
  serve: { type: 'switch', form: 'off', help: 'stop after indexing', default: true },
} satisfies OptionTable;

export type DemoFlags = ValuesOf<typeof DEMO_OPTIONS>;

export function registerDemoCommand(program: Command): void {
  const command = program
    .command('demo')
    .description(
      'End to end on the embedded default: render the demo catalogue (when missing), use the shipped demo model ' +
        '(or train it: --retrain, or a model that is not there yet), index it and serve it',
    );
  addOptions(command, DEMO_OPTIONS).action(async (options: DemoFlags, command: Command) =>
    runCommand(command, () => runDemo(options)),
  );
}

/** The demo run's name: each model gets its own run folder and bundle, so demos can be served side by side. */
export function demoRunName(flags: Pick<DemoFlags, 'name' | 'model'>): string {
  return flags.name ?? (flags.model === 'csn' ? 'demo' : `demo-${flags.model}`);
}

/**
 * The demo model's training settings (what --retrain runs): the trainer's defaults on the demo catalogue, except
 * the real-photo settings. The synthetic dresses are drawn legibly at 48 px and their colours are flat, so the demo
 * keeps the small input and trains on triplets alone (bench/results/real-photos.md measures the others on photos).
 */
export const DEMO_OWN_SETTINGS = [
  '--image-size',
  '48',
  '--no-colour-histogram',
  '--label-loss',
  '0',
  '--controlled',
  '0',
];

export function demoTrainArgs(flags: Pick<DemoFlags, 'name' | 'model' | 'dataDir' | 'modelsDir'>): string[] {
  return [
    'train',
    ...DEMO_OWN_SETTINGS,
    '--model',
    flags.model,
    '--data-dir',
    flags.dataDir,
    '--log-dir',
    flags.modelsDir,
    '--name',
    demoRunName(flags),
  ];
}

const STEPS = 4;

async function runDemo(options: DemoFlags): Promise<void> {
  const name = demoRunName(options);
  const indexDir = options.indexDir ?? `indexes/${name}`;
  if (!existsSync(`${options.dataDir}/products.jsonl`)) {
    const line = progressLine(
      `1/${STEPS}`,
      `catalogue: rendering the demo catalogue into ${options.dataDir}`,
    );
    await runStage(['demo-data', '--out', options.dataDir], { output: 'quiet' });
    line.done();
  } else {
    progressLine(`1/${STEPS}`, `catalogue: ${options.dataDir}`).done('already there');
  }
  const checkpoint = await demoModel(options, name);
  const line = progressLine(`3/${STEPS}`, `index: ${checkpoint} → ${indexDir}`);
  // Re-indexing is cheap and picks up a retrained model; the index job refuses to publish a bad index.
  await runStage(['index', '--model', checkpoint, '--data-dir', options.dataDir, '--out', indexDir], {
    output: 'quiet',
  });
  line.done('published');
  if (options.serve) await serveDemo(options, indexDir, checkpoint);
}

/** The checkpoint to serve: the one in the run folder, trained first when missing or with --retrain. */
async function demoModel(options: DemoFlags, name: string): Promise<string> {
  const checkpoint = `${options.modelsDir}/${name}/${BEST_CHECKPOINT}`;
  if (options.retrain || !existsSync(checkpoint)) {
    const line = progressLine(`2/${STEPS}`, `model: training ${options.modelsDir}/${name}`, 'inherit');
    await runStage([...demoTrainArgs(options), '--overwrite'], { output: 'inherit' });
    line.done('trained');
  } else {
    progressLine(`2/${STEPS}`, `model: ${checkpoint}`).done('already there (--retrain trains it again)');
  }
  // A run folder left by another model under this name must not be served as the one asked for.
  const { readCheckpoint } = await import('../checkpoint/index.ts');
  const trained = (await readCheckpoint(checkpoint)).model.config.kind;
  if (trained !== options.model) {
    throw new Error(`${checkpoint} holds a ${trained} model, not ${options.model}: pass another --name`);
  }
  return checkpoint;
}

/** Serve until stopped; the progress line ends once the service answers /readyz. */
async function serveDemo(options: DemoFlags, indexDir: string, checkpoint: string): Promise<void> {
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
  const line = progressLine(`4/${STEPS}`, `serve: ${url}/ (page), ${url}/docs (API)`, 'inherit');
  const serving = runStage(
    ['serve', '--index', indexDir, '--model', checkpoint, '--host', options.host, '--port', options.port],
    { output: 'inherit' },
  );
  if (options.port !== '0')
    void whenReady(`${url}/readyz`, serving).then((ready) => ready && line.done('ready; Ctrl-C stops'));
  await serving;
}

/** Whether `url` answered 200 before the stage ended. */
async function whenReady(url: string, stage: Promise<void>): Promise<boolean> {
  let ended = false;
  stage.then(
    () => (ended = true),
    () => (ended = true),
  );
  while (!ended) {
    const ok = await fetch(url)
      .then((response) => response.ok)
      .catch(() => false);
    if (ok) return true;
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  return false;
}
