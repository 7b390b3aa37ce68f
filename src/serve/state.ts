/**
 * What the service is serving right now: the current index version (swapped atomically when a new one is
 * published), paired with the model it was built from. A request leases the version it starts with, model included,
 * and keeps both to the end, so a swap never pulls an index or a model from under a running request; a retired
 * version is closed once its last lease is released (and its model too when no current version uses it).
 */
import type { Logger } from 'pino';
import {
  BundleError,
  openVectorStore,
  type StoreKind,
  type StoreVersion,
  type VectorStore,
} from '../index/index.ts';
import { readCheckpoint } from '../checkpoint/index.ts';
import type { BackendPreference } from '../model/index.ts';
import type { ModelThread } from './defaults.ts';
import type { ServeMetrics } from './metrics.ts';
import { ModelLoadError, startModel, type ModelRunner, type QueueLimits } from './model/runner.ts';
import { RecurringProblemLog } from './recurring-log.ts';
import { ServedIndex, imageRootFor, provenanceOf } from './served-index.ts';

export interface Lease {
  index: ServedIndex;
  release(): void;
}

export interface StateOptions {
  /** Where versions are published: the bundle directory (hnswlib) or the LanceDB URI (lancedb). */
  indexDir: string;
  /** Which store `indexDir` is (default hnswlib, the embedded bundle). */
  storeKind?: StoreKind;
  /** Checkpoint of the model behind the index; without it uploads and heat maps answer 503. */
  modelPath?: string;
  backend?: BackendPreference;
  modelThread?: ModelThread;
  /** How many model calls of each kind may wait (see model/runner.ts). */
  queueLimits?: Partial<QueueLimits>;
  /** Directory product images are relative to, when not the catalogue root the bundle records. */
  imageRoot?: string;
  /** How often the bundle's manifest is checked for a new version. */
  pollIntervalMs: number;
  log: Logger;
  metrics: ServeMetrics;
}

export class ServeState {
  private current: ServedIndex | undefined;
  /** The current version and retired ones still leased by running requests. */
  private readonly alive = new Set<ServedIndex>();
  private modelRunner: ModelRunner | undefined;
  private store: VectorStore | undefined;
  /** Published version that is loaded or was last refused, to avoid retrying a bad version. */
  private seen: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private closed = false;
  /** Why there is no index (yet) or the last version was refused, as logged (may hold file-system paths). */
  lastError: string | undefined;
  /** The same for clients (/readyz): a sentence without file-system paths. */
  notReadyReason: string | undefined;
  private readonly manifestProblems: RecurringProblemLog;
  private readonly firstLoad: Promise<void>;
  private resolveFirstLoad!: () => void;

  constructor(private readonly options: StateOptions) {
    this.manifestProblems = new RecurringProblemLog(options.log);
    this.firstLoad = new Promise((resolve) => {
      this.resolveFirstLoad = resolve;
    });
  }

  /** Load the model (failing loudly on a bad checkpoint), then look for an index and keep watching for new ones. */
  async start(): Promise<void> {
    const checkpoint = this.options.modelPath;
    if (checkpoint) {
      this.modelRunner = await this.startFirstModel(checkpoint);
      const d = this.modelRunner.description;
      this.options.log.info({ model: d.id.slice(0, 12), kind: d.kind, backend: d.backend }, 'model loaded');
    }
    await this.check();
    this.timer = setInterval(() => void this.check(), this.options.pollIntervalMs);
    this.timer.unref();
  }

  /** The model given at start-up; a missing or corrupt file fails before a model backend starts for nothing. */
  private async startFirstModel(checkpoint: string): Promise<ModelRunner> {
    try {
      await readCheckpoint(checkpoint);
      return await startModel({
        checkpoint,
        backend: this.options.backend ?? 'auto',
        thread: this.options.modelThread,
        queueLimits: this.options.queueLimits,
      });
    } catch (error) {
      throw new ModelLoadError(checkpoint, error);
    }
  }

  /** Resolves once a first index version is being served. */
  whenReady(): Promise<void> {
    return this.firstLoad;
  }

  get modelConfigured(): boolean {
    return this.options.modelPath !== undefined;
  }

  /** The version being served (for read-only peeks such as /readyz); requests should lease instead. */
  get index(): ServedIndex | undefined {
    return this.current;
  }

  lease(): Lease | undefined {
    const index = this.current;
    if (!index) return undefined;
    index.leases++;
    let released = false;
    return {
      index,
      release: () => {
        if (released) return;
        released = true;
        index.leases--;
        if (index.retired && index.leases === 0) this.retire(index);
      },
    };
  }

  /** Check the manifest once (also what the poller runs); concurrent calls share one check. */
  check(): Promise<void> {
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<void> {
    if (this.closed) return;
    const { indexDir, log } = this.options;
    let identity: string;
    try {
      this.store ??= await openVectorStore(this.options.storeKind ?? 'hnswlib', indexDir);
      const published = await this.store.publishedVersion();
      if (published === null) {
        this.notReady('No index has been published yet.', `no index has been published in ${indexDir} yet`);
        this.manifestProblems.report('none', { indexDir }, 'no index has been published yet');
        return;
      }
      identity = published;
    } catch (error) {
      this.notReady('The index manifest cannot be read (the server log says why).', (error as Error).message);
      this.manifestProblems.report(
        (error as Error).message,
        { err: error, indexDir },
        'cannot read the index manifest (which version is published)',
      );
      return;
    }
    this.manifestProblems.clear();
    if (identity === this.seen) return;
    try {
      const version = await this.openMatching(this.store);
      if (this.closed) return version.close();
      this.seen = identity;
      this.swap(new ServedIndex(version, imageRootFor(version, this.options.imageRoot), this.modelRunner));
    } catch (error) {
      this.seen = identity;
      this.notReady(
        'The published index version was refused (the server log says why).',
        (error as Error).message,
      );
      this.options.metrics.swaps.inc({ outcome: 'rejected' });
      log.error(
        { err: error, indexDir },
        this.current ? 'new index version refused; still serving the previous one' : 'index refused',
      );
    }
  }

  /** The published version, refused (closed, BundleError 'model-mismatch') unless it was built from `modelId`. */
  private async openFor(store: VectorStore, modelId: string | undefined): Promise<StoreVersion> {
    const version = await store.open();
    if (modelId !== undefined && version.info.model.id !== modelId) {
      version.close();
      throw new BundleError(
        'model-mismatch',
        store.location,
        `version ${version.version} was built from model ${version.info.model.id.slice(0, 12)}, but the model ` +
          `in use is ${modelId.slice(0, 12)}: re-run the index job with this model`,
      );
    }
    return version;
  }

  /**
   * Open the published version; when it was built from another model than the loaded one, load the checkpoint the
   * version carries (a refresh publishes its model with it), else reload --model (it may have been retrained in
   * place), and accept the version only if the ids then agree.
   */
  private async openMatching(store: VectorStore): Promise<StoreVersion> {
    try {
      return await this.openFor(store, this.modelRunner?.description.id);
    } catch (error) {
      if (!(error instanceof BundleError && error.code === 'model-mismatch' && this.options.modelPath))
        throw error;
      const previous = this.modelRunner;
      // A refresh or an index job publishes its checkpoint inside the bundle version (on either store).
      const carried = await store.publishedModelFile();
      const reloaded = await startModel({
        checkpoint: carried ?? this.options.modelPath,
        backend: this.options.backend ?? 'auto',
        thread: this.options.modelThread,
        queueLimits: this.options.queueLimits,
      });
      const version = await this.openFor(store, reloaded.description.id).catch(async (again) => {
        await reloaded.close();
        throw again;
      });
      // The previous model stays with the version that uses it until that version retires.
      this.modelRunner = reloaded;
      this.options.log.info(
        { model: reloaded.description.id.slice(0, 12) },
        'model reloaded for the new index version',
      );
      if (previous && ![...this.alive].some((index) => index.model === previous)) await previous.close();
      return version;
    }
  }

  /** Record why no (new) index is served, for /readyz while nothing is. */
  private notReady(reason: string, logged: string): void {
    this.notReadyReason = reason;
    this.lastError = logged;
  }

  private swap(next: ServedIndex): void {
    const previous = this.current;
    this.current = next;
    this.alive.add(next);
    this.lastError = undefined;
    this.notReadyReason = undefined;
    this.options.metrics.setIndexVersion(next.version);
    this.options.metrics.setProvenance(provenanceOf(next.store));
    this.options.metrics.swaps.inc({ outcome: 'loaded' });
    this.options.log.info(
      { version: next.version, previous: previous?.version, products: next.liveSlots.length },
      previous ? 'serving new index version' : 'serving index',
    );
    this.resolveFirstLoad();
    if (previous) {
      previous.retired = true;
      if (previous.leases === 0) this.retire(previous);
    }
  }

  private retire(index: ServedIndex): void {
    index.store.close();
    this.alive.delete(index);
    const model = index.model;
    const stillUsed = model === this.modelRunner || [...this.alive].some((other) => other.model === model);
    if (model && !stillUsed) void model.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.checking;
    const runners = new Set([this.modelRunner, ...[...this.alive].map((index) => index.model)]);
    await Promise.all([...runners].map((runner) => runner?.close()));
    this.modelRunner = undefined;
    this.store?.close();
  }
}
