/**
 * Label mix of anchors in pool batching against the triplets mode (what val and test use), on a skewed synthetic
 * catalogue: 3000 products, one condition with Zipf-distributed labels (weight 1/k^s over `--labels` labels).
 * Rows: val triplets, train triplets mode, pool mode with plain random pools (before), pool mode with label-seeded
 * pools (after). Columns: the rarest label's share of anchors, the commonest's, and the total-variation distance
 * of the anchor-label distribution from the train triplets mode's.
 *
 *   npx tsx bench/pool-label-mix.ts [--labels 12] [--exponent 1.5] [--batches 200]
 *
 * Writes bench/results/pool-label-mix.{json,md}. No model: it counts sampled triplets only (seconds).
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { splitProducts, splitTriplets, type Catalogue, type Triplet } from '../src/catalogue/index.ts';
import { PoolSampler } from '../src/train/data.ts';
import { TRAIN_DEFAULTS } from '../src/train/options.ts';
import { writeFileAtomic } from '../src/util/atomic.ts';
import { integer, number } from '../src/util/cli.ts';
import { Rng } from '../src/util/rng.ts';

const flags = new Command('pool-label-mix')
  .option('--labels <n>', 'labels of the skewed condition', integer('--labels', 2), 12)
  .option(
    '--exponent <s>',
    'Zipf exponent',
    number('--exponent', (n) => n >= 0, 'a number ≥ 0'),
    1.5,
  )
  .option('--batches <n>', 'pool batches drawn per row', integer('--batches', 1), 200)
  .parse()
  .opts<{ labels: number; exponent: number; batches: number }>();

/** Products whose one condition's label is drawn with P(k) ∝ 1/k^s. */
export function skewedCatalogue(count: number, labels: number, exponent: number, seed: number): Catalogue {
  const rng = new Rng(seed);
  const weights = Array.from({ length: labels }, (_, k) => 1 / (k + 1) ** exponent);
  const total = weights.reduce((a, b) => a + b, 0);
  const draw = (): number => {
    let u = rng.next() * total;
    for (let k = 0; k < labels; k++) if ((u -= weights[k]) < 0) return k;
    return labels - 1;
  };
  const products = Array.from({ length: count }, (_, i) => ({
    id: `p${i}`,
    title: '',
    image: `p${i}.png`,
    attributes: { color: [`c${draw()}`] },
  }));
  return { root: '/nonexistent', name: 'skewed', conditions: ['color'], products };
}

function shares(catalogue: Catalogue, triplets: readonly Triplet[], labels: number): number[] {
  const counts = new Array<number>(labels).fill(0);
  for (const t of triplets) counts[Number(catalogue.products[t.anchor].attributes.color[0].slice(1))]++;
  return counts.map((c) => c / Math.max(1, triplets.length));
}

function poolTriplets(catalogue: Catalogue, labelMix: boolean): Triplet[] {
  const sampler = new PoolSampler(catalogue, splitProducts(catalogue, 'train'), TRAIN_DEFAULTS.poolSize, {
    labelMix,
  });
  const rng = new Rng(7);
  return Array.from({ length: flags.batches }, () => sampler.sample(TRAIN_DEFAULTS.batchSize, rng)).flat();
}

const catalogue = skewedCatalogue(3000, flags.labels, flags.exponent, 1);
const reference = shares(catalogue, splitTriplets(catalogue, 'train', 36000, 42), flags.labels);
const rows = [
  ['val triplets', shares(catalogue, splitTriplets(catalogue, 'val', 20000, 42), flags.labels)],
  ['train, triplets mode', reference],
  [
    'train, pool mode: random pools (before)',
    shares(catalogue, poolTriplets(catalogue, false), flags.labels),
  ],
  [
    'train, pool mode: label-seeded pools (after)',
    shares(catalogue, poolTriplets(catalogue, true), flags.labels),
  ],
] as const;
const percent = (x: number) => `${(100 * x).toFixed(1)} %`;
const result = rows.map(([name, share]) => ({
  name,
  rarest: share[flags.labels - 1],
  commonest: share[0],
  totalVariation: share.reduce((sum, s, k) => sum + Math.abs(s - reference[k]), 0) / 2,
}));
const markdown = [
  `Zipf s = ${flags.exponent} over ${flags.labels} labels, 3000 products; pool ${TRAIN_DEFAULTS.poolSize}, batch ${TRAIN_DEFAULTS.batchSize}, ${flags.batches} batches`,
  '',
  '| anchors drawn by | rarest label | commonest label | TV distance to triplets mode |',
  '| --- | ---: | ---: | ---: |',
  ...result.map(
    (r) => `| ${r.name} | ${percent(r.rarest)} | ${percent(r.commonest)} | ${r.totalVariation.toFixed(3)} |`,
  ),
].join('\n');
process.stdout.write(`${markdown}\n`);
const out = join(dirname(fileURLToPath(import.meta.url)), 'results');
await writeFileAtomic(
  join(out, 'pool-label-mix.json'),
  `${JSON.stringify({ flags, rows: result }, null, 2)}\n`,
);
await writeFileAtomic(join(out, 'pool-label-mix.md'), `${markdown}\n`);
