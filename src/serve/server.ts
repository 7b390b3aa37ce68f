/**
 * Start the app on a real socket with bounded patience for slow clients (request, headers and keep-alive timeouts,
 * a connection cap), optionally /metrics on a port of its own, and stop it gracefully: stop accepting, let running
 * requests finish within the drain timeout, then close.
 */
import cluster from 'node:cluster';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Logger } from 'pino';
import { AggregatorRegistry } from 'prom-client';
import { createApp, type CreateAppOptions, type ServeApp } from './app.ts';
import { SERVE_DEFAULTS } from './defaults.ts';
import { createServeLogger } from './logging.ts';
import { ModelLoadError } from './model/runner.ts';
import { answerClientError, notFoundHandler, problemHandler } from './problem.ts';
import { metricsHandler, type MetricsSource } from './routes/ops.ts';
import {
  askPrimaryForMetrics,
  isClusterWorker,
  offerRegistry,
  onClusterShutdown,
  runPrimary,
} from './cluster.ts';

export interface StartServerOptions extends CreateAppOptions {
  host: string;
  port: number;
  /** Stop on SIGINT/SIGTERM (the CLI); tests stop the server themselves. */
  handleSignals?: boolean;
  /** Serve /metrics on this port (same host) instead of the API port. */
  metricsPort?: number;
  requestTimeoutMs?: number;
  headersTimeoutMs?: number;
  keepAliveTimeoutMs?: number;
  maxConnections?: number;
  /** How long running requests get to finish on shutdown before their connections are closed. */
  drainTimeoutMs?: number;
}

export interface RunningServer extends ServeApp {
  server: Server;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Base URL of the metrics port, when there is one. */
  metricsUrl?: string;
  stop(): Promise<void>;
}

/** An HTTP server whose slow clients are cut off; Node checks the request timeouts every `checkEvery` ms. */
function boundedServer(options: StartServerOptions, handler: Parameters<typeof createServer>[1]): Server {
  const requestTimeout = options.requestTimeoutMs ?? SERVE_DEFAULTS.requestTimeoutMs;
  const headersTimeout = Math.min(
    options.headersTimeoutMs ?? SERVE_DEFAULTS.headersTimeoutMs,
    requestTimeout,
  );
  const server = createServer(
    {
      requestTimeout,
      headersTimeout,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? SERVE_DEFAULTS.keepAliveTimeoutMs,
      // Node's default check interval is 30 s: a 1 s timeout would otherwise fire up to 30 s late.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 2))),
    },
    handler,
  );
  server.maxConnections = options.maxConnections ?? SERVE_DEFAULTS.maxConnections;
  server.on('clientError', answerClientError);
  return server;
}

function listen(server: Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address() as AddressInfo;
      const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve(`http://${shown}:${address.port}`);
    });
  });
}

/** A server answering GET /metrics only (for a port the scraper reaches but clients do not). */
export async function startMetricsServer(
  options: StartServerOptions,
  source: MetricsSource,
  log: Logger,
): Promise<[Server, string]> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', metricsHandler(source, options.metricsToken));
  app.use(notFoundHandler);
  app.use(problemHandler(log));
  const server = boundedServer(options, app);
  return [server, await listen(server, options.metricsPort ?? 0, options.host)];
}

/** Close a server: refuse new connections, close idle ones, wait for running requests up to `drainMs`. */
function drain(server: Server, drainMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => server.closeAllConnections(), drainMs);
    force.unref();
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const log = options.logger ?? createServeLogger();
  const worker = isClusterWorker();
  const separateMetrics = options.metricsPort !== undefined;
  const served = await createApp({
    ...options,
    logger: log,
    metricsRoute: !separateMetrics,
    metricsSource: worker ? askPrimaryForMetrics() : undefined,
  });
  if (worker) offerRegistry(served.metrics.registry);
  const server = boundedServer(options, served.app);
  const url = await listen(server, options.port, options.host);
  // Workers leave the metrics port to the primary, which serves the total.
  const [metricsServer, metricsUrl] =
    separateMetrics && !worker
      ? await startMetricsServer(
          options,
          { contentType: served.metrics.registry.contentType, exposition: served.metrics.exposition },
          log,
        )
      : [undefined, undefined];
  log.info(
    { url, metricsUrl, index: options.indexDir, model: options.modelPath ?? null },
    `listening on ${url}`,
  );

  const drainMs = options.drainTimeoutMs ?? SERVE_DEFAULTS.drainTimeoutMs;
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await Promise.all([drain(server, drainMs), metricsServer ? drain(metricsServer, drainMs) : undefined]);
      await served.close();
    })();
    return stopping;
  };
  if (options.handleSignals) handleSignals(stop, log);
  if (worker) onClusterShutdown(stop);
  return { ...served, server, url, metricsUrl, stop };
}

/**
 * The serve command: one process, or with `workers` > 1 a primary that forks that many workers (each running
 * startServer on the shared port) and serves the aggregated /metrics port when there is one.
 */
export async function runServe(options: StartServerOptions, workers: number): Promise<void> {
  requireIndexLocation(options);
  if (workers <= 1 || !cluster.isPrimary) {
    await startServer(options);
    return;
  }
  const log = options.logger ?? createServeLogger();
  await runPrimary({
    workers,
    drainTimeoutMs: options.drainTimeoutMs ?? SERVE_DEFAULTS.drainTimeoutMs,
    log,
    serveMetrics:
      options.metricsPort === undefined
        ? undefined
        : async (collect) => {
            const [, metricsUrl] = await startMetricsServer(
              options,
              { contentType: AggregatorRegistry.PROMETHEUS_CONTENT_TYPE, exposition: collect },
              log,
            );
            log.info({ metricsUrl, workers }, `metrics of ${workers} workers on ${metricsUrl}`);
          },
  });
}

/** SIGTERM/SIGINT: drain and exit 0; a second signal while draining exits at once. */
function handleSignals(stop: () => Promise<void>, log: Logger): void {
  let received = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      log.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    received = true;
    log.info({ signal }, 'shutting down: finishing running requests');
    void stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/**
 * A bundle directory that does not exist is a mistake, not a bundle still to be published (an existing directory
 * without a manifest is: the server waits for the first version, unready).
 */
function requireIndexLocation(options: StartServerOptions): void {
  if ((options.storeKind ?? 'hnswlib') === 'hnswlib' && !existsSync(options.indexDir)) {
    throw new StartupError(
      `no index directory ${options.indexDir}: build one with "dressmatch index", or name it with --index`,
    );
  }
}

/** A start-up failure whose message already says what to fix. */
export class StartupError extends Error {}

/** What went wrong at start-up, in one line that says what to fix. */
export function startupProblem(error: unknown, options: StartServerOptions): string {
  if (error instanceof StartupError) return error.message;
  const known = error as NodeJS.ErrnoException;
  const message = known instanceof Error ? known.message : String(error);
  if (known.code === 'EADDRINUSE') {
    return `port ${options.port} on ${options.host} is in use (another server?); choose another with --port`;
  }
  if (known.code === 'EACCES' && known.syscall === 'listen') {
    return `no permission to listen on port ${options.port} of ${options.host}; choose a port above 1023`;
  }
  if (error instanceof ModelLoadError) {
    return error.missing
      ? `no model checkpoint at ${error.checkpoint} (--model)`
      : `the model checkpoint ${error.checkpoint} cannot be loaded: ${message.split('\n')[0]}`;
  }
  return message;
}
