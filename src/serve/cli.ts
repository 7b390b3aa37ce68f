/** `dressmatch serve`: the HTTP API, web page and docs over an index bundle. */
import { Option, type Command } from 'commander';
import { integer } from '../util/cli.ts';

interface ServeFlags {
  index: string;
  model?: string;
  images?: string;
  host: string;
  port: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  poll: number;
  maxUpload: number;
  modelThread: 'worker' | 'main';
}

export function registerServeCommands(program: Command): void {
  program
    .command('serve')
    .description(
      'Serve similar-product recommendations with explanations over HTTP (API, web page at /, docs at /docs)',
    )
    .option('--index <dir>', 'index bundle directory (holding manifest.json)', 'indexes/demo')
    .option(
      '--model <checkpoint>',
      'model checkpoint the index was built with (enables uploads and heat maps)',
    )
    .option('--images <dir>', 'catalogue root for product images (default: the one the index recorded)')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', integer('--port', 0, 65535), 8080)
    .addOption(
      new Option('--backend <name>', 'tfjs backend for the model')
        .choices(['auto', 'tensorflow', 'wasm', 'cpu'])
        .default('auto'),
    )
    .option(
      '--poll <ms>',
      'how often to check for a newly published index version',
      integer('--poll', 100, 3_600_000),
      2000,
    )
    .option(
      '--max-upload <bytes>',
      'largest accepted upload',
      integer('--max-upload', 1024, 1 << 30),
      8 * 1024 * 1024,
    )
    .addOption(
      new Option('--model-thread <where>', 'where the model runs: its own worker thread, or the main thread')
        .choices(['worker', 'main'])
        .default('worker'),
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
