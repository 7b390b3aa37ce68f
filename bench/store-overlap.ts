/**
 * Do two stores answer alike? Top-k overlap per condition between any two published stores of one catalogue
 * (typically the hnswlib bundle and the LanceDB table built from the same model), over every product or a sample.
 *
 *   npx tsx bench/store-overlap.ts --a hnswlib:indexes/demo --b lancedb:indexes/demo-lance [-k 10] [--sample 0]
 *                                  [--out bench/results/store-overlap]
 *
 * Overlap of a query = |top-k(a) ∩ top-k(b)| / k, by product id; the table gives its mean per condition, and how
 * often the distances of shared neighbours differ (they must not: both stores hold the same condition vectors).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Command } from 'commander';
import { HnswStore } from '../src/index/store/hnswlib.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import type { VectorStore } from '../src/index/store/types.ts';
import { Rng } from '../src/util/rng.ts';

async function openStore(spec: string): Promise<VectorStore> {
  const at = spec.indexOf(':');
  const kind = spec.slice(0, at);
  const location = spec.slice(at + 1);
  if (kind === 'hnswlib') return new HnswStore(location);
  if (kind === 'lancedb') return LanceStore.connect(location);
  throw new Error(`store must be hnswlib:<dir> or lancedb:<uri>, got ${spec}`);
}

interface ConditionOverlap {
  condition: string;
  queries: number;
  overlap: number;
  /** Shared neighbours whose distances differ by more than 1e-5. */
  distanceMismatches: number;
}

const program = new Command('store-overlap')
  .requiredOption('--a <kind:location>', 'first store')
  .requiredOption('--b <kind:location>', 'second store')
  .option('-k <n>', 'neighbours', '10')
  .option('--sample <n>', 'query products (0 = all)', '0')
  .option('--out <prefix>', 'results path prefix', 'bench/results/store-overlap')
  .parse();
const flags = program.opts<{ a: string; b: string; k: string; sample: string; out: string }>();
const k = Number(flags.k);
const [storeA, storeB] = await Promise.all([openStore(flags.a), openStore(flags.b)]);
const [a, b] = await Promise.all([storeA.open(), storeB.open()]);
const ids = [...a.entries()].map(([, product]) => product.id);
const sample = Number(flags.sample);
const rng = new Rng(11);
const queries = sample > 0 ? Array.from({ length: sample }, () => ids[rng.int(0, ids.length - 1)]) : ids;
const results: ConditionOverlap[] = [];
for (const condition of a.conditions) {
  let overlap = 0;
  let mismatches = 0;
  for (const id of queries) {
    const [hitsA, hitsB] = await Promise.all([
      a.search(condition, a.productIndex(id)!, k),
      b.search(condition, b.productIndex(id)!, k),
    ]);
    const distanceOf = new Map(hitsB.map((hit) => [hit.id, hit.distance]));
    for (const hit of hitsA) {
      const other = distanceOf.get(hit.id);
      if (other === undefined) continue;
      overlap += 1 / k;
      if (Math.abs(other - hit.distance) > 1e-5) mismatches++;
    }
  }
  results.push({
    condition,
    queries: queries.length,
    overlap: overlap / queries.length,
    distanceMismatches: mismatches,
  });
}
const table = [
  `| condition | queries | top-${k} overlap | distance mismatches |`,
  '| --- | ---: | ---: | ---: |',
  ...results.map(
    (r) => `| ${r.condition} | ${r.queries} | ${r.overlap.toFixed(3)} | ${r.distanceMismatches} |`,
  ),
].join('\n');
console.log(table);
await mkdir(dirname(flags.out), { recursive: true });
await writeFile(
  `${flags.out}.json`,
  `${JSON.stringify({ a: flags.a, b: flags.b, versions: [a.version, b.version], k, results }, null, 2)}\n`,
);
await writeFile(`${flags.out}.md`, `# Top-${k} overlap: ${flags.a} vs ${flags.b}\n\n${table}\n`);
a.close();
b.close();
storeA.close();
storeB.close();
