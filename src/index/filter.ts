/**
 * Filters on product labels and fields: parsed from the API's `filter` expressions, checked against what an index
 * holds, and compiled into a selection (one byte per slot) that search then honours.
 *
 * Expressions: `name:value` (equality on a condition's label, or on a string, boolean or number field) and
 * `name<n`, `name<=n`, `name>n`, `name>=n` (numeric fields only). Different names AND; equalities on one name OR
 * (`pattern:stripes`, `pattern:dots` = either), and comparisons on one name bound one range (`price>=50`,
 * `price<100` = the band; an OR of two comparisons would be either everything or a gap, which no shop asked for).
 * The parsed `Filter` maps onto the stores' conjunctive `StoreFilter` (`toStoreFilter`, the one mapping), which the
 * hnswlib store evaluates on this file's `FilterTable` and the LanceDB store turns into a SQL prefilter.
 */
import type { FieldSchema, FieldType, FieldValue } from '../catalogue/index.ts';
import { QueryError } from './query-error.ts';
import type { FilterClause as StoreClause, StoreFilter } from './store/filter-clauses.ts';

export type Comparison = '<' | '<=' | '>' | '>=';
export const FILTER_OPERATORS = [':', '<', '<=', '>', '>='] as const;

export interface NumericBound {
  op: Comparison;
  value: number;
}

/** The filters on one name: a product passes when any equality holds (if any are given) and every bound holds. */
export type FilterClause =
  | { kind: 'label'; name: string; values: string[] }
  | { kind: 'string'; name: string; values: string[] }
  | { kind: 'boolean'; name: string; values: boolean[] }
  | { kind: 'number'; name: string; values: number[]; bounds: NumericBound[] };

/** Clauses on distinct names, all of which must hold; no clauses = every product. */
export interface Filter {
  clauses: FilterClause[];
}

/** What a filter may name: conditions with the labels products carry, and product fields with their types. */
export interface FilterSchema {
  labels: Readonly<Record<string, readonly string[]>>;
  fields: Readonly<FieldSchema>;
}

const EXPRESSION = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(<=|>=|<|>|:)\s*(.*)$/s;
const SYNTAX = 'name:value, name<n, name<=n, name>n, name>=n';

/**
 * A number as the API writes one, in filters and condition weights alike: decimal, optional sign, fraction and
 * exponent (`12`, `-0.5`, `2e3`); no hex, no `Infinity`, no spaces. Undefined when it is not one or not finite.
 */
export function parseNumber(text: string): number | undefined {
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

/** One expression's name, operator and raw value, or a QueryError naming what is valid. */
function splitExpression(
  expression: string,
  schema: FilterSchema,
): { name: string; op: ':' | Comparison; raw: string } {
  const names = [...Object.keys(schema.labels), ...Object.keys(schema.fields)];
  const match = EXPRESSION.exec(expression.trim());
  if (!match || match[3].trim() === '') {
    throw new QueryError(
      'malformed-filter',
      `Malformed filter ${JSON.stringify(expression)}: write ${SYNTAX} (names: ${names.join(', ')}).`,
      expression,
      [...FILTER_OPERATORS],
    );
  }
  const [, name, op, raw] = match;
  if (!Object.hasOwn(schema.labels, name) && !Object.hasOwn(schema.fields, name)) {
    throw new QueryError(
      'unknown-filter-name',
      `Unknown filter name ${JSON.stringify(name)} in ${JSON.stringify(expression)}; valid names are ${names.join(', ')}.`,
      expression,
      names,
    );
  }
  return { name, op: op as ':' | Comparison, raw: raw.trim() };
}

function kindOf(name: string, schema: FilterSchema): FilterClause['kind'] {
  return Object.hasOwn(schema.labels, name) ? 'label' : (schema.fields[name] as FieldType);
}

function numericNames(schema: FilterSchema): string[] {
  return Object.keys(schema.fields).filter((name) => schema.fields[name] === 'number');
}

/** The typed value of `name:raw`, or a QueryError listing the valid ones. */
function equalityValue(
  name: string,
  kind: FilterClause['kind'],
  raw: string,
  expression: string,
  schema: FilterSchema,
): FieldValue {
  if (kind === 'label') {
    const labels = schema.labels[name];
    if (!labels.includes(raw)) {
      throw new QueryError(
        'unknown-label',
        `Unknown ${name} label ${JSON.stringify(raw)}; valid labels are ${labels.join(', ')}.`,
        expression,
        [...labels],
      );
    }
    return raw;
  }
  if (kind === 'boolean') {
    if (raw !== 'true' && raw !== 'false') {
      throw new QueryError(
        'invalid-filter-value',
        `${name} is a boolean field: write ${name}:true or ${name}:false, not ${JSON.stringify(expression)}.`,
        expression,
        ['true', 'false'],
      );
    }
    return raw === 'true';
  }
  if (kind === 'number') return numericValue(name, raw, expression);
  // A string field is open-ended (brands, categories): a value no product has simply matches nothing.
  return raw;
}

function numericValue(name: string, raw: string, expression: string): number {
  const value = parseNumber(raw);
  if (value === undefined) {
    throw new QueryError(
      'invalid-filter-value',
      `${name} is a number field; ${JSON.stringify(raw)} in ${JSON.stringify(expression)} is not a number.`,
      expression,
      ['a decimal number, e.g. 99.5'],
    );
  }
  return value;
}

function newClause(kind: FilterClause['kind'], name: string): FilterClause {
  if (kind === 'number') return { kind, name, values: [], bounds: [] };
  if (kind === 'boolean') return { kind, name, values: [] };
  return { kind, name, values: [] };
}

/**
 * Parse and check filter expressions against what an index holds. Throws QueryError for a malformed expression,
 * an unknown name or label, a comparison on a non-numeric field and a value of the wrong type.
 */
export function parseFilter(expressions: readonly string[], schema: FilterSchema): Filter {
  const byName = new Map<string, FilterClause>();
  for (const expression of expressions) {
    const { name, op, raw } = splitExpression(expression, schema);
    const kind = kindOf(name, schema);
    const clause: FilterClause = byName.get(name) ?? newClause(kind, name);
    byName.set(name, clause);
    if (op !== ':') {
      if (clause.kind !== 'number') {
        const numeric = numericNames(schema);
        throw new QueryError(
          'not-numeric',
          `${JSON.stringify(expression)} compares ${name}, which is ${kind === 'label' ? 'a condition' : `a ${kind} field`}; ` +
            `only number fields compare (${numeric.length > 0 ? numeric.join(', ') : 'this index has none'}).`,
          expression,
          numeric,
        );
      }
      clause.bounds.push({ op, value: numericValue(name, raw, expression) });
      continue;
    }
    const value = equalityValue(name, kind, raw, expression, schema);
    const values = clause.values as FieldValue[];
    if (!values.includes(value)) values.push(value);
  }
  return { clauses: [...byName.values()] };
}

/** Canonical text of a filter (sorted names and values): equal filters give equal keys, e.g. for caching. */
export function filterKey(filter: Filter): string {
  return filter.clauses
    .map((clause) => {
      const values = clause.values.map((v) => `:${String(v)}`).sort();
      const bounds = clause.kind === 'number' ? clause.bounds.map((b) => `${b.op}${b.value}`).sort() : [];
      return `${clause.name}${[...values, ...bounds].join('')}`;
    })
    .sort()
    .join('&');
}

/**
 * The filter as the stores take it (AND of ORs). Each name's equalities stay one OR clause; each numeric bound
 * becomes a clause of its own, so the bounds on one name AND into a range (`price>=50`, `price<100`).
 */
export function toStoreFilter(filter: Filter): StoreFilter {
  const clauses: StoreClause[] = [];
  for (const clause of filter.clauses) {
    if (clause.kind === 'label') {
      clauses.push({ kind: 'label', condition: clause.name, values: [...clause.values] });
      continue;
    }
    if (clause.kind !== 'number' || clause.values.length > 0)
      clauses.push({ kind: 'equals', field: clause.name, values: [...clause.values] });
    if (clause.kind !== 'number') continue;
    for (const bound of clause.bounds)
      clauses.push({ kind: 'compare', field: clause.name, comparisons: [{ ...bound }] });
  }
  return { clauses };
}

/** The products a filter lets through: one byte per slot (1 = selected), removed slots never selected. */
export interface Selection {
  bits: Uint8Array;
  count: number;
}

/** A field as clients see it in the condition list. */
export interface FieldSummary {
  name: string;
  type: FieldType;
  values?: { value: string; count: number }[];
  min?: number;
  max?: number;
}

/** What the filter table reads of a product. */
export interface FilterRecord {
  attributes: Readonly<Record<string, readonly string[]>>;
  fields?: Readonly<Record<string, FieldValue>>;
}

/** True when `value` satisfies any of the comparisons (a compare clause is an OR). */
function passesAny(value: number, comparisons: readonly NumericBound[]): boolean {
  for (const { op, value: limit } of comparisons) {
    if (
      op === '<' ? value < limit : op === '<=' ? value <= limit : op === '>' ? value > limit : value >= limit
    )
      return true;
  }
  return false;
}

/**
 * Column copies of the labels and fields of an index's slot table, built once per loaded version: posting lists
 * per label and per string/boolean value, one float column per number field (NaN = missing). Selecting 100k
 * products then costs one pass over the matching postings or one numeric scan per clause.
 */
export class FilterTable {
  readonly size: number;
  readonly liveCount: number;
  private readonly live: Uint8Array;
  private readonly postings = new Map<string, Map<string, number[]>>();
  private readonly numbers = new Map<string, Float64Array>();
  private readonly filterSchema: FilterSchema;

  constructor(
    products: readonly (FilterRecord | null)[],
    conditions: readonly string[],
    fields: Readonly<FieldSchema> = {},
  ) {
    this.size = products.length;
    this.live = new Uint8Array(products.length);
    for (const name of [...conditions, ...Object.keys(fields)]) {
      if (fields[name] === 'number')
        this.numbers.set(name, new Float64Array(products.length).fill(Number.NaN));
      else this.postings.set(name, new Map());
    }
    let live = 0;
    products.forEach((product, slot) => {
      if (!product) return;
      this.live[slot] = 1;
      live++;
      for (const condition of conditions) {
        for (const label of product.attributes[condition] ?? []) this.post(condition, label, slot);
      }
      for (const [name, value] of Object.entries(product.fields ?? {})) {
        const column = this.numbers.get(name);
        if (column) column[slot] = typeof value === 'number' ? value : Number.NaN;
        else if (Object.hasOwn(fields, name)) this.post(name, String(value), slot);
      }
    });
    this.liveCount = live;
    const labels = Object.fromEntries(
      conditions.map((c) => [c, [...(this.postings.get(c)?.keys() ?? [])].sort()]),
    );
    this.filterSchema = { labels, fields: { ...fields } };
  }

  /** The names, labels and field types filters may use on this table. */
  schema(): FilterSchema {
    return this.filterSchema;
  }

  /**
   * Each field with its type: string and boolean fields with their values, most frequent first (at most
   * `maxValues`), number fields with their range. Sorted by name.
   */
  describeFields(maxValues = 50): FieldSummary[] {
    return Object.entries(this.filterSchema.fields).map(([name, type]): FieldSummary => {
      const column = this.numbers.get(name);
      if (type === 'number' && column) {
        let min = Number.POSITIVE_INFINITY;
        let max = Number.NEGATIVE_INFINITY;
        for (let i = 0; i < column.length; i++) {
          if (!this.live[i] || Number.isNaN(column[i])) continue;
          min = Math.min(min, column[i]);
          max = Math.max(max, column[i]);
        }
        return min <= max ? { name, type, min, max } : { name, type };
      }
      const values = [...(this.postings.get(name)?.entries() ?? [])]
        .map(([value, slots]) => ({ value, count: slots.filter((slot) => this.live[slot]).length }))
        .filter((v) => v.count > 0)
        .sort((a, b) => b.count - a.count || (a.value < b.value ? -1 : 1))
        .slice(0, maxValues);
      return { name, type, values };
    });
  }

  /** Every live product. */
  all(): Selection {
    return { bits: this.live.slice(), count: this.liveCount };
  }

  /** The live products passing an API filter (through its store form, so both stores select alike). */
  select(filter: Filter): Selection {
    return this.selectStore(toStoreFilter(filter));
  }

  /** The live products passing every clause of a store filter. */
  selectStore(filter: StoreFilter): Selection {
    const bits = this.live.slice();
    for (const clause of filter.clauses) this.applyClause(bits, clause);
    let count = 0;
    for (let i = 0; i < bits.length; i++) count += bits[i];
    return { bits, count };
  }

  /** Clear the bits of products that fail `clause`. */
  private applyClause(bits: Uint8Array, clause: StoreClause): void {
    const pass = new Uint8Array(this.size);
    const name = clause.kind === 'label' ? clause.condition : clause.field;
    const column = clause.kind === 'label' ? undefined : this.numbers.get(name);
    if (column) {
      for (let i = 0; i < column.length; i++) {
        const v = column[i];
        if (Number.isNaN(v)) continue;
        const passes =
          clause.kind === 'compare'
            ? passesAny(v, clause.comparisons)
            : clause.kind === 'equals' && clause.values.includes(v);
        if (passes) pass[i] = 1;
      }
    } else if (clause.kind !== 'compare') {
      const postings = this.postings.get(name);
      for (const value of clause.values)
        for (const slot of postings?.get(String(value)) ?? []) pass[slot] = 1;
    }
    for (let i = 0; i < bits.length; i++) bits[i] &= pass[i];
  }

  private post(name: string, value: string, slot: number): void {
    const values = this.postings.get(name);
    if (!values) return;
    const list = values.get(value);
    if (list) list.push(slot);
    else values.set(value, [slot]);
  }
}
