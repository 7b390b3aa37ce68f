/**
 * Sharded embedding for the LanceDB store: `index --store lancedb --shard i/n` embeds only products
 * [i*N/n, (i+1)*N/n) of the catalogue and writes the model's raw outputs to a staging table that no reader looks
 * at; `index --store lancedb --commit` checks that every shard of the same model and catalogue is there and complete,
 * then writes the version table, builds the HNSW bundle from those vectors (never re-embedding) and publishes one
 * version like a full build. Shards are numbered from 0, as
 * indexed batch jobs number their pods (Kubernetes JOB_COMPLETION_INDEX), so n machines can embed one catalogue.
 *
 * A shard is complete once its row is in the shards table (appended after its staging table was fully written,
 * naming the table version holding the data). A killed shard leaves a partial table that its rerun overwrites.
 */
import { createHash } from 'node:crypto';
import * as lancedb from '@lancedb/lancedb';
import type { Table as ArrowTable } from 'apache-arrow';
import { BundleError, type BundleSource } from '../types.ts';
import { arrow } from './arrow.ts';
import {
  embedRange,
  publishLanceVersion,
  type LanceBuildOptions,
  type LanceBuildReport,
} from './lance-build.ts';
import type { RawVectors } from './lance-bundle.ts';
import { appendRow, openIfExists } from './lance-manifest.ts';
import { fixedSizeListData, SHARDS_TABLE, shardTableName } from './lance-schema.ts';
import type { StoreProduct } from './types.ts';

const { Field, FixedSizeList, Float32, Int32, RecordBatch, Struct, Utf8, makeData, vectorFromArray } = arrow;

const SHARDS_SCHEMA = new arrow.Schema([
  new Field('table', new Utf8(), false),
  new Field('shard', new Int32(), false),
  new Field('of', new Int32(), false),
  new Field('rows', new Int32(), false),
  new Field('tableVersion', new Int32(), false),
  new Field('modelId', new Utf8(), false),
  new Field('catalogue', new Utf8(), false),
  new Field('writtenAt', new Utf8(), false),
]);

const WRITE_CHUNK = 20_000;

export interface ShardSpec {
  shard: number;
  of: number;
}

/** Parse `i/n` (0 <= i < n). */
export function parseShard(text: string): ShardSpec {
  const match = /^(\d+)\/(\d+)$/.exec(text.trim());
  const shard = Number(match?.[1]);
  const of = Number(match?.[2]);
  if (!match || !(of >= 1) || !(shard < of)) {
    throw new RangeError(
      `--shard must be i/n with 0 <= i < n (e.g. 0/4 ... 3/4), got ${JSON.stringify(text)}`,
    );
  }
  return { shard, of };
}

/** Products [from, to) of shard i of n. */
export function shardRange(total: number, spec: ShardSpec): { from: number; to: number } {
  return {
    from: Math.floor((spec.shard * total) / spec.of),
    to: Math.floor(((spec.shard + 1) * total) / spec.of),
  };
}

/** Hash of the product list (ids and fingerprints, in order): shards and commit must agree on the catalogue. */
export function catalogueHash(source: BundleSource): string {
  const hash = createHash('sha256').update(source.modelId).update('\u0000');
  for (const p of source.products) hash.update(p.id).update('\u0001').update(p.fingerprint).update('\u0000');
  return hash.digest('hex');
}

function rawColumns(source: BundleSource): string[] {
  return source.modelKind === 'asen' ? source.conditions.map((_, c) => `raw_${c}`) : ['embedding'];
}

function shardBlock(
  source: BundleSource,
  raw: RawVectors,
  from: number,
  begin: number,
  end: number,
): ArrowTable {
  const D = source.embedDim;
  const floats = () => new FixedSizeList(D, new Field('item', new Float32(), true));
  const columns = rawColumns(source);
  const schema = new arrow.Schema([
    new Field('slot', new Int32(), false),
    new Field('id', new Utf8(), false),
    new Field('fingerprint', new Utf8(), false),
    ...columns.map((name) => new Field(name, floats(), false)),
  ]);
  const products = source.products.slice(begin, end);
  const arrays = raw.embeddings ? [raw.embeddings] : raw.conditionVectors!;
  const children = [
    makeData({
      type: new Int32(),
      length: end - begin,
      nullCount: 0,
      data: Int32Array.from(products, (_, i) => begin + i),
    }),
    vectorFromArray(
      products.map((p) => p.id),
      new Utf8(),
    ).data[0],
    vectorFromArray(
      products.map((p) => p.fingerprint),
      new Utf8(),
    ).data[0],
    ...arrays.map((values) => fixedSizeListData(values.subarray((begin - from) * D, (end - from) * D), D)),
  ];
  const struct = makeData({ type: new Struct(schema.fields), length: end - begin, nullCount: 0, children });
  return new arrow.Table(schema, [new RecordBatch(schema, struct)]);
}

/** Embed one shard's products and stage them; returns the number of products written. */
export async function embedShard(
  uri: string,
  source: BundleSource,
  spec: ShardSpec,
  options: Pick<LanceBuildOptions, 'batchSize' | 'onProgress' | 'log'> = {},
): Promise<{ table: string; rows: number }> {
  const { from, to } = shardRange(source.products.length, spec);
  const raw = await embedRange(source, from, to, options.batchSize ?? 64, (done, total) =>
    options.onProgress?.({ stage: 'embed', done, total }),
  );
  const name = shardTableName(spec.shard, spec.of);
  const db = await lancedb.connect(uri);
  try {
    let table: lancedb.Table | null = null;
    for (let begin = from; begin < to || table === null; begin += WRITE_CHUNK) {
      const data = shardBlock(source, raw, from, begin, Math.min(to, begin + WRITE_CHUNK));
      // Overwrite: a rerun of a killed shard replaces whatever its previous attempt left.
      if (!table) table = await db.createTable(name, data, { mode: 'overwrite' });
      else await table.add(data);
    }
    const tableVersion = await table.version();
    table.close();
    await appendRow(db, SHARDS_TABLE, SHARDS_SCHEMA, {
      table: name,
      shard: spec.shard,
      of: spec.of,
      rows: to - from,
      tableVersion,
      modelId: source.modelId,
      catalogue: catalogueHash(source),
      writtenAt: new Date().toISOString(),
    });
    options.log?.info({ shard: `${spec.shard}/${spec.of}`, rows: to - from, table: name }, 'shard embedded');
    return { table: name, rows: to - from };
  } finally {
    db.close();
  }
}

interface ShardRow {
  table: string;
  shard: number;
  of: number;
  rows: number;
  tableVersion: number;
  modelId: string;
  catalogue: string;
  writtenAt: string;
}

/** The latest completion row of every shard of this model and catalogue; throws naming what is missing. */
async function completeShards(
  db: lancedb.Connection,
  uri: string,
  source: BundleSource,
): Promise<ShardRow[]> {
  const table = await openIfExists(db, SHARDS_TABLE);
  const all = table ? ((await table.query().toArray()) as ShardRow[]) : [];
  table?.close();
  const hash = catalogueHash(source);
  const mine = all.filter((row) => row.catalogue === hash && row.modelId === source.modelId);
  if (mine.length === 0) {
    throw new BundleError(
      'not-found',
      uri,
      'no shard of this model and catalogue has been embedded (run `index --store lancedb --shard i/n` first)',
    );
  }
  const latest = mine.reduce((a, b) => (a.writtenAt >= b.writtenAt ? a : b));
  const byShard = new Map<number, ShardRow>();
  for (const row of mine.filter((r) => r.of === latest.of)) {
    const seen = byShard.get(row.shard);
    if (!seen || row.writtenAt > seen.writtenAt) byShard.set(row.shard, row);
  }
  const missing = Array.from({ length: latest.of }, (_, i) => i).filter((i) => !byShard.has(i));
  if (missing.length > 0) {
    throw new BundleError(
      'invalid-input',
      uri,
      `shards ${missing.map((i) => `${i}/${latest.of}`).join(', ')} are missing or incomplete: nothing was published`,
    );
  }
  return [...byShard.values()].sort((a, b) => a.shard - b.shard);
}

/** The parts of an Arrow result a shard's columns are read with (LanceDB bundles its own apache-arrow). */
interface ArrowColumn {
  data: { offset: number; length: number; children: { offset: number; values: Float32Array }[] }[];
  get(i: number): unknown;
  toArray(): ArrayLike<number>;
}
interface ArrowResult {
  numRows: number;
  getChild(name: string): ArrowColumn | null;
}

/** A fixed-size-list column's rows as one flat array (whole buffers: no object per row). */
function flatColumn(column: ArrowColumn, D: number): Float32Array {
  const rows = column.data.reduce((n, data) => n + data.length, 0);
  const out = new Float32Array(rows * D);
  let row = 0;
  for (const data of column.data) {
    const child = data.children[0];
    const from = (data.offset + child.offset) * D;
    out.set(child.values.subarray(from, from + data.length * D), row * D);
    row += data.length;
  }
  return out;
}

/** Read every shard's staged vectors into one set of raw vectors, checking ids, fingerprints and counts. */
async function gatherShards(
  db: lancedb.Connection,
  uri: string,
  source: BundleSource,
  shards: ShardRow[],
): Promise<RawVectors> {
  const D = source.embedDim;
  const N = source.products.length;
  const asen = source.modelKind === 'asen';
  const raw: RawVectors = {
    embeddings: asen ? null : new Float32Array(N * D),
    conditionVectors: asen ? source.conditions.map(() => new Float32Array(N * D)) : null,
  };
  const targets = raw.embeddings ? [raw.embeddings] : raw.conditionVectors!;
  const columns = rawColumns(source);
  const filled = new Uint8Array(N);
  for (const shard of shards) {
    const where = `${uri}#${shard.table}`;
    const table = await db.openTable(shard.table);
    await table.checkout(shard.tableVersion);
    const result = (await table.query().toArrow()) as unknown as ArrowResult;
    table.close();
    if (result.numRows !== shard.rows)
      throw new BundleError(
        'corrupt',
        where,
        `holds ${result.numRows} rows, its shard row says ${shard.rows}`,
      );
    const child = (name: string): ArrowColumn => {
      const column = result.getChild(name);
      if (!column) throw new BundleError('corrupt', where, `has no ${name} column`);
      return column;
    };
    const slots = child('slot').toArray();
    const ids = child('id');
    const fingerprints = child('fingerprint');
    const values = columns.map((name) => flatColumn(child(name), D));
    for (let i = 0; i < result.numRows; i++) {
      const slot = slots[i];
      const product = source.products[slot];
      if (
        !product ||
        product.id !== ids.get(i) ||
        product.fingerprint !== fingerprints.get(i) ||
        filled[slot]
      ) {
        throw new BundleError('invalid-input', where, `row for slot ${slot} does not match the catalogue`);
      }
      filled[slot] = 1;
      values.forEach((rows, j) => targets[j].set(rows.subarray(i * D, (i + 1) * D), slot * D));
    }
  }
  const gaps = filled.reduce((count, x) => count + (x ? 0 : 1), 0);
  if (gaps > 0)
    throw new BundleError('invalid-input', uri, `${gaps} products are in no shard: nothing was published`);
  return raw;
}

/** Check every shard, publish one version from them, then drop the staging tables. */
export async function commitShards(
  uri: string,
  source: BundleSource,
  options: LanceBuildOptions & { products?: readonly StoreProduct[] } = {},
): Promise<LanceBuildReport & { shards: number }> {
  const db = await lancedb.connect(uri);
  try {
    const start = performance.now();
    const shards = await completeShards(db, uri, source);
    const raw = await gatherShards(db, uri, source, shards);
    const timings = { gather: Math.round(performance.now() - start) / 1000 };
    const report = await publishLanceVersion(
      uri,
      { source, raw, products: options.products ?? source.products },
      options,
      timings,
    );
    for (const shard of shards) await db.dropTable(shard.table).catch(() => undefined);
    const bookkeeping = await openIfExists(db, SHARDS_TABLE);
    await bookkeeping?.delete(`catalogue = '${catalogueHash(source)}'`);
    bookkeeping?.close();
    return { ...report, shards: shards.length };
  } finally {
    db.close();
  }
}
