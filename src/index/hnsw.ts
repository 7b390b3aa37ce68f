/** Thin typed layer over hnswlib-node: build from flat float32 rows, search, and convert distances. */
import hnswlib from 'hnswlib-node';
import type { Metric, Neighbour } from './vectors.ts';

export type HnswIndex = InstanceType<typeof hnswlib.HierarchicalNSW>;

export interface HnswParams {
  m: number;
  efConstruction: number;
  efSearch: number;
  seed: number;
}

/** hnswlib-node's space for a metric: it computes squared L2 for 'l2' and 1 - cosine for 'cosine'. */
export function createIndex(metric: Metric, dims: number): HnswIndex {
  return new hnswlib.HierarchicalNSW(metric === 'l2' ? 'l2' : 'cosine', dims);
}

/** hnswlib-node reads a plain number[]: copy a row into a reused array instead of allocating one per point. */
export class RowReader {
  private readonly buffer: number[];

  constructor(
    private readonly rows: Float32Array,
    private readonly d: number,
  ) {
    this.buffer = new Array<number>(d).fill(0);
  }

  row(i: number): number[] {
    const offset = i * this.d;
    for (let k = 0; k < this.d; k++) this.buffer[k] = this.rows[offset + k];
    return this.buffer;
  }
}

/** Let timers (lock refresh, progress bar) run during long synchronous insertion loops. */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Points inserted between two yields to the event loop. */
export const INSERT_CHUNK = 512;

/**
 * Build an index over `labels` (row indices of `rows`), label = row index. `capacity` leaves room for later
 * incremental additions without a resize.
 */
export async function buildIndex(
  rows: Float32Array,
  d: number,
  labels: readonly number[],
  metric: Metric,
  params: HnswParams,
  options: { capacity?: number; onProgress?: (done: number, total: number) => void } = {},
): Promise<HnswIndex> {
  const index = createIndex(metric, d);
  index.initIndex({
    maxElements: Math.max(1, options.capacity ?? labels.length, labels.length),
    m: params.m,
    efConstruction: params.efConstruction,
    randomSeed: params.seed,
  });
  index.setEf(params.efSearch);
  const reader = new RowReader(rows, d);
  for (let start = 0; start < labels.length; start += INSERT_CHUNK) {
    const end = Math.min(labels.length, start + INSERT_CHUNK);
    for (let j = start; j < end; j++) index.addPoint(reader.row(labels[j]), labels[j]);
    options.onProgress?.(end, labels.length);
    await yieldToEventLoop();
  }
  return index;
}

/** Distance as the rest of the service uses it: hnswlib's squared L2 becomes Euclidean. */
export function fromIndexDistance(metric: Metric, distance: number): number {
  return metric === 'l2' ? Math.sqrt(Math.max(0, distance)) : distance;
}

/**
 * k nearest labels to `query`, skipping `exclude` (fetched on top of k, then dropped). Asks for no more than the
 * index holds, and keeps ef at least as large as the number asked for (hnswlib needs ef >= k).
 */
export function searchIndex(
  index: HnswIndex,
  metric: Metric,
  query: number[],
  k: number,
  options: { ef: number; live: number; exclude?: ReadonlySet<number> },
): Neighbour[] {
  const extra = options.exclude?.size ?? 0;
  const want = Math.min(k + extra, options.live);
  if (want <= 0) return [];
  index.setEf(Math.max(options.ef, want));
  const result = index.searchKnn(query, want);
  const out: Neighbour[] = [];
  for (let j = 0; j < result.neighbors.length && out.length < k; j++) {
    const label = result.neighbors[j];
    if (options.exclude?.has(label)) continue;
    out.push({ index: label, distance: fromIndexDistance(metric, result.distances[j]) });
  }
  // hnswlib returns farthest-last but equal distances in arbitrary order: sort ties by label for stable output.
  out.sort((a, b) => a.distance - b.distance || a.index - b.index);
  return out;
}
