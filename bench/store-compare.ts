/**
 * The cluster layout against one machine, in one run on the same synthetic catalogue. Single machine: the hnswlib
 * bundle built in one job and loaded by the service. Cluster: 2 embedding shards staged in a LanceDB database, the
 * commit that builds the hnswlib bundle from the stored vectors and publishes it next to the tables, and replicas
 * (`LanceStore`, what `serve --store lancedb` opens) that load it. Every stage of the cluster pipeline runs as its
 * own process, so each stage's wall time and peak memory (max RSS) are its own; storage is measured after each.
 *
 * Measured on both, through the store interface the service uses (`StoreVersion.query`): query p50/p99 and
 * recall@10 against brute force, filtered queries (~50 / 5 / 0.5 % selectivity), counting a filter's matches,
 * combined and recommend queries (same ids expected), and queries/s of 1 and 2 reader processes; then the ratios
 * cluster / single machine. The load average (`uptime`) is recorded before and after: the machine is shared.
 *
 *   npx tsx bench/store-compare.ts [--size 100000] [--baseline true] [--queries 300] [--exact-queries 20]
 *                                  [--replica-seconds 8] [--rounds 2] [--ef-construction 200]
 *                                  [--out bench/results/store-compare]
 *
 * `--baseline false` runs the cluster pipeline alone (the 1M run: the single machine's build would double it).
 *
 * Catalogue: 64-dim embeddings around 1000 cluster centres (learned embeddings cluster by attribute), 6 CSN-like
 * conditions whose masks keep 28 dims (as the demo CSN's do at the default threshold) with weights in [0.2, 1].
 * Products carry a label per condition (10 values), a price (0-200), in_stock (half) and a brand (200 values), so
 * filters select ~50 %, ~5 % and ~0.5 % of the catalogue. Truth is the exact search over the same rows.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { Command } from 'commander';
import { buildBundle, type BundleSource } from '../src/index/index.ts';
import { recallAtK } from '../src/index/vectors.ts';
import { matchesFilter } from '../src/index/store/common.ts';
import { commitShards, embedShard, parseShard } from '../src/index/store/lance-shards.ts';
import { resolveCondition, storeCombined, storeRecommend } from '../src/index/query.ts';
import { LanceStore } from '../src/index/store/lance.ts';
import { HnswStore } from '../src/index/store/hnswlib.ts';
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

/**
 * Latency of the one query (what the service asks) and its recall@10 against the exact search of `truth`, over the
 * sampled query slots, for each version; the versions take turns on every query (which goes first alternates), so
 * that a change in the machine's load falls on all of them alike.
 */
async function measureQueries(
  versions: StoreVersion[],
  truth: StoreVersion,
  slots: number[],
  filter?: StoreFilter,
): Promise<QueryStats[]> {
  const times = versions.map((): number[] => []);
  const recall = versions.map(() => 0);
  for (const [i, slot] of slots.entries()) {
    const c = i % CONDITIONS.length;
    const exact = await truth.exactSearch(CONDITIONS[c], slot, K, { filter });
    for (let j = 0; j < versions.length; j++) {
      const v = (i + j) % versions.length;
      const start = performance.now();
      const hits = await versions[v].query({
        parts: [{ condition: c, weight: 1 }],
        from: { slot },
        k: K,
        filter,
      });
      times[v].push(performance.now() - start);
      recall[v] += recallAtK(hits, exact, K);
    }
  }
  return versions.map((_, v) => {
    const sorted = times[v].sort((a, b) => a - b);
    return {
      p50Ms: percentile(sorted, 0.5),
      p99Ms: percentile(sorted, 0.99),
      recall: recall[v] / slots.length,
    };
  });
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
  versions: StoreVersion[],
  truth: StoreVersion,
  slots: number[],
): Promise<ExactStats[][]> {
  const out = versions.map((): ExactStats[] => []);
  for (const { name, run } of EXACT_QUERIES) {
    const times = versions.map((): number[] => []);
    const same = versions.map(() => 0);
    for (const [i, slot] of slots.entries()) {
      const expected = (await run(truth, slot)).map((h) => h.id);
      for (let j = 0; j < versions.length; j++) {
        const v = (i + j) % versions.length;
        const start = performance.now();
        const ids = (await run(versions[v], slot)).map((h) => h.id);
        times[v].push(performance.now() - start);
        if (JSON.stringify(ids) === JSON.stringify(expected)) same[v]++;
      }
    }
    versions.forEach((_, v) => {
      const sorted = times[v].sort((a, b) => a - b);
      out[v].push({ query: name, p50Ms: percentile(sorted, 0.5), sameIds: same[v] / slots.length });
    });
  }
  return out;
}

const FIELD_TYPES = { price: 'number', in_stock: 'boolean', brand: 'string' } as const;
const SHARDS = 2;

interface Layout {
  kind: 'hnswlib' | 'lancedb';
  /** Bundle directory or LanceDB database. */
  location: string;
}

function openStore(layout: Layout): Promise<VectorStore> | VectorStore {
  return layout.kind === 'hnswlib' ? new HnswStore(layout.location) : LanceStore.connect(layout.location);
}

/** What a stage process reports: its wall time, peak memory, and what it says of itself. */
interface StageReport {
  stage: string;
  seconds: number;
  maxRssMiB: number;
  detail: Record<string, unknown>;
}

function maxRssMiB(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

/** Child modes: one stage of a pipeline, or a replica running queries. Prints one JSON line. */
async function child(mode: string, args: string[]): Promise<void> {
  const start = performance.now();
  const report = (detail: Record<string, unknown>): void => {
    const seconds = (performance.now() - start) / 1000;
    process.stdout.write(`${JSON.stringify({ stage: mode, seconds, maxRssMiB: maxRssMiB(), detail })}\n`);
  };
  if (mode === 'replica') {
    const [kind, location, seconds, seed] = args;
    const store = await openStore({ kind: kind as Layout['kind'], location });
    const version = await store.open();
    const openSeconds = (performance.now() - start) / 1000;
    const rng = new Rng(Number(seed));
    const ask = () =>
      version.query({
        parts: [{ condition: rng.int(0, CONDITIONS.length - 1), weight: 1 }],
        from: { slot: rng.int(0, version.liveCount - 1) },
        k: K,
      });
    for (let q = 0; q < 200; q++) await ask(); // warm-up, before the barrier
    // Every reader starts at once: READY, then wait for the parent's GO line.
    process.stdout.write('READY\n');
    await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
    const times: number[] = [];
    const began = performance.now();
    const until = began + Number(seconds) * 1000;
    while (performance.now() < until) {
      const t = performance.now();
      await ask();
      times.push(performance.now() - t);
    }
    const span = (performance.now() - began) / 1000;
    report({ openSeconds, span, times });
    version.close();
    store.close();
    process.stdin.destroy();
    return;
  }
  const [location, sizeText, efConstruction] = args;
  const size = Number(sizeText);
  const { source, products } = syntheticCatalogue(size, 42);
  const made = (performance.now() - start) / 1000;
  const params = { efConstruction: Number(efConstruction), batchSize: 4096 };
  if (mode === 'bundle') {
    const built = await buildBundle(location, source, params);
    report({ catalogueSeconds: made, timings: built.timings, quality: built.quality });
  } else if (mode.startsWith('shard')) {
    const written = await embedShard(location, source, parseShard(mode.slice('shard '.length)), params);
    report({ catalogueSeconds: made, rows: written.rows });
  } else if (mode === 'commit') {
    const committed = await commitShards(location, source, { ...params, products, fields: FIELD_TYPES });
    report({ catalogueSeconds: made, timings: committed.timings, quality: committed.quality });
  } else throw new Error(`unknown child mode ${mode}`);
}

/**
 * Run child processes at once; resolves with their reports. Children that print READY wait for all the others to
 * be ready too, then all are told GO at once (readers open a version at different speeds).
 */
async function runChildren(runs: { mode: string; args: string[] }[]): Promise<StageReport[]> {
  const script = fileURLToPath(import.meta.url);
  const waiting: (() => void)[] = [];
  const outputs = await Promise.all(
    runs.map(
      ({ mode, args }) =>
        new Promise<string>((resolve, reject) => {
          const proc = spawn(process.execPath, ['--import', 'tsx', script, '--child', mode, ...args], {
            stdio: ['pipe', 'pipe', 'inherit'],
            env: { ...process.env, LOG_LEVEL: 'silent', RUST_LOG: 'error' },
          });
          let text = '';
          proc.stdout.on('data', (chunk: Buffer) => {
            const ready = !text.includes('READY') && (text + chunk.toString()).includes('READY');
            text += chunk.toString();
            if (!ready) return;
            waiting.push(() => proc.stdin.write('GO\n'));
            if (waiting.length === runs.length) for (const go of waiting) go();
          });
          proc.on('exit', (code) =>
            code === 0 ? resolve(text) : reject(new Error(`${mode} exited with ${code}`)),
          );
        }),
    ),
  );
  return outputs.map((text) => JSON.parse(text.trim().split('\n').at(-1)!) as StageReport);
}

interface ReplicaRun {
  replicas: number;
  qps: number;
  p50Ms: number;
  p99Ms: number;
  openSeconds: number;
  maxRssMiB: number;
}

/** `replicas` reader processes querying at once for `seconds`: total queries/s and latency. */
async function replicaRun(layout: Layout, replicas: number, seconds: number): Promise<ReplicaRun> {
  const reports = await runChildren(
    Array.from({ length: replicas }, (_, r) => ({
      mode: 'replica',
      args: [layout.kind, layout.location, String(seconds), String(r + 1)],
    })),
  );
  const runs = reports.map((r) => r.detail as { openSeconds: number; span: number; times: number[] });
  const times = runs.flatMap((run) => run.times).sort((a, b) => a - b);
  return {
    replicas,
    qps: Math.round(runs.reduce((sum, run) => sum + run.times.length / run.span, 0)),
    p50Ms: percentile(times, 0.5),
    p99Ms: percentile(times, 0.99),
    openSeconds: Math.max(...runs.map((r) => r.openSeconds)),
    maxRssMiB: Math.max(...reports.map((r) => r.maxRssMiB)),
  };
}

interface StoreResult {
  layout: string;
  openSeconds: number;
  unfiltered: QueryStats;
  filtered: ({ filter: string } & QueryStats)[];
  counts: CountStats[];
  exact: ExactStats[];
  /** Per round: 1 reader, then 2 readers at once. */
  replicas: ReplicaRun[][];
}

/**
 * Latency, recall, counts and exact queries of each layout's published version, in this process, the layouts
 * taking turns query by query. Truth is the first layout's exact search.
 */
async function measureInProcess(
  layouts: { name: string; layout: Layout }[],
  options: Options,
): Promise<Omit<StoreResult, 'replicas'>[]> {
  const opened: { store: VectorStore; version: StoreVersion; openSeconds: number }[] = [];
  for (const { layout } of layouts) {
    const start = performance.now();
    const store = await openStore(layout);
    const version = await store.open();
    opened.push({ store, version, openSeconds: (performance.now() - start) / 1000 });
  }
  const versions = opened.map((o) => o.version);
  const truth = versions[0];
  const n = truth.liveCount;
  // Warm-up (compiled code, caches), so that no layout pays it in its figures.
  const warm = new Rng(9);
  await measureQueries(
    versions,
    truth,
    Array.from({ length: 100 }, () => warm.int(0, n - 1)),
  );
  await measureExact(versions, truth, [warm.int(0, n - 1)]);
  const rng = new Rng(5);
  const slots = Array.from({ length: options.queries }, () => rng.int(0, n - 1));
  const unfiltered = await measureQueries(versions, truth, slots);
  const filtered = [];
  for (const { name: filter, filter: clauses } of FILTERS) {
    const some = slots.slice(0, Math.ceil(options.queries / 3));
    filtered.push(
      (await measureQueries(versions, truth, some, clauses)).map((stats) => ({ filter, ...stats })),
    );
  }
  const exact = await measureExact(versions, truth, slots.slice(0, options.exactQueries));
  const results = [];
  for (const [v, { name }] of layouts.entries()) {
    const counts = await measureCounts(versions[v], 15);
    log(`${name}: p50 ${f(unfiltered[v].p50Ms)} ms, recall ${f(unfiltered[v].recall, 3)}`);
    results.push({
      layout: name,
      openSeconds: opened[v].openSeconds,
      unfiltered: unfiltered[v],
      filtered: filtered.map((x) => x[v]),
      counts,
      exact: exact[v],
    });
  }
  for (const { store, version } of opened) {
    version.close();
    store.close();
  }
  return results;
}

interface Options {
  size: number;
  baseline: boolean;
  queries: number;
  replicaSeconds: number;
  rounds: number;
  exactQueries: number;
  efConstruction: number;
  out: string;
}

function log(message: string): void {
  console.error(`${new Date().toISOString()} ${message} (load ${loadAverage()})`);
}

interface PipelineStage extends StageReport {
  /** Storage of the database (tables and bundles) after the stage. */
  storageMiB: number;
}

async function run(options: Options, root: string) {
  const size = String(options.size);
  const ef = String(options.efConstruction);
  const bundle: Layout = { kind: 'hnswlib', location: join(root, 'bundle') };
  const cluster: Layout = { kind: 'lancedb', location: join(root, 'lancedb') };
  let baseline: (StageReport & { storageMiB: number }) | null = null;
  const pipeline: PipelineStage[] = [];
  // A long run that cannot finish still leaves what each stage measured.
  const keep = () =>
    writeFile(
      `${options.out}.partial.json`,
      `${JSON.stringify({ incomplete: true, options, baseline, pipeline }, null, 2)}\n`,
    );
  if (options.baseline) {
    log('single machine: building the bundle');
    const [built] = await runChildren([{ mode: 'bundle', args: [bundle.location, size, ef] }]);
    baseline = { ...built, storageMiB: duMiB(bundle.location) };
    await keep();
    log(`single machine: built in ${built.seconds.toFixed(0)} s`);
  }
  log(`cluster: ${SHARDS} embedding shards at once`);
  const shards = await runChildren(
    Array.from({ length: SHARDS }, (_, i) => ({
      mode: `shard ${i}/${SHARDS}`,
      args: [cluster.location, size, ef],
    })),
  );
  for (const shard of shards) pipeline.push({ ...shard, storageMiB: duMiB(cluster.location) });
  await keep();
  log('cluster: commit (version table, bundle build, publish)');
  const [commit] = await runChildren([{ mode: 'commit', args: [cluster.location, size, ef] }]);
  pipeline.push({ ...commit, storageMiB: duMiB(cluster.location) });
  await keep();
  log(`cluster: committed in ${commit.seconds.toFixed(0)} s`);
  const storage = {
    tablesMiB: duMiB(cluster.location) - duMiB(join(cluster.location, 'bundles')),
    bundleMiB: duMiB(join(cluster.location, 'bundles')),
  };

  const measured = await measureInProcess(
    [
      ...(baseline ? [{ name: 'single machine', layout: bundle }] : []),
      { name: 'cluster replica', layout: cluster },
    ],
    options,
  );
  const single = baseline ? measured[0] : null;
  const replica = measured.at(-1)!;
  // Alternate the layouts, so that a change in the machine's load falls on both.
  const replicas: { single: ReplicaRun[][]; cluster: ReplicaRun[][] } = { single: [], cluster: [] };
  for (let round = 0; round < options.rounds; round++) {
    for (const [name, layout] of [
      ['single', bundle],
      ['cluster', cluster],
    ] as const) {
      if (name === 'single' && !baseline) continue;
      const runs = [];
      for (const count of [1, 2]) runs.push(await replicaRun(layout, count, options.replicaSeconds));
      replicas[name].push(runs);
      log(`${name} round ${round + 1}: ${runs.map((r) => `${r.replicas} x ${r.qps} q/s`).join(', ')}`);
    }
  }
  return {
    baseline,
    pipeline,
    storage,
    single: single ? { ...single, replicas: replicas.single } : null,
    cluster: { ...replica, replicas: replicas.cluster },
  };
}

type RunResult = Awaited<ReturnType<typeof run>>;

const f = (x: number, digits = 2): string => (Number.isFinite(x) ? x.toFixed(digits) : '-');
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** Queries/s and p99 of `readers` processes, averaged over the rounds. */
function readerFigures(result: StoreResult, readers: number): { qps: number; p99Ms: number } {
  const runs = result.replicas.map((round) => round.find((r) => r.replicas === readers)!);
  return { qps: mean(runs.map((r) => r.qps)), p99Ms: mean(runs.map((r) => r.p99Ms)) };
}

/** Cluster / single machine: what the goals are stated in. */
function ratios(single: StoreResult, cluster: StoreResult) {
  const one = [readerFigures(single, 1), readerFigures(cluster, 1)];
  const two = [readerFigures(single, 2), readerFigures(cluster, 2)];
  return {
    qps: one[1].qps / one[0].qps,
    qpsTwoReaders: two[1].qps / two[0].qps,
    replicaP99: one[1].p99Ms / one[0].p99Ms,
    p99: cluster.unfiltered.p99Ms / single.unfiltered.p99Ms,
    p50: cluster.unfiltered.p50Ms / single.unfiltered.p50Ms,
    filteredP50: cluster.filtered.map((x, i) => ({
      filter: x.filter,
      ratio: x.p50Ms / single.filtered[i].p50Ms,
    })),
    exactP50: cluster.exact.map((x, i) => ({ query: x.query, ratio: x.p50Ms / single.exact[i].p50Ms })),
  };
}

/** Each stage of the pipeline: wall time, peak memory, storage after it. */
function stageTable(result: RunResult): string {
  const stages = [
    '| stage | wall (s) | peak memory (MiB) | storage after (MiB) | detail |',
    '| --- | --- | --- | --- | --- |',
  ];
  if (result.baseline) {
    const t = result.baseline.detail.timings as Record<string, number>;
    stages.push(
      `| single machine: bundle build (one process) | ${f(result.baseline.seconds, 1)} | ${result.baseline.maxRssMiB} | ` +
        `${f(result.baseline.storageMiB, 1)} | index ${t.index} s, check ${t.check} s, write ${t.write} s |`,
    );
  }
  for (const stage of result.pipeline) {
    const t = stage.detail.timings as Record<string, number> | undefined;
    const detail = t
      ? Object.entries(t)
          .map(([k, v]) => `${k} ${f(v, 1)} s`)
          .join(', ')
      : `${stage.detail.rows as number} rows staged`;
    stages.push(
      `| cluster: ${stage.stage} | ${f(stage.seconds, 1)} | ${stage.maxRssMiB} | ${f(stage.storageMiB, 1)} | ${detail} |`,
    );
  }
  const clusterRuns = result.cluster.replicas.at(-1)!;
  for (const r of clusterRuns)
    stages.push(
      `| cluster: ${r.replicas} replica(s) serving | open ${f(r.openSeconds, 1)} | ${r.maxRssMiB} each | - | ` +
        `${r.qps} q/s, p99 ${f(r.p99Ms)} ms |`,
    );
  return stages.join('\n');
}

/** The cluster replica over the single machine, per goal, and each round's reader rates. */
function ratioSections(
  single: StoreResult,
  result: RunResult,
  layouts: StoreResult[],
  options: Options,
): string[] {
  const q = ratios(single, result.cluster);
  const rows = [
    '| cluster replica / single machine | ratio | goal |',
    '| --- | --- | --- |',
    `| queries/s, 1 reader (mean of ${options.rounds} rounds) | ${f(q.qps)} | ≥ 0.8 |`,
    `| queries/s, 2 readers | ${f(q.qpsTwoReaders)} | - |`,
    `| p99, in process | ${f(q.p99)} | ≤ 2 |`,
    `| p99, 1 reader process | ${f(q.replicaP99)} | ≤ 2 |`,
    `| p50, in process | ${f(q.p50)} | - |`,
    ...q.filteredP50.map((x) => `| filtered p50, ${x.filter} | ${f(x.ratio)} | ≤ 2 |`),
    ...q.exactP50.map((x) => `| p50, ${x.query} | ${f(x.ratio)} | ≤ 2 |`),
  ];
  const rounds = ['| round | layout | 1 reader q/s | 2 readers q/s |', '| --- | --- | --- | --- |'];
  for (let i = 0; i < options.rounds; i++)
    for (const r of layouts)
      rounds.push(`| ${i + 1} | ${r.layout} | ${r.replicas[i][0].qps} | ${r.replicas[i][1].qps} |`);
  return [rows.join('\n'), rounds.join('\n')];
}

function markdown(result: RunResult, options: Options): string {
  const sections: string[] = [stageTable(result)];
  sections.push(
    `Storage of the database: tables ${f(result.storage.tablesMiB, 1)} MiB, bundle ${f(result.storage.bundleMiB, 1)} MiB.`,
  );
  const layouts = [result.single, result.cluster].filter((x): x is StoreResult => x !== null);
  const table = [
    '| layout | open (s) | p50 (ms) | p99 (ms) | recall@10 | ' +
      FILTERS.map((x) => `${x.name} p50 / recall`).join(' | ') +
      ' | 1 reader q/s (p99) | 2 readers q/s (p99) |',
    `|${' --- |'.repeat(5 + FILTERS.length + 2)}`,
  ];
  for (const r of layouts) {
    const readers = (n: number) => {
      const x = readerFigures(r, n);
      return `${Math.round(x.qps)} (${f(x.p99Ms)} ms)`;
    };
    table.push(
      `| ${r.layout} | ${f(r.openSeconds, 1)} | ${f(r.unfiltered.p50Ms)} | ${f(r.unfiltered.p99Ms)} | ${f(r.unfiltered.recall, 3)} | ` +
        r.filtered.map((x) => `${f(x.p50Ms)} / ${f(x.recall, 3)}`).join(' | ') +
        ` | ${readers(1)} | ${readers(2)} |`,
    );
  }
  sections.push(table.join('\n'));
  const exact = ['| layout | query | p50 (ms) | same ids as the reference |', '| --- | --- | --- | --- |'];
  for (const r of layouts)
    for (const e of r.exact) exact.push(`| ${r.layout} | ${e.query} | ${f(e.p50Ms)} | ${f(e.sameIds, 2)} |`);
  sections.push(exact.join('\n'));
  const counts = ['| layout | filter | matching | store count() (ms) |', '| --- | --- | --- | --- |'];
  for (const r of layouts)
    for (const c of r.counts) counts.push(`| ${r.layout} | ${c.filter} | ${c.matching} | ${f(c.storeMs)} |`);
  sections.push(counts.join('\n'));
  if (result.single) sections.push(...ratioSections(result.single, result, layouts, options));
  return sections.join('\n\n');
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
  if (argv[0] === '--child') return child(argv[1], argv.slice(2));
  const program = new Command('store-compare')
    .option('--size <n>', 'catalogue size', '100000')
    .option('--baseline <bool>', 'also build and measure the single-machine bundle', 'true')
    .option('--queries <n>', 'queries for latency and recall', '300')
    .option('--replica-seconds <n>', 'seconds each reader process queries (all at once)', '8')
    .option('--rounds <n>', 'rounds of reader runs, layouts alternating', '2')
    .option('--exact-queries <n>', 'combined and recommend queries per kind', '20')
    .option('--ef-construction <n>', 'HNSW efConstruction of both builds', '200')
    .option('--out <prefix>', 'results path prefix', 'bench/results/store-compare')
    .parse(['node', 'store-compare', ...argv]);
  const raw = program.opts<Record<string, string>>();
  const options: Options = {
    size: Number(raw.size),
    baseline: raw.baseline !== 'false',
    queries: Number(raw.queries),
    replicaSeconds: Number(raw.replicaSeconds),
    rounds: Number(raw.rounds),
    exactQueries: Number(raw.exactQueries),
    efConstruction: Number(raw.efConstruction),
    out: raw.out,
  };
  const root = await mkdtemp(join(tmpdir(), 'dressmatch-store-compare-'));
  await mkdir(join(options.out, '..'), { recursive: true });
  const load = { before: loadAverage(), after: '' };
  const began = new Date();
  log('start');
  let result: RunResult;
  try {
    result = await run(options, root);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  await rm(`${options.out}.partial.json`, { force: true });
  load.after = loadAverage();
  const minutes = (Date.now() - began.getTime()) / 60_000;
  const table = markdown(result, options);
  console.log(table);
  const ratio = result.single ? ratios(result.single, result.cluster) : null;
  await writeFile(
    `${options.out}.json`,
    `${JSON.stringify({ date: began.toISOString(), minutes, loadAverage: load, options, ratios: ratio, ...result }, null, 2)}\n`,
  );
  await writeFile(
    `${options.out}.md`,
    `# Cluster layout vs one machine, ${options.size} products\n\n` +
      `\`npx tsx bench/store-compare.ts ${argv.join(' ')}\`, started ${began.toISOString()}, ${f(minutes, 1)} min. ` +
      `Synthetic catalogue, 64-dim embeddings, 6 conditions of 28 kept dims, efConstruction ${options.efConstruction}; ` +
      `one shared 2-core machine (load average ${load.before} before, ${load.after} after). ` +
      (options.baseline
        ? 'Single machine: the hnswlib bundle built in one process and opened by the store the service uses. '
        : "No single-machine baseline in this run (the reference of recall and ids is the replica's own exact search). ") +
      `Cluster: ${SHARDS} embedding ` +
      `shards at once (synthetic vectors), the commit (version table, bundle built from the stored vectors on ` +
      `both cores, publish), replicas opening \`LanceStore\` (what \`serve --store lancedb\` runs). Readers are ` +
      `separate processes, loaded and warmed up, then started together, each asking the one query by product for ` +
      `${options.replicaSeconds} s; recall@10 against exact search.\n\n${table}\n`,
  );
}

await main();
