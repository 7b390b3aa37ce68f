/**
 * One pipeline stage as its own `dressmatch` process (exactly what a user would run by hand), and the demo's
 * one-line-per-stage progress. A stage runs in its own process group, so a Ctrl-C reaches it once, through us: we
 * pass SIGTERM/SIGINT/SIGHUP on, wait for the stage to finish (serve drains its running requests) and exit with
 * its status. A demo whose parent dies without passing a signal on (a supervisor killed npm outright) notices
 * that it was orphaned and stops the same way, so no stage keeps serving on its own.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';

const mainScript = fileURLToPath(new URL('./main.ts', import.meta.url));

/** Signals a stage gets passed on: stopping the demo stops (and waits for) the stage it is running. */
const FORWARDED_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP'];

/** How often the demo checks that its parent is still there. */
const ORPHAN_CHECK_MS = 500;

/** The last bytes of a quiet stage's output, shown when it fails. */
const KEPT_OUTPUT_BYTES = 64 * 1024;

export interface StageRun {
  /** `quiet`: output kept and shown only if the stage fails; `inherit`: the stage writes to our terminal. */
  output: 'quiet' | 'inherit';
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null, stopping: NodeJS.Signals): number {
  return code ?? 128 + (constants.signals[signal ?? stopping] ?? 0);
}

/** Run `dressmatch <args>`; resolves when it exits 0, exits the demo with the stage's status when we stopped it. */
export function runStage(args: string[], run: StageRun): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', mainScript, ...args], {
      stdio: run.output === 'quiet' ? ['ignore', 'pipe', 'pipe'] : 'inherit',
      detached: true,
    });
    let kept = '';
    const keep = (chunk: Buffer) => (kept = (kept + chunk.toString()).slice(-KEPT_OUTPUT_BYTES));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let stopping: NodeJS.Signals | undefined;
    const forward = (signal: NodeJS.Signals) => {
      stopping = signal;
      child.kill(signal);
    };
    const parent = process.ppid;
    const orphanWatch = setInterval(() => {
      if (process.ppid !== parent && !stopping) forward('SIGTERM');
    }, ORPHAN_CHECK_MS);
    for (const signal of FORWARDED_SIGNALS) process.on(signal, forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearInterval(orphanWatch);
      for (const forwarded of FORWARDED_SIGNALS) process.off(forwarded, forward);
      if (stopping) process.exit(exitCodeOf(code, signal, stopping));
      if (code === 0) return resolve();
      if (kept) process.stderr.write(`\n${kept}\n`);
      reject(new Error(`dressmatch ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`));
    });
  });
}

/**
 * `demo 3/4  index: …` at the start of a stage; `done()` ends the line with how long it took. A stage that writes
 * to the terminal itself (`inherit`) gets the start on a line of its own and the end on another.
 */
export function progressLine(
  step: string,
  text: string,
  output: StageRun['output'] = 'quiet',
): { done: (note?: string) => void } {
  const started = performance.now();
  process.stderr.write(`demo ${step}  ${text}${output === 'inherit' ? '\n' : ''}`);
  return {
    done: (note = 'done') => {
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      const head = output === 'inherit' ? `demo ${step}  ${text}` : '';
      process.stderr.write(`${head} … ${note} (${seconds} s)\n`);
    },
  };
}
