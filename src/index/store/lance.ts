/**
 * Serving from a LanceDB database: the manifest table says which version is published and which bundle version
 * holds its HNSW indexes (lance-build.ts publishes them together); a replica loads that bundle into memory, verified,
 * and answers every query from it on the single-machine code (bundle.ts), so replicas answer as one machine does,
 * at its speed. Products, labels and fields come from the bundle's products file, in memory too.
 *
 * The database must be a local or mounted path (lance-bundle.ts): the bundle's files are read with the file system.
 */
import { join } from 'node:path';
import * as lancedb from '@lancedb/lancedb';
import { loadVersion } from '../bundle.ts';
import { versionPath } from '../files.ts';
import { BundleError } from '../types.ts';
import { pollStore } from './common.ts';
import { bundleDirOf, localDatabaseDir } from './lance-bundle.ts';
import {
  currentManifestRow,
  openManifest,
  readManifestRows,
  type ManifestInfo,
  type ManifestRow,
} from './lance-manifest.ts';
import type { StoreSwap, StoreVersion, VectorStore } from './types.ts';

export interface LanceStoreOptions {
  /** Refuse versions built from another model (the checkpoint the service runs). */
  expectedModelId?: string;
}

/** A LanceDB database holding dressmatch versions, as a VectorStore. */
export class LanceStore implements VectorStore {
  readonly kind = 'lancedb' as const;
  private manifest: lancedb.Table | null = null;

  private constructor(
    readonly location: string,
    private readonly db: lancedb.Connection,
    private readonly options: LanceStoreOptions,
  ) {}

  static async connect(uri: string, options: LanceStoreOptions = {}): Promise<LanceStore> {
    localDatabaseDir(uri);
    return new LanceStore(uri, await lancedb.connect(uri), options);
  }

  private async currentRow(): Promise<ManifestRow | null> {
    this.manifest ??= await openManifest(this.db);
    if (!this.manifest) return null;
    return (await readManifestRows(this.manifest)).at(-1) ?? null;
  }

  async publishedVersion(): Promise<string | null> {
    return (await this.currentRow())?.version ?? null;
  }

  async publishedModelFile(): Promise<string | undefined> {
    const row = await this.currentRow();
    const info = row ? (JSON.parse(row.info) as ManifestInfo) : undefined;
    if (!row || !info?.bundle || !info.model.checkpoint) return undefined;
    return join(versionPath(bundleDirOf(this.location, info.bundle), row.version), info.model.checkpoint);
  }

  async open(): Promise<StoreVersion> {
    // The version's bundle can be collected between reading the row and loading it when two jobs publish in quick
    // succession: read the manifest again once before giving up (as openBundle does).
    for (let attempt = 0; ; attempt++) {
      const row = await this.currentRow();
      if (!row) {
        throw new BundleError(
          'not-found',
          this.location,
          'no index has been published here yet (run `dressmatch index --store lancedb`)',
        );
      }
      try {
        return await this.load(row);
      } catch (error) {
        const raced = error instanceof BundleError && error.code === 'not-found' && attempt === 0;
        if (!raced || (await this.publishedVersion()) === row.version) throw error;
      }
    }
  }

  private async load(row: ManifestRow): Promise<StoreVersion> {
    const info = JSON.parse(row.info) as ManifestInfo;
    const where = `${this.location}#${row.table}`;
    if (!info.bundle) {
      throw new BundleError(
        'unsupported',
        where,
        'this version was published without a bundle (by an earlier index job): re-run `dressmatch index --store lancedb`',
      );
    }
    if (this.options.expectedModelId !== undefined && info.model.id !== this.options.expectedModelId) {
      throw new BundleError(
        'model-mismatch',
        where,
        `built from model ${info.model.id.slice(0, 12)}, but the model in use is ${this.options.expectedModelId.slice(0, 12)}`,
      );
    }
    // A served version never needs the shared embeddings (they are for incremental builds).
    return loadVersion(bundleDirOf(this.location, info.bundle), row.version, info.bundle.versionSha256, {
      embeddings: false,
    });
  }

  subscribe(
    onSwap: (swap: StoreSwap) => void,
    options: { intervalMs?: number; onError?: (error: Error) => void; from?: string | null } = {},
  ): () => void {
    return pollStore(this, options.from ?? null, onSwap, options);
  }

  close(): void {
    this.manifest?.close();
    this.db.close();
  }
}

/** The published version of a LanceDB database, or null (for `index-info` style checks). */
export async function publishedLanceVersion(uri: string): Promise<string | null> {
  const db = await lancedb.connect(uri);
  try {
    return (await currentManifestRow(db))?.version ?? null;
  } finally {
    db.close();
  }
}
