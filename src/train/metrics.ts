/**
 * The run's metrics log, `metrics.jsonl`: one JSON object per line, each written with its own write(2) call so a
 * crash loses at most the line being written (and a torn last line is skipped when the log is read back).
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { writeFileAtomic } from '../util/atomic.ts';
import type { AccuracySummary } from '../checkpoint/index.ts';

/** One logged training step (every --log-interval steps). */
export interface StepRecord {
  type: 'step';
  epoch: number;
  /** Step within the epoch (1-based) and steps per epoch. */
  step: number;
  steps: number;
  globalStep: number;
  learningRate: number;
  /** This step's values. */
  loss: number;
  tripletLoss: number;
  embedNorm: number;
  maskNorm: number;
  accuracy: number;
  /** Running means over the epoch so far (like upstream's AverageMeter avg). */
  epochLoss: number;
  epochAccuracy: number;
  tripletsPerSecond: number;
  time: string;
}

/** End of an epoch: training means and validation accuracy. */
export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  globalStep: number;
  learningRate: number;
  trainLoss: number;
  trainTripletLoss: number;
  trainAccuracy: number;
  embedNorm: number;
  maskNorm: number;
  val?: AccuracySummary & { loss: number };
  best: boolean;
  bestValAccuracy: number;
  seconds: number;
  tripletsPerSecond: number;
  time: string;
}

export interface TestRecord {
  type: 'test';
  epoch: number;
  test: AccuracySummary & { loss: number };
  time: string;
}

/** Run events (start, resume, interrupt), for people reading the log. */
export interface EventRecord {
  type: 'event';
  event: 'start' | 'resume' | 'interrupted' | 'finished';
  globalStep: number;
  detail?: Record<string, unknown>;
  time: string;
}

export type MetricsRecord = StepRecord | EpochRecord | TestRecord | EventRecord;

/** Fields that depend on wall-clock time (left out when comparing two runs for determinism). */
export const TIMING_FIELDS = ['time', 'seconds', 'tripletsPerSecond'] as const;

/** Parse a metrics log; a torn final line (crash mid-write) is ignored, a bad line elsewhere is an error. */
export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  const records: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line) as MetricsRecord);
    } catch (error) {
      const last = lines.slice(i + 1).every((rest) => rest.trim() === '');
      if (!last)
        throw new Error(`${path}:${i + 1}: not a JSON line (${(error as Error).message})`, { cause: error });
    }
  });
  return records;
}

/** Records a resumed run keeps: everything up to the checkpoint it resumes from, so no step is logged twice. */
export function recordsBefore(records: MetricsRecord[], globalStep: number, epoch: number): MetricsRecord[] {
  return records.filter((record) => {
    if (record.type === 'step') return record.globalStep <= globalStep;
    if (record.type === 'epoch') return record.epoch < epoch;
    if (record.type === 'event') return record.globalStep <= globalStep;
    return false;
  });
}

export class MetricsLog {
  private fd: number;
  readonly records: MetricsRecord[];

  private constructor(
    readonly path: string,
    fd: number,
    records: MetricsRecord[],
  ) {
    this.fd = fd;
    this.records = records;
  }

  /**
   * Open for appending. With `keep`, the existing log is first cut back to the records `keep` selects (written
   * atomically), which is how a resumed run drops the steps logged after its checkpoint.
   */
  static async open(path: string, keep?: (records: MetricsRecord[]) => MetricsRecord[]): Promise<MetricsLog> {
    let records = readMetrics(path);
    if (keep) {
      records = keep(records);
      await writeFileAtomic(path, records.map((record) => `${JSON.stringify(record)}\n`).join(''));
    }
    return new MetricsLog(path, openSync(path, 'a'), records);
  }

  append(record: MetricsRecord): void {
    if (this.fd < 0) throw new Error(`metrics log ${this.path} is closed`);
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
    this.records.push(record);
  }

  /** Push appended lines to disk (called at epoch ends; a process crash alone never loses a written line). */
  sync(): void {
    if (this.fd >= 0) fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = -1;
  }
}
