import type { Command } from 'commander';
import { choice, integer, runCommand } from '../util/cli.ts';
import { DEMO_DATA_DIR, DEMO_DEFAULTS } from './defaults.ts';
import { LAYOUT_KINDS, type LayoutKind } from './layout.ts';

interface DemoDataOptions {
  out: string;
  count: number;
  seed: number;
  imageSize: number;
  force?: boolean;
}

interface ImportOptions {
  from: string;
  out: string;
  layout?: LayoutKind;
  images: 'copy' | 'symlink';
  force?: boolean;
}

interface InfoOptions {
  json?: boolean;
  checkImages: boolean;
}

/** `demo-data`, `import` and `catalogue-info`. Implementations load lazily so that `--help` stays fast. */
export function registerCatalogueCommands(program: Command): void {
  program
    .command('demo-data')
    .description(
      'Generate the synthetic demo catalogue: dress images with known colour, sleeve, neckline, length, pattern and silhouette',
    )
    .option('--out <dir>', 'catalogue folder to write', DEMO_DATA_DIR)
    .option('--count <n>', 'number of products', integer('--count', 1, 1_000_000), DEMO_DEFAULTS.count)
    .option(
      '--seed <n>',
      'random seed (same seed, same catalogue)',
      integer('--seed', 0, 2 ** 31 - 1),
      DEMO_DEFAULTS.seed,
    )
    .option(
      '--image-size <px>',
      'side of the square images',
      integer('--image-size', 16, 1024),
      DEMO_DEFAULTS.imageSize,
    )
    .option('--force', 'replace the folder if it is not empty')
    .action(async (options: DemoDataOptions, command: Command) =>
      runCommand(command, () => runDemoData(options)),
    );

  program
    .command('import')
    .description(
      'Convert a catalogue in any supported layout (Farfetch CSN, CSN/Zappos, ASEN, native) to the native layout',
    )
    .requiredOption('--from <dir>', 'source catalogue folder')
    .requiredOption('--out <dir>', 'native catalogue folder to write')
    .option('--layout <kind>', 'source layout instead of auto-detection', choice('--layout', LAYOUT_KINDS))
    .option(
      '--images <mode>',
      'copy the images or symlink them',
      choice('--images', ['copy', 'symlink'] as const),
      'copy',
    )
    .option('--force', 'replace the output folder if it is not empty')
    .action(async (options: ImportOptions, command: Command) =>
      runCommand(command, () => runImport(options)),
    );

  program
    .command('catalogue-info')
    .description(
      'Summarise a catalogue: products per split, labels per condition, shipped triplets and retrieval sets',
    )
    .argument('<dir>', 'catalogue folder (any supported layout)')
    .option('--json', 'print the summary as JSON')
    .option('--no-check-images', 'skip checking that every image file exists')
    .action(async (dir: string, options: InfoOptions, command: Command) =>
      runCommand(command, () => runInfo(dir, options, command)),
    );
}

async function runDemoData(options: DemoDataOptions): Promise<void> {
  const [{ generateDemoCatalogue }, { createLogger }, { createProgress }] = await Promise.all([
    import('./demo.ts'),
    import('../util/log.ts'),
    import('../util/progress.ts'),
  ]);
  const log = createLogger('demo-data');
  const progress = await createProgress('rendering', 'images', log);
  const started = performance.now();
  try {
    await generateDemoCatalogue(options.out, {
      count: options.count,
      seed: options.seed,
      imageSize: options.imageSize,
      overwrite: options.force,
      onProgress: (done, total) => progress.update(done, total),
    });
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  log.info(
    { out: options.out, count: options.count, seconds: Number(seconds.toFixed(1)) },
    'demo catalogue written',
  );
}

async function runImport(options: ImportOptions): Promise<void> {
  const [
    { loadCatalogue, detectLayout },
    { writeCatalogue },
    { replaceDirectory },
    { createLogger },
    { createProgress },
  ] = await Promise.all([
    import('./load.ts'),
    import('./native.ts'),
    import('./staging.ts'),
    import('../util/log.ts'),
    import('../util/progress.ts'),
  ]);
  const { resolve } = await import('node:path');
  if (resolve(options.from) === resolve(options.out)) throw new Error('--out must differ from --from');
  const log = createLogger('import');
  const layout = options.layout ?? (await detectLayout(options.from));
  const catalogue = await loadCatalogue(options.from, { layout });
  log.info(
    { layout, products: catalogue.products.length, conditions: catalogue.conditions },
    'catalogue loaded',
  );
  const progress = await createProgress(
    options.images === 'copy' ? 'copying images' : 'linking images',
    'images',
    log,
  );
  try {
    await replaceDirectory(
      options.out,
      (staging) =>
        writeCatalogue(catalogue, staging, {
          images: options.images,
          onProgress: (done, total) => progress.update(done, total),
        }),
      { overwrite: options.force },
    );
  } finally {
    progress.stop();
  }
  log.info({ out: options.out }, 'native catalogue written');
}

async function runInfo(dir: string, options: InfoOptions, command: Command): Promise<void> {
  const [{ loadCatalogue, detectLayout }, { summarizeCatalogue, formatSummary }] = await Promise.all([
    import('./load.ts'),
    import('./info.ts'),
  ]);
  const layout = await detectLayout(dir);
  const catalogue = await loadCatalogue(dir, { layout, checkImages: options.checkImages });
  const summary = summarizeCatalogue(catalogue);
  // Through commander's output hook, so an embedding program (or a test) can redirect it.
  const write = command.configureOutput().writeOut ?? ((text: string) => process.stdout.write(text));
  write(
    options.json ? `${JSON.stringify({ layout, ...summary }, null, 2)}\n` : formatSummary(summary, layout),
  );
}
