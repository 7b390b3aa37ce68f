/**
 * Caches of computed images. Heat maps cost one saliency call (about 50-200 ms on the demo model) and are asked for
 * again whenever the page re-renders a neighbour. Thumbnails cost a decode and a resize off the event loop (24
 * concurrent 1024 px ones took 2 s of CPU and stalled other requests up to 1.7 s): they are kept, bounded by bytes,
 * computed once however many requests ask at the same time, and only a few at once, so that libuv's 4 threads stay
 * free for file reads and uploads.
 */
import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';

/** Heat maps kept (about 50 KiB each at 224 px: under 13 MiB). */
const HEATMAP_CACHE_ENTRIES = 256;

export type ImageCache = LRUCache<string, Buffer>;

export function createHeatmapCache(): ImageCache {
  return new LRUCache<string, Buffer>({ max: HEATMAP_CACHE_ENTRIES });
}

/** At most `limit` of the calls run at once; the others wait in order. */
function concurrencyLimit(limit: number): <T>(work: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await work();
    } finally {
      running--;
      waiting.shift()?.();
    }
  };
}

export interface RenderedImageCache {
  /** The cached image under `key`, or `render()`'s (shared by concurrent callers, limited in concurrency). */
  get(key: string, render: () => Promise<Buffer>): Promise<Buffer>;
}

export function createThumbnailCache(
  maxBytes: number,
  concurrency: number,
  lookups: Counter<'cache' | 'outcome'>,
): RenderedImageCache {
  const done = new LRUCache<string, Buffer>({
    maxSize: maxBytes,
    sizeCalculation: (image) => image.length || 1,
  });
  const inFlight = new Map<string, Promise<Buffer>>();
  const limited = concurrencyLimit(concurrency);
  return {
    get(key, render) {
      const cached = done.get(key) ?? inFlight.get(key);
      lookups.inc({ cache: 'thumbnail', outcome: cached ? 'hit' : 'miss' });
      if (cached) return Promise.resolve(cached);
      const rendering = limited(render)
        .then((image) => {
          if (image.length <= maxBytes) done.set(key, image);
          return image;
        })
        .finally(() => inFlight.delete(key));
      inFlight.set(key, rendering);
      return rendering;
    },
  };
}
