/** `dressmatch serve`: the HTTP API, web page and docs over an index bundle. */
import { Option, type Command } from 'commander';
import { BACKEND_PREFERENCES, type BackendPreference } from '../model/index.ts';
import { integer } from '../util/cli.ts';
import { MODEL_THREADS, SERVE_DEFAULTS, type ModelThread } from './defaults.ts';

interface ServeFlags {
  index: string;
  model?: string;
  images?: string;
  host: string;
  port: number;
  backend: BackendPreference;
  poll: number;
  maxUpload: number;
  modelThread: ModelThread;
}

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve similar-product recommendations with explanations over HTTP (API, web page at /, docs at /docs)',
    )
    .option('--index <dir>', 'index bundle directory (holding manifest.json)', SERVE_DEFAULTS.indexDir)
    .option(
      '--model <checkpoint>',
      'model checkpoint the index was built with (enables uploads and heat maps)',
    )
    .option('--images <dir>', 'catalogue root for product images (default: the one the index recorded)')
    .option('--host <host>', 'address to listen on', SERVE_DEFAULTS.host)
    .option(
      '--port <port>',
      'port to listen on (0 picks a free one)',
      integer('--port', 0, 65535),
      SERVE_DEFAULTS.port,
    )
    .addOption(
      new Option('--backend <name>', 'tfjs backend for the model')
        .choices(BACKEND_PREFERENCES)
        .default(SERVE_DEFAULTS.backend),
    )
    .option(
      '--poll <ms>',
      'how often to check for a newly published index version',
      integer('--poll', 100, 3_600_000),
      SERVE_DEFAULTS.pollIntervalMs,
    )
    .option(
      '--max-upload <bytes>',
      'largest accepted upload',
      integer('--max-upload', 1024, 1 << 30),
      SERVE_DEFAULTS.maxUploadBytes,
    )
    .addOption(
      new Option('--model-thread <where>', 'where the model runs: its own worker thread, or the main thread')
        .choices(MODEL_THREADS)
        .default(SERVE_DEFAULTS.modelThread),
    )
    .action(async (flags: ServeFlags, command: Command) => {
      const { startServer } = await import('./server.ts');
      try {
        await startServer({
          indexDir: flags.index,
          modelPath: flags.model,
          imageRoot: flags.images,
          host: flags.host,
          port: flags.port,
          backend: flags.backend,
          pollIntervalMs: flags.poll,
          maxUploadBytes: flags.maxUpload,
          modelThread: flags.modelThread,
          handleSignals: true,
        });
      } catch (error) {
        command.error(`error: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
      }
    });
}
