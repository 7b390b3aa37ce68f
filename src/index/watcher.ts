/**
 * Follows a bundle's manifest and swaps to each newly published version, so a running service picks up a re-index
 * without a restart. The previous version is not closed: a request that already holds it finishes on it, and the
 * garbage collector frees it once nothing does.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '../util/log.ts';
import {
  loadVersion,
  openBundle,
  requireManifest,
  type IndexBundle,
  type OpenBundleOptions,
} from './bundle.ts';

export interface BundleWatcherOptions extends OpenBundleOptions {
  /** How often manifest.json is read (default 2000 ms). Reading it is one small file read. */
  intervalMs?: number;
  log?: Logger;
}

export interface BundleSwap {
  previous: string;
  current: string;
}

/**
 * Events: 'swap' (BundleSwap) after a new version is loaded and serving; 'error' (Error) when a published version
 * cannot be loaded (the current one keeps serving, and that version is not retried until the manifest changes again).
 */
export class BundleWatcher extends EventEmitter<{ swap: [BundleSwap]; error: [Error] }> {
  private timer: NodeJS.Timeout | null = null;
  private checking: Promise<boolean> | null = null;
  /** Manifest target (version + hash) last tried, loaded or not, so a broken version is not reloaded every poll. */
  private lastSeen: string;

  private constructor(
    readonly dir: string,
    private bundle: IndexBundle,
    private readonly options: BundleWatcherOptions,
    seen: string,
  ) {
    super();
    this.lastSeen = seen;
  }

  /** Open the bundle's current version (throws a BundleError if it is unusable) and start polling. */
  static async open(dir: string, options: BundleWatcherOptions = {}): Promise<BundleWatcher> {
    const bundle = await openBundle(dir, options);
    const watcher = new BundleWatcher(dir, bundle, options, '');
    const manifest = await requireManifest(dir).catch(() => null);
    watcher.lastSeen =
      manifest && manifest.current === bundle.version ? `${manifest.current}:${manifest.versionSha256}` : '';
    watcher.start();
    return watcher;
  }

  /** The version to use for a new request. Hold on to the returned object for the whole request. */
  get current(): IndexBundle {
    return this.bundle;
  }

  /** Read the manifest now and swap if a new version was published; true when it swapped. */
  check(): Promise<boolean> {
    // One check at a time: a slow load must not be started twice by the next poll.
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private start(): void {
    const interval = this.options.intervalMs ?? 2000;
    this.timer = setInterval(() => {
      this.check().catch(() => undefined);
    }, interval);
    this.timer.unref();
  }

  private async checkOnce(): Promise<boolean> {
    let seen: string;
    let target: { current: string; versionSha256: string };
    try {
      target = await requireManifest(this.dir);
      seen = `${target.current}:${target.versionSha256}`;
    } catch (error) {
      this.report(error as Error);
      return false;
    }
    if (seen === this.lastSeen) return false;
    this.lastSeen = seen;
    if (target.current === this.bundle.version) return false;
    try {
      const next = await loadVersion(this.dir, target.current, target.versionSha256, this.options);
      const swap = { previous: this.bundle.version, current: next.version };
      this.bundle = next;
      this.options.log?.info(swap, 'serving new index version');
      this.emit('swap', swap);
      return true;
    } catch (error) {
      this.report(error as Error);
      return false;
    }
  }

  private report(error: Error): void {
    this.options.log?.error(
      { err: error },
      'cannot load the published index version; still serving the previous one',
    );
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}
