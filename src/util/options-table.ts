/**
 * One table per command: each option is declared once (flag, type, default, help, upstream name, whether a
 * resumed run inherits it) and the table produces the commander options, the defaults object, the value checks
 * of a library call and the flag table of the stage's README (scripts/options-readme.ts keeps the README in step).
 * Commander parses; this file only describes. Keys are the option names in camelCase; the flag is their kebab-case.
 */
import { Option, type Command } from 'commander';
import { integer, number } from './cli.ts';

interface OptionBase {
  help: string;
  /** Value placeholder in --help (`<n>`, `<dir>`); switches take none. */
  arg?: string;
  /** The flag when it is not `--{kebab(key)}` (a short flag such as `-k`). */
  flag?: string;
  /** Shown as the default when the real one is worked out from other options (by the command's resolver). */
  defaultText?: string;
  /** The upstream trainer's flag and default; absent for options of ours. */
  upstream?: { flag?: string; default: string };
  /** A resumed run takes this option from its checkpoint unless it is given again. */
  inherit?: boolean;
  /** What a resumed run takes when its checkpoint predates the option (the behaviour before it existed). */
  absent?: number | boolean | string;
  /** The option key this flag sets when it is not its own (an upstream alias such as --prein for maskMode). */
  sets?: string;
  /** Accepted but left out of --help (upstream flags kept for compatibility). */
  hidden?: boolean;
  /** Keys of options this one cannot be given with. */
  conflicts?: string[];
  required?: boolean;
}

export interface IntegerSpec extends OptionBase {
  type: 'integer';
  min: number;
  max?: number;
  default?: number;
}

export interface NumberSpec extends OptionBase {
  type: 'number';
  check: (value: number) => boolean;
  /** What `check` asks for, in words: "a positive number", "in [0, 1)". */
  rule: string;
  default?: number;
}

export interface StringSpec extends OptionBase {
  type: 'string';
  default?: string;
}

export interface ChoiceSpec<C extends string = string> extends OptionBase {
  type: 'choice';
  choices: readonly C[];
  default?: C;
}

export interface ListSpec extends OptionBase {
  type: 'list';
  default?: string[];
}

export interface SwitchSpec extends OptionBase {
  type: 'switch';
  /** 'off' declares only `--no-{key}`, 'both' declares `--{key}` and `--no-{key}`. */
  form?: 'on' | 'off' | 'both';
  default?: boolean;
}

export type OptionSpec = IntegerSpec | NumberSpec | StringSpec | ChoiceSpec | ListSpec | SwitchSpec;
export type OptionTable = Record<string, OptionSpec>;

type ValueOf<S> = S extends { type: 'integer' | 'number' }
  ? number
  : S extends { type: 'switch' }
    ? boolean
    : S extends { type: 'list' }
      ? string[]
      : S extends { choices: readonly (infer C)[] }
        ? C
        : string;

type WithDefault<T> = { [K in keyof T]: T[K] extends { default: unknown } ? K : never }[keyof T];
type Mandatory<T> = { [K in keyof T]: T[K] extends { required: true } ? K : never }[keyof T];
type Always<T> = WithDefault<T> | Mandatory<T>;

/** The defaults object of a table: every option that has a default, typed by its kind. */
export type DefaultsOf<T> = { [K in WithDefault<T>]: ValueOf<T[K]> };

/** The values commander hands an action: options with a default or required are there, others may be absent. */
export type ValuesOf<T> = { [K in Always<T>]: ValueOf<T[K]> } & {
  [K in Exclude<keyof T, Always<T>>]?: ValueOf<T[K]>;
};

export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/** The flag as typed on the command line (`--batch-size`, `--no-augment`, `-k`). */
export function flagOf(key: string, spec: OptionSpec): string {
  if (spec.flag) return spec.flag;
  return spec.type === 'switch' && spec.form === 'off' ? `--no-${kebab(key)}` : `--${kebab(key)}`;
}

export function defaultsOf<T extends OptionTable>(table: T): DefaultsOf<T> {
  const defaults: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(table)) {
    if (spec.default !== undefined) defaults[key] = spec.default;
  }
  return defaults as DefaultsOf<T>;
}

/** Keys a resumed run inherits, under the option key they set (an alias counts for the key it sets). */
export function inheritedKeys(table: OptionTable): string[] {
  const keys = Object.entries(table)
    .filter(([, spec]) => spec.inherit)
    .map(([key, spec]) => spec.sets ?? key);
  return [...new Set(keys)];
}

/** Per inherited key, the value a checkpoint that predates the option stands for (rows with `absent`). */
export function absentValues(table: OptionTable): Record<string, number | boolean | string> {
  return Object.fromEntries(
    Object.entries(table).flatMap(([key, spec]) => (spec.absent === undefined ? [] : [[key, spec.absent]])),
  );
}

/** The flags (table keys) that set `key`: its own and its aliases. */
export function flagsSetting(table: OptionTable, key: string): string[] {
  return Object.entries(table)
    .filter(([own, spec]) => (spec.sets ?? own) === key)
    .map(([own]) => own);
}

function upstreamText(spec: OptionSpec): string | undefined {
  if (!spec.upstream) return undefined;
  return spec.upstream.flag ? `${spec.upstream.flag} ${spec.upstream.default}` : spec.upstream.default;
}

/** The help line: what the option does, then where its default comes from and upstream's value. */
function helpText(spec: OptionSpec): string {
  const notes = [
    spec.default === undefined && spec.defaultText && `default: ${spec.defaultText}`,
    spec.upstream && `upstream: ${upstreamText(spec)}`,
  ].filter(Boolean);
  return notes.length > 0 ? `${spec.help} (${notes.join('; ')})` : spec.help;
}

function withArgument(key: string, spec: OptionSpec): string {
  const flag = flagOf(key, spec);
  if (spec.type === 'switch') return flag;
  const arg = spec.arg ?? 'value';
  return spec.type === 'list' ? `${flag} <${arg}...>` : `${flag} <${arg}>`;
}

function parserOf(key: string, spec: OptionSpec): ((value: string) => unknown) | undefined {
  const flag = flagOf(key, spec);
  if (spec.type === 'integer') return integer(flag, spec.min, spec.max);
  if (spec.type === 'number') return number(flag, spec.check, spec.rule);
  return undefined;
}

/** The commander options of one row (two for a switch declared in both forms). */
export function commanderOptions(key: string, spec: OptionSpec): Option[] {
  const option = new Option(withArgument(key, spec), helpText(spec));
  const parse = parserOf(key, spec);
  if (parse) option.argParser(parse);
  if (spec.type === 'choice') option.choices(spec.choices);
  if (spec.default !== undefined) option.default(spec.default, spec.defaultText);
  if (spec.hidden) option.hideHelp();
  if (spec.conflicts) option.conflicts(spec.conflicts);
  if (spec.required) option.makeOptionMandatory();
  if (spec.type !== 'switch' || spec.form !== 'both') return [option];
  const off = new Option(`--no-${kebab(key)}`, `${spec.help}: off`);
  if (spec.hidden) off.hideHelp();
  return [option, off];
}

/** Add every row of `table` to `command`, in table order. */
export function addOptions(command: Command, table: OptionTable): Command {
  for (const [key, spec] of Object.entries(table)) {
    for (const option of commanderOptions(key, spec)) command.addOption(option);
  }
  return command;
}

/** What a value must be, in the words the parsers use; undefined when it is fine. */
function problemWith(key: string, spec: OptionSpec, value: unknown): string | undefined {
  const flag = flagOf(key, spec);
  const got = `got ${JSON.stringify(value)}`;
  if (spec.type === 'integer') {
    const max = spec.max ?? Number.MAX_SAFE_INTEGER;
    const ok = typeof value === 'number' && Number.isSafeInteger(value) && value >= spec.min && value <= max;
    const range = spec.max === undefined ? `>= ${spec.min}` : `from ${spec.min} to ${spec.max}`;
    return ok ? undefined : `${flag} must be an integer ${range}, ${got}`;
  }
  if (spec.type === 'number') {
    const ok = typeof value === 'number' && Number.isFinite(value) && spec.check(value);
    return ok ? undefined : `${flag} must be ${spec.rule}, ${got}`;
  }
  if (spec.type === 'choice') {
    return spec.choices.includes(value as string)
      ? undefined
      : `${flag} must be one of ${spec.choices.join(', ')}, ${got}`;
  }
  return undefined;
}

/**
 * Check the values of a library call (options built in code rather than parsed) against the rows' rules: the
 * first problem, in the parsers' words, or undefined. Absent values are left to the caller.
 */
export function firstProblem(table: OptionTable, values: Record<string, unknown>): string | undefined {
  for (const [key, spec] of Object.entries(table)) {
    const value = values[key];
    if (value === undefined) continue;
    const problem = problemWith(key, spec, value);
    if (problem) return problem;
  }
  return undefined;
}

export interface ReadmeColumns {
  /** Show the upstream column (commands that mirror an upstream tool). */
  upstream?: boolean;
  /** Show whether a resumed run inherits the option. */
  inherit?: boolean;
}

/** A switch's default is "not given"; other options show their value or how it is worked out. */
function defaultCell(spec: OptionSpec): string {
  if (spec.required) return 'required';
  if (spec.defaultText) return spec.defaultText;
  if (spec.default === undefined || spec.type === 'switch') return '–';
  return Array.isArray(spec.default) ? spec.default.join(' ') : String(spec.default);
}

/** A table cell: pipes escaped; outside code, `<` too (`demo-<model>` is text, not an HTML tag). */
function cell(text: string): string {
  const piped = text.replace(/\|/g, '\\|');
  return piped.startsWith('`') ? piped : piped.replace(/</g, '\\<');
}

/** Flag (with its aliases' forms), default, [upstream], [inherited on resume], what it does. */
function readmeRow(key: string, spec: OptionSpec, columns: ReadmeColumns): string[] {
  const flag =
    spec.type === 'switch' && spec.form === 'both'
      ? `\`--${kebab(key)}\` / \`--no-${kebab(key)}\``
      : `\`${spec.type === 'choice' ? `${flagOf(key, spec)} ${spec.choices.join('|')}` : withArgument(key, spec)}\``;
  const upstream = upstreamText(spec) ?? '–';
  return [
    flag,
    defaultCell(spec),
    ...(columns.upstream ? [upstream] : []),
    ...(columns.inherit ? [spec.inherit ? 'yes' : ''] : []),
    `${spec.help}${spec.hidden ? ' (not in --help)' : ''}`,
  ].map(cell);
}

/** The README flag table of a command (plain markdown; the check script formats it with prettier). */
export function readmeTable(table: OptionTable, columns: ReadmeColumns = {}): string {
  const head = [
    'flag',
    'default',
    ...(columns.upstream ? ['upstream'] : []),
    ...(columns.inherit ? ['resume inherits'] : []),
    'what',
  ];
  const rows = Object.entries(table).map(([key, spec]) => readmeRow(key, spec, columns));
  return [head, head.map(() => '---'), ...rows].map((row) => `| ${row.join(' | ')} |`).join('\n');
}
