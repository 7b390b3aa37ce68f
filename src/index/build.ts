/**
 * The index job's core, independent of the model: turn product vectors into a new bundle version and publish it.
 *
 * Crash safety: a version is written into `versions/.tmp-<version>/` (every file fsynced, version.json last), the
 * directory is renamed to `versions/<version>/`, and only then is manifest.json replaced atomically. Until that last
 * rename the previous manifest, and so the previous version, is what readers see; a killed job leaves at most a
 * temp or unpublished directory, which the next job removes. A lock keeps two jobs from building at once. The lock,
 * version names, publishing and garbage collection are lifecycle.ts; the slot plan is layout.ts.
 */
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory } from '../util/atomic.ts';
import type { Logger } from '../util/log.ts';
import { Rng } from '../util/rng.ts';
import { loadVersion, type IndexBundle } from './bundle.ts';
import { BUILD_DEFAULTS, DEFAULT_PARAMS } from './defaults.ts';
import {
  conditionFileStem,
  floatBytes,
  readManifest,
  syncAndHash,
  versionsPath,
  writeDurable,
} from './files.ts';
import { RowReader, searchIndex, yieldToEventLoop, type HnswIndex } from './hnsw.ts';
import { fieldsChanged, fullLayout, incompatibility, incrementalLayout, type Layout } from './layout.ts';
import { collectGarbage, holdLock, nextVersionName, publishVersion } from './lifecycle.ts';
import { SlotVectors } from './slot-vectors.ts';
import { distanceQuantiles, measureRecall, type RecallInput } from './quality.ts';
import { buildConditionIndexes, startIndexBuilders, type IndexBuilders } from './parallel-build.ts';
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  BundleError,
  EMBEDDINGS_FILE,
  MODEL_FILE,
  IndexQualityError,
  failsRecall,
  PRODUCTS_FILE,
  TEMP_PREFIX,
  VERSION_FILE,
  type BuildParams,
  type BundleSource,
  type ChangeSummary,
  type ConditionQuality,
  type FileRecord,
  type Manifest,
  type SpaceRecord,
  type VersionInfo,
} from './types.ts';
import { conditionSpace, projectRows } from './vectors.ts';
import type { ConditionSpace } from '../model/index.ts';

export type BuildStage = 'locked' | 'embedded' | 'indexed' | 'files-written' | 'renamed' | 'published';

export interface BuildProgress {
  stage: 'embed' | 'index' | 'check';
  done: number;
  total: number;
  condition?: string;
}

export interface BuildOptions extends Partial<BuildParams> {
  /** Re-embed only new and changed products and edit the current version's indexes (default: full rebuild). */
  incremental?: boolean;
  /** Products per embed() call. */
  batchSize?: number;
  /** Published versions kept on disk, the current one included. */
  keepVersions?: number;
  /** Incremental runs rebuild the slot table without holes once removed slots exceed this share. */
  compactRatio?: number;
  /** A lock not refreshed for this long belongs to a dead job and is taken over. */
  lockStaleMs?: number;
  log?: Logger;
  onProgress?: (progress: BuildProgress) => void;
  /** Called after each step of the build (tests use it to kill the job at precise points). */
  onStage?: (stage: BuildStage, detail: { version: string; dir: string }) => void | Promise<void>;
  now?: () => Date;
}

export interface BuildReport {
  /** False when an incremental run found nothing to change (nothing is written then). */
  published: boolean;
  version: string | null;
  previousVersion: string | null;
  mode: 'full' | 'incremental';
  /** Why an incremental run had to rebuild everything. */
  fallbackReason: string | null;
  changes: ChangeSummary;
  embedded: number;
  quality: ConditionQuality[];
  spaces: { condition: string; metric: ConditionSpace['metric']; keptDims: number; totalDims: number }[];
  timings: Record<string, number>;
  removedVersions: string[];
}

export function resolveParams(options: Partial<BuildParams>): BuildParams {
  const params = { ...DEFAULT_PARAMS };
  for (const key of Object.keys(DEFAULT_PARAMS) as (keyof BuildParams)[]) {
    const value = options[key];
    if (value !== undefined) params[key] = value;
  }
  const positive: (keyof BuildParams)[] = [
    'm',
    'efConstruction',
    'efSearch',
    'recallK',
    'recallSample',
    'quantilePairs',
  ];
  for (const key of positive) {
    if (!Number.isInteger(params[key]) || params[key] < 1) {
      throw new RangeError(`${key} must be a positive integer, got ${params[key]}`);
    }
  }
  if (params.m < 2) throw new RangeError(`m must be at least 2, got ${params.m}`);
  if (!(params.maskThreshold >= 0 && params.maskThreshold <= 1)) {
    throw new RangeError(`maskThreshold must be in [0, 1], got ${params.maskThreshold}`);
  }
  if (!(params.minRecall >= 0 && params.minRecall <= 1)) {
    throw new RangeError(`minRecall must be in [0, 1], got ${params.minRecall}`);
  }
  return params;
}

function validateSource(source: BundleSource, bundleDir: string): void {
  const fail = (message: string): never => {
    throw new BundleError('invalid-input', bundleDir, message);
  };
  if (source.products.length === 0) fail('the catalogue has no products to index');
  if (source.conditions.length === 0) fail('the model has no conditions');
  if (source.masks.length !== source.conditions.length) {
    fail(`${source.masks.length} masks for ${source.conditions.length} conditions`);
  }
  if (new Set(source.conditions).size !== source.conditions.length) fail('duplicate condition names');
  const seen = new Set<string>();
  for (const product of source.products) {
    if (seen.has(product.id)) fail(`duplicate product id ${JSON.stringify(product.id)}`);
    seen.add(product.id);
  }
}

function seconds(start: number): number {
  return Math.round((performance.now() - start) / 10) / 100;
}

/** Recall@k of the HNSW index against brute force on sampled queries (and of the subspace against the full mask). */
function measureQuality(
  input: RecallInput & { index: HnswIndex; slots: number[] },
  params: BuildParams,
  rng: Rng,
  onQuery: () => void,
): Promise<ConditionQuality> {
  const reader = new RowReader(input.rows, input.space.dims.length);
  const live = input.slots.length;
  const search = (q: number, _query: Float32Array, k: number) =>
    searchIndex(input.index, input.space.metric, reader.row(q), k, {
      ef: params.efSearch,
      live,
      exclude: new Set([q]),
    });
  return measureRecall(input, params, rng, search, onQuery);
}

/**
 * Build a new version of the bundle at `bundleDir` from `source` and publish it. Full rebuild by default;
 * `incremental` edits a copy of the current version (falling back to a full rebuild, with the reason in the report,
 * when there is none or it was built from another model or parameters). Throws IndexQualityError, without
 * publishing, when any condition's HNSW or subspace recall is under `minRecall`.
 */
export async function buildBundle(
  bundleDir: string,
  source: BundleSource,
  options: BuildOptions = {},
): Promise<BuildReport> {
  const params = resolveParams(options);
  validateSource(source, bundleDir);
  const keep = options.keepVersions ?? BUILD_DEFAULTS.keepVersions;
  if (!Number.isInteger(keep) || keep < 1)
    throw new RangeError(`keepVersions must be at least 1, got ${keep}`);

  await mkdir(versionsPath(bundleDir), { recursive: true });
  const lock = await holdLock(bundleDir, options.lockStaleMs ?? 10_000);
  let build: Build | undefined;
  try {
    build = await startBuild(bundleDir, source, options, params);
    const { previous, layout, manifest } = build;
    const changed = layout.changes.added + layout.changes.updated + layout.changes.removed > 0;
    if (previous && !changed && !fieldsChanged(previous, layout.slots)) {
      options.log?.info({ version: manifest?.current }, 'index is up to date: nothing to publish');
      const quality = previous.spaces.map((s) => s.quality);
      return { ...buildReport(build, false, quality, []), version: manifest?.current ?? null };
    }
    // A full build's HNSW workers load while this thread embeds (0.3–1.3 s each, parallel-build.ts).
    const full = !(layout.inPlace && previous);
    build.builders = full ? startIndexBuilders(build.spaces.length, build.liveSlots.length) : null;
    const vectors = await embedVectors(build);
    const indexes = await buildIndexes(build, vectors);
    const { quality, spaceRecords } = await checkQuality(build, vectors, indexes);
    const infoText = await writeVersion(build, vectors, indexes, spaceRecords);
    const built = build;
    await publishVersion(built, infoText, lock, (name) => stage(built, name));
    const removedVersions = await collectGarbage(bundleDir, build.version, keep);
    options.log?.info(
      { version: build.version, mode: build.mode, removed: removedVersions },
      'published index version',
    );
    return buildReport(build, true, quality, removedVersions);
  } finally {
    await build?.builders?.close();
    const tempDir = build?.tempDir;
    if (tempDir) await rm(tempDir, { recursive: true, force: true }).catch(() => undefined);
    await lock.release().catch(() => undefined);
  }
}

/** One build in progress: its inputs, the version it writes, the slot plan and the spaces it indexes. */
interface Build {
  bundleDir: string;
  source: BundleSource;
  options: BuildOptions;
  params: BuildParams;
  timings: Record<string, number>;
  manifest: Manifest | null;
  version: string;
  /** The version's temp directory until it is renamed into place (null after). */
  tempDir: string | null;
  previous: IndexBundle | null;
  fallbackReason: string | null;
  mode: 'full' | 'incremental';
  spaces: ConditionSpace[];
  layout: Layout;
  live: Uint8Array;
  liveSlots: number[];
  /** HNSW build workers of a full build, started before embedding. */
  builders: IndexBuilders | null;
}

/** Tell the caller a step is done (tests kill the job at these points). */
async function stage(build: Build, name: BuildStage): Promise<void> {
  await build.options.onStage?.(name, { version: build.version, dir: build.tempDir ?? '' });
}

/** With the lock held: the current manifest, leftovers of killed jobs removed, the new version's name and plan. */
async function startBuild(
  bundleDir: string,
  source: BundleSource,
  options: BuildOptions,
  params: BuildParams,
): Promise<Build> {
  const log = options.log;
  let manifest: Manifest | null = null;
  let manifestProblem: string | null = null;
  try {
    manifest = await readManifest(bundleDir);
  } catch (error) {
    manifestProblem = (error as Error).message;
    log?.warn({ err: error }, 'the current manifest is unreadable; a full rebuild replaces it');
  }
  const leftovers = await collectGarbage(bundleDir, manifest?.current ?? null, Number.MAX_SAFE_INTEGER);
  if (leftovers.length > 0) log?.info({ removed: leftovers }, 'removed leftovers of interrupted index jobs');
  const version = await nextVersionName(bundleDir, manifest, options.now?.() ?? new Date());
  const tempDir = join(versionsPath(bundleDir), `${TEMP_PREFIX}${version}`);
  await options.onStage?.('locked', { version, dir: tempDir });

  const { previous, fallbackReason } = options.incremental
    ? await previousVersion(bundleDir, source, params, manifest, manifestProblem, log)
    : { previous: null, fallbackReason: null };
  const spaces = source.conditions.map((condition, c) =>
    conditionSpace(condition, source.modelKind, source.masks[c], source.embedDim, params.maskThreshold),
  );
  const layout = previous
    ? incrementalLayout(previous, source.products, options.compactRatio ?? 0.25)
    : fullLayout(source.products);
  return {
    bundleDir,
    source,
    options,
    params,
    timings: {},
    manifest,
    version,
    tempDir,
    previous,
    fallbackReason,
    mode: previous ? 'incremental' : 'full',
    spaces,
    layout,
    live: Uint8Array.from(layout.slots, (p) => (p ? 1 : 0)),
    liveSlots: layout.slots.flatMap((p, slot) => (p ? [slot] : [])),
    builders: null,
  };
}

/** The version an incremental run edits, or why it cannot (then everything is rebuilt). */
async function previousVersion(
  bundleDir: string,
  source: BundleSource,
  params: BuildParams,
  manifest: Manifest | null,
  manifestProblem: string | null,
  log: Logger | undefined,
): Promise<{ previous: IndexBundle | null; fallbackReason: string | null }> {
  let previous: IndexBundle | null = null;
  let fallbackReason: string | null;
  if (manifestProblem) fallbackReason = `the manifest cannot be read (${manifestProblem})`;
  else if (!manifest) fallbackReason = 'nothing published yet';
  else {
    try {
      previous = await loadVersion(bundleDir, manifest.current, manifest.versionSha256);
      fallbackReason = incompatibility(previous.info, source, params);
    } catch (error) {
      if (!(error instanceof BundleError)) throw error;
      fallbackReason = `the current version cannot be read (${error.message})`;
    }
    if (fallbackReason) previous = null;
  }
  if (fallbackReason)
    log?.warn({ reason: fallbackReason }, 'incremental update impossible: rebuilding everything');
  return { previous, fallbackReason };
}

function buildReport(
  build: Build,
  published: boolean,
  quality: ConditionQuality[],
  removedVersions: string[],
): BuildReport {
  const { layout, source } = build;
  return {
    published,
    version: published ? build.version : null,
    previousVersion: build.manifest?.current ?? null,
    mode: build.mode,
    fallbackReason: build.fallbackReason,
    changes: layout.changes,
    embedded: layout.toEmbed.length,
    quality,
    spaces: build.spaces.map((space) => ({
      condition: space.condition,
      metric: space.metric,
      keptDims: space.dims.length,
      totalDims: source.embedDim,
    })),
    timings: build.timings,
    removedVersions,
  };
}

/** Step 1. Vectors for every slot: copied from the previous version or embedded now. */
async function embedVectors(build: Build): Promise<SlotVectors> {
  const { source, layout, options, previous } = build;
  const batchSize = options.batchSize ?? BUILD_DEFAULTS.batchSize;
  const start = performance.now();
  const vectors = new SlotVectors(source, build.spaces, layout.slots.length);
  const embeddedSlot = new Int32Array(layout.toEmbed.length);
  layout.sources.forEach((from, slot) => {
    if (from && 'previous' in from) vectors.copyFromPrevious(previous!, from.previous, slot);
    else if (from) embeddedSlot[from.embedded] = slot;
  });
  options.onProgress?.({ stage: 'embed', done: 0, total: layout.toEmbed.length });
  try {
    for (let begin = 0; begin < layout.toEmbed.length; begin += batchSize) {
      const end = Math.min(layout.toEmbed.length, begin + batchSize);
      const pending = source.embed(layout.toEmbed.slice(begin, end));
      if (end < layout.toEmbed.length) source.prefetch?.(layout.toEmbed.slice(end, end + batchSize));
      const batch = await pending;
      vectors.put(batch, Array.from(embeddedSlot.subarray(begin, end)), build.bundleDir);
      options.onProgress?.({ stage: 'embed', done: end, total: layout.toEmbed.length });
    }
  } finally {
    await source.finish?.();
  }
  build.timings.embed = seconds(start);
  await stage(build, 'embedded');
  return vectors;
}

/** Step 2. One HNSW index per condition: edited in place (incremental) or built from scratch. */
async function buildIndexes(build: Build, vectors: SlotVectors): Promise<HnswIndex[]> {
  const { layout, previous, options } = build;
  const start = performance.now();
  const indexes: HnswIndex[] = [];
  // A full build makes every condition's index at once, in worker threads (parallel-build.ts).
  const built = layout.inPlace && previous ? null : await buildAllConditions(build, vectors);
  for (const [c, space] of build.spaces.entries()) {
    const d = space.dims.length;
    const progress = (done: number, total: number): void =>
      options.onProgress?.({ stage: 'index', done, total, condition: space.condition });
    if (layout.inPlace && previous) {
      indexes.push(
        await editIndex(previous.editableIndex(c), layout, new RowReader(vectors.rows[c], d), progress),
      );
    } else {
      indexes.push(built![c]);
    }
  }
  build.timings.index = seconds(start);
  await stage(build, 'indexed');
  return indexes;
}

/** Every condition's index from scratch, in parallel; progress is one count over all conditions. */
async function buildAllConditions(build: Build, vectors: SlotVectors): Promise<HnswIndex[]> {
  const { spaces, liveSlots, options } = build;
  const done = spaces.map(() => 0);
  const condition = spaces.map((space) => space.condition).join(', ');
  return buildConditionIndexes(
    spaces.map((space, c) => ({ rows: vectors.rows[c], d: space.dims.length, metric: space.metric })),
    liveSlots,
    build.params,
    {
      builders: build.builders,
      onProgress: (c, count) => {
        done[c] = count;
        const total = liveSlots.length * spaces.length;
        options.onProgress?.({ stage: 'index', done: done.reduce((a, b) => a + b, 0), total, condition });
      },
    },
  );
}

/** The previous version's index with removed slots marked deleted and new or changed slots (re)added. */
async function editIndex(
  index: HnswIndex,
  layout: Layout,
  reader: RowReader,
  progress: (done: number, total: number) => void,
): Promise<HnswIndex> {
  if (layout.slots.length > index.getMaxElements()) index.resizeIndex(Math.ceil(layout.slots.length * 1.1));
  for (const slot of layout.remove) index.markDelete(slot);
  for (let j = 0; j < layout.upsert.length; j++) {
    index.addPoint(reader.row(layout.upsert[j]), layout.upsert[j]);
    if (j % 512 === 511) {
      progress(j + 1, layout.upsert.length);
      await yieldToEventLoop();
    }
  }
  progress(layout.upsert.length, layout.upsert.length);
  return index;
}

/** Step 3. Quality gate and distance quantiles; throws IndexQualityError when a condition's recall is too low. */
async function checkQuality(
  build: Build,
  vectors: SlotVectors,
  indexes: HnswIndex[],
): Promise<{ quality: ConditionQuality[]; spaceRecords: SpaceRecord[] }> {
  const { params, options } = build;
  const start = performance.now();
  const quality: ConditionQuality[] = [];
  const spaceRecords: SpaceRecord[] = [];
  let checked = 0;
  const totalQueries = build.spaces.length * Math.min(params.recallSample, build.liveSlots.length);
  for (const [c, space] of build.spaces.entries()) {
    const onQuery = () =>
      options.onProgress?.({
        stage: 'check',
        done: ++checked,
        total: totalQueries,
        condition: space.condition,
      });
    const record = await checkCondition(build, vectors, indexes[c], c, onQuery);
    quality.push(record.quality);
    spaceRecords.push(record);
  }
  build.timings.check = seconds(start);
  if (quality.some((q) => failsRecall(q, params.minRecall))) {
    throw new IndexQualityError(quality, params.minRecall);
  }
  return { quality, spaceRecords };
}

/** Recall of one condition's index (and, for a thresholded CSN mask, of its subspace) and its distance quantiles. */
async function checkCondition(
  build: Build,
  vectors: SlotVectors,
  index: HnswIndex,
  c: number,
  onQuery: () => void,
): Promise<SpaceRecord> {
  const { source, params, liveSlots } = build;
  const space = build.spaces[c];
  const fullSpace =
    vectors.embeddings && source.modelKind === 'csn'
      ? conditionSpace(space.condition, 'csn', source.masks[c], source.embedDim, 0)
      : null;
  const thresholded = fullSpace !== null && fullSpace.dims.length > space.dims.length;
  const quality = await measureQuality(
    {
      space,
      rows: vectors.rows[c],
      index,
      live: build.live,
      slots: liveSlots,
      fullRows: thresholded ? projectRows(vectors.embeddings!, source.embedDim, fullSpace) : null,
      fullDim: fullSpace?.dims.length ?? 0,
    },
    params,
    new Rng(params.seed + 7919 * c),
    onQuery,
  );
  const stem = conditionFileStem(space.condition, c);
  return {
    ...space,
    indexFile: `${stem}.hnsw`,
    vectorsFile: `vectors-${stem}.f32`,
    quantiles: distanceQuantiles(space, vectors.rows[c], liveSlots, params, c),
    quality,
  };
}

/** Step 4. Write the version into its temp directory, every file fsynced, version.json last. Returns its text. */
async function writeVersion(
  build: Build,
  vectors: SlotVectors,
  indexes: HnswIndex[],
  spaceRecords: SpaceRecord[],
): Promise<string> {
  const tempDir = build.tempDir!;
  const start = performance.now();
  await mkdir(tempDir);
  const files: Record<string, FileRecord> = {};
  files[PRODUCTS_FILE] = await writeDurable(
    join(tempDir, PRODUCTS_FILE),
    JSON.stringify({ slots: build.layout.slots }),
  );
  if (vectors.embeddings) {
    files[EMBEDDINGS_FILE] = await writeDurable(
      join(tempDir, EMBEDDINGS_FILE),
      floatBytes(vectors.embeddings),
    );
  }
  for (const [c, record] of spaceRecords.entries()) {
    files[record.vectorsFile] = await writeDurable(
      join(tempDir, record.vectorsFile),
      floatBytes(vectors.rows[c]),
    );
    await indexes[c].writeIndex(join(tempDir, record.indexFile));
    files[record.indexFile] = await syncAndHash(join(tempDir, record.indexFile));
  }
  if (build.source.checkpointFile) {
    await copyFile(build.source.checkpointFile, join(tempDir, MODEL_FILE));
    files[MODEL_FILE] = await syncAndHash(join(tempDir, MODEL_FILE));
  }
  build.timings.write = seconds(start);
  const info = versionInfo(build, spaceRecords, files, vectors.embeddings !== null);
  const infoText = `${JSON.stringify(info, null, 1)}\n`;
  await writeDurable(join(tempDir, VERSION_FILE), infoText);
  await fsyncDirectory(tempDir);
  await stage(build, 'files-written');
  return infoText;
}

function versionInfo(
  build: Build,
  spaceRecords: SpaceRecord[],
  files: Record<string, FileRecord>,
  hasEmbeddings: boolean,
): VersionInfo {
  const { source, options, layout } = build;
  return {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    version: build.version,
    createdAt: (options.now?.() ?? new Date()).toISOString(),
    mode: build.mode,
    previousVersion: build.manifest?.current ?? null,
    model: {
      id: source.modelId,
      kind: source.modelKind,
      embedDim: source.embedDim,
      ...(source.checkpointFile ? { checkpoint: MODEL_FILE } : {}),
    },
    provenance: source.provenance ?? null,
    catalogue: source.catalogue ?? null,
    conditions: [...source.conditions],
    masks: source.masks.map((row) => [...row]),
    slots: layout.slots.length,
    live: build.liveSlots.length,
    params: build.params,
    spaces: spaceRecords,
    embeddingsFile: hasEmbeddings ? EMBEDDINGS_FILE : null,
    productsFile: PRODUCTS_FILE,
    changes: layout.changes,
    timings: build.timings,
    files,
  };
}
