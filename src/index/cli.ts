/**
 * `index` (build and publish a bundle version, full or incremental), `index-info` (what a bundle holds, verified)
 * and `index-query` (nearest neighbours of a product from the command line). Heavy modules load inside the actions.
 */
import { Option, type Command } from 'commander';
import type { BuildProgress, BuildReport } from './build.ts';
import type { RateProgress } from './progress.ts';
import type { ConditionQuality } from './types.ts';
import { fraction, integer, runCommand } from '../util/cli.ts';

/** Plain-text table: numeric columns right-aligned, text columns left-aligned. */
export function formatTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => row[j].length)));
  const numeric = header.map(
    (_, j) => rows.length > 0 && rows.every((row) => /^(-|-?[\d.]+(x|\/\d+)?)$/.test(row[j])),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, j) => (numeric[j] ? cell.padStart(widths[j]) : cell.padEnd(widths[j])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

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

interface IndexFlags {
  model: string;
  dataDir: string;
  out: string;
  incremental?: boolean;
  m: number;
  efConstruction: number;
  efSearch: number;
  maskThreshold: number;
  minRecall: number;
  recallSample: number;
  batchSize: number;
  keepVersions: number;
  seed: number;
  backend: 'auto' | 'tensorflow' | 'wasm' | 'cpu';
  json?: boolean;
}

async function runIndex(flags: IndexFlags): Promise<void> {
  const [{ createLogger }, { selectBackend }, { loadModelFromCheckpoint, modelId }, { loadCatalogue }] =
    await Promise.all([
      import('../util/log.ts'),
      import('../model/index.ts'),
      import('../checkpoint/index.ts'),
      import('../catalogue/load.ts'),
    ]);
  const [
    { buildBundle },
    { createModelSource, fingerprintProducts },
    { progressFactory },
    { IndexQualityError },
  ] = await Promise.all([
    import('./build.ts'),
    import('./model-source.ts'),
    import('./progress.ts'),
    import('./types.ts'),
  ]);
  const log = createLogger('index');

  const catalogue = await loadCatalogue(flags.dataDir);
  await selectBackend(flags.backend, log);
  const model = await loadModelFromCheckpoint(flags.model);
  try {
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
        model: flags.model,
        modelId: id.slice(0, 12),
        kind: model.config.kind,
        products: catalogue.products.length,
      },
      'indexing catalogue',
    );
    const createProgress = await progressFactory(log);
    const hashing = createProgress('fingerprints', 'files');
    const products = await fingerprintProducts(catalogue, {
      onProgress: (done, total) => hashing.update(done, total),
    });
    hashing.stop();
    const source = await createModelSource({ model, modelId: id, catalogue, products, log });

    let bar = null as RateProgress | null;
    let barKey = '';
    const onProgress = (event: BuildProgress): void => {
      // The recall check counts queries over all conditions: one bar for it, one per condition for building.
      const key = event.stage === 'index' ? `index:${event.condition}` : event.stage;
      if (key !== barKey || !bar) {
        bar?.stop();
        barKey = key;
        const label =
          event.stage === 'embed'
            ? 'embedding'
            : event.stage === 'index'
              ? `HNSW ${event.condition}`
              : 'recall check';
        const unit = event.stage === 'embed' ? 'images' : event.stage === 'index' ? 'points' : 'queries';
        bar = createProgress(label, unit);
      }
      bar.update(event.done, event.total);
    };

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
        onProgress,
      });
    } catch (error) {
      bar?.stop();
      if (error instanceof IndexQualityError) {
        process.stdout.write(`${qualityTable(error.quality, new Map())}\n`);
      }
      throw error;
    }
    bar?.stop();
    // Whole embedding stage (decode + model), from the job's own timing.
    const imagesPerSecond = report.timings.embed > 0 ? report.embedded / report.timings.embed : 0;
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, imagesPerSecond }, null, 2)}\n`);
    else process.stdout.write(`${describeReport(report, imagesPerSecond)}\n`);
  } finally {
    model.dispose();
  }
}

async function runInfo(dir: string, flags: { verify: boolean; json?: boolean }): Promise<void> {
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

async function runQuery(
  dir: string,
  flags: { product: string; condition?: string; k: number; exact?: boolean; json?: boolean },
): Promise<void> {
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
  program
    .command('index')
    .description(
      'Embed every catalogue product with a trained model, build one HNSW index per condition over its masked ' +
        'subspace, check recall@10 against brute force, and publish the result as a new bundle version ' +
        '(atomically: the service keeps serving the previous version until the switch)',
    )
    .option('--model <checkpoint>', 'trained model (.dmck)', 'models/demo/model_best.dmck')
    .option('--data-dir <dir>', 'catalogue folder (any supported layout)', 'data/demo')
    .option('--out <dir>', 'bundle folder (manifest.json + versions/)', 'indexes/demo')
    .option('--incremental', 're-embed only new and changed products and edit a copy of the current version')
    .option('--m <n>', 'HNSW links per node (memory ~ 8M bytes per product)', integer('--m', 2), 16)
    .option(
      '--ef-construction <n>',
      'HNSW candidate list while building (build time vs graph quality)',
      integer('--ef-construction', 1),
      200,
    )
    .option(
      '--ef-search <n>',
      'HNSW candidate list per query, recorded as the serving default',
      integer('--ef-search', 1),
      64,
    )
    .option(
      '--mask-threshold <x>',
      'CSN: index only dims whose mask weight is >= x times the largest (0 keeps every nonzero dim)',
      fraction('--mask-threshold'),
      0.02,
    )
    .option(
      '--min-recall <x>',
      "do not publish when any condition's recall@10 is below x",
      fraction('--min-recall'),
      0.9,
    )
    .option('--recall-sample <n>', 'queries of the recall check', integer('--recall-sample', 1), 200)
    .option('--batch-size <n>', 'images per model call', integer('--batch-size', 1), 64)
    .option(
      '--keep-versions <n>',
      'published versions kept on disk, the current one included',
      integer('--keep-versions', 1),
      3,
    )
    .option('--seed <n>', 'seed of HNSW levels and of the samples', integer('--seed', 0), 100)
    .addOption(
      new Option('--backend <name>', 'tfjs backend')
        .choices(['auto', 'tensorflow', 'wasm', 'cpu'])
        .default('auto'),
    )
    .option('--json', 'print the build report as JSON')
    .action(async (flags: IndexFlags, command: Command) => runCommand(command, () => runIndex(flags)));

  program
    .command('index-info')
    .description(
      'Show the published version of an index bundle (verifies every checksum), its conditions and recall',
    )
    .argument('[bundle]', 'bundle folder', 'indexes/demo')
    .option('--no-verify', 'skip hashing the files (sizes and shapes are still checked)')
    .option('--json', 'print as JSON')
    .action(async (dir: string, flags: { verify: boolean; json?: boolean }, command: Command) =>
      runCommand(command, () => runInfo(dir, flags)),
    );

  program
    .command('index-query')
    .description('Nearest neighbours of a catalogue product in a published bundle, per condition')
    .argument('[bundle]', 'bundle folder', 'indexes/demo')
    .requiredOption('--product <id>', 'product id')
    .option('--condition <name>', 'one condition (default: all)')
    .option('-k <n>', 'neighbours', integer('-k', 1), 10)
    .option('--exact', 'brute force instead of HNSW')
    .option('--json', 'print as JSON')
    .action(
      async (
        dir: string,
        flags: { product: string; condition?: string; k: number; exact?: boolean; json?: boolean },
        command: Command,
      ) => runCommand(command, () => runQuery(dir, flags)),
    );
}
