/**
 * Filtered, combined and recommend queries on synthetic catalogues: recall@10 against brute force over the matching
 * products and latency, per selectivity, for HNSW with a filter callback and for exact search over the matches.
 * The crossover between the two gives FILTER_COST_RATIO in src/index/search.ts (exact below s* = sqrt(ratio ef / n)).
 *
 *   npx tsx bench/filters.ts [--size 100000] [--dims 16] [--queries 200] [--ef-search 64] [--out bench/results/filters]
 *
 * Data: 64-dim embeddings around 1000 cluster centres (as bench/index-hnsw.ts), seen through two CSN-like masks of
 * `--dims` dims each (two conditions, overlapping by a quarter). A numeric field `bucket` is a permutation, so
 * `bucket<t` selects exactly the wanted fraction, independent of the vectors. Queries are fresh draws.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Command } from 'commander';
import { combinedSearch, effectiveWeights } from '../src/index/combine.ts';
import { FilterTable, parseFilter, type FilterRecord, type Selection } from '../src/index/filter.ts';
import { buildIndex, createIndex, type HnswIndex } from '../src/index/hnsw.ts';
import { recommend } from '../src/index/recommend.ts';
import {
  FILTER_COST_RATIO,
  exactBelowSelectivity,
  exactOver,
  filteredSearch,
  type SpaceData,
} from '../src/index/search.ts';
import { exactSearch, projectRows, quantiles, randomPairDistances, recallAtK } from '../src/index/vectors.ts';
import { integer } from '../src/util/cli.ts';
import { Rng } from '../src/util/rng.ts';

const FULL_DIM = 64;
const CLUSTERS = 1000;
const K = 10;
const SELECTIVITIES = [0.5, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01, 0.005, 0.001, 0.0005];
/** The selectivities the issue asks recall for. */
const REQUIRED = [0.5, 0.05, 0.005, 0.0005];

interface Options {
  size: number;
  dims: number;
  queries: number;
  efSearch: number;
  seed: number;
  out: string;
  cache: string;
}

function parseOptions(argv: string[]): Options {
  const program = new Command('filters')
    .option('--size <n>', 'products', integer('--size', 2000), 100_000)
    .option('--dims <n>', 'dims per condition space', integer('--dims', 2, FULL_DIM), 16)
    .option('--queries <n>', 'queries per case', integer('--queries', 10), 200)
    .option('--ef-search <n>', 'efSearch', integer('--ef-search', 1), 64)
    .option('--seed <n>', 'seed', integer('--seed', 0), 7)
    .option('--out <path>', 'result path without extension', 'bench/results/filters')
    .option(
      '--cache <dir>',
      'keep built HNSW indexes here between runs (same data for the same options)',
      '.tmp/bench-filters',
    );
  program.parse(argv);
  return program.opts<Options>();
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

interface Timing {
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
}

function timing(ms: number[]): Timing {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    meanMs: ms.reduce((s, v) => s + v, 0) / ms.length,
  };
}

/**
 * CPU milliseconds of one call (user + system, microsecond resolution). Wall time is useless on the shared
 * development machine: at a load of ~19 on 2 cores a 1.5 ms query is preempted mid-way and takes 15 ms of wall
 * time while a 0.2 ms one usually is not, which distorted the crossover tenfold in a first run.
 */
function time<T>(fn: () => T): [T, number] {
  const start = process.cpuUsage();
  const value = fn();
  const used = process.cpuUsage(start);
  return [value, (used.user + used.system) / 1000];
}

/** An HNSW index over `rows` (M 16, efConstruction 200), read from `file` when an earlier run wrote it. */
async function cachedIndex(file: string, rows: Float32Array, d: number): Promise<HnswIndex> {
  const n = rows.length / d;
  try {
    const index = createIndex('l2', d);
    await index.readIndex(file);
    if (index.getCurrentCount() === n) return index;
  } catch {
    // not cached yet
  }
  const started = Date.now();
  const labels = Array.from({ length: n }, (_, i) => i);
  const index = await buildIndex(rows, d, labels, 'l2', {
    m: 16,
    efConstruction: 200,
    efSearch: 64,
    seed: 1,
  });
  process.stderr.write(`built HNSW over ${n} x ${d} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  await mkdir(dirname(file), { recursive: true });
  await index.writeIndex(file);
  return index;
}

interface Data {
  spaces: SpaceData[];
  table: FilterTable;
  queries: Float32Array[][];
  medians: number[];
}

async function makeData(options: Options): Promise<Data> {
  const rng = new Rng(options.seed);
  const centres = Array.from({ length: CLUSTERS }, () =>
    Float32Array.from({ length: FULL_DIM }, () => rng.normal()),
  );
  const draw = (): Float32Array => {
    const centre = centres[rng.int(0, CLUSTERS - 1)];
    return Float32Array.from(centre, (v) => v + 0.35 * rng.normal());
  };
  const n = options.size;
  const embeddings = new Float32Array(n * FULL_DIM);
  for (let i = 0; i < n; i++) embeddings.set(draw(), i * FULL_DIM);
  const masks = [0, 1].map((c) => {
    const from = c * Math.floor((options.dims * 3) / 4);
    const dims = Array.from({ length: options.dims }, (_, k) => from + k);
    return { dims, weights: dims.map(() => 0.5 + 0.5 * rng.next()), metric: 'l2' as const };
  });
  const spaces: SpaceData[] = [];
  for (const mask of masks) {
    const rows = projectRows(embeddings, FULL_DIM, mask);
    const file = join(options.cache, `n${n}-d${options.dims}-s${options.seed}-c${spaces.length}.hnsw`);
    spaces.push({
      metric: 'l2',
      d: mask.dims.length,
      rows,
      index: await cachedIndex(file, rows, mask.dims.length),
    });
  }
  const buckets = rng.shuffle(Array.from({ length: n }, (_, i) => i / n));
  const records: FilterRecord[] = buckets.map((bucket) => ({ attributes: {}, fields: { bucket } }));
  const table = new FilterTable(records, [], { bucket: 'number' });
  const queries = Array.from({ length: options.queries }, () => {
    const e = draw();
    return masks.map((mask) => projectRows(e, FULL_DIM, mask));
  });
  const medians = spaces.map((space) => {
    const sample = randomPairDistances(
      space.rows,
      space.d,
      Array.from({ length: n }, (_, i) => i),
      'l2',
      new Rng(3),
      5000,
    );
    return quantiles(sample)[50];
  });
  return { spaces, table, queries, medians };
}

interface FilteredRow {
  selectivity: number;
  matches: number;
  hnsw: Timing & { recall: number; meanEf: number };
  exact: Timing;
  auto: Timing & { recall: number; method: string; exactK: boolean };
  unfilteredHnswP50Ms: number;
}

interface Run {
  ms: number[];
  recall: number;
  ef: number;
  methods: Set<string>;
  exactK: boolean;
}

/**
 * HNSW+filter, exact, and the served choice, run on every query one after the other (rotating which goes first),
 * so that load from other jobs on the shared machine hits all three alike and their ratio stays meaningful.
 */
function measureFiltered(data: Data, options: Options, selectivity: number, unfiltered: number): FilteredRow {
  const selection = data.table.select(parseFilter([`bucket<${selectivity}`], data.table.schema()));
  const space = data.spaces[0];
  const base = { selection, liveCount: options.size, efSearch: options.efSearch };
  const variants = [0, 1.01, exactBelowSelectivity(options.size, options.efSearch)];
  const runs: Run[] = variants.map(() => ({ ms: [], recall: 0, ef: 0, methods: new Set(), exactK: true }));
  data.queries.forEach(([q], j) => {
    const truth = exactOver(space, q, K, selection);
    for (let v = 0; v < variants.length; v++) {
      const which = (v + j) % variants.length;
      const run = runs[which];
      const [result, elapsed] = time(() =>
        filteredSearch(space, q, K, { ...base, exactBelow: variants[which] }),
      );
      run.ms.push(elapsed);
      run.recall += recallAtK(result.neighbours, truth, K);
      run.ef += result.ef;
      run.methods.add(result.method);
      run.exactK &&= result.neighbours.length === Math.min(K, selection.count);
    }
  });
  const count = data.queries.length;
  const [hnsw, exact, auto] = runs;
  return {
    selectivity,
    matches: selection.count,
    hnsw: { ...timing(hnsw.ms), recall: hnsw.recall / count, meanEf: hnsw.ef / count },
    exact: timing(exact.ms),
    auto: {
      ...timing(auto.ms),
      recall: auto.recall / count,
      method: [...auto.methods].join('+'),
      exactK: auto.exactK,
    },
    unfilteredHnswP50Ms: unfiltered,
  };
}

function unfilteredP50(data: Data, options: Options): number {
  const index = data.spaces[0].index;
  if (!index) return Number.NaN;
  index.setEf(options.efSearch);
  const ms = data.queries.map(([q]) => time(() => index.searchKnn(Array.from(q), K))[1]);
  return timing(ms).p50Ms;
}

interface OtherRow {
  query: string;
  filter: string;
  recall: number;
  timing: Timing;
}

function measureCombined(data: Data, selection: Selection, filter: string): OtherRow {
  const weights = effectiveWeights(
    [
      { condition: 0, weight: 1 },
      { condition: 1, weight: 1 },
    ],
    (c) => data.medians[c],
    () => 'l2',
  );
  // Reference: one combined mask, i.e. the two spaces concatenated with sqrt(weight) scales, searched by brute force.
  const [a, b] = data.spaces;
  const d = a.d + b.d;
  const n = a.rows.length / a.d;
  const joined = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < a.d; k++) joined[i * d + k] = Math.sqrt(weights[0]) * a.rows[i * a.d + k];
    for (let k = 0; k < b.d; k++) joined[i * d + a.d + k] = Math.sqrt(weights[1]) * b.rows[i * b.d + k];
  }
  const ms: number[] = [];
  let recall = 0;
  for (const [qa, qb] of data.queries) {
    const parts = [
      { space: a, weight: weights[0], query: qa },
      { space: b, weight: weights[1], query: qb },
    ];
    const [hits, elapsed] = time(() => combinedSearch(parts, K, selection));
    ms.push(elapsed);
    const q = Float32Array.from([
      ...qa.map((v) => v * Math.sqrt(weights[0])),
      ...qb.map((v) => v * Math.sqrt(weights[1])),
    ]);
    recall += recallAtK(hits, exactSearch(joined, d, q, K, 'l2', { live: selection.bits }), K);
  }
  return {
    query: 'combined color,pattern',
    filter,
    recall: recall / data.queries.length,
    timing: timing(ms),
  };
}

function measureRecommend(
  data: Data,
  options: Options,
  strategy: 'average' | 'best',
  combined: boolean,
  selection: Selection,
  filter: string,
): OtherRow {
  const rng = new Rng(11);
  const parts = combined
    ? data.spaces.map((space, c) => ({ space, weight: 0.5 / data.medians[c] ** 2 }))
    : [{ space: data.spaces[0], weight: 1 }];
  const ms: number[] = [];
  const rounds = Math.min(50, data.queries.length);
  for (let r = 0; r < rounds; r++) {
    const positives = [
      rng.int(0, options.size - 1),
      rng.int(0, options.size - 1),
      rng.int(0, options.size - 1),
    ];
    const negatives = [rng.int(0, options.size - 1)];
    ms.push(
      time(() =>
        recommend({
          parts,
          positives,
          negatives,
          strategy,
          k: K,
          selection,
          liveCount: options.size,
          efSearch: options.efSearch,
        }),
      )[1],
    );
  }
  return {
    query: `recommend ${strategy} (3 positive, 1 negative${combined ? ', 2 parts' : ''})`,
    filter,
    recall: Number.NaN,
    timing: timing(ms),
  };
}

const fmt = (v: number, digits = 3) => (Number.isFinite(v) ? v.toFixed(digits) : '—');

/**
 * The selectivity where HNSW+filter and exact p50 cross (log-linear between the two measured rows around it), and
 * the FILTER_COST_RATIO it implies: s*^2 x n / ef.
 */
function crossover(rows: readonly FilteredRow[], options: Options): { selectivity: number; ratio: number } {
  const gap = (r: FilteredRow) => Math.log(r.hnsw.p50Ms / r.exact.p50Ms);
  let selectivity = Number.NaN;
  for (let j = 0; j + 1 < rows.length; j++) {
    const [hi, lo] = [rows[j], rows[j + 1]];
    if (gap(hi) <= 0 && gap(lo) > 0) {
      const t = gap(hi) / (gap(hi) - gap(lo));
      selectivity = Math.exp(
        Math.log(hi.selectivity) + t * (Math.log(lo.selectivity) - Math.log(hi.selectivity)),
      );
      break;
    }
  }
  if (Number.isNaN(selectivity) && rows.length > 0 && gap(rows[0]) > 0) selectivity = 1;
  return { selectivity, ratio: (selectivity * selectivity * options.size) / options.efSearch };
}

function markdown(
  options: Options,
  rows: FilteredRow[],
  others: OtherRow[],
  cross: { selectivity: number; ratio: number },
): string {
  const threshold = exactBelowSelectivity(options.size, options.efSearch);
  const lines = [
    `# Filtered search, ${options.size} products, ${options.dims}-dim condition spaces, efSearch ${options.efSearch}, k ${K}`,
    '',
    `Recall@${K} is tie-aware, against brute force over the matching products. Times are CPU time per query (user + system; wall time on the shared 2-core machine is dominated by preemption).`,
    `Served: exact search below ${(threshold * 100).toFixed(1)} % = sqrt(FILTER_COST_RATIO ${FILTER_COST_RATIO} x ef / n). ` +
      `Crossover of the two p50s in this run: ${(cross.selectivity * 100).toFixed(1)} %, i.e. a ratio of ${cross.ratio.toFixed(1)}.`,
    '',
    '| selectivity | matches | HNSW+filter recall | HNSW p50 ms | HNSW p99 ms | mean ef | exact p50 ms | exact p99 ms | served path | served recall | exact k | served p50 ms | vs unfiltered HNSW |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${(r.selectivity * 100).toFixed(2)} % | ${r.matches} | ${fmt(r.hnsw.recall)} | ${fmt(r.hnsw.p50Ms)} | ${fmt(r.hnsw.p99Ms)} | ${fmt(r.hnsw.meanEf, 0)} | ${fmt(r.exact.p50Ms)} | ${fmt(r.exact.p99Ms)} | ${r.auto.method} | ${fmt(r.auto.recall)} | ${r.auto.exactK ? 'yes' : 'NO'} | ${fmt(r.auto.p50Ms)} | ${fmt(r.auto.p50Ms / r.unfilteredHnswP50Ms, 1)}× |`,
    ),
    '',
    '| query | filter | recall@10 | p50 ms | p99 ms |',
    '| --- | --- | ---: | ---: | ---: |',
    ...others.map(
      (o) =>
        `| ${o.query} | ${o.filter} | ${fmt(o.recall)} | ${fmt(o.timing.p50Ms)} | ${fmt(o.timing.p99Ms)} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const data = await makeData(options);
  const unfiltered = unfilteredP50(data, options);
  const rows: FilteredRow[] = [];
  for (const selectivity of SELECTIVITIES) {
    const row = measureFiltered(data, options, selectivity, unfiltered);
    rows.push(row);
    process.stderr.write(
      `${(selectivity * 100).toFixed(2)} %: hnsw recall ${fmt(row.hnsw.recall)} p50 ${fmt(row.hnsw.p50Ms)} ms, exact p50 ${fmt(row.exact.p50Ms)} ms, served ${row.auto.method} recall ${fmt(row.auto.recall)}\n`,
    );
  }
  const cross = crossover(rows, options);
  const all = data.table.all();
  const five = data.table.select(parseFilter(['bucket<0.05'], data.table.schema()));
  const others = [
    measureCombined(data, all, 'none'),
    measureCombined(data, five, 'bucket<0.05 (5 %)'),
    measureRecommend(data, options, 'average', false, all, 'none'),
    measureRecommend(data, options, 'average', true, all, 'none'),
    measureRecommend(data, options, 'best', false, all, 'none'),
    measureRecommend(data, options, 'best', true, all, 'none'),
    measureRecommend(data, options, 'best', true, five, 'bucket<0.05 (5 %)'),
  ];
  const required = rows.filter((r) => REQUIRED.includes(r.selectivity));
  const passed = required.every((r) => r.auto.recall >= 0.99 && r.auto.exactK);
  const md = markdown(options, rows, others, cross);
  process.stdout.write(
    `${md}\nrecall@10 >= 0.99 with exact k at 50 / 5 / 0.5 / 0.05 %: ${passed ? 'yes' : 'NO'}\n`,
  );
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(`${options.out}.md`, md);
  await writeFile(
    `${options.out}.json`,
    `${JSON.stringify({ options, k: K, filterCostRatio: FILTER_COST_RATIO, exactBelowSelectivity: exactBelowSelectivity(options.size, options.efSearch), crossover: cross, passed, filtered: rows, others }, null, 2)}\n`,
  );
}

await main();
