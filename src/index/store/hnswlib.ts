/**
 * The embedded hnswlib bundle (the default store) as a VectorStore: its versions are IndexBundles, which implement
 * the store's version interface themselves (bundle.ts); this follows the bundle's manifest.
 */
import { openBundle, readPublishedInfo, type OpenBundleOptions } from '../bundle.ts';
import { readManifest } from '../files.ts';
import { pollStore } from './common.ts';
import type { StoreSwap, StoreVersion, VectorStore } from './types.ts';

/** A bundle directory as a VectorStore. */
export class HnswStore implements VectorStore {
  readonly kind = 'hnswlib' as const;

  constructor(
    readonly location: string,
    private readonly options: OpenBundleOptions = {},
  ) {}

  async publishedVersion(): Promise<string | null> {
    const manifest = await readManifest(this.location);
    return manifest?.current ?? null;
  }

  async publishedModelFile(): Promise<string | undefined> {
    return (await readPublishedInfo(this.location)).modelFile;
  }

  async open(): Promise<StoreVersion> {
    return openBundle(this.location, this.options);
  }

  subscribe(
    onSwap: (swap: StoreSwap) => void,
    options: { intervalMs?: number; onError?: (error: Error) => void; from?: string | null } = {},
  ): () => void {
    return pollStore(this, options.from ?? null, onSwap, options);
  }

  close(): void {}
}
