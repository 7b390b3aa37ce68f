/**
 * Publishing LanceDB versions: a small manifest table with one row per published version.
 *
 * Each version is its own table (`dressmatch_v000007-…`) and a bundle version of the same name (lance-bundle.ts),
 * both written and checked completely before they are named anywhere. Publishing is one append to the manifest table, which LanceDB commits atomically (a new manifest
 * file put in one write, local rename or object-store PUT): a reader either sees the row, and with it a complete
 * table, or not. The published version is the row with the highest sequence. A job killed at any point leaves at
 * most an unnamed table, which the next job drops; readers never look at tables the manifest does not name.
 */
import * as lancedb from '@lancedb/lancedb';
import type { Schema } from 'apache-arrow';
import { arrow } from './arrow.ts';
import { versionSequence } from '../files.ts';
import type { BundleRef } from './lance-bundle.ts';
import { MANIFEST_TABLE, TABLE_PREFIX, versionTableName } from './lance-schema.ts';
import type { StoreInfo } from './types.ts';

export interface ManifestRow {
  sequence: number;
  version: string;
  table: string;
  modelId: string;
  publishedAt: string;
  /** JSON of the StoreInfo (the bundle's description of the version) and `bundle`, where its bundle lives. */
  info: string;
}

/** What the `info` column holds. */
export type ManifestInfo = StoreInfo & { bundle?: BundleRef };

const { Field, Int32, Utf8 } = arrow;
const MANIFEST_SCHEMA = new arrow.Schema([
  new Field('sequence', new Int32(), false),
  new Field('version', new Utf8(), false),
  new Field('table', new Utf8(), false),
  new Field('modelId', new Utf8(), false),
  new Field('publishedAt', new Utf8(), false),
  new Field('info', new Utf8(), false),
]);

function isMissingTable(error: unknown): boolean {
  return /not found|does not exist|was not found/i.test((error as Error).message);
}

/** A table, or null when it does not exist (yet). */
export async function openIfExists(db: lancedb.Connection, name: string): Promise<lancedb.Table | null> {
  try {
    return await db.openTable(name);
  } catch (error) {
    if (isMissingTable(error)) return null;
    throw error;
  }
}

/** The manifest table, or null when nothing was ever published in this database. */
export function openManifest(db: lancedb.Connection): Promise<lancedb.Table | null> {
  return openIfExists(db, MANIFEST_TABLE);
}

/**
 * Append one row to a small bookkeeping table, creating it on first use. Appends from several processes are safe:
 * LanceDB retries an append that lost a commit race, and a lost race to create the table becomes an append.
 */
export async function appendRow(
  db: lancedb.Connection,
  name: string,
  schema: Schema,
  row: Record<string, unknown>,
): Promise<void> {
  const existing = await openIfExists(db, name);
  if (existing) {
    await existing.add([row]);
    existing.close();
    return;
  }
  try {
    const created = await db.createTable(name, [row], { mode: 'create', schema });
    created.close();
  } catch (error) {
    const raced = await openIfExists(db, name);
    if (!raced) throw error;
    await raced.add([row]);
    raced.close();
  }
}

/** Every manifest row, oldest first (re-reads the latest manifest version of the table). */
export async function readManifestRows(table: lancedb.Table): Promise<ManifestRow[]> {
  await table.checkoutLatest();
  const rows = (await table.query().toArray()) as ManifestRow[];
  return rows
    .map((row) => ({ ...row, sequence: Number(row.sequence) }))
    .sort((a, b) => a.sequence - b.sequence);
}

export async function currentManifestRow(db: lancedb.Connection): Promise<ManifestRow | null> {
  const table = await openManifest(db);
  if (!table) return null;
  try {
    const rows = await readManifestRows(table);
    return rows.at(-1) ?? null;
  } finally {
    table.close();
  }
}

/** Sequence numbers of our version tables present in the database (published or not). */
export async function versionTables(db: lancedb.Connection): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const prefix = `${TABLE_PREFIX}_v`;
  for (const name of await db.tableNames()) {
    if (name.startsWith(prefix)) out.set(name, versionSequence(name.slice(TABLE_PREFIX.length + 1)));
  }
  return out;
}

/** Publish a complete, checked version and its bundle: one append to the manifest table (created by the first). */
export async function publishVersion(
  db: lancedb.Connection,
  info: StoreInfo,
  bundle: BundleRef,
): Promise<ManifestRow> {
  const row: ManifestRow = {
    sequence: versionSequence(info.version),
    version: info.version,
    table: versionTableName(info.version),
    modelId: info.model.id,
    publishedAt: new Date().toISOString(),
    info: JSON.stringify({ ...info, bundle } satisfies ManifestInfo),
  };
  await appendRow(db, MANIFEST_TABLE, MANIFEST_SCHEMA, { ...row });
  return row;
}

/**
 * Drop version tables that are neither among the last `keep` published versions nor newer than the current one
 * (a newer unpublished table may belong to a job still running; an older one is a leftover of a killed job).
 * Returns the dropped tables and the versions kept (their bundle versions stay too).
 */
export async function collectLanceGarbage(
  db: lancedb.Connection,
  keep: number,
): Promise<{ removed: string[]; kept: Set<string> }> {
  const table = await openManifest(db);
  const rows = table ? await readManifestRows(table) : [];
  table?.close();
  const current = rows.at(-1)?.sequence ?? 0;
  const kept = rows.slice(-keep);
  const keptTables = new Set(kept.map((row) => row.table));
  const removed: string[] = [];
  for (const [name, sequence] of await versionTables(db)) {
    if (keptTables.has(name) || sequence > current) continue;
    await db.dropTable(name);
    removed.push(name);
  }
  return { removed, kept: new Set(kept.map((row) => row.version)) };
}
