/**
 * The index job for a LanceDB store: embed (or collect the shards' embeddings), write one version table of
 * products and per-condition vectors (projected with the same mask threshold as the hnswlib bundle), build the
 * hnswlib bundle from those vectors next to the tables (`<uri>/bundles`, lance-bundle.ts: the same build, recall
 * gate and files as a single machine's, conditions in parallel worker threads), then publish with one manifest
 * append naming the version and its bundle (lance-manifest.ts). Replicas load that bundle into memory.
 *
 * Everything from naming the version to collecting garbage runs under the bundle's lock, so two jobs never publish
 * at once; the version table, the bundle version and the manifest row share one version name.
 */
import { deriveFieldSchema } from '../../catalogue/index.ts';
import * as lancedb from '@lancedb/lancedb';
import type { ConditionSpace } from '../../model/index.ts';
import type { Logger } from '../../util/log.ts';
import { buildBundle, resolveParams, type BuildStage } from '../build.ts';
import { readPublishedInfo } from '../bundle.ts';
import { readManifest, versionSequence } from '../files.ts';
import {
  BundleError,
  IndexQualityError,
  type BuildParams,
  type BundleSource,
  type ConditionQuality,
  type VersionInfo,
} from '../types.ts';
import { conditionSpace, projectRows } from '../vectors.ts';
import { distanceQuantiles } from '../quality.ts';
import {
  BUNDLES_DIR,
  bundleDirOf,
  collectBundleGarbage,
  precomputedSource,
  type RawVectors,
} from './lance-bundle.ts';
import { collectLanceGarbage, currentManifestRow, publishVersion } from './lance-manifest.ts';
import { blockToArrow, versionSchema, versionTableName, type TableMetadata } from './lance-schema.ts';
import type { StoreFieldType, StoreInfo, StoreProduct, StoreSpace } from './types.ts';

/** Rows per Arrow batch written: ~50k rows x 6 conditions x 16 dims is ~20 MB, small next to the vectors held. */
const WRITE_CHUNK = 50_000;

/** Products per copy when the bundle build takes the precomputed vectors (a copy, not a model call). */
const PRECOMPUTED_BATCH = 16_384;

/**
 * Steps of the job, in order (tests kill it at each): model outputs ready, version table written, bundle indexes
 * built, bundle checked and written, bundle version published in its directory, manifest row appended.
 */
export type LanceBuildStage = 'embedded' | 'written' | 'indexed' | 'checked' | 'bundled' | 'published';

export interface LanceBuildOptions extends Partial<BuildParams> {
  batchSize?: number;
  /** Published versions whose tables and bundle versions are kept, the current one included. */
  keepVersions?: number;
  /** A bundle lock not refreshed for this long belongs to a dead job and is taken over. */
  lockStaleMs?: number;
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
  /** The bundle directory replicas load the version from. */
  bundle: string;
  rows: number;
  quality: ConditionQuality[];
  timings: Record<string, number>;
  removedTables: string[];
  removedBundleVersions: string[];
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

async function writeTable(
  db: lancedb.Connection,
  name: string,
  meta: TableMetadata,
  products: readonly StoreProduct[],
  projected: { rows: Float32Array[]; embeddings: Float32Array | null },
): Promise<void> {
  const schema = versionSchema(meta);
  const block = { products, vectors: projected.rows, embeddings: projected.embeddings, from: 0, to: 0 };
  let table: lancedb.Table | null = null;
  for (let from = 0; from < products.length; from += WRITE_CHUNK) {
    const data = blockToArrow(schema, meta, {
      ...block,
      from,
      to: Math.min(products.length, from + WRITE_CHUNK),
    });
    // Overwrite: a table of this name can only be a killed job's (its version was never published).
    if (!table) table = await db.createTable(name, data, { mode: 'overwrite', schema });
    else await table.add(data);
  }
  table!.close();
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

/** The manifest row's description of a version: the bundle's version.json, with the catalogue's field types. */
function storeInfoOf(info: VersionInfo, fields: Record<string, StoreFieldType>): StoreInfo {
  const { version, createdAt, model, catalogue, conditions, masks, params, spaces, provenance } = info;
  return { version, createdAt, model, catalogue, conditions, masks, params, spaces, fields, provenance };
}

/**
 * A version must sort after the published one (readers take the highest): a database whose bundle directory is
 * missing or older than its manifest cannot get one.
 */
async function checkSequence(db: lancedb.Connection, uri: string, version: string): Promise<void> {
  const current = await currentManifestRow(db);
  if (current && current.sequence >= versionSequence(version)) {
    throw new BundleError(
      'invalid-input',
      uri,
      `publishes version ${current.version}, but its bundle directory would name the next one ${version}: ` +
        `the ${BUNDLES_DIR} directory is missing or older than the manifest; publish into a new --uri`,
    );
  }
}

/** The version table: products with their labels and fields, and each condition's vectors. */
async function writeVersionTable(
  db: lancedb.Connection,
  version: string,
  input: VersionInput,
  params: BuildParams,
  fields: Record<string, StoreFieldType>,
  now: Date,
): Promise<void> {
  const { source, raw, products } = input;
  const projected = projectSpaces(source, raw, params.maskThreshold);
  const meta: TableMetadata = {
    version,
    createdAt: now.toISOString(),
    model: { id: source.modelId, kind: source.modelKind, embedDim: source.embedDim },
    catalogue: source.catalogue ?? null,
    conditions: [...source.conditions],
    masks: source.masks.map((row) => [...row]),
    params,
    spaces: spaceRecords(projected.spaces, projected.rows, params),
    fields,
    fieldOrder: Object.keys(fields).sort(),
    rows: products.length,
  };
  await writeTable(db, versionTableName(version), meta, products, {
    rows: projected.rows,
    embeddings: raw.embeddings,
  });
}

/**
 * The bundle version is in place and its own manifest names it; a row in the database's manifest makes it the
 * version replicas serve.
 */
async function nameBundledVersion(
  db: lancedb.Connection,
  bundleDir: string,
  version: string,
  fields: Record<string, StoreFieldType>,
): Promise<void> {
  const manifest = await readManifest(bundleDir);
  const { info } = await readPublishedInfo(bundleDir);
  if (manifest?.current !== version || info.version !== version)
    throw new BundleError('corrupt', bundleDir, `the bundle does not publish ${version}`);
  await publishVersion(db, storeInfoOf(info, fields), {
    dir: BUNDLES_DIR,
    versionSha256: manifest.versionSha256,
  });
}

/**
 * Write the version table, build the bundle from the same vectors, and publish the version (full build or shard
 * commit). A failed recall gate drops the table and publishes nothing (IndexQualityError).
 */
export async function publishLanceVersion(
  uri: string,
  input: VersionInput,
  options: LanceBuildOptions,
  timings: Record<string, number> = {},
): Promise<LanceBuildReport> {
  const { source, raw, products } = input;
  const params = resolveParams(options);
  const keep = options.keepVersions ?? 3;
  const bundleDir = bundleDirOf(uri);
  // Without a schema from the caller, the types follow from the stored values (the bundle's rule, bundle.ts).
  const fields = options.fields ?? deriveFieldSchema(products);
  const db = await lancedb.connect(uri);
  let written: string | null = null;
  let removedTables: string[] = [];
  let removedBundleVersions: string[] = [];
  let start = performance.now();
  const onStage = async (name: BuildStage, { version }: { version: string }): Promise<void> => {
    const stage = async (lance: LanceBuildStage): Promise<void> => options.onStage?.(lance, { version });
    if (name === 'locked') {
      await checkSequence(db, uri, version);
      start = performance.now();
      await writeVersionTable(db, version, input, params, fields, options.now?.() ?? new Date());
      written = versionTableName(version);
      timings.write = seconds(start);
      await stage('written');
    } else if (name === 'indexed') await stage('indexed');
    else if (name === 'files-written') await stage('checked');
    else if (name === 'published') {
      await stage('bundled');
      await nameBundledVersion(db, bundleDir, version, fields);
      await stage('published');
      const garbage = await collectLanceGarbage(db, keep);
      removedTables = garbage.removed;
      removedBundleVersions = await collectBundleGarbage(bundleDir, version, garbage.kept);
    }
  };
  try {
    const bundleStart = performance.now();
    const report = await buildBundle(bundleDir, precomputedSource(source, raw, products), {
      ...params,
      batchSize: PRECOMPUTED_BATCH,
      // Bundle versions go with the manifest rows kept (collectBundleGarbage), not with the bundle's own count.
      keepVersions: Number.MAX_SAFE_INTEGER,
      lockStaleMs: options.lockStaleMs,
      log: options.log,
      now: options.now,
      onProgress: (progress) =>
        progress.stage !== 'embed' &&
        options.onProgress?.({ stage: progress.stage, done: progress.done, total: progress.total }),
      onStage,
    });
    // The bundle build's own time: the table is written inside it, under its lock.
    timings.bundle = Math.round((seconds(bundleStart) - (timings.write ?? 0)) * 100) / 100;
    for (const key of ['index', 'check'] as const) timings[key] = report.timings[key];
    const version = report.version!;
    options.log?.info(
      { version, rows: products.length, removedTables, removedBundleVersions },
      'published LanceDB version and its bundle',
    );
    return {
      version,
      table: versionTableName(version),
      bundle: bundleDir,
      rows: products.length,
      quality: report.quality,
      timings,
      removedTables,
      removedBundleVersions,
    };
  } catch (error) {
    if (error instanceof IndexQualityError && written) await db.dropTable(written).catch(() => undefined);
    throw error;
  } finally {
    db.close();
  }
}

/** Full build: embed every product of the source, then write, bundle and publish one version. */
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
