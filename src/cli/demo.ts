import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEMO_DATA_DIR } from '../catalogue/defaults.ts';
import { BEST_CHECKPOINT, DEMO_MODELS_DIR } from '../checkpoint/defaults.ts';
import { MODEL_KINDS } from '../model/defaults.ts';
import { runCommand } from '../util/cli.ts';
import { addOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';

const mainScript = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Signals a stage gets passed on: stopping the demo stops (and waits for) the stage it is running. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/**
 * Run one stage of the pipeline as its own CLI process, so each stage is exactly what a user would run by hand.
 * The stage runs in its own process group, so a Ctrl-C reaches it once, through us: we pass SIGTERM/SIGINT/SIGHUP
 * on, wait for the stage to finish (serve drains its running requests), and exit with its status.
 */
function runStage(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stderr.write(`\n> dressmatch ${args.join(' ')}\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', mainScript, ...args], {
      stdio: 'inherit',
      detached: true,
    });
    let stopping: NodeJS.Signals | undefined;
    const forward = (signal: NodeJS.Signals) => {
      stopping = signal;
      child.kill(signal);
    };
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      for (const forwarded of FORWARDED_SIGNALS) process.off(forwarded, forward);
      if (stopping) process.exit(code ?? 128 + (constants.signals[signal ?? stopping] ?? 0));
      if (code === 0) resolve();
      else reject(new Error(`dressmatch ${args[0]} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/** `demo`'s flags. */
export const DEMO_OPTIONS = {
  dataDir: { type: 'string', arg: 'dir', help: 'demo catalogue directory', default: DEMO_DATA_DIR },
  modelsDir: { type: 'string', arg: 'dir', help: 'where the demo run folder goes', default: DEMO_MODELS_DIR },
  model: {
    type: 'choice',
    arg: 'kind',
    choices: MODEL_KINDS,
    help: 'model to train and serve',
    default: 'csn' as (typeof MODEL_KINDS)[number],
  },
  name: {
    type: 'string',
    arg: 'name',
    help: 'demo run name',
    defaultText: 'demo for csn, demo-<model> otherwise',
  },
  indexDir: { type: 'string', arg: 'dir', help: 'index bundle directory', defaultText: 'indexes/<name>' },
  host: { type: 'string', arg: 'host', help: 'address to listen on', default: '127.0.0.1' },
  port: { type: 'string', arg: 'port', help: 'port to listen on', default: '8080' },
  serve: { type: 'switch', form: 'off', help: 'stop after indexing', default: true },
} satisfies OptionTable;

type DemoFlags = ValuesOf<typeof DEMO_OPTIONS>;

export function registerDemoCommand(program: Command): void {
  const command = program
    .command('demo')
    .description(
      'End to end on the embedded default: make the demo catalogue, train the demo model (CSN unless --model), index it and serve it (the catalogue and model are made only when missing)',
    );
  addOptions(command, DEMO_OPTIONS).action(async (options: DemoFlags, command: Command) =>
    runCommand(command, () => runDemo(options)),
  );
}

async function runDemo(options: DemoFlags): Promise<void> {
  // Each model gets its own run folder and bundle, so the CSN and ASEN demos can be served side by side.
  const name = options.name ?? (options.model === 'csn' ? 'demo' : `demo-${options.model}`);
  const indexDir = options.indexDir ?? `indexes/${name}`;
  if (!existsSync(`${options.dataDir}/products.jsonl`)) {
    await runStage(['demo-data', '--out', options.dataDir]);
  }
  const checkpoint = `${options.modelsDir}/${name}/${BEST_CHECKPOINT}`;
  if (!existsSync(checkpoint)) {
    await runStage([
      'train',
      '--model',
      options.model,
      '--data-dir',
      options.dataDir,
      '--log-dir',
      options.modelsDir,
      '--name',
      name,
    ]);
  }
  // A run folder left by another model under this name must not be served as the one asked for.
  const { readCheckpoint } = await import('../checkpoint/index.ts');
  const trained = (await readCheckpoint(checkpoint)).model.config.kind;
  if (trained !== options.model) {
    throw new Error(`${checkpoint} holds a ${trained} model, not ${options.model}: pass another --name`);
  }
  // Re-indexing is cheap and picks up a retrained model; the index job refuses to publish a bad index.
  await runStage(['index', '--model', checkpoint, '--data-dir', options.dataDir, '--out', indexDir]);
  if (options.serve) {
    await runStage([
      'serve',
      '--index',
      indexDir,
      '--model',
      checkpoint,
      '--host',
      options.host,
      '--port',
      options.port,
    ]);
  }
}
