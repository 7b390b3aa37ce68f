/** Start the app on a real socket, and stop it gracefully: stop accepting, let running requests finish, then close. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../util/log.ts';
import { createApp, type CreateAppOptions, type ServeApp } from './app.ts';

export interface StartServerOptions extends CreateAppOptions {
  host: string;
  port: number;
  /** Stop on SIGINT/SIGTERM (the CLI); tests stop the server themselves. */
  handleSignals?: boolean;
}

export interface RunningServer extends ServeApp {
  server: Server;
  /** Base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  stop(): Promise<void>;
}

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const log = options.logger ?? createLogger('serve');
  const served = await createApp({ ...options, logger: log });
  const server = await new Promise<Server>((resolve, reject) => {
    const listening = served.app.listen(options.port, options.host, () => resolve(listening));
    listening.once('error', reject);
  });
  // Keep-alive sockets of idle clients must not hold a shutdown open.
  server.keepAliveTimeout = 5000;
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  // The validator compiles openapi.yaml on the first request it sees: pay that now, not on a client's request.
  await fetch(`${url}/healthz`)
    .then((response) => response.arrayBuffer())
    .catch(() => undefined);
  log.info({ url, index: options.indexDir, model: options.modelPath ?? null }, `listening on ${url}`);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await served.close();
    })();
    return stopping;
  };
  if (options.handleSignals) {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down: finishing running requests');
      const force = setTimeout(() => server.closeAllConnections(), 10_000);
      force.unref();
      void stop().then(() => process.exit(0));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return { ...served, server, url, stop };
}
