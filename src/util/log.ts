import { pino, type Logger } from 'pino';

/** Structured logs go to stderr so that stdout stays free for tables and JSON a command prints. */
export function createLogger(name: string): Logger {
  return pino({ name, level: process.env.LOG_LEVEL ?? 'info' }, pino.destination(2));
}

export type { Logger };
