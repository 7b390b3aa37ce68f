/**
 * Exact scans of a LanceDB version table for the queries no ANN index answers (combined conditions and
 * recommendations, which are exact on the hnswlib store too): LanceDB applies the filter as a prefilter and returns
 * only the matching rows with the vector columns asked for; they are laid out like the bundle's rows (one flat
 * Float32Array per condition), so the same pure functions (combine.ts, recommend.ts) rank them and the answers are
 * the bundle's. Rows are compacted: row i of a view holds slot `slots[i]`, in slot order (ties then break alike).
 */
import type * as lancedb from '@lancedb/lancedb';
import type { Selection } from '../filter.ts';
import type { SpaceData } from '../search.ts';
import type { Metric } from '../vectors.ts';
import { vectorColumn } from './lance-schema.ts';
import type { ConditionVectors } from './types.ts';

interface ArrowData {
  offset: number;
  length: number;
  children: { offset: number; values: Float32Array }[];
}
interface ArrowColumn {
  data: ArrowData[];
  get(i: number): { toArray(): Float32Array } | null;
  toArray(): ArrayLike<number>;
}
interface ArrowResult {
  numRows: number;
  getChild(name: string): ArrowColumn | null;
}

/**
 * A fixed-size-list column as one flat rows x d array (whole buffers when unsliced, row by row otherwise), with
 * room for `reserve` more rows after them.
 */
function flatColumn(column: ArrowColumn, rows: number, d: number, reserve: number): Float32Array {
  const out = new Float32Array((rows + reserve) * d);
  let row = 0;
  for (const data of column.data) {
    const child = data.children[0];
    if (data.offset === 0 && child.offset === 0) {
      out.set(child.values.subarray(0, data.length * d), row * d);
    } else {
      for (let i = 0; i < data.length; i++) out.set(column.get(row + i)?.toArray() ?? [], (row + i) * d);
    }
    row += data.length;
  }
  return out;
}

/**
 * What a scan returns: the matching rows' slots (ascending) and, per condition asked, their vectors, followed by
 * room for `reserve` more rows (the caller's extra rows go there without another copy of the scan: at 1M rows and
 * two parts of 28 dims the scanned columns alone are 224 MB).
 */
export interface ScannedRows {
  slots: Int32Array;
  vectors: Map<number, Float32Array>;
  reserve: number;
}

/** The rows matching `where` (all rows without), with the vector columns of `conditions`, in slot order. */
export async function scanRows(
  table: lancedb.Table,
  conditions: readonly { c: number; d: number }[],
  where: string | undefined,
  reserve = 0,
): Promise<ScannedRows> {
  let query = table.query().select(['slot', ...conditions.map(({ c }) => vectorColumn(c))]);
  if (where) query = query.where(where);
  const result = (await query.toArrow()) as unknown as ArrowResult;
  const n = result.numRows;
  const slots = Int32Array.from(result.getChild('slot')?.toArray() ?? []);
  const vectors = new Map<number, Float32Array>();
  for (const { c, d } of conditions) {
    const column = result.getChild(vectorColumn(c));
    if (!column) throw new RangeError(`the scan returned no ${vectorColumn(c)} column`);
    vectors.set(c, flatColumn(column, n, d, reserve));
  }
  const scanned = { slots, vectors, reserve };
  for (let i = 1; i < n; i++) if (slots[i - 1] > slots[i]) return sortBySlot(scanned, conditions);
  return scanned;
}

function sortBySlot(scanned: ScannedRows, conditions: readonly { c: number; d: number }[]): ScannedRows {
  const { slots, vectors } = scanned;
  const order = Array.from(slots.keys()).sort((a, b) => slots[a] - slots[b]);
  const sorted = new Map<number, Float32Array>();
  for (const { c, d } of conditions) {
    const from = vectors.get(c) as Float32Array;
    const to = new Float32Array(from.length);
    order.forEach((i, row) => to.set(from.subarray(i * d, (i + 1) * d), row * d));
    sorted.set(c, to);
  }
  return { slots: Int32Array.from(order, (i) => slots[i]), vectors: sorted, reserve: scanned.reserve };
}

/**
 * Scanned rows as the pure search functions take them: spaces without an index (exact), a selection of the
 * matching rows minus `exclude`, and `extra` rows appended after them (examples that the filter may have left out,
 * never selected), so that example slots have rows of their own.
 */
export class ScanView {
  readonly slots: Int32Array;
  readonly selection: Selection;
  private readonly spaces = new Map<number, SpaceData>();
  private readonly rowOfSlot = new Map<number, number>();

  constructor(
    scanned: ScannedRows,
    spaces: readonly { c: number; d: number; metric: Metric }[],
    exclude: ReadonlySet<number>,
    extra: readonly { slot: number; vectors: ConditionVectors }[] = [],
  ) {
    const n = scanned.slots.length;
    if (scanned.reserve !== extra.length)
      throw new RangeError('the scan reserved room for another number of rows');
    this.slots = new Int32Array(n + extra.length);
    this.slots.set(scanned.slots);
    extra.forEach(({ slot }, j) => (this.slots[n + j] = slot));
    const bits = new Uint8Array(n + extra.length);
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (exclude.has(scanned.slots[i])) continue;
      bits[i] = 1;
      count++;
    }
    this.selection = { bits, count };
    for (const { c, d, metric } of spaces) {
      const rows = scanned.vectors.get(c) as Float32Array;
      extra.forEach(({ vectors }, j) => rows.set(vectors[c], (n + j) * d));
      this.spaces.set(c, { metric, d, rows, index: null });
    }
    // A slot given as extra maps to its extra row (examples are in slot order there, so ties break as by slot).
    this.slots.forEach((slot, i) => this.rowOfSlot.set(slot, i));
  }

  space(c: number): SpaceData {
    const space = this.spaces.get(c);
    if (!space) throw new RangeError(`condition ${c} was not scanned`);
    return space;
  }

  /** The view's row of a slot (its extra row when it has one). */
  rowOf(slot: number): number {
    const row = this.rowOfSlot.get(slot);
    if (row === undefined) throw new RangeError(`slot ${slot} is not in the scan`);
    return row;
  }
}
