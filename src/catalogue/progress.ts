import type { Logger } from '../util/log.ts';

export interface ProgressReporter {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * A cli-progress bar on stderr when it is a terminal; otherwise a log line every 10% (CI logs and pipes stay
 * readable and stdout stays free for the command's output).
 */
export async function createProgress(label: string, log: Logger): Promise<ProgressReporter> {
  if (process.stderr.isTTY) {
    const { default: cliProgress } = await import('cli-progress');
    const bar = new cliProgress.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} | {duration_formatted} elapsed, eta {eta_formatted}`,
        stream: process.stderr,
        hideCursor: true,
        etaBuffer: 200,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, total) {
        if (!started) {
          bar.start(total, done);
          started = true;
        } else {
          bar.update(done);
        }
      },
      stop() {
        if (started) bar.stop();
      },
    };
  }
  let lastDecile = -1;
  return {
    update(done, total) {
      const decile = total === 0 ? 10 : Math.floor((done / total) * 10);
      if (decile !== lastDecile) {
        lastDecile = decile;
        log.info({ done, total }, `${label} ${decile * 10}%`);
      }
    },
    stop() {},
  };
}
