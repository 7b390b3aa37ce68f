/**
 * The run report `refresh.json`: created when a run starts (status `running`), rewritten atomically after each
 * phase, finished with the outcome and exit code. A run killed on the way leaves `running` behind; the next run of
 * the same bundle (holding the refresh lock, so the old one is certainly gone) marks it `abandoned`.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { REFRESH_DEFAULTS } from './options.ts';
import type { RefreshExitCode, RefreshOutcome, RefreshReport } from './types.ts';

export function newReport(fields: {
  run: string;
  bundle: string;
  dataDir: string;
  dryRun: boolean;
  now?: Date;
}): RefreshReport {
  return {
    format: 'dressmatch-refresh',
    run: fields.run,
    status: 'running',
    outcome: null,
    exitCode: null,
    startedAt: (fields.now ?? new Date()).toISOString(),
    finishedAt: null,
    pid: process.pid,
    bundle: resolve(fields.bundle),
    dataDir: resolve(fields.dataDir),
    dryRun: fields.dryRun,
    served: null,
    changes: null,
    decision: null,
    warmStart: null,
    candidate: null,
    gate: null,
    reindexed: null,
    published: null,
    error: null,
    timings: {},
  };
}

/** Holds one run's report and writes it to `<runDir>/refresh.json` whenever asked. */
export class ReportWriter {
  readonly path: string;

  constructor(
    readonly runDir: string,
    readonly report: RefreshReport,
  ) {
    this.path = join(runDir, REFRESH_DEFAULTS.reportFile);
  }

  async save(): Promise<void> {
    await writeFileAtomic(this.path, `${JSON.stringify(this.report, null, 2)}\n`);
  }

  /** Time a phase into `timings` (seconds, two decimals). */
  async time<T>(phase: string, work: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await work();
    } finally {
      this.report.timings[phase] = Math.round((performance.now() - started) / 10) / 100;
    }
  }

  async finish(outcome: RefreshOutcome | null, exitCode: RefreshExitCode): Promise<void> {
    this.report.status = 'finished';
    this.report.outcome = outcome;
    this.report.exitCode = exitCode;
    this.report.finishedAt = new Date().toISOString();
    await this.save();
  }
}

/**
 * Mark reports of `bundle` under `logDir` that still say `running` (other than `exceptRun`) as abandoned. Call only
 * while holding the bundle's refresh lock. Returns the run names marked.
 */
export async function markAbandoned(logDir: string, bundle: string, exceptRun: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(logDir);
  } catch {
    return [];
  }
  const marked: string[] = [];
  for (const run of entries) {
    if (run === exceptRun) continue;
    const path = join(logDir, run, REFRESH_DEFAULTS.reportFile);
    let report: RefreshReport;
    try {
      report = JSON.parse(await readFile(path, 'utf8')) as RefreshReport;
    } catch {
      continue;
    }
    if (report.format !== 'dressmatch-refresh' || report.status !== 'running') continue;
    if (resolve(report.bundle) !== resolve(bundle)) continue;
    report.status = 'abandoned';
    report.finishedAt = new Date().toISOString();
    await writeFileAtomic(path, `${JSON.stringify(report, null, 2)}\n`);
    marked.push(run);
  }
  return marked;
}
