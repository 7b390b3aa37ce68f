/**
 * Backbones compared on trained runs: test triplet accuracy and MAP (the runs' test_results.json), seconds per
 * epoch (their metrics.jsonl) and embedding speed, measured here back to back on the same catalogue images so
 * that the machine's load affects every row alike (the ratio column is against the first run).
 *
 *   npx tsx bench/backbones.ts --run small=runs/small --run resnet18=runs/r18 [--data-dir data/demo] [--images 64]
 *
 * Writes bench/results/backbones.{json,md}. The runs themselves are made with `train` (see the README table for
 * the flags each recorded row used).
 */
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { ImageCache, loadCatalogue } from '../src/catalogue/index.ts';
import { readCheckpoint } from '../src/checkpoint/index.ts';
import { preprocessOf } from '../src/model/defaults.ts';
import { restoreModel, selectBackend, type ModelConfig } from '../src/model/index.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { integer } from '../src/util/cli.ts';

interface Row {
  name: string;
  backbone: string;
  imageSize: number;
  width: number;
  epochs: number;
  trainTripletsPerEpoch: number;
  secondsPerEpoch: number;
  accuracy: number;
  map: number;
  embedImagesPerSecond: number;
  embedRatio: number;
}

const flags = new Command('backbones')
  .option('--run <name=dir...>', 'run folders to compare (name=dir)', [])
  .option('--data-dir <dir>', 'catalogue for the embedding speed', 'data/demo')
  .option('--images <n>', 'images embedded per timing', integer('--images', 1), 64)
  .parse()
  .opts<{ run: string[]; dataDir: string; images: number }>();

async function runSummary(dir: string): Promise<Omit<Row, 'name' | 'embedImagesPerSecond' | 'embedRatio'>> {
  const results = JSON.parse(await readFile(join(dir, 'test_results.json'), 'utf8')) as {
    triplets: { overall: number };
    retrieval?: { overall: { map: number } };
  };
  const lines = (await readFile(join(dir, 'metrics.jsonl'), 'utf8')).split('\n').filter(Boolean);
  const epochs = lines
    .map((line) => JSON.parse(line) as { type: string; seconds?: number })
    .filter((entry) => entry.type === 'epoch');
  const args = JSON.parse(await readFile(join(dir, 'args.json'), 'utf8')) as { trainTriplets?: number };
  const config = (await readCheckpoint(join(dir, 'model_best.dmck'))).model.config as Required<ModelConfig>;
  return {
    backbone: config.backbone,
    imageSize: config.imageSize,
    width: config.width,
    epochs: epochs.length,
    trainTripletsPerEpoch: args.trainTriplets ?? 0,
    secondsPerEpoch: epochs.reduce((sum, e) => sum + (e.seconds ?? 0), 0) / Math.max(1, epochs.length),
    accuracy: results.triplets.overall,
    map: results.retrieval?.overall.map ?? NaN,
  };
}

/** Images per second of conditionVectors on `count` catalogue images (best of three timings). */
async function embedSpeed(dir: string, count: number): Promise<number> {
  const checkpoint = await readCheckpoint(join(dir, 'model_best.dmck'));
  const config = checkpoint.model.config;
  const catalogue = await loadCatalogue(flags.dataDir);
  const subset = { ...catalogue, products: catalogue.products.slice(0, count) };
  const cache = await ImageCache.load(subset, config.imageSize, { fit: preprocessOf(config) });
  const model = restoreModel(checkpoint.model);
  const images = tf.tensor4d(cache.batch([...Array(count).keys()]), [
    count,
    config.imageSize,
    config.imageSize,
    3,
  ]);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const start = performance.now();
    const vectors = model.conditionVectors(images);
    await vectors.data();
    vectors.dispose();
    best = Math.min(best, performance.now() - start);
  }
  images.dispose();
  model.dispose();
  return count / (best / 1000);
}

function table(rows: Row[]): string {
  const header =
    '| run | backbone | px | width | epochs × triplets | s/epoch | test accuracy | test MAP | embed img/s | ratio |';
  const rule = '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${r.backbone} | ${r.imageSize} | ${r.width} | ${r.epochs} × ${r.trainTripletsPerEpoch} | ${r.secondsPerEpoch.toFixed(0)} | ${(100 * r.accuracy).toFixed(1)} % | ${(100 * r.map).toFixed(1)} % | ${r.embedImagesPerSecond.toFixed(1)} | ${r.embedRatio.toFixed(2)} |`,
  );
  return [header, rule, ...lines].join('\n');
}

await selectBackend('wasm', { info: () => {}, warn: () => {} });
const rows: Row[] = [];
for (const spec of flags.run) {
  const [name, dir] = spec.split('=');
  const summary = await runSummary(dir);
  const embedImagesPerSecond = await embedSpeed(dir, flags.images);
  rows.push({ name, ...summary, embedImagesPerSecond, embedRatio: 1 });
}
rows.forEach((row) => (row.embedRatio = row.embedImagesPerSecond / rows[0].embedImagesPerSecond));
const markdown = table(rows);
process.stdout.write(`${markdown}\n`);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
await writeFileAtomic(
  join(out, 'backbones.json'),
  `${JSON.stringify({ time: new Date().toISOString(), rows }, null, 2)}\n`,
);
await writeFileAtomic(join(out, 'backbones.md'), `${markdown}\n`);
