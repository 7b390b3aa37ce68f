/**
 * `index` (build and publish a bundle version, full or incremental), `index-info` (what a bundle holds, verified)
 * and `index-query` (nearest neighbours of a product from the command line). Heavy modules load inside the actions.
 */
import type { Command, Option } from 'commander';
import { DEMO_DATA_DIR } from '../catalogue/defaults.ts';
import { DEMO_CHECKPOINT } from '../checkpoint/defaults.ts';
import { BACKEND_OPTION } from '../model/defaults.ts';
import type { Catalogue } from '../catalogue/index.ts';
import type { SimilarityModel } from '../model/index.ts';
import { runCommand } from '../util/cli.ts';
import { addOptions, commanderOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';
import type { Logger } from '../util/log.ts';
import { formatTable } from '../util/table.ts';
import type { BuildReport } from './build.ts';
import { BUILD_DEFAULTS, DEFAULT_PARAMS, DEMO_BUNDLE_DIR } from './defaults.ts';
import type { ProgressFactory } from '../util/progress.ts';
import { stageBars } from './progress.ts';
import { STORE_KINDS, type StoreKind } from './defaults.ts';

/** A share in [0, 1], as the fraction parser asks. */
const SHARE = { check: (n: number) => n >= 0 && n <= 1, rule: 'a number in [0, 1]' };
import type { BundleSource, ConditionQuality } from './types.ts';

export function qualityTable(quality: ConditionQuality[], dims: Map<string, string>): string {
  return formatTable(
    [
      'condition',
      'dims',
      `recall@${quality[0]?.k ?? 10}`,
      'subspace recall',
      'HNSW ms',
      'exact ms',
      'speed-up',
    ],
    quality.map((q) => [
      q.condition,
      dims.get(q.condition) ?? '-',
      q.recall.toFixed(3),
      q.subspaceRecall === null ? '-' : q.subspaceRecall.toFixed(3),
      q.hnswMs.toFixed(3),
      q.exactMs.toFixed(3),
      q.hnswMs > 0 ? `${(q.exactMs / q.hnswMs).toFixed(1)}x` : '-',
    ]),
  );
}

function describeReport(report: BuildReport, imagesPerSecond: number): string {
  const dims = new Map(report.spaces.map((s) => [s.condition, `${s.keptDims}/${s.totalDims} ${s.metric}`]));
  const c = report.changes;
  const what =
    report.mode === 'full'
      ? `full rebuild of ${c.added} products${report.fallbackReason ? ` (incremental impossible: ${report.fallbackReason})` : ''}`
      : `incremental: ${c.added} added, ${c.updated} updated, ${c.removed} removed, ${c.unchanged} unchanged${c.compacted ? ', compacted' : ''}`;
  const speed =
    report.embedded > 0
      ? `, ${report.embedded} embedded${imagesPerSecond > 0 ? ` at ${imagesPerSecond.toFixed(1)} images/s` : ''}`
      : '';
  const head = report.published
    ? `published index version ${report.version} (${what}${speed})`
    : `index ${report.version} is up to date: no product changed`;
  const timing = Object.entries(report.timings)
    .map(([stage, s]) => `${stage} ${s}s`)
    .join(', ');
  return [
    head,
    '',
    qualityTable(report.quality, dims),
    '',
    timing ? `time: ${timing}` : '',
    report.removedVersions.length > 0 ? `removed old versions: ${report.removedVersions.join(', ')}` : '',
  ]
    .filter((line, i, all) => line !== '' || (i > 0 && all[i - 1] !== ''))
    .join('\n');
}

/** Where a store lives: a hnswlib bundle, or a LanceDB database with its bundle (the index job and the service both ask). */
export const STORE_OPTIONS = {
  store: {
    type: 'choice',
    arg: 'kind',
    choices: STORE_KINDS,
    help: 'where to publish: an hnswlib bundle (--out) or a LanceDB database and the bundle next to its tables (--uri)',
    default: STORE_KINDS[0] as StoreKind,
  },
  uri: {
    type: 'string',
    arg: 'dir',
    help: 'LanceDB database of --store lancedb: a local or shared-file-system directory (its HNSW bundle lives in it)',
  },
} satisfies OptionTable;

/** Which store a command writes or reads, and where a LanceDB one is. */
export type StoreFlags = ValuesOf<typeof STORE_OPTIONS>;

/** The --store option with a command's own description. */
export function storeOption(description: string): Option {
  return commanderOptions('store', { ...STORE_OPTIONS.store, help: description })[0];
}

export const URI_OPTION = ['--uri <dir>', STORE_OPTIONS.uri.help] as const;

/** The LanceDB URI of `--store lancedb`, which cannot do without one. */
export function lanceUri(flags: StoreFlags): string {
  if (!flags.uri) throw new Error('--store lancedb needs --uri <directory>');
  return flags.uri;
}

const p = DEFAULT_PARAMS;

/** `index`'s flags: the build parameters' defaults come from DEFAULT_PARAMS (src/index/defaults.ts, with the reasons). */
export const INDEX_OPTIONS = {
  model: { type: 'string', arg: 'checkpoint', help: 'trained model (.dmck)', default: DEMO_CHECKPOINT },
  dataDir: {
    type: 'string',
    arg: 'dir',
    help: 'catalogue folder (any supported layout)',
    default: DEMO_DATA_DIR,
  },
  out: {
    type: 'string',
    arg: 'dir',
    help: 'bundle folder (manifest.json + versions/)',
    default: DEMO_BUNDLE_DIR,
  },
  incremental: {
    type: 'switch',
    help: 're-embed only new and changed products and edit a copy of the current version',
  },
  m: {
    type: 'integer',
    arg: 'n',
    min: 2,
    help: 'HNSW links per node (memory ~ 8M bytes per product)',
    default: p.m,
  },
  efConstruction: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'HNSW candidate list while building (build time vs graph quality)',
    default: p.efConstruction,
  },
  efSearch: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'HNSW candidate list per query, recorded as the serving default',
    default: p.efSearch,
  },
  maskThreshold: {
    type: 'number',
    arg: 'x',
    ...SHARE,
    help: 'CSN: index only dims whose mask weight is >= x times the largest (0 keeps every nonzero dim)',
    default: p.maskThreshold,
  },
  minRecall: {
    type: 'number',
    arg: 'x',
    ...SHARE,
    help: "do not publish when any condition's recall@10 is below x",
    default: p.minRecall,
  },
  recallSample: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'queries of the recall check',
    default: p.recallSample,
  },
  batchSize: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'images per model call',
    default: BUILD_DEFAULTS.batchSize,
  },
  keepVersions: {
    type: 'integer',
    arg: 'n',
    min: 1,
    help: 'published versions kept on disk, the current one included',
    default: BUILD_DEFAULTS.keepVersions,
  },
  seed: {
    type: 'integer',
    arg: 'n',
    min: 0,
    help: 'seed of HNSW levels and of the samples',
    default: p.seed,
  },
  backend: BACKEND_OPTION,
  ...STORE_OPTIONS,
  shard: {
    type: 'string',
    arg: 'i/n',
    help: 'lancedb: embed only share i of n (0-based) into a staging table; publish with --commit',
  },
  commit: {
    type: 'switch',
    help: 'lancedb: check that every shard is staged, then build the HNSW bundle from their vectors and publish one version',
  },
  json: { type: 'switch', help: 'print the build report as JSON' },
} satisfies OptionTable;

type IndexFlags = ValuesOf<typeof INDEX_OPTIONS>;

/** `index-info`'s flags (its argument is the bundle folder). */
export const INDEX_INFO_OPTIONS = {
  verify: {
    type: 'switch',
    form: 'off',
    help: 'skip hashing the files (sizes and shapes are still checked)',
    default: true,
  },
  json: { type: 'switch', help: 'print as JSON' },
} satisfies OptionTable;

/** `index-query`'s flags (its argument is the bundle folder). */
export const INDEX_QUERY_OPTIONS = {
  product: { type: 'string', arg: 'id', help: 'product id', required: true },
  condition: { type: 'string', arg: 'name', help: 'one condition', defaultText: 'all' },
  k: { type: 'integer', flag: '-k', arg: 'n', min: 1, help: 'neighbours', default: 10 },
  exact: { type: 'switch', help: 'brute force instead of HNSW' },
  json: { type: 'switch', help: 'print as JSON' },
} satisfies OptionTable;

async function runIndex(flags: IndexFlags): Promise<void> {
  const [{ createLogger }, { selectBackend }, { readCheckpoint, restoreCheckpointModel }, { loadCatalogue }] =
    await Promise.all([
      import('../util/log.ts'),
      import('../model/index.ts'),
      import('../checkpoint/index.ts'),
      import('../catalogue/index.ts'),
    ]);
  const [{ buildBundle }, { progressFactory }, { IndexQualityError }] = await Promise.all([
    import('./build.ts'),
    import('../util/progress.ts'),
    import('./types.ts'),
  ]);
  const log = createLogger('index');
  const catalogue = await loadCatalogue(flags.dataDir);
  // A missing or corrupt checkpoint fails here, before a model backend starts for nothing (seconds of CPU).
  const checkpoint = await readCheckpoint(flags.model);
  await selectBackend(flags.backend, log);
  const model = await restoreCheckpointModel(checkpoint, flags.model);
  try {
    const createProgress = await progressFactory(log);
    const source = await modelSource(model, catalogue, flags.model, createProgress, log);
    const bars = stageBars(createProgress);
    if (flags.store === 'lancedb') {
      const { runLanceJob } = await import('./store/lance-cli.ts');
      const common = { ...lanceOptions(flags), log, onProgress: bars.onProgress };
      const done = await runLanceJob({ ...flags, uri: lanceUri(flags) }, source, catalogue, common, (r) =>
        qualityTable(r.quality, new Map()),
      );
      bars.stop();
      process.stdout.write(flags.json ? `${JSON.stringify(done.report, null, 2)}\n` : `${done.text}\n`);
      return;
    }
    let report: BuildReport;
    try {
      report = await buildBundle(flags.out, source, {
        incremental: flags.incremental,
        m: flags.m,
        efConstruction: flags.efConstruction,
        efSearch: flags.efSearch,
        maskThreshold: flags.maskThreshold,
        minRecall: flags.minRecall,
        recallSample: flags.recallSample,
        seed: flags.seed,
        batchSize: flags.batchSize,
        keepVersions: flags.keepVersions,
        log,
        onProgress: bars.onProgress,
      });
    } catch (error) {
      bars.stop();
      if (error instanceof IndexQualityError) {
        process.stdout.write(`${qualityTable(error.quality, new Map())}\n`);
      }
      throw error;
    }
    bars.stop();
    // Whole embedding stage (decode + model), from the job's own timing.
    const imagesPerSecond = report.timings.embed > 0 ? report.embedded / report.timings.embed : 0;
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, imagesPerSecond }, null, 2)}\n`);
    else process.stdout.write(`${describeReport(report, imagesPerSecond)}\n`);
  } finally {
    model.dispose();
  }
}

/** Build parameters shared by both stores. */
function lanceOptions(flags: IndexFlags) {
  const { m, efConstruction, efSearch, maskThreshold, minRecall, recallSample, seed, batchSize } = flags;
  return {
    m,
    efConstruction,
    efSearch,
    maskThreshold,
    minRecall,
    recallSample,
    seed,
    batchSize,
    keepVersions: flags.keepVersions,
  };
}

/** The catalogue's products fingerprinted (so incremental runs see what changed) and embedded by the model. */
async function modelSource(
  model: SimilarityModel,
  catalogue: Catalogue,
  checkpoint: string,
  createProgress: ProgressFactory,
  log: Logger,
): Promise<BundleSource> {
  const [{ modelId }, { createModelSource, fingerprintProducts, modelProvenance }] = await Promise.all([
    import('../checkpoint/index.ts'),
    import('./model-source.ts'),
  ]);
  const id = modelId(model.snapshot());
  const missing = model.config.conditions.filter((c) => !catalogue.conditions.includes(c));
  if (missing.length > 0) {
    log.warn(
      { missing },
      'the model has conditions the catalogue does not label; they are indexed all the same',
    );
  }
  log.info(
    {
      model: checkpoint,
      modelId: id.slice(0, 12),
      kind: model.config.kind,
      products: catalogue.products.length,
    },
    'indexing catalogue',
  );
  const hashing = createProgress('fingerprints', 'files');
  const products = await fingerprintProducts(catalogue, {
    onProgress: (done, total) => hashing.update(done, total),
  });
  hashing.stop();
  // The version carries its checkpoint and what the service shows about it (refresh reads them back).
  return {
    ...(await createModelSource({ model, modelId: id, catalogue, products, log })),
    checkpointFile: checkpoint,
    provenance: await modelProvenance(checkpoint, id),
  };
}

async function runInfo(dir: string, flags: ValuesOf<typeof INDEX_INFO_OPTIONS>): Promise<void> {
  const [{ openBundle }, { readManifest, listVersionDirs }] = await Promise.all([
    import('./bundle.ts'),
    import('./files.ts'),
  ]);
  const bundle = await openBundle(dir, { verify: flags.verify });
  const manifest = await readManifest(dir);
  const versions = await listVersionDirs(dir);
  const info = bundle.info;
  if (flags.json) {
    const { files: _files, ...rest } = info;
    process.stdout.write(
      `${JSON.stringify({ manifest, versionsOnDisk: versions, version: rest }, null, 2)}\n`,
    );
    return;
  }
  const totalBytes = Object.values(info.files).reduce((sum, f) => sum + f.bytes, 0);
  const lines = [
    `bundle     ${dir}`,
    `current    ${info.version} (${info.mode}, created ${info.createdAt})${flags.verify ? ', checksums verified' : ''}`,
    `model      ${info.model.kind}, ${info.model.embedDim}-dim, id ${info.model.id.slice(0, 16)}`,
    `catalogue  ${info.catalogue ? `${info.catalogue.name} (${info.catalogue.root})` : '-'}`,
    `products   ${info.live} live in ${info.slots} slots`,
    `params     M ${info.params.m}, efConstruction ${info.params.efConstruction}, efSearch ${info.params.efSearch}, ` +
      `mask threshold ${info.params.maskThreshold}, min recall ${info.params.minRecall}`,
    `size       ${(totalBytes / 1024 / 1024).toFixed(1)} MiB in ${Object.keys(info.files).length + 1} files`,
    `on disk    ${versions.join(', ')}`,
    '',
    formatTable(
      [
        'condition',
        'metric',
        'dims',
        `recall@${info.params.recallK}`,
        'subspace recall',
        'median dist',
        'top dims',
      ],
      info.spaces.map((space) => {
        const top = space.dims
          .map((d, k) => ({ d, w: Math.abs(space.weights[k]) }))
          .sort((a, b) => b.w - a.w)
          .slice(0, 4)
          .map((x) => x.d)
          .join(',');
        return [
          space.condition,
          space.metric,
          `${space.dims.length}/${info.model.embedDim}`,
          space.quality.recall.toFixed(3),
          space.quality.subspaceRecall === null ? '-' : space.quality.subspaceRecall.toFixed(3),
          (space.quantiles[50] ?? Number.NaN).toFixed(4),
          top,
        ];
      }),
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function runQuery(dir: string, flags: ValuesOf<typeof INDEX_QUERY_OPTIONS>): Promise<void> {
  const { openBundle } = await import('./bundle.ts');
  const bundle = await openBundle(dir);
  const slot = bundle.productIndex(flags.product);
  if (slot === undefined)
    throw new Error(`product ${JSON.stringify(flags.product)} is not in index ${bundle.version}`);
  const conditions = flags.condition ? [flags.condition] : bundle.conditions;
  const results = conditions.map((condition) => ({
    condition,
    neighbours: (flags.exact
      ? bundle.exactSearch(condition, slot, flags.k)
      : bundle.search(condition, slot, flags.k)
    ).map((hit) => ({
      ...hit,
      title: bundle.product(hit.index).title,
      labels: bundle.product(hit.index).attributes[condition] ?? [],
    })),
  }));
  if (flags.json) {
    process.stdout.write(
      `${JSON.stringify({ version: bundle.version, product: flags.product, results }, null, 2)}\n`,
    );
    return;
  }
  const query = bundle.product(slot);
  for (const { condition, neighbours } of results) {
    process.stdout.write(
      `\n${condition}: neighbours of ${query.id} "${query.title}" [${(query.attributes[condition] ?? []).join(', ')}]\n`,
    );
    process.stdout.write(
      `${formatTable(
        ['id', 'distance', 'score', condition, 'title'],
        neighbours.map((n) => [n.id, n.distance.toFixed(4), n.score.toFixed(3), n.labels.join(','), n.title]),
      )}\n`,
    );
  }
}

export function registerIndexCommands(program: Command): void {
  registerIndexCommand(program);
  const info = program
    .command('index-info')
    .description(
      'Show the published version of an index bundle (verifies every checksum), its conditions and recall',
    )
    .argument('[bundle]', 'bundle folder', DEMO_BUNDLE_DIR);
  addOptions(info, INDEX_INFO_OPTIONS).action(
    async (dir: string, flags: ValuesOf<typeof INDEX_INFO_OPTIONS>, command: Command) =>
      runCommand(command, () => runInfo(dir, flags)),
  );

  const query = program
    .command('index-query')
    .description('Nearest neighbours of a catalogue product in a published bundle, per condition')
    .argument('[bundle]', 'bundle folder', DEMO_BUNDLE_DIR);
  addOptions(query, INDEX_QUERY_OPTIONS).action(
    async (dir: string, flags: ValuesOf<typeof INDEX_QUERY_OPTIONS>, command: Command) =>
      runCommand(command, () => runQuery(dir, flags)),
  );
}

function registerIndexCommand(program: Command): void {
  const command = program
    .command('index')
    .description(
      'Embed every catalogue product with a trained model, build one HNSW index per condition over its masked ' +
        'subspace, check recall@10 against brute force, and publish the result as a new bundle version ' +
        '(atomically: the service keeps serving the previous version until the switch)',
    );
  addOptions(command, INDEX_OPTIONS).action(async (flags: IndexFlags, command: Command) =>
    runCommand(command, () => runIndex(flags)),
  );
}
