import type { Logger } from '../util/log.ts';

export interface RateProgress {
  update(done: number, total: number): void;
  stop(): void;
  /** Items per second since the first update. */
  readonly rate: number;
}

export type ProgressFactory = (label: string, unit: string) => RateProgress;

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

/**
 * Progress bars that also show throughput ("{rate} images/s"): cli-progress bars on stderr when it is a terminal,
 * otherwise a log line every 10% (so CI logs stay readable and stdout stays free for the report).
 */
export async function progressFactory(log: Logger): Promise<ProgressFactory> {
  const cliProgress = process.stderr.isTTY ? (await import('cli-progress')).default : null;
  return (label, unit) => {
    let started = 0;
    let firstDone = 0;
    let lastDone = 0;
    const begin = (done: number): void => {
      started = performance.now();
      firstDone = done;
    };
    // Throughput since the first update, over at least 50 ms so the first ticks do not show absurd rates.
    const rateNow = (): number => {
      const elapsed = (performance.now() - started) / 1000;
      return elapsed >= 0.05 ? (lastDone - firstDone) / elapsed : 0;
    };
    if (cliProgress) {
      const bar = new cliProgress.SingleBar(
        {
          format: `${label} [{bar}] {percentage}% | {value}/{total} | {rate} ${unit}/s | eta {eta_formatted}`,
          stream: process.stderr,
          hideCursor: true,
          etaBuffer: 50,
        },
        cliProgress.Presets.shades_classic,
      );
      let running = false;
      return {
        update(done, total) {
          lastDone = done;
          if (!running) {
            begin(done);
            bar.start(total, done, { rate: '-' });
            running = true;
            return;
          }
          bar.setTotal(total);
          bar.update(done, { rate: formatRate(rateNow()) });
        },
        stop() {
          if (running) bar.stop();
          running = false;
        },
        get rate() {
          return rateNow();
        },
      };
    }
    let lastDecile = -1;
    return {
      update(done, total) {
        if (started === 0) begin(done);
        lastDone = done;
        const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
        if (decile !== lastDecile) {
          lastDecile = decile;
          const rate = formatRate(rateNow());
          log.info({ done, total, rate: Number(rate) }, `${label} ${decile * 10}% (${rate} ${unit}/s)`);
        }
      },
      stop() {},
      get rate() {
        return rateNow();
      },
    };
  };
}
