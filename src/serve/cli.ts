/** `dressmatch serve`: the HTTP API, web page and docs over an index bundle. Flag defaults live in defaults.ts. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import { lanceUri, storeOption, URI_OPTION, type StoreFlags } from '../index/cli.ts';
import { BACKEND_PREFERENCES, type BackendPreference } from '../model/defaults.ts';
import { integer } from '../util/cli.ts';
import { MODEL_THREADS, SERVE_DEFAULTS as D, type ModelThread } from './defaults.ts';
import type { StartServerOptions } from './server.ts';

interface ServeFlags extends StoreFlags {
  index: string;
  model?: string;
  images?: string;
  host: string;
  port: number;
  backend: BackendPreference;
  poll: number;
  maxUpload: number;
  modelThread: ModelThread;
  maxQueuedUploads: number;
  maxQueuedHeatmaps: number;
  requestTimeout: number;
  headersTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number;
  drainTimeout: number;
  answerCache: number;
  thumbnailCache: number;
  rateLimit: number;
  metricsPort?: number;
  metricsToken?: string;
  hsts: boolean;
  workers: number;
  logSample: number;
}

const ms = (name: string) => integer(name, 1, 3_600_000);

/** Where the data comes from and how the model runs. */
function sourceOptions(command: Command): Command {
  return command
    .option('--index <dir>', 'index bundle directory (holding manifest.json)', D.indexDir)
    .addOption(
      storeOption(
        'where the index lives: a bundle (--index), or a LanceDB database whose published bundle is loaded (--uri)',
      ),
    )
    .option(...URI_OPTION)
    .option(
      '--model <checkpoint>',
      'model checkpoint the index was built with (enables uploads and heat maps)',
    )
    .option('--images <dir>', 'catalogue root for product images (default: the one the index recorded)')
    .addOption(
      new Option('--backend <name>', 'tfjs backend for the model')
        .choices(BACKEND_PREFERENCES)
        .default(D.backend),
    )
    .addOption(
      new Option('--model-thread <where>', 'where the model runs: its own worker thread, or the main thread')
        .choices(MODEL_THREADS)
        .default(D.modelThread),
    )
    .option(
      '--poll <ms>',
      'how often to check for a newly published index version',
      integer('--poll', 100, 3_600_000),
      D.pollIntervalMs,
    );
}

/** The socket, and what slow or greedy clients may hold. */
function limitOptions(command: Command): Command {
  return command
    .option('--host <host>', 'address to listen on', D.host)
    .option('--port <port>', 'port to listen on (0 picks a free one)', integer('--port', 0, 65535), D.port)
    .option(
      '--max-upload <bytes>',
      'largest accepted upload',
      integer('--max-upload', 1024, 1 << 30),
      D.maxUploadBytes,
    )
    .option(
      '--max-queued-uploads <n>',
      'uploads waiting for the model before 503',
      integer('--max-queued-uploads', 1, 10_000),
      D.maxQueuedUploads,
    )
    .option(
      '--max-queued-heatmaps <n>',
      'heat maps waiting for the model before 503',
      integer('--max-queued-heatmaps', 1, 10_000),
      D.maxQueuedHeatmaps,
    )
    .option(
      '--request-timeout <ms>',
      'cut off a request whose body has not arrived by then',
      ms('--request-timeout'),
      D.requestTimeoutMs,
    )
    .option(
      '--headers-timeout <ms>',
      'cut off a client that has not sent its headers by then',
      ms('--headers-timeout'),
      D.headersTimeoutMs,
    )
    .option(
      '--keep-alive-timeout <ms>',
      'close an idle keep-alive connection after this long',
      ms('--keep-alive-timeout'),
      D.keepAliveTimeoutMs,
    )
    .option(
      '--max-connections <n>',
      'refuse connections beyond this many',
      integer('--max-connections', 1, 1_000_000),
      D.maxConnections,
    )
    .option(
      '--drain-timeout <ms>',
      'on SIGTERM/SIGINT, how long running requests get to finish',
      integer('--drain-timeout', 0, 3_600_000),
      D.drainTimeoutMs,
    )
    .option(
      '--answer-cache <bytes>',
      'bytes of finished GET /similar answers kept in memory (0: none)',
      integer('--answer-cache', 0, 1 << 30),
      D.answerCacheBytes,
    )
    .option(
      '--thumbnail-cache <bytes>',
      'bytes of resized product images kept in memory',
      integer('--thumbnail-cache', 0, 1 << 30),
      D.thumbnailCacheBytes,
    )
    .option(
      '--rate-limit <n>',
      'requests per client per minute, 0 for no limit (probes and /metrics are not limited); counted in each ' +
        'worker process: with --workers n a client may get up to n times this',
      integer('--rate-limit', 0, 1_000_000),
      D.rateLimitPerMinute,
    );
}

/** A share in [0, 1]. */
function share(name: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^(0|1|0?\.\d+|1\.0*)$/.test(value) || parsed < 0 || parsed > 1) {
      throw new InvalidArgumentError(`${name} must be a number from 0 to 1`);
    }
    return parsed;
  };
}

/** Who may read /metrics, HSTS, processes and logs. */
function exposureOptions(command: Command): Command {
  return command
    .option(
      '--workers <n>',
      'worker processes sharing the port (node:cluster); /metrics sums over them',
      integer('--workers', 1, 256),
      D.workers,
    )
    .option(
      '--log-sample <share>',
      'share of successful requests logged (errors always are), e.g. 0.1 for every tenth',
      share('--log-sample'),
      D.logSample,
    )
    .option(
      '--metrics-port <port>',
      'serve /metrics on this port instead of the API port',
      integer('--metrics-port', 0, 65535),
    )
    .option(
      '--metrics-token <token>',
      'require "Authorization: Bearer <token>" for /metrics (or DRESSMATCH_METRICS_TOKEN)',
    )
    .option(
      '--hsts',
      'send Strict-Transport-Security on every response (TLS ends in front of the service)',
      false,
    );
}

/** The bundle directory, or the LanceDB URI (required with --store lancedb). */
function storeLocation(flags: ServeFlags): string {
  return flags.store === 'hnswlib' ? flags.index : lanceUri(flags);
}

function toOptions(flags: ServeFlags): StartServerOptions {
  return {
    indexDir: storeLocation(flags),
    storeKind: flags.store,
    modelPath: flags.model,
    imageRoot: flags.images,
    host: flags.host,
    port: flags.port,
    backend: flags.backend,
    pollIntervalMs: flags.poll,
    maxUploadBytes: flags.maxUpload,
    modelThread: flags.modelThread,
    maxQueuedUploads: flags.maxQueuedUploads,
    maxQueuedHeatmaps: flags.maxQueuedHeatmaps,
    requestTimeoutMs: flags.requestTimeout,
    headersTimeoutMs: flags.headersTimeout,
    keepAliveTimeoutMs: flags.keepAliveTimeout,
    maxConnections: flags.maxConnections,
    drainTimeoutMs: flags.drainTimeout,
    answerCacheBytes: flags.answerCache,
    thumbnailCacheBytes: flags.thumbnailCache,
    rateLimitPerMinute: flags.rateLimit,
    metricsPort: flags.metricsPort,
    metricsToken: flags.metricsToken ?? (process.env.DRESSMATCH_METRICS_TOKEN || undefined),
    hsts: flags.hsts,
    logSample: flags.logSample,
    handleSignals: true,
  };
}

export function registerServeCommands(program: Command): void {
  const serve = program
    .command('serve')
    .description(
      'Serve similar-product recommendations with explanations over HTTP (API, web page at /, docs at /docs)',
    );
  exposureOptions(limitOptions(sourceOptions(serve))).action(async (flags: ServeFlags) => {
    const { runServe, startupProblem } = await import('./server.ts');
    const options = toOptions(flags);
    try {
      await runServe(options, flags.workers);
    } catch (error) {
      // One line that says what to fix: the usage text would bury it.
      process.stderr.write(`error: ${startupProblem(error, options)}\n`);
      process.exit(1);
    }
  });
}
