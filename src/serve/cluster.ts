/**
 * `serve --workers N`: a primary process forks N workers (node:cluster) that share the listening port; each worker
 * is a whole service (its own index lease, model and hot-swap poller), so /readyz and hot swap hold per worker.
 * /metrics in any worker answers the sum over all workers: the worker asks the primary, which collects every
 * worker's registry with prom-client's AggregatorRegistry. With --metrics-port the primary serves that port itself.
 * SIGTERM/SIGINT to the primary: every worker drains its running requests, then the primary exits 0. A worker that
 * dies while serving is replaced.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import type { Logger } from 'pino';

const ASK = 'dressmatch:metrics?';
const ANSWER = 'dressmatch:metrics';
const SHUTDOWN = 'dressmatch:shutdown';
/** More worker deaths than this within a minute: something is wrong with the set-up, stop restarting. */
const MAX_RESTARTS_PER_MINUTE = 10;

interface Message {
  type?: string;
  id?: number;
  text?: string;
}

export function isClusterWorker(): boolean {
  return cluster.isWorker;
}

/** In a worker: offer this registry to the primary's aggregation. */
export function offerRegistry(registry: Registry): void {
  AggregatorRegistry.setRegistries([registry]);
  // Constructing one is what makes prom-client answer the primary's requests in this worker.
  new AggregatorRegistry();
}

/** In a worker: how /metrics gets the total over all workers (by asking the primary). */
export function askPrimaryForMetrics(): () => Promise<string> {
  let next = 1;
  const waiting = new Map<number, (text: string) => void>();
  process.on('message', (message: Message) => {
    if (message?.type !== ANSWER || message.id === undefined) return;
    waiting.get(message.id)?.(message.text ?? '');
    waiting.delete(message.id);
  });
  return () =>
    new Promise<string>((resolve) => {
      const id = next++;
      waiting.set(id, resolve);
      process.send?.({ type: ASK, id });
    });
}

/** In a worker: run `stop` when the primary says so (it got SIGTERM or SIGINT). */
export function onClusterShutdown(stop: () => Promise<void>): void {
  process.on('message', (message: Message) => {
    if (message?.type === SHUTDOWN) void stop().then(() => process.exit(0));
  });
}

export interface PrimaryOptions {
  workers: number;
  /** How long workers get to drain; the primary gives up on them a little later. */
  drainTimeoutMs: number;
  log: Logger;
  /** Serve the aggregated /metrics on a port of its own (the primary does, not the workers). */
  serveMetrics?: (collect: () => Promise<string>) => Promise<void>;
}

/** Run as the primary: fork the workers, answer their metrics questions, replace dead ones, drain on signals. */
export async function runPrimary(options: PrimaryOptions): Promise<void> {
  const { log } = options;
  const aggregator = new AggregatorRegistry();
  const collect = () => aggregator.clusterMetrics();
  let stopping = false;
  const deaths: number[] = [];
  const alive = new Set<Worker>();
  const fork = (): Worker => {
    const worker = cluster.fork();
    alive.add(worker);
    worker.on('message', (message: Message) => {
      if (message?.type !== ASK) return;
      collect().then(
        (text) => worker.send({ type: ANSWER, id: message.id, text }),
        (error: unknown) => worker.send({ type: ANSWER, id: message.id, text: `# ${String(error)}\n` }),
      );
    });
    return worker;
  };
  cluster.on('exit', (worker, code, signal) => {
    alive.delete(worker);
    if (stopping) {
      if (alive.size === 0) process.exit(0);
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while (deaths.length > 0 && deaths[0] < now - 60_000) deaths.shift();
    if (deaths.length > MAX_RESTARTS_PER_MINUTE) {
      log.error({ code, signal }, 'workers keep dying: giving up');
      process.exit(1);
    }
    log.error({ worker: worker.process.pid, code, signal }, 'worker died: starting another');
    fork();
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: workers finish their running requests');
    for (const worker of alive) worker.send({ type: SHUTDOWN });
    setTimeout(() => process.exit(1), options.drainTimeoutMs + 5000).unref();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  for (let i = 0; i < options.workers; i++) fork();
  await options.serveMetrics?.(collect);
}
