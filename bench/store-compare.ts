/**
 * hnswlib bundle vs LanceDB store on the same synthetic catalogue: build time, storage, query p50/p99, recall@10
 * against brute force, filtered-query latency and recall (prefilters on LanceDB, the issue-10 path on hnswlib), the
 * cost of counting a filter's matches (a JavaScript pass over the products vs the store's own count), combined and
 * recommend queries (exact on both stores but `average`, which walks the index: same ids expected), and 1 vs 2
 * reader processes (replicas) on one store.
 * The load average (`uptime`) is recorded before and after: the machine is shared.
 *
 *   npx tsx bench/store-compare.ts [--sizes 100000[,1000000]] [--lance-index hnsw-sq,ivf-pq] [--queries 300]
 *                                  [--replicas 1,2] [--replica-queries 2000] [--out bench/results/store-compare]
 *
 * Catalogue: 64-dim embeddings around 1000 cluster centres (learned embeddings cluster by attribute), 6 CSN-like
 * conditions whose masks keep 28 dims (as the demo CSN's do at the default threshold) with weights in [0.2, 1].
 * Products carry a label per condition (10 values), a price (0-200), in_stock (half) and a brand (200 values), so
 * filters select ~50 %, ~5 % and ~0.5 % of the catalogue. Truth is the exact search over the same rows (the
 * hnswlib bundle's brute force), so recall is comparable between the stores. Both stores answer through the same
 * store interface the service uses. Replicas are separate processes reading one store concurrently.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import { buildBundle, type BundleSource } from '../src/index/build.ts';
import { recallAtK } from '../src/index/vectors.ts';
import { buildLanceStore } from '../src/index/store/lance-build.ts';
import { matchesFilter } from '../src/index/store/common.ts';
import { resolveCondition, storeCombined, storeRecommend } from '../src/index/query.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import { HnswStore } from '../src/index/store/hnswlib.ts';
import type { LanceIndexType } from '../src/index/store/lance-schema.ts';
import type { StoreFilter, StoreProduct, StoreVersion, VectorStore } from '../src/index/store/types.ts';
import { Rng } from '../src/util/rng.ts';

const DIM = 64;
const CONDITIONS = ['color', 'sleeve', 'neckline', 'length', 'pattern', 'silhouette'];
const KEPT = 28;
const K = 10;

const FILTERS: { name: string; filter: StoreFilter }[] = [
  { name: 'in_stock (~50 %)', filter: { clauses: [{ kind: 'equals', field: 'in_stock', values: [true] }] } },
  {
    name: 'price < 10 (~5 %)',
    filter: { clauses: [{ kind: 'compare', field: 'price', comparisons: [{ op: '<', value: 10 }] }] },
  },
  { name: 'brand (~0.5 %)', filter: { clauses: [{ kind: 'equals', field: 'brand', values: ['brand-7'] }] } },
];

function syntheticCatalogue(size: number, seed: number): { source: BundleSource; products: StoreProduct[] } {
  const rng = new Rng(seed);
  const centres = Array.from({ length: 1000 }, () =>
    Float32Array.from({ length: DIM }, () => 2 * rng.normal()),
  );
  const embeddings = new Float32Array(size * DIM);
  const products: StoreProduct[] = [];
  for (let i = 0; i < size; i++) {
    const centre = centres[rng.int(0, centres.length - 1)];
    for (let d = 0; d < DIM; d++) embeddings[i * DIM + d] = centre[d] + 0.6 * rng.normal();
    products.push({
      id: `p${i}`,
      title: `Product ${i}`,
      image: `images/p${i}.png`,
      attributes: Object.fromEntries(CONDITIONS.map((c) => [c, [`${c}-${rng.int(0, 9)}`]])),
      fingerprint: `f${i}`,
      fields: {
        price: Math.round(rng.range(0, 200) * 100) / 100,
        in_stock: rng.next() < 0.5,
        brand: `brand-${rng.int(0, 199)}`,
      },
    });
  }
  const masks = CONDITIONS.map(() => {
    const mask = new Array<number>(DIM).fill(0);
    const dims = Array.from({ length: DIM }, (_, d) => d);
    for (let j = 0; j < KEPT; j++) {
      const pick = rng.int(j, DIM - 1);
      [dims[j], dims[pick]] = [dims[pick], dims[j]];
      mask[dims[j]] = rng.range(0.2, 1);
    }
    return mask;
  });
  const source: BundleSource = {
    modelId: `synthetic-${size}`,
    modelKind: 'csn',
    embedDim: DIM,
    conditions: CONDITIONS,
    masks,
    products,
    catalogue: { name: 'synthetic', root: '/nonexistent' },
    embed: async (indices) => {
      const rows = new Float32Array(indices.length * DIM);
      indices.forEach((i, r) => rows.set(embeddings.subarray(i * DIM, (i + 1) * DIM), r * DIM));
      return { embeddings: rows };
    },
  };
  return { source, products };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function duMiB(path: string): number {
  return Number(execFileSync('du', ['-sk', path]).toString().split('\t')[0]) / 1024;
}

interface QueryStats {
  p50Ms: number;
  p99Ms: number;
  recall: number;
}

/** Latency of `search` and its recall@10 against the exact search of `truth`, over the sampled query slots. */
async function measureQueries(
  version: StoreVersion,
  truth: StoreVersion,
  slots: number[],
  filter?: StoreFilter,
): Promise<QueryStats> {
  const times: number[] = [];
  let recall = 0;
  let count = 0;
  for (const [i, slot] of slots.entries()) {
    const condition = CONDITIONS[i % CONDITIONS.length];
    const start = performance.now();
    const hits = await version.search(condition, slot, K, { filter });
    times.push(performance.now() - start);
    const exact = await truth.exactSearch(condition, slot, K, { filter });
    recall += recallAtK(hits, exact, K);
    count++;
  }
  times.sort((a, b) => a - b);
  return { p50Ms: percentile(times, 0.5), p99Ms: percentile(times, 0.99), recall: recall / count };
}

/** Time to count a filter's matches: a JavaScript pass over the loaded products, and the store's count(). */
interface CountStats {
  filter: string;
  matching: number;
  jsMs: number;
  /** The FilterTable (posting lists and number columns over the loaded products; what hnswlib selects with). */
  tableMs: number;
  storeMs: number;
}

/**
 * Median time of `repeat` counts of each filter, each call with a textually new filter (an always-true price bound
 * added) so that LanceDB's per-version count cache never answers: the cost of a filter seen for the first time.
 */
async function measureCounts(version: StoreVersion, repeat: number): Promise<CountStats[]> {
  const out: CountStats[] = [];
  for (const { name, filter } of FILTERS) {
    const js: number[] = [];
    const table: number[] = [];
    const store: number[] = [];
    version.filterTable(); // built once per version, outside the timing
    let matching = 0;
    for (let r = 0; r < repeat; r++) {
      const variant: StoreFilter = {
        clauses: [
          ...filter.clauses,
          { kind: 'compare', field: 'price', comparisons: [{ op: '<', value: 1000 + r + Math.random() }] },
        ],
      };
      let start = performance.now();
      let n = 0;
      for (const [, product] of version.entries()) if (matchesFilter(variant, product)) n++;
      js.push(performance.now() - start);
      start = performance.now();
      const selected = version.filterTable().selectStore(variant).count;
      table.push(performance.now() - start);
      start = performance.now();
      matching = await version.count(variant);
      store.push(performance.now() - start);
      if (n !== matching || selected !== n)
        throw new Error(`${name}: the store counts ${matching}, the table ${selected}, JavaScript ${n}`);
    }
    const median = (xs: number[]) =>
      percentile(
        [...xs].sort((a, b) => a - b),
        0.5,
      );
    out.push({ filter: name, matching, jsMs: median(js), tableMs: median(table), storeMs: median(store) });
  }
  return out;
}

interface ExactStats {
  query: string;
  p50Ms: number;
  /** Fraction of queries whose ids equal the reference store's (hnswlib) exactly. */
  sameIds: number;
}

const EXACT_QUERIES: {
  name: string;
  run: (v: StoreVersion, slot: number) => Promise<{ id: string }[]>;
}[] = [
  {
    name: 'combined color,sleeve',
    run: async (v, slot) => {
      const vectors = (await v.vectors([slot]))[0];
      return storeCombined(v, resolveCondition(v, 'color,sleeve'), (c) => vectors[c], K, { clauses: [] }, [
        slot,
      ]);
    },
  },
  {
    name: 'combined, price < 10',
    run: async (v, slot) => {
      const vectors = (await v.vectors([slot]))[0];
      return storeCombined(v, resolveCondition(v, 'color,sleeve'), (c) => vectors[c], K, FILTERS[1].filter, [
        slot,
      ]);
    },
  },
  {
    name: 'recommend average (index walk)',
    run: (v, slot) =>
      storeRecommend(
        v,
        resolveCondition(v, 'pattern'),
        { positives: [slot, (slot + 1) % v.liveCount], negatives: [(slot + 2) % v.liveCount] },
        'average',
        K,
        { clauses: [] },
      ),
  },
  {
    name: 'recommend best, price < 10',
    run: (v, slot) =>
      storeRecommend(
        v,
        resolveCondition(v, 'pattern'),
        { positives: [slot, (slot + 1) % v.liveCount], negatives: [(slot + 2) % v.liveCount] },
        'best',
        K,
        FILTERS[1].filter,
      ),
  },
];

/** p50 of combined and recommend queries, and whether they return the reference's ids (both are exact). */
async function measureExact(
  version: StoreVersion,
  truth: StoreVersion,
  slots: number[],
): Promise<ExactStats[]> {
  const out: ExactStats[] = [];
  for (const { name, run } of EXACT_QUERIES) {
    const times: number[] = [];
    let same = 0;
    for (const slot of slots) {
      const start = performance.now();
      const ids = (await run(version, slot)).map((h) => h.id);
      times.push(performance.now() - start);
      const expected = version === truth ? ids : (await run(truth, slot)).map((h) => h.id);
      if (JSON.stringify(ids) === JSON.stringify(expected)) same++;
    }
    times.sort((a, b) => a - b);
    out.push({ query: name, p50Ms: percentile(times, 0.5), sameIds: same / slots.length });
  }
  return out;
}

interface StoreResult {
  store: string;
  size: number;
  buildSeconds: number;
  storageMiB: number;
  openSeconds: number;
  unfiltered: QueryStats;
  filtered: ({ filter: string } & QueryStats)[];
  counts: CountStats[];
  exact: ExactStats[];
  replicas: { replicas: number; qps: number; p50Ms: number; p99Ms: number }[];
}

async function openStore(kind: string, location: string): Promise<VectorStore> {
  return kind === 'hnswlib' ? new HnswStore(location) : LanceStore.connect(location);
}

/** Worker mode: open the store, run `queries` searches by slot, print latencies and the query phase's time span. */
async function worker(kind: string, location: string, queries: number, seed: number): Promise<void> {
  const store = await openStore(kind, location);
  const version = await store.open();
  const rng = new Rng(seed);
  const times: number[] = [];
  const began = Date.now();
  for (let q = 0; q < queries; q++) {
    const start = performance.now();
    await version.search(CONDITIONS[q % CONDITIONS.length], rng.int(0, version.liveCount - 1), K);
    times.push(performance.now() - start);
  }
  process.stdout.write(`${JSON.stringify({ began, ended: Date.now(), times })}\n`);
  version.close();
  store.close();
}

async function replicaRun(kind: string, location: string, replicas: number, queries: number) {
  const script = fileURLToPath(import.meta.url);
  const outputs = await Promise.all(
    Array.from(
      { length: replicas },
      (_, r) =>
        new Promise<string>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--import', 'tsx', script, '--worker', kind, location, String(queries), String(r + 1)],
            {
              stdio: ['ignore', 'pipe', 'inherit'],
              env: { ...process.env, LOG_LEVEL: 'silent', RUST_LOG: 'error' },
            },
          );
          let text = '';
          child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString()));
          child.on('exit', (code) =>
            code === 0 ? resolve(text) : reject(new Error(`replica exited with ${code}`)),
          );
        }),
    ),
  );
  const runs = outputs.map(
    (text) =>
      JSON.parse(text.trim().split('\n').at(-1)!) as { began: number; ended: number; times: number[] },
  );
  const times = runs.flatMap((run) => run.times).sort((a, b) => a - b);
  const span = (Math.max(...runs.map((r) => r.ended)) - Math.min(...runs.map((r) => r.began))) / 1000;
  return {
    replicas,
    qps: Math.round(times.length / span),
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
  };
}

async function measureStore(
  kind: string,
  location: string,
  truth: StoreVersion,
  size: number,
  buildSeconds: number,
  options: Options,
): Promise<StoreResult> {
  const start = performance.now();
  const store = await openStore(kind.startsWith('lancedb') ? 'lancedb' : 'hnswlib', location);
  const version = await store.open();
  const openSeconds = (performance.now() - start) / 1000;
  const rng = new Rng(5);
  const slots = Array.from({ length: options.queries }, () => rng.int(0, size - 1));
  const unfiltered = await measureQueries(version, truth, slots);
  const filtered = [];
  for (const { name, filter } of FILTERS) {
    filtered.push({
      filter: name,
      ...(await measureQueries(version, truth, slots.slice(0, Math.ceil(options.queries / 3)), filter)),
    });
  }
  const counts = await measureCounts(version, 15);
  const exact = await measureExact(version, truth, slots.slice(0, options.exactQueries));
  version.close();
  store.close();
  const replicas = [];
  for (const count of options.replicas) {
    replicas.push(
      await replicaRun(
        kind.startsWith('lancedb') ? 'lancedb' : 'hnswlib',
        location,
        count,
        options.replicaQueries,
      ),
    );
  }
  const result = {
    store: kind,
    size,
    buildSeconds,
    storageMiB: duMiB(location),
    openSeconds,
    unfiltered,
    filtered,
    counts,
    exact,
    replicas,
  };
  console.error(JSON.stringify(result));
  return result;
}

interface Options {
  sizes: number[];
  lanceIndex: LanceIndexType[];
  queries: number;
  replicas: number[];
  replicaQueries: number;
  exactQueries: number;
  out: string;
}

/** Logs when each build stage starts (a run too long to finish still says how far each stage got). */
function stageLog(store: string): (stage: string) => void {
  return (stage) => console.error(`${new Date().toISOString()} ${store}: ${stage} (load ${loadAverage()})`);
}

async function runSize(size: number, options: Options, root: string): Promise<StoreResult[]> {
  const { source, products } = syntheticCatalogue(size, 42);
  const results: StoreResult[] = [];
  const bundleDir = join(root, `bundle-${size}`);
  let start = performance.now();
  const bundleReport = await buildBundle(bundleDir, source, {
    batchSize: 4096,
    onStage: stageLog('hnswlib'),
  });
  const bundleSeconds = (performance.now() - start) / 1000 - (bundleReport.timings.embed ?? 0);
  console.error(`${new Date().toISOString()} hnswlib: built in ${bundleSeconds.toFixed(0)} s, measuring`);
  const truthStore = new HnswStore(bundleDir);
  const truth = await truthStore.open();
  results.push(await measureStore('hnswlib', bundleDir, truth, size, bundleSeconds, options));
  for (const type of options.lanceIndex) {
    const uri = join(root, `lance-${size}-${type}`);
    start = performance.now();
    const report = await buildLanceStore(uri, source, {
      batchSize: 4096,
      indexType: type,
      products,
      fields: { price: 'number', in_stock: 'boolean', brand: 'string' },
      minRecall: 0,
      onStage: stageLog(`lancedb ${type}`),
    });
    const seconds = (performance.now() - start) / 1000 - (report.timings.embed ?? 0);
    console.error(`${new Date().toISOString()} lancedb ${type}: built in ${seconds.toFixed(0)} s, measuring`);
    results.push(await measureStore(`lancedb ${type}`, uri, truth, size, seconds, options));
  }
  truth.close();
  return results;
}

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');

function markdown(results: StoreResult[]): string {
  const lines = [
    '| store | products | build (s) | storage (MiB) | open (s) | p50 (ms) | p99 (ms) | recall@10 | ' +
      FILTERS.map((x) => `${x.name} p50 / recall`).join(' | ') +
      ' | 1 replica q/s | 2 replicas q/s |',
    `|${' --- |'.repeat(8 + FILTERS.length + 2)}`,
  ];
  for (const r of results) {
    const replica = (n: number) => {
      const run = r.replicas.find((x) => x.replicas === n);
      return run ? `${run.qps} (p99 ${f(run.p99Ms)} ms)` : '-';
    };
    lines.push(
      `| ${r.store} | ${r.size} | ${f(r.buildSeconds, 1)} | ${f(r.storageMiB, 1)} | ${f(r.openSeconds, 1)} | ${f(r.unfiltered.p50Ms)} | ` +
        `${f(r.unfiltered.p99Ms)} | ${f(r.unfiltered.recall, 3)} | ` +
        r.filtered.map((x) => `${f(x.p50Ms)} / ${f(x.recall, 3)}`).join(' | ') +
        ` | ${replica(1)} | ${replica(2)} |`,
    );
  }
  return [lines.join('\n'), countTable(results), exactTable(results)].join('\n\n');
}

function countTable(results: StoreResult[]): string {
  const lines = [
    '| store | products | filter | matching | JS pass over products (ms) | FilterTable (ms) | store count() (ms) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    for (const c of r.counts) {
      lines.push(
        `| ${r.store} | ${r.size} | ${c.filter} | ${c.matching} | ${f(c.jsMs)} | ${f(c.tableMs)} | ${f(c.storeMs)} |`,
      );
    }
  }
  return lines.join('\n');
}

function exactTable(results: StoreResult[]): string {
  const lines = [
    '| store | products | query | p50 (ms) | same ids as hnswlib |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    for (const e of r.exact)
      lines.push(`| ${r.store} | ${r.size} | ${e.query} | ${f(e.p50Ms)} | ${f(e.sameIds, 2)} |`);
  }
  return lines.join('\n');
}

/** The 1, 5 and 15 minute load averages (`uptime`). */
function loadAverage(): string {
  return execFileSync('uptime')
    .toString()
    .trim()
    .replace(/^.*load average:\s*/, '');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--worker') return worker(argv[1], argv[2], Number(argv[3]), Number(argv[4]));
  const list = (value: string) => value.split(',').map((v) => v.trim());
  const program = new Command('store-compare')
    .option('--sizes <list>', 'catalogue sizes', '100000')
    .option('--lance-index <list>', 'LanceDB index types to measure', 'hnsw-sq,ivf-pq')
    .option('--queries <n>', 'queries for latency and recall', '300')
    .option('--replicas <list>', 'reader processes on one store', '1,2')
    .option('--replica-queries <n>', 'queries per replica', '2000')
    .option('--exact-queries <n>', 'combined and recommend queries per kind', '20')
    .option('--out <prefix>', 'results path prefix', 'bench/results/store-compare')
    .parse(['node', 'store-compare', ...argv]);
  const raw = program.opts<Record<string, string>>();
  const options: Options = {
    sizes: list(raw.sizes).map(Number),
    lanceIndex: list(raw.lanceIndex) as LanceIndexType[],
    queries: Number(raw.queries),
    replicas: list(raw.replicas).map(Number),
    replicaQueries: Number(raw.replicaQueries),
    exactQueries: Number(raw.exactQueries),
    out: raw.out,
  };
  const root = await mkdtemp(join(tmpdir(), 'dressmatch-store-compare-'));
  const results: StoreResult[] = [];
  const load = { before: loadAverage(), after: '' };
  console.error(`load average before: ${load.before}`);
  try {
    for (const size of options.sizes) results.push(...(await runSize(size, options, root)));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  load.after = loadAverage();
  const table = markdown(results);
  console.log(table);
  await mkdir(join(options.out, '..'), { recursive: true });
  await writeFile(
    `${options.out}.json`,
    `${JSON.stringify({ date: new Date().toISOString(), loadAverage: load, options, results }, null, 2)}\n`,
  );
  await writeFile(
    `${options.out}.md`,
    `# hnswlib bundle vs LanceDB store\n\nSynthetic catalogue, 64-dim embeddings, 6 conditions of 28 kept dims; ` +
      `one shared 2-core machine (load average ${load.before} before, ${load.after} after); build excludes ` +
      `embedding. Recall@10 against exact search.\n\n${table}\n`,
  );
}

await main();
