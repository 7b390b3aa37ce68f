/**
 * The life of a bundle's versions, apart from building them: the bundle lock (one job at a time, taken over when a
 * killed job's lock goes stale), version naming, publishing (rename into place, then the atomic manifest switch)
 * and garbage collection (temp and unpublished directories of killed jobs, published versions beyond the kept
 * ones). A version is only ever visible to readers through the manifest, so each step leaves the bundle readable.
 */
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { fsyncDirectory, writeFileAtomic } from '../util/atomic.ts';
import {
  formatVersionName,
  listVersionDirs,
  manifestPath,
  readManifest,
  sha256,
  versionPath,
  versionSequence,
  versionsPath,
} from './files.ts';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, BundleError, TEMP_PREFIX, type Manifest } from './types.ts';

async function acquireLock(
  bundleDir: string,
  staleMs: number,
  onCompromised: (error: Error) => void,
): Promise<() => Promise<void>> {
  const lockPath = join(bundleDir, '.lock');
  try {
    return await lockfile.lock(bundleDir, {
      lockfilePath: lockPath,
      realpath: false,
      stale: staleMs,
      update: Math.max(1000, Math.floor(staleMs / 2)),
      // Wait long enough for the lock of a killed job to go stale, then take it over.
      retries: { retries: Math.ceil((staleMs + 2000) / 250), factor: 1, minTimeout: 250, maxTimeout: 250 },
      onCompromised,
    });
  } catch (error) {
    throw new BundleError(
      'locked',
      lockPath,
      `another index job is building this bundle (${(error as Error).message}); wait for it to finish`,
      { cause: error },
    );
  }
}

/**
 * Remove what no reader can be using: temp directories of crashed jobs, versions newer than the current one that
 * were never published, and published versions beyond the newest `keep` (never the current one).
 * Only call with the bundle lock held.
 */
export async function collectGarbage(
  bundleDir: string,
  current: string | null,
  keep: number,
): Promise<string[]> {
  const removed: string[] = [];
  const currentSequence = current ? versionSequence(current) : Number.POSITIVE_INFINITY;
  const published: string[] = [];
  for (const name of await listVersionDirs(bundleDir)) {
    if (name === current) continue;
    const sequence = versionSequence(name);
    if (name.startsWith(TEMP_PREFIX) || sequence < 0 || sequence > currentSequence) removed.push(name);
    else published.push(name);
  }
  published.sort((a, b) => versionSequence(b) - versionSequence(a));
  removed.push(...published.slice(Math.max(0, keep - (current ? 1 : 0))));
  for (const name of removed) await rm(versionPath(bundleDir, name), { recursive: true, force: true });
  // Leftovers of an interrupted manifest write (writeFileAtomic's sibling temp files).
  for (const name of await readdir(bundleDir)) {
    if (name.startsWith('.manifest.json.') && name.endsWith('.tmp'))
      await rm(join(bundleDir, name), { force: true });
  }
  if (removed.length > 0) await fsyncDirectory(versionsPath(bundleDir));
  return removed;
}

/**
 * Remove what killed index jobs left behind (temp and unpublished version directories, manifest temp files),
 * under the bundle lock, without building anything. Published versions are kept. Returns what was removed.
 */
export async function removeLeftovers(bundleDir: string, lockStaleMs = 10_000): Promise<string[]> {
  const release = await acquireLock(bundleDir, lockStaleMs, () => undefined);
  try {
    const manifest = await readManifest(bundleDir);
    return await collectGarbage(bundleDir, manifest?.current ?? null, Number.MAX_SAFE_INTEGER);
  } finally {
    await release().catch(() => undefined);
  }
}

/** The name of the next version: one past the highest sequence published or left by a killed job. */
export async function nextVersionName(
  bundleDir: string,
  manifest: Manifest | null,
  now: Date,
): Promise<string> {
  let sequence = manifest ? versionSequence(manifest.current) : 0;
  for (const name of await listVersionDirs(bundleDir)) {
    sequence = Math.max(sequence, versionSequence(name.replace(TEMP_PREFIX, '')));
  }
  return formatVersionName(sequence + 1, now);
}

/** The bundle lock, and a check that it was not lost (taken over as stale) while the job ran. */
export interface HeldLock {
  release(): Promise<void>;
  assertHeld(): void;
}

export async function holdLock(bundleDir: string, staleMs: number): Promise<HeldLock> {
  let compromised: Error | null = null;
  const release = await acquireLock(bundleDir, staleMs, (error) => {
    compromised = error;
  });
  const assertHeld = (): void => {
    if (compromised) {
      throw new BundleError(
        'locked',
        bundleDir,
        `lost the bundle lock (${compromised.message}); nothing was published`,
      );
    }
  };
  return { release, assertHeld };
}

/** A version written into its temp directory, waiting to be published. */
export interface PendingVersion {
  bundleDir: string;
  version: string;
  /** The version's temp directory until it is renamed into place (null after). */
  tempDir: string | null;
  /** The manifest it replaces (null: nothing published yet). */
  manifest: Manifest | null;
  source: { modelId: string };
}

/**
 * Publish: rename the directory into place, then switch the manifest (the atomic step). `onStage` hears of each
 * step (tests kill the job at these points).
 */
export async function publishVersion(
  build: PendingVersion,
  infoText: string,
  lock: HeldLock,
  onStage: (stage: 'renamed' | 'published') => Promise<void>,
): Promise<void> {
  const { bundleDir, version } = build;
  lock.assertHeld();
  await rename(build.tempDir!, versionPath(bundleDir, version));
  build.tempDir = null;
  await fsyncDirectory(versionsPath(bundleDir));
  await onStage('renamed');
  lock.assertHeld();
  const nextManifest: Manifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    current: version,
    versionSha256: sha256(Buffer.from(infoText)),
    updatedAt: new Date().toISOString(),
    modelId: build.source.modelId,
    history: [...(build.manifest?.history ?? []), version].slice(-20),
  };
  await writeFileAtomic(manifestPath(bundleDir), `${JSON.stringify(nextManifest, null, 2)}\n`);
  await onStage('published');
}
