/**
 * Progress bars for long jobs (rendering and importing catalogues, training epochs, fingerprinting and embedding
 * products): the one cli-progress set-up of the project. Bars go to stderr and only when it is a terminal, so
 * stdout stays free for a command's output; off a terminal, rate bars log a line every 10% instead (CI logs and
 * pipes stay readable).
 */
import type { SingleBar } from 'cli-progress';
import type { Logger } from './log.ts';

type CliProgress = typeof import('cli-progress');

export interface RateProgress {
  update(done: number, total: number): void;
  stop(): void;
  /** Items per second since the first update. */
  readonly rate: number;
}

export type ProgressFactory = (label: string, unit: string) => RateProgress;

/** cli-progress is imported only when a terminal will show the bar. */
async function loadCliProgress(): Promise<CliProgress | null> {
  return process.stderr.isTTY ? (await import('cli-progress')).default : null;
}

function singleBar(cliProgress: CliProgress, format: string): SingleBar {
  return new cliProgress.SingleBar(
    { format, stream: process.stderr, hideCursor: true, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
}

/**
 * A bar with a format of the caller's own (the trainer's shows epoch, loss, accuracy and triplets/s), or undefined
 * when stderr is not a terminal.
 */
export async function terminalBar(format: string): Promise<SingleBar | undefined> {
  const cliProgress = await loadCliProgress();
  return cliProgress ? singleBar(cliProgress, format) : undefined;
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

/** Bars that also show throughput ("{rate} images/s"); off a terminal, a log line with the rate every 10%. */
export async function progressFactory(log: Logger): Promise<ProgressFactory> {
  const cliProgress = await loadCliProgress();
  return (label, unit) => {
    const clock = rateClock();
    return cliProgress ? barProgress(cliProgress, label, unit, clock) : logProgress(log, label, unit, clock);
  };
}

/** One bar with a rate: the progress factory's bar for a single job. */
export async function createProgress(label: string, unit: string, log: Logger): Promise<RateProgress> {
  return (await progressFactory(log))(label, unit);
}

interface RateClock {
  readonly started: boolean;
  begin(done: number): void;
  record(done: number): void;
  rate(): number;
}

function rateClock(): RateClock {
  let started = 0;
  let firstDone = 0;
  let lastDone = 0;
  return {
    get started() {
      return started !== 0;
    },
    begin(done) {
      started = performance.now();
      firstDone = done;
    },
    record(done) {
      lastDone = done;
    },
    // Throughput since the first update, over at least 50 ms so the first ticks do not show absurd rates.
    rate() {
      const elapsed = (performance.now() - started) / 1000;
      return elapsed >= 0.05 ? (lastDone - firstDone) / elapsed : 0;
    },
  };
}

function barProgress(cliProgress: CliProgress, label: string, unit: string, clock: RateClock): RateProgress {
  const bar = singleBar(
    cliProgress,
    `${label} [{bar}] {percentage}% | {value}/{total} | {rate} ${unit}/s | eta {eta_formatted}`,
  );
  let running = false;
  return {
    update(done, total) {
      clock.record(done);
      if (!running) {
        clock.begin(done);
        bar.start(total, done, { rate: '-' });
        running = true;
        return;
      }
      bar.setTotal(total);
      bar.update(done, { rate: formatRate(clock.rate()) });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
    get rate() {
      return clock.rate();
    },
  };
}

function logProgress(log: Logger, label: string, unit: string, clock: RateClock): RateProgress {
  let lastDecile = -1;
  return {
    update(done, total) {
      if (!clock.started) clock.begin(done);
      clock.record(done);
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        const rate = formatRate(clock.rate());
        log.info({ done, total, rate: Number(rate) }, `${label} ${decile * 10}% (${rate} ${unit}/s)`);
      }
    },
    stop() {},
    get rate() {
      return clock.rate();
    },
  };
}
