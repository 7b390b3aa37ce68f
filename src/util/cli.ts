/** Argument parsers and error handling shared by every `dressmatch` sub-command (commander). */
import { InvalidArgumentError, type Command } from 'commander';

export function integer(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const parsed = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
      throw new InvalidArgumentError(`${flag} must be an integer ${range}, got "${value}"`);
    }
    return parsed;
  };
}

export function number(flag: string, check: (n: number) => boolean, rule: string) {
  return (value: string): number => {
    const parsed = Number(value);
    if (value.trim() === '' || !Number.isFinite(parsed) || !check(parsed)) {
      throw new InvalidArgumentError(`${flag} must be ${rule}, got "${value}"`);
    }
    return parsed;
  };
}

export function fraction(flag: string) {
  return number(flag, (n) => n >= 0 && n <= 1, 'a number in [0, 1]');
}

export function choice<T extends string>(flag: string, values: readonly T[]) {
  return (value: string): T => {
    if (!values.includes(value as T)) {
      throw new InvalidArgumentError(`${flag} must be one of ${values.join(', ')}, got "${value}"`);
    }
    return value as T;
  };
}

/** Expected failures (bad input, failed quality gate, existing folders) as one error line and exit code 1. */
export async function runCommand(command: Command, action: () => Promise<void>): Promise<void> {
  try {
    await action();
  } catch (error) {
    if (process.env.LOG_LEVEL === 'debug' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    // The usage text helps after a mistyped flag, not after a failure of the job itself.
    command.showHelpAfterError(false);
    command.error(`error: ${error instanceof Error ? error.message : String(error)}`, { exitCode: 1 });
  }
}
