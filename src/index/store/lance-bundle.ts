/**
 * The hnswlib bundle published next to a LanceDB database's tables (`<uri>/bundles`): where it lives, a bundle
 * source over vectors already computed (the commit builds the bundle from the shards' vectors, never re-embedding),
 * and removing bundle versions that no kept manifest row names any more.
 *
 * Replicas load the bundle into memory: every query is answered in memory, on the same code as a single machine.
 * The bundle's files are read with the file system, so the database must be a local or mounted path (a network file
 * system, or a bucket mounted with a FUSE driver); an object-store URI is refused with that explanation.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listVersionDirs, versionPath, versionSequence } from '../files.ts';
import { BundleError, TEMP_PREFIX, type BundleSource, type EmbeddedRows } from '../types.ts';
import type { StoreProduct } from './types.ts';

/** What the model produced for products [0, n): the shared embedding or one vector per condition (ASEN). */
export interface RawVectors {
  embeddings: Float32Array | null;
  conditionVectors: Float32Array[] | null;
}

/** The bundle's directory inside the database directory (LanceDB ignores directories that are not tables). */
export const BUNDLES_DIR = 'bundles';

/** What a manifest row records of the bundle its version is served from. */
export interface BundleRef {
  /** Directory of the bundle, relative to the database. */
  dir: string;
  /** SHA-256 of the version's version.json (the bundle manifest's `versionSha256`): every file is checked from it. */
  versionSha256: string;
}

/** The local directory of a database URI (a path or file:// URI), or a BundleError for object-store URIs. */
export function localDatabaseDir(uri: string): string {
  if (uri.startsWith('file://')) return fileURLToPath(uri);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    throw new BundleError(
      'unsupported',
      uri,
      'replicas load the published hnswlib bundle from the database directory, which needs a local or mounted ' +
        'path (a network file system, or the bucket mounted with a FUSE driver): give --uri as that path',
    );
  }
  return uri;
}

export function bundleDirOf(uri: string, ref: Pick<BundleRef, 'dir'> = { dir: BUNDLES_DIR }): string {
  return join(localDatabaseDir(uri), ref.dir);
}

/**
 * The model's outputs for every product, already computed (by this job or the shards), as a bundle source: the
 * bundle build copies rows instead of running the model.
 */
export function precomputedSource(
  source: BundleSource,
  raw: RawVectors,
  products: readonly StoreProduct[],
): BundleSource {
  const D = source.embedDim;
  const pick = (values: Float32Array, indices: number[]): Float32Array => {
    const rows = new Float32Array(indices.length * D);
    const contiguous = indices.every((slot, r) => slot === indices[0] + r);
    if (contiguous && indices.length > 0)
      rows.set(values.subarray(indices[0] * D, (indices.at(-1)! + 1) * D));
    else indices.forEach((slot, r) => rows.set(values.subarray(slot * D, (slot + 1) * D), r * D));
    return rows;
  };
  return {
    modelId: source.modelId,
    modelKind: source.modelKind,
    embedDim: D,
    conditions: source.conditions,
    masks: source.masks,
    products: [...products],
    catalogue: source.catalogue ?? null,
    checkpointFile: source.checkpointFile,
    provenance: source.provenance,
    embed: async (indices): Promise<EmbeddedRows> =>
      raw.embeddings
        ? { embeddings: pick(raw.embeddings, indices) }
        : { conditionVectors: raw.conditionVectors!.map((values) => pick(values, indices)) },
  };
}

/**
 * Remove published bundle versions that none of `kept` names (the versions whose manifest rows are kept), never
 * the current one nor anything newer (a running job's). Call with the bundle lock held.
 */
export async function collectBundleGarbage(
  bundleDir: string,
  current: string,
  kept: ReadonlySet<string>,
): Promise<string[]> {
  const removed: string[] = [];
  const currentSequence = versionSequence(current);
  for (const name of await listVersionDirs(bundleDir)) {
    if (name.startsWith(TEMP_PREFIX) || name === current || kept.has(name)) continue;
    const sequence = versionSequence(name);
    if (sequence < 0 || sequence > currentSequence) continue;
    await rm(versionPath(bundleDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
