/**
 * The index job for a LanceDB store: embed (or collect the shards' embeddings), project into the condition spaces
 * with the same mask threshold as the hnswlib bundle, write one version table, build one ANN index per vector
 * column, gate on recall@10 against brute force, then publish with one manifest append (lance-manifest.ts).
 */
import { deriveFieldSchema } from '../../catalogue/index.ts';
import * as lancedb from '@lancedb/lancedb';
import type { ConditionSpace } from '../../model/index.ts';
import type { Logger } from '../../util/log.ts';
import { Rng } from '../../util/rng.ts';
import { resolveParams, type BundleSource } from '../build.ts';
import {
  BundleError,
  IndexQualityError,
  failsRecall,
  type BuildParams,
  type ConditionQuality,
} from '../types.ts';
import { conditionSpace, projectRows, type Neighbour } from '../vectors.ts';
import { distanceQuantiles, measureRecall, type RecallInput } from '../quality.ts';
import { collectLanceGarbage, nextVersion, publishVersion } from './lance-manifest.ts';
import { annSearch, indexConfig, MIN_INDEXED_ROWS } from './lance-query.ts';
import {
  type LanceIndexParams,
  type LanceIndexType,
  blockToArrow,
  vectorColumn,
  versionSchema,
  versionTableName,
  type TableMetadata,
} from './lance-schema.ts';
import type { StoreFieldType, StoreInfo, StoreProduct, StoreSpace } from './types.ts';

/** Rows per Arrow batch written: ~50k rows x 6 conditions x 16 dims is ~20 MB, small next to the vectors held. */
const WRITE_CHUNK = 50_000;

export type LanceBuildStage = 'embedded' | 'written' | 'indexed' | 'checked' | 'published';

export interface LanceBuildOptions extends Partial<BuildParams> {
  batchSize?: number;
  /** Published versions whose tables are kept, the current one included. */
  keepVersions?: number;
  /** ANN index type (default chosen by measurement) and its knobs; `minIndexedRows` switches to exact scans. */
  indexType?: LanceIndexType;
  minIndexedRows?: number;
  refineFactor?: number;
  /** Types of the catalogue's product fields (filter columns). */
  fields?: Record<string, StoreFieldType>;
  log?: Logger;
  onProgress?: (progress: { stage: 'embed' | 'index' | 'check'; done: number; total: number }) => void;
  onStage?: (stage: LanceBuildStage, detail: { version: string }) => void | Promise<void>;
  now?: () => Date;
}

export interface LanceBuildReport {
  version: string;
  table: string;
  rows: number;
  index: LanceIndexParams;
  quality: ConditionQuality[];
  timings: Record<string, number>;
  removedTables: string[];
}

/** What the model produced for products [0, n): the shared embedding or one vector per condition (ASEN). */
export interface RawVectors {
  embeddings: Float32Array | null;
  conditionVectors: Float32Array[] | null;
}

function seconds(start: number): number {
  return Math.round((performance.now() - start) / 10) / 100;
}

/** Embed products [from, to) of the source in batches; rows come back in product order. */
export async function embedRange(
  source: BundleSource,
  from: number,
  to: number,
  batchSize: number,
  onProgress?: (done: number, total: number) => void,
): Promise<RawVectors> {
  const D = source.embedDim;
  const n = to - from;
  const asen = source.modelKind === 'asen';
  const raw: RawVectors = {
    embeddings: asen ? null : new Float32Array(n * D),
    conditionVectors: asen ? source.conditions.map(() => new Float32Array(n * D)) : null,
  };
  try {
    for (let begin = from; begin < to; begin += batchSize) {
      const end = Math.min(to, begin + batchSize);
      const indices = Array.from({ length: end - begin }, (_, i) => begin + i);
      const pending = source.embed(indices);
      if (end < to)
        source.prefetch?.(Array.from({ length: Math.min(batchSize, to - end) }, (_, i) => end + i));
      const batch = await pending;
      const rows = (end - begin) * D;
      const at = (begin - from) * D;
      const put = (target: Float32Array, values: Float32Array | undefined, what: string): void => {
        if (values?.length !== rows) {
          throw new BundleError(
            'invalid-input',
            'embed()',
            `returned no or wrong-sized ${what} for ${end - begin} products`,
          );
        }
        target.set(values, at);
      };
      if (raw.embeddings) put(raw.embeddings, batch.embeddings, 'embeddings');
      raw.conditionVectors?.forEach((target, c) =>
        put(target, batch.conditionVectors?.[c], 'condition vectors'),
      );
      onProgress?.(end - from, n);
    }
  } finally {
    await source.finish?.();
  }
  return raw;
}

/** The condition spaces and each condition's rows, exactly as the hnswlib bundle computes them. */
export function projectSpaces(
  source: BundleSource,
  raw: RawVectors,
  threshold: number,
): { spaces: ConditionSpace[]; rows: Float32Array[] } {
  const spaces = source.conditions.map((condition, c) =>
    conditionSpace(condition, source.modelKind, source.masks[c], source.embedDim, threshold),
  );
  const rows = spaces.map((space, c) =>
    projectRows(raw.embeddings ?? raw.conditionVectors![c], source.embedDim, space),
  );
  return { spaces, rows };
}

/** Index parameters for a table of `rows` rows: the type asked for, or exact scans below the threshold. */
export function chooseIndex(rows: number, params: BuildParams, options: LanceBuildOptions): LanceIndexParams {
  const type =
    rows < (options.minIndexedRows ?? MIN_INDEXED_ROWS) ? 'none' : (options.indexType ?? 'hnsw-sq');
  // HNSW-SQ: one partition up to 1M rows keeps one graph (no probing loss); IVF types: ~sqrt(n) lists of ~4k rows.
  const numPartitions =
    type === 'hnsw-sq'
      ? Math.max(1, Math.ceil(rows / 1_000_000))
      : Math.max(1, Math.round(Math.sqrt(rows) / 4));
  return {
    type,
    numPartitions,
    m: params.m,
    efConstruction: params.efConstruction,
    ef: params.efSearch,
    nprobes: type === 'hnsw-sq' ? numPartitions : Math.max(1, Math.ceil(numPartitions / 8)),
    refineFactor: options.refineFactor ?? 4,
  };
}

async function writeTable(
  db: lancedb.Connection,
  name: string,
  meta: TableMetadata,
  products: readonly StoreProduct[],
  projected: { rows: Float32Array[]; embeddings: Float32Array | null },
): Promise<lancedb.Table> {
  const schema = versionSchema(meta);
  const block = { products, vectors: projected.rows, embeddings: projected.embeddings, from: 0, to: 0 };
  let table: lancedb.Table | null = null;
  for (let from = 0; from < products.length; from += WRITE_CHUNK) {
    const data = blockToArrow(schema, meta, {
      ...block,
      from,
      to: Math.min(products.length, from + WRITE_CHUNK),
    });
    if (!table) table = await db.createTable(name, data, { mode: 'create', schema });
    else await table.add(data);
  }
  return table!;
}

async function buildIndexes(
  table: lancedb.Table,
  spaces: readonly ConditionSpace[],
  index: LanceIndexParams,
  onProgress: LanceBuildOptions['onProgress'],
): Promise<void> {
  for (const [c, space] of spaces.entries()) {
    const config = indexConfig(index, space.metric, space.dims.length);
    if (config) await table.createIndex(vectorColumn(c), { config, replace: true });
    onProgress?.({ stage: 'index', done: c + 1, total: spaces.length });
  }
}

/** Recall@k of the table's ANN index against brute force over the same rows, as the hnswlib job measures it. */
function measureQuality(
  input: RecallInput & { table: lancedb.Table; c: number; index: LanceIndexParams },
  params: BuildParams,
  onQuery: () => void,
): Promise<ConditionQuality> {
  const search = async (q: number, vector: Float32Array, k: number): Promise<Neighbour[]> => {
    const found = await annSearch(input.table, {
      c: input.c,
      metric: input.space.metric,
      vector,
      limit: k + 1,
      params: input.index,
    });
    return found
      .filter((hit) => hit.slot !== q)
      .slice(0, k)
      .map((hit) => ({ index: hit.slot, distance: hit.distance }));
  };
  return measureRecall(input, params, new Rng(params.seed + 7919 * input.c), search, onQuery);
}

async function checkQuality(
  table: lancedb.Table,
  source: BundleSource,
  raw: RawVectors,
  projected: { spaces: ConditionSpace[]; rows: Float32Array[] },
  index: LanceIndexParams,
  params: BuildParams,
  onProgress: LanceBuildOptions['onProgress'],
): Promise<ConditionQuality[]> {
  const quality: ConditionQuality[] = [];
  let done = 0;
  const total = projected.spaces.length * Math.min(params.recallSample, source.products.length);
  for (const [c, space] of projected.spaces.entries()) {
    // Every row of the table is live: any may be a query.
    const slots = Array.from({ length: projected.rows[c].length / space.dims.length }, (_, i) => i);
    const full =
      raw.embeddings && source.modelKind === 'csn'
        ? conditionSpace(space.condition, 'csn', source.masks[c], source.embedDim, 0)
        : null;
    const thresholded = full !== null && full.dims.length > space.dims.length;
    quality.push(
      await measureQuality(
        {
          table,
          c,
          space,
          rows: projected.rows[c],
          slots,
          index,
          fullRows: thresholded ? projectRows(raw.embeddings!, source.embedDim, full) : null,
          fullDim: full?.dims.length ?? 0,
        },
        params,
        () => onProgress?.({ stage: 'check', done: ++done, total }),
      ),
    );
  }
  return quality;
}

function spaceRecords(
  spaces: readonly ConditionSpace[],
  rows: readonly Float32Array[],
  params: BuildParams,
): Omit<StoreSpace, 'quality'>[] {
  return spaces.map((space, c) => {
    const live = Array.from({ length: rows[c].length / space.dims.length }, (_, i) => i);
    return { ...space, quantiles: distanceQuantiles(space, rows[c], live, params, c) };
  });
}

export interface VersionInput {
  source: BundleSource;
  raw: RawVectors;
  /** Products with their fields (the source's products, plus fields when the catalogue has them). */
  products: readonly StoreProduct[];
}

/** Write, index, check and publish one version from vectors already computed (full build or shard commit). */
export async function publishLanceVersion(
  uri: string,
  input: VersionInput,
  options: LanceBuildOptions,
  timings: Record<string, number> = {},
): Promise<LanceBuildReport> {
  const { source, raw, products } = input;
  const params = resolveParams(options);
  const db = await lancedb.connect(uri);
  try {
    const version = await nextVersion(db, options.now?.() ?? new Date());
    const stage = async (name: LanceBuildStage): Promise<void> => options.onStage?.(name, { version });
    let start = performance.now();
    const projected = projectSpaces(source, raw, params.maskThreshold);
    const index = chooseIndex(products.length, params, options);
    // Without a schema from the caller, the types follow from the stored values (the bundle's rule, bundle.ts).
    const fields = options.fields ?? deriveFieldSchema(products);
    const meta: TableMetadata = {
      version,
      createdAt: (options.now?.() ?? new Date()).toISOString(),
      model: { id: source.modelId, kind: source.modelKind, embedDim: source.embedDim },
      catalogue: source.catalogue ?? null,
      conditions: [...source.conditions],
      masks: source.masks.map((row) => [...row]),
      params,
      spaces: spaceRecords(projected.spaces, projected.rows, params),
      fields,
      fieldOrder: Object.keys(fields).sort(),
      rows: products.length,
      index,
    };
    const table = await writeTable(db, versionTableName(version), meta, products, {
      rows: projected.rows,
      embeddings: raw.embeddings,
    });
    timings.write = seconds(start);
    await stage('written');
    try {
      start = performance.now();
      await buildIndexes(table, projected.spaces, index, options.onProgress);
      timings.index = seconds(start);
      await stage('indexed');
      start = performance.now();
      const quality = await checkQuality(table, source, raw, projected, index, params, options.onProgress);
      timings.check = seconds(start);
      await stage('checked');
      if (quality.some((q) => failsRecall(q, params.minRecall))) {
        await db.dropTable(versionTableName(version));
        throw new IndexQualityError(quality, params.minRecall);
      }
      const info: StoreInfo = {
        ...meta,
        spaces: meta.spaces.map((space, c) => ({ ...space, quality: quality[c] })),
      };
      await publishVersion(db, info);
      await stage('published');
      const removedTables = await collectLanceGarbage(db, options.keepVersions ?? 3);
      options.log?.info(
        { version, rows: products.length, index: index.type, removed: removedTables },
        'published LanceDB version',
      );
      return {
        version,
        table: versionTableName(version),
        rows: products.length,
        index,
        quality,
        timings,
        removedTables,
      };
    } finally {
      table.close();
    }
  } finally {
    db.close();
  }
}

/** Full build: embed every product of the source, then write, index, check and publish one version. */
export async function buildLanceStore(
  uri: string,
  source: BundleSource,
  options: LanceBuildOptions & { products?: readonly StoreProduct[] } = {},
): Promise<LanceBuildReport> {
  if (source.products.length === 0)
    throw new BundleError('invalid-input', uri, 'the catalogue has no products to index');
  const timings: Record<string, number> = {};
  const start = performance.now();
  const raw = await embedRange(source, 0, source.products.length, options.batchSize ?? 64, (done, total) =>
    options.onProgress?.({ stage: 'embed', done, total }),
  );
  timings.embed = seconds(start);
  return publishLanceVersion(
    uri,
    { source, raw, products: options.products ?? source.products },
    options,
    timings,
  );
}
