/** The one place a store kind and a location become a VectorStore for serving. */
import { HnswStore } from './hnswlib.ts';
import type { StoreKind, VectorStore } from './types.ts';

/** hnswlib: `location` is the bundle directory; lancedb: a local directory or an s3://, gs://, az:// URI. */
export async function openVectorStore(kind: StoreKind, location: string): Promise<VectorStore> {
  // A served version never needs the shared embeddings (they are for incremental builds).
  if (kind === 'lancedb') return (await import('./lance.ts')).LanceStore.connect(location);
  return new HnswStore(location, { embeddings: false });
}
