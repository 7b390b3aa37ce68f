/**
 * One refresh per bundle at a time: `<bundle>/.refresh.lock` (proper-lockfile, refreshed while the run lives).
 * It is separate from the index job's `.lock`, which a refresh takes only for the minutes it publishes; holding the
 * index lock through a whole fine-tune would block manual re-indexing for no reason. A second refresh does not wait
 * (a scheduler will start it again) but fails at once with the `busy` exit code. The lock of a `kill -9`ed run stops
 * being refreshed and is taken over once it is `lockStaleMs` old.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { REFRESH_DEFAULTS } from './options.ts';
import { REFRESH_EXIT, RefreshError } from './types.ts';

export interface RefreshLock {
  release(): Promise<void>;
  /** Set when the lock was lost while held (its file was removed or taken over): stop before publishing. */
  readonly compromised: Error | null;
}

export async function acquireRefreshLock(
  bundleDir: string,
  staleMs: number = REFRESH_DEFAULTS.lockStaleMs,
): Promise<RefreshLock> {
  await mkdir(bundleDir, { recursive: true });
  const lockfilePath = join(bundleDir, REFRESH_DEFAULTS.lockFile);
  const state: { compromised: Error | null } = { compromised: null };
  let release: () => Promise<void>;
  try {
    // proper-lockfile keys its locks by the locked path, not by the lock file: locking the bundle directory itself
    // would collide with the index job's lock taken inside this process when the refresh publishes.
    release = await lockfile.lock(join(bundleDir, REFRESH_DEFAULTS.lockFile.replace(/\.lock$/, '')), {
      lockfilePath,
      realpath: false,
      stale: staleMs,
      update: Math.max(1000, Math.floor(staleMs / 2)),
      retries: 0,
      onCompromised: (error) => {
        state.compromised = error;
      },
    });
  } catch (error) {
    throw new RefreshError(
      REFRESH_EXIT.busy,
      `another refresh of ${bundleDir} is running (${lockfilePath}); try again when it has finished`,
      undefined,
      { cause: error },
    );
  }
  return {
    release: () => release().catch(() => undefined),
    get compromised() {
      return state.compromised;
    },
  };
}
