/**
 * Does a CSN trained with the official PyTorch code score the same under our `import-model` + evaluation as under
 * upstream's own test code? Local cross-check (needs a Python with torch, numpy and PIL, e.g. Debian's
 * python3-torch; never run in CI):
 *
 * 1. our sampler draws train and test triplets from the catalogue;
 * 2. bench/torch-csn.py builds upstream's network, trains it a few Adam steps on the train triplets, scores the
 *    test triplets as upstream's test() does and saves its state_dict as safetensors;
 * 3. `import-model` turns that file into a run folder; our model scores the same test triplets.
 *
 *   npx tsx bench/torch-crosscheck.ts [--data-dir data/demo] [--python python3] [--train 256] [--test 400]
 *
 * Prints both accuracies, their binomial standard error and the share of triplets both call the same way;
 * writes bench/results/torch-crosscheck.{json,md}.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { ImageCache, loadCatalogue, splitTriplets, type ImageSource } from '../src/catalogue/index.ts';
import { readCheckpoint } from '../src/checkpoint/index.ts';
import { runImportModel } from '../src/cli/weights-run.ts';
import { embedProducts, vectorOf } from '../src/eval/evaluate.ts';
import { restoreModel, selectBackend } from '../src/model/index.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { integer } from '../src/util/cli.ts';

const flags = new Command('torch-crosscheck')
  .option('--data-dir <dir>', 'catalogue', 'data/demo')
  .option('--python <exe>', 'Python with torch, numpy and PIL', 'python3')
  .option('--train <n>', 'training triplets for the PyTorch side', integer('--train', 0), 256)
  .option('--test <n>', 'test triplets scored by both', integer('--test', 1), 400)
  .option('--width <n>', 'layer1 channels (upstream 64)', integer('--width', 1), 64)
  .parse()
  .opts<{ dataDir: string; python: string; train: number; test: number; width: number }>();

const IMAGE_SIZE = 112;
const EMBED_DIM = 64;
const SEED = 42;

const catalogue = await loadCatalogue(flags.dataDir);
const train = splitTriplets(catalogue, 'train', flags.train, SEED);
const test = splitTriplets(catalogue, 'test', flags.test, SEED);
const work = await mkdtemp(join(tmpdir(), 'dressmatch-torch-'));
const job = {
  seed: SEED,
  imageSize: IMAGE_SIZE,
  width: flags.width,
  embedDim: EMBED_DIM,
  lr: 1e-3,
  epochs: 1,
  conditions: catalogue.conditions,
  images: catalogue.products.map((p) => resolve(catalogue.root, p.image)),
  train,
  test,
};
await writeFile(join(work, 'job.json'), JSON.stringify(job));
const weights = join(work, 'csn.safetensors');
const started = performance.now();
execFileSync(
  flags.python,
  [
    join(dirname(fileURLToPath(import.meta.url)), 'torch-csn.py'),
    '--job',
    join(work, 'job.json'),
    '--weights',
    weights,
    '--result',
    join(work, 'torch.json'),
  ],
  { stdio: 'inherit' },
);
const torchSeconds = (performance.now() - started) / 1000;
const upstream = JSON.parse(readFileSync(join(work, 'torch.json'), 'utf8')) as {
  accuracy: number;
  correct: boolean[];
};

await selectBackend('wasm', { info: () => {}, warn: () => {} });
const runDir = join(work, 'imported');
await runImportModel({
  weights,
  catalogue: flags.dataDir,
  out: runDir,
  masks: 'learned',
  imageSize: IMAGE_SIZE,
  backend: 'wasm',
});
const model = restoreModel((await readCheckpoint(join(runDir, 'model_best.dmck'))).model);
// Decode only the test triplets' products, with the imported model's preprocessing (resize-crop).
const needed = [...new Set(test.flatMap((t) => [t.anchor, t.far, t.close]))];
const position = new Map(needed.map((product, i) => [product, i]));
const cache = await ImageCache.load(
  { ...catalogue, products: needed.map((i) => catalogue.products[i]) },
  IMAGE_SIZE,
  { fit: 'resize-crop' },
);
const images: ImageSource = {
  size: cache.size,
  batch: (indices) => cache.batch(indices.map((i) => position.get(i)!)),
};
const vectors = await embedProducts(model, images, needed);
model.dispose();
const distance = (a: Float32Array, b: Float32Array) => a.reduce((sum, v, i) => sum + (v - b[i]) ** 2, 0);
const ours = test.map((t) => {
  const anchor = vectorOf(vectors, t.anchor, t.condition);
  return (
    distance(anchor, vectorOf(vectors, t.far, t.condition)) >
    distance(anchor, vectorOf(vectors, t.close, t.condition))
  );
});
const accuracy = ours.filter(Boolean).length / ours.length;
const agreement = ours.filter((c, i) => c === upstream.correct[i]).length / ours.length;
const standardError = Math.sqrt((upstream.accuracy * (1 - upstream.accuracy)) / test.length);
const result = {
  catalogue: catalogue.name,
  trainTriplets: train.length,
  testTriplets: test.length,
  width: flags.width,
  upstreamAccuracy: upstream.accuracy,
  ourAccuracy: accuracy,
  standardError,
  agreement,
  torchSeconds,
};
const markdown = [
  `upstream CSN (PyTorch, ${train.length} training triplets, width ${flags.width}, ${IMAGE_SIZE} px) imported with \`import-model\`; ${test.length} test triplets of ${catalogue.name}`,
  '',
  '| scored by | test triplet accuracy |',
  '| --- | ---: |',
  `| upstream test() in PyTorch | ${(100 * upstream.accuracy).toFixed(2)} % |`,
  `| our eval after import-model | ${(100 * accuracy).toFixed(2)} % |`,
  '',
  `Difference ${(100 * (accuracy - upstream.accuracy)).toFixed(2)} points; binomial standard error ${(100 * standardError).toFixed(2)} points; the two agree on ${(100 * agreement).toFixed(2)} % of the triplets.`,
].join('\n');
process.stdout.write(`${markdown}\n`);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
await writeFileAtomic(join(out, 'torch-crosscheck.json'), `${JSON.stringify(result, null, 2)}\n`);
await writeFileAtomic(join(out, 'torch-crosscheck.md'), `${markdown}\n`);
await rm(work, { recursive: true, force: true });
