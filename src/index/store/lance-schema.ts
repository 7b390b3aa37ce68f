/**
 * The LanceDB table layout of one index version, and conversions between our rows and Arrow record batches.
 *
 * One row per product, in slot order (the slots of the version's bundle):
 *   slot int32 · id, title, image, fingerprint utf8 · attributes, fields utf8 (JSON, exact round trip)
 *   label_<c> list<utf8>       the product's labels under condition c (for SQL over the store: array_has_any)
 *   field_<j> utf8|float64|bool field j of the catalogue's fields (for SQL over the store: =, <, >=, ...)
 *   vector_<c> fixed_size_list<float32>[d_c]   condition c's space, exactly the rows the hnswlib bundle indexes
 *   embedding fixed_size_list<float32>[D]      the shared embedding (CSN, unconditional), for re-thresholding
 * Columns are named by position, not by condition or field name, because those names are free text; the names are
 * in the schema metadata under `dressmatch` (model id, masks, build params, spaces) next to the data they describe.
 */
import type { DataType, List, Schema, Table as ArrowTable, Utf8 as Utf8Type } from 'apache-arrow';
import { arrow } from './arrow.ts';
const {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  RecordBatch,
  Struct,
  Utf8,
  makeData,
  vectorFromArray,
} = arrow;

import type { StoreFieldType, StoreInfo, StoreProduct } from './types.ts';

export const SCHEMA_METADATA_KEY = 'dressmatch';
/** Every table of ours in a LanceDB database starts with this, so a shared database can hold other tables. */
export const TABLE_PREFIX = 'dressmatch';
export const MANIFEST_TABLE = `${TABLE_PREFIX}_manifest`;
export const SHARDS_TABLE = `${TABLE_PREFIX}_shards`;

export const vectorColumn = (c: number): string => `vector_${c}`;
export const labelColumn = (c: number): string => `label_${c}`;
export const fieldColumn = (j: number): string => `field_${j}`;
export const EMBEDDING_COLUMN = 'embedding';

export function versionTableName(version: string): string {
  return `${TABLE_PREFIX}_${version}`;
}

export function shardTableName(shard: number, of: number): string {
  return `${TABLE_PREFIX}_shard_${shard}_of_${of}`;
}

/** What a version table's schema metadata holds: everything of StoreInfo except the quality measured afterwards. */
export type TableMetadata = Omit<StoreInfo, 'spaces'> & {
  spaces: Omit<StoreInfo['spaces'][number], 'quality'>[];
  /** Field names in column order (field_0, field_1, ...). */
  fieldOrder: string[];
  /** Rows of the table (= slots; every slot is live in a LanceDB version). */
  rows: number;
};

function floatList(d: number) {
  return new FixedSizeList(d, new Field('item', new Float32(), true));
}

function fieldArrowType(type: StoreFieldType): DataType {
  if (type === 'number') return new Float64();
  if (type === 'boolean') return new Bool();
  return new Utf8();
}

/** The Arrow schema of a version table (or, with `raw`, of a shard's staging table: model outputs, not spaces). */
export function versionSchema(meta: TableMetadata): Schema {
  const fields = [
    new Field('slot', new Int32(), false),
    ...['id', 'title', 'image', 'fingerprint', 'attributes'].map(
      (name) => new Field(name, new Utf8(), false),
    ),
    new Field('fields', new Utf8(), true),
    ...meta.conditions.map(
      (_, c) => new Field(labelColumn(c), new arrow.List(new Field('item', new Utf8(), true)), false),
    ),
    ...meta.fieldOrder.map((name, j) => new Field(fieldColumn(j), fieldArrowType(meta.fields[name]), true)),
    ...meta.spaces.map((space, c) => new Field(vectorColumn(c), floatList(space.dims.length), false)),
  ];
  if (meta.model.kind !== 'asen') {
    fields.push(new Field(EMBEDDING_COLUMN, floatList(meta.model.embedDim), false));
  }
  return new arrow.Schema(fields, new Map([[SCHEMA_METADATA_KEY, JSON.stringify(meta)]]));
}

/** A column of n fixed-size float32 lists straight from a flat row-major array (no per-row objects). */
export function fixedSizeListData(values: Float32Array, d: number) {
  const n = values.length / d;
  const child = makeData({ type: new Float32(), length: n * d, nullCount: 0, data: values });
  return makeData({ type: floatList(d), length: n, nullCount: 0, child });
}

/** Rows [from, to) of a version: products plus their vectors (flat arrays indexed by slot). */
export interface RowBlock {
  products: readonly StoreProduct[];
  from: number;
  to: number;
  /** One flat slots x d_c array per condition. */
  vectors: readonly Float32Array[];
  /** slots x D shared embeddings, or null (ASEN). */
  embeddings: Float32Array | null;
}

function fieldValues(products: readonly StoreProduct[], name: string, type: StoreFieldType): unknown[] {
  return products.map((p) => {
    const value = p.fields?.[name];
    return value === undefined || typeof value !== (type === 'number' ? 'number' : type) ? null : value;
  });
}

/** An Arrow table of one block of rows, in the schema's column order. */
export function blockToArrow(schema: Schema, meta: TableMetadata, block: RowBlock): ArrowTable {
  const { from, to } = block;
  const products = block.products.slice(from, to);
  const strings = (pick: (p: StoreProduct) => string) =>
    vectorFromArray(products.map(pick), new Utf8()).data[0];
  const children = [
    makeData({
      type: new Int32(),
      length: to - from,
      nullCount: 0,
      data: Int32Array.from(products, (_, i) => from + i),
    }),
    strings((p) => p.id),
    strings((p) => p.title),
    strings((p) => p.image),
    strings((p) => p.fingerprint),
    strings((p) => JSON.stringify(p.attributes)),
    vectorFromArray(
      products.map((p) => (p.fields ? JSON.stringify(p.fields) : null)),
      new Utf8(),
    ).data[0],
    ...meta.conditions.map(
      (condition, c) =>
        vectorFromArray(
          products.map((p) => p.attributes[condition] ?? []),
          schema.fields[7 + c].type as List<Utf8Type>,
        ).data[0],
    ),
    ...meta.fieldOrder.map(
      (name, j) =>
        vectorFromArray(
          fieldValues(products, name, meta.fields[name]),
          schema.fields[7 + meta.conditions.length + j].type as DataType,
        ).data[0],
    ),
    ...meta.spaces.map((space, c) => {
      const d = space.dims.length;
      return fixedSizeListData(block.vectors[c].subarray(from * d, to * d), d);
    }),
  ];
  if (block.embeddings) {
    const D = meta.model.embedDim;
    children.push(fixedSizeListData(block.embeddings.subarray(from * D, to * D), D));
  }
  const struct = makeData({ type: new Struct(schema.fields), length: to - from, nullCount: 0, children });
  return new arrow.Table(schema, [new RecordBatch(schema, struct)]);
}
