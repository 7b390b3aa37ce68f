/**
 * A problem that recurs on every poll (a garbage manifest is re-read every 2 s) is logged at error level once when it
 * appears, then at most once per interval while it lasts, with the number of repeats; a new problem logs at once.
 */
import type { Logger } from 'pino';

/** Five minutes between reminders of a problem that persists. */
const REMINDER_INTERVAL_MS = 5 * 60_000;

export class RecurringProblemLog {
  private current: string | undefined;
  private lastLogged = 0;
  private repeats = 0;

  constructor(
    private readonly log: Pick<Logger, 'error' | 'warn'>,
    private readonly intervalMs = REMINDER_INTERVAL_MS,
  ) {}

  /** Log `message` unless the same problem (`key`) was logged within the interval. */
  report(key: string, details: object, message: string): void {
    const now = Date.now();
    if (key !== this.current) {
      this.current = key;
      this.repeats = 0;
      this.lastLogged = now;
      this.log.error(details, message);
      return;
    }
    this.repeats++;
    if (now - this.lastLogged < this.intervalMs) return;
    this.log.warn({ ...details, repeats: this.repeats }, `${message} (still; ${this.repeats} repeats)`);
    this.lastLogged = now;
    this.repeats = 0;
  }

  /** The problem is gone: the next one, even the same again, is logged at once. */
  clear(): void {
    this.current = undefined;
  }
}
