import type { Command } from 'commander';
import { runCommand } from '../util/cli.ts';
import { addOptions, type OptionTable, type ValuesOf } from '../util/options-table.ts';
import { DEMO_DATA_DIR, DEMO_DEFAULTS } from './defaults.ts';
import { LAYOUT_KINDS } from './layout.ts';

/** `demo-data`'s flags. */
export const DEMO_DATA_OPTIONS = {
  out: { type: 'string', arg: 'dir', help: 'catalogue folder to write', default: DEMO_DATA_DIR },
  count: {
    type: 'integer',
    arg: 'n',
    min: 1,
    max: 1_000_000,
    help: 'number of products',
    default: DEMO_DEFAULTS.count,
  },
  seed: {
    type: 'integer',
    arg: 'n',
    min: 0,
    max: 2 ** 31 - 1,
    help: 'random seed (same seed, same catalogue)',
    default: DEMO_DEFAULTS.seed,
  },
  imageSize: {
    type: 'integer',
    arg: 'px',
    min: 16,
    max: 1024,
    help: 'side of the square images',
    default: DEMO_DEFAULTS.imageSize,
  },
  force: { type: 'switch', help: 'replace the folder if it is not empty' },
} satisfies OptionTable;

/** `import`'s flags. */
export const IMPORT_OPTIONS = {
  from: { type: 'string', arg: 'dir', help: 'source catalogue folder', required: true },
  out: { type: 'string', arg: 'dir', help: 'native catalogue folder to write', required: true },
  layout: {
    type: 'choice',
    arg: 'kind',
    choices: LAYOUT_KINDS,
    help: 'source layout instead of auto-detection',
    defaultText: 'detected',
  },
  images: {
    type: 'choice',
    arg: 'mode',
    choices: ['copy', 'symlink'] as const,
    help: 'copy the images or symlink them',
    default: 'copy' as 'copy' | 'symlink',
  },
  force: { type: 'switch', help: 'replace the output folder if it is not empty' },
} satisfies OptionTable;

/** `catalogue-info`'s flags (its argument is the catalogue folder). */
export const INFO_OPTIONS = {
  json: { type: 'switch', help: 'print the summary as JSON' },
  checkImages: {
    type: 'switch',
    form: 'off',
    help: 'skip checking that every image file exists',
    default: true,
  },
} satisfies OptionTable;

/** `demo-data`, `import` and `catalogue-info`. Implementations load lazily so that `--help` stays fast. */
export function registerCatalogueCommands(program: Command): void {
  const demoData = program
    .command('demo-data')
    .description(
      'Generate the synthetic demo catalogue: dress images with known colour, sleeve, neckline, length, pattern and silhouette',
    );
  addOptions(demoData, DEMO_DATA_OPTIONS).action(
    async (options: ValuesOf<typeof DEMO_DATA_OPTIONS>, command: Command) =>
      runCommand(command, () => runDemoData(options)),
  );

  const importCommand = program
    .command('import')
    .description(
      'Convert a catalogue in any supported layout (Farfetch CSN, CSN/Zappos, ASEN, native) to the native layout',
    );
  addOptions(importCommand, IMPORT_OPTIONS).action(
    async (options: ValuesOf<typeof IMPORT_OPTIONS>, command: Command) =>
      runCommand(command, () => runImport(options)),
  );

  const info = program
    .command('catalogue-info')
    .description(
      'Summarise a catalogue: products per split, labels per condition, shipped triplets and retrieval sets',
    )
    .argument('<dir>', 'catalogue folder (any supported layout)');
  addOptions(info, INFO_OPTIONS).action(
    async (dir: string, options: ValuesOf<typeof INFO_OPTIONS>, command: Command) =>
      runCommand(command, () => runInfo(dir, options, command)),
  );
}

async function runDemoData(options: ValuesOf<typeof DEMO_DATA_OPTIONS>): Promise<void> {
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

async function runImport(options: ValuesOf<typeof IMPORT_OPTIONS>): Promise<void> {
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

async function runInfo(dir: string, options: ValuesOf<typeof INFO_OPTIONS>, command: Command): Promise<void> {
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
