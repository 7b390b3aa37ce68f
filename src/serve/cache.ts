/**
 * Caches of computed images. Heat maps cost one saliency call (about 50-200 ms on the demo model) and are asked for
 * again whenever the page re-renders a neighbour, so the last ones are kept.
 */
import { LRUCache } from 'lru-cache';

/** Heat maps kept (about 50 KiB each at 224 px: under 13 MiB). */
const HEATMAP_CACHE_ENTRIES = 256;

export type ImageCache = LRUCache<string, Buffer>;

export function createHeatmapCache(): ImageCache {
  return new LRUCache<string, Buffer>({ max: HEATMAP_CACHE_ENTRIES });
}
