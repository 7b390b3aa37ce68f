/**
 * Nearest-neighbour queries against one LanceDB version table, and the ANN index each vector column gets.
 *
 * LanceDB returns approximate (scalar-quantised) and, for l2, squared distances; we fetch the candidates' float32
 * vectors and recompute the exact distance the hnswlib bundle and the explain stage use, so both stores report the
 * same numbers for the same neighbours.
 */
import * as lancedb from '@lancedb/lancedb';
import type { Metric } from '../vectors.ts';
import { normalizeRows, rowDistance } from '../vectors.ts';
import { labelColumn, vectorColumn, type LanceIndexParams } from './lance-schema.ts';
import type { FilterClause, StoreFilter } from './types.ts';

/**
 * Below this many rows no ANN index is built and every query is an exact scan. IVF-PQ cannot train with fewer than
 * 256 rows at all (LanceDB: "Not enough rows to train PQ"); HNSW-SQ trains on any size, but a flat scan of a few
 * thousand rows is already exact and fast (bench/results/store-compare.md), so an index would only cost build time.
 */
export const MIN_INDEXED_ROWS = 5000;

export function lanceDistanceType(metric: Metric): 'l2' | 'cosine' {
  return metric === 'cosine' ? 'cosine' : 'l2';
}

/** The LanceDB index config for one vector column. */
export function indexConfig(params: LanceIndexParams, metric: Metric, dims: number): lancedb.Index | null {
  const distanceType = lanceDistanceType(metric);
  const { numPartitions, m, efConstruction } = params;
  switch (params.type) {
    case 'hnsw-sq':
      return lancedb.Index.hnswSq({ distanceType, numPartitions, m, efConstruction });
    case 'ivf-pq': {
      // PQ needs the dims split into equal sub-vectors: the largest divisor of d that keeps >= 2 dims per one.
      let sub = Math.max(1, Math.floor(dims / 2));
      while (dims % sub !== 0) sub--;
      return lancedb.Index.ivfPq({ distanceType, numPartitions, numSubVectors: sub });
    }
    case 'ivf-flat':
      return lancedb.Index.ivfFlat({ distanceType, numPartitions });
    case 'none':
      return null;
  }
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

function clauseSql(
  clause: FilterClause,
  conditions: readonly string[],
  fieldOrder: readonly string[],
): string {
  const fieldRef = (name: string): string => {
    const j = fieldOrder.indexOf(name);
    if (j < 0) throw new RangeError(`unknown field ${JSON.stringify(name)}`);
    return `field_${j}`;
  };
  if (clause.kind === 'label') {
    const c = conditions.indexOf(clause.condition);
    if (c < 0) throw new RangeError(`unknown condition ${JSON.stringify(clause.condition)}`);
    return `array_has_any(${labelColumn(c)}, [${clause.values.map(quote).join(', ')}])`;
  }
  if (clause.kind === 'equals') {
    const column = fieldRef(clause.field);
    const values = clause.values.map((v) => (typeof v === 'string' ? quote(v) : String(v)));
    return values.length === 1 ? `${column} = ${values[0]}` : `${column} IN (${values.join(', ')})`;
  }
  const column = fieldRef(clause.field);
  return clause.comparisons.map((cmp) => `${column} ${cmp.op} ${Number(cmp.value)}`).join(' OR ');
}

/** A filter as a LanceDB SQL prefilter (AND of parenthesised ORs), or undefined for no filter. */
export function filterToSql(
  filter: StoreFilter | undefined,
  conditions: readonly string[],
  fieldOrder: readonly string[],
): string | undefined {
  if (!filter || filter.clauses.length === 0) return undefined;
  return filter.clauses.map((clause) => `(${clauseSql(clause, conditions, fieldOrder)})`).join(' AND ');
}

export interface Candidate {
  slot: number;
  distance: number;
}

export interface AnnQuery {
  c: number;
  metric: Metric;
  vector: ArrayLike<number>;
  /** Rows wanted (the caller asks for more when it will drop some). */
  limit: number;
  params: LanceIndexParams;
  where?: string;
  /** Scan every (matching) row instead of using the index: exact. */
  exact?: boolean;
}

/** Nearest rows of one vector column, with exact distances, nearest first (ties by slot). */
export async function annSearch(table: lancedb.Table, query: AnnQuery): Promise<Candidate[]> {
  const d = query.vector.length;
  const q = Float32Array.from(query.vector);
  if (query.metric === 'cosine') normalizeRows(q, d);
  let search = table
    .vectorSearch(q)
    .column(vectorColumn(query.c))
    .distanceType(lanceDistanceType(query.metric))
    .select(['slot', vectorColumn(query.c)])
    .limit(query.limit);
  if (query.where) search = search.where(query.where);
  if (query.exact || query.params.type === 'none') search = search.bypassVectorIndex();
  else {
    search = search.nprobes(query.params.nprobes).refineFactor(query.params.refineFactor);
    // LanceDB refuses an ef below the candidates it keeps (limit x refine factor).
    if (query.params.type === 'hnsw-sq') {
      search = search.ef(Math.max(query.params.ef, query.limit * query.params.refineFactor));
    }
  }
  const rows = (await search.toArray()) as { slot: number; [column: string]: unknown }[];
  const column = vectorColumn(query.c);
  const out = rows.map((row) => {
    const vector = row[column] as { toArray(): Float32Array } | Float32Array;
    const values = vector instanceof Float32Array ? vector : vector.toArray();
    return { slot: row.slot, distance: rowDistance(values, d, 0, q, query.metric) };
  });
  return out.sort((a, b) => a.distance - b.distance || a.slot - b.slot);
}

/** Every vector column of the given slots (row offset = slot), in the order asked. */
export async function takeVectors(
  table: lancedb.Table,
  slots: readonly number[],
  conditions: number,
): Promise<Float32Array[][]> {
  if (slots.length === 0) return [];
  const unique = [...new Set(slots)];
  const columns = Array.from({ length: conditions }, (_, c) => vectorColumn(c));
  const rows = (await table
    .takeOffsets(unique)
    .select(['slot', ...columns])
    .toArray()) as { slot: number; [column: string]: unknown }[];
  const bySlot = new Map<number, Float32Array[]>();
  for (const row of rows) {
    bySlot.set(
      row.slot,
      columns.map((column) => {
        const value = row[column] as { toArray(): Float32Array } | Float32Array;
        return Float32Array.from(value instanceof Float32Array ? value : value.toArray());
      }),
    );
  }
  return slots.map((slot) => {
    const found = bySlot.get(slot);
    if (!found) throw new RangeError(`row ${slot} is missing from the LanceDB table`);
    return found;
  });
}
