/**
 * Load benchmark of the HTTP service against a bare express app measured in the same run: every figure is
 * also a share of the reference, so that a busy shared machine moves both. The service is started through the CLI
 * in its own process (as users run it, info-level request logs to /dev/null); the reference is express answering
 * res.json({status:'ok'}) on the same Node, and sending the service's own answers for the same URLs (nothing
 * computed: the framework's cost of an answer that size). Endpoints: /healthz, GET /similar for one condition and
 * for all, at each explain level; with 1 and 2 workers. Each computed answer is also built in-process, with no HTTP
 * (answerFloors): what it costs bounds the ratio any server computing it can reach. Then the server's RSS at a synthetic catalogue (100k
 * products) against the size of its index files. The catalogue served is the published demo index when there is
 * one, else the demo's 3,000 products with synthetic vectors (built in seconds; see demoShapedSource).
 *
 *   npx tsx bench/serve-load.ts [--quick] [--duration 8] [--connections 8] [--workers 1,2] [--synthetic 100000]
 *                               [--demo-index indexes/demo] [--work-dir .tmp/bench-serve] [--out bench/results/serve-load.json]
 *
 * --quick: 3 s per run (after 1 s of warm-up; 3 s for each new service process), explain=full only, and the
 * synthetic catalogue at 20k products unless a 100k bundle is already in --work-dir (building 100k takes minutes
 * here); under 2 minutes.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { Command } from 'commander';
import express from 'express';
import { pino } from 'pino';
import { DEMO_ATTRIBUTES, DEMO_CONDITIONS, demoProducts } from '../src/catalogue/index.ts';
import { buildBundle, openBundle, type BundleSource, type IndexedProduct } from '../src/index/index.ts';
import { utf8Bytes, type EtagFunction } from '../src/serve/answer-cache.ts';
import { createMetrics } from '../src/serve/metrics.ts';
import { resolveAsk, similarToProduct } from '../src/serve/neighbours.ts';
import { requireSlot } from '../src/serve/products.ts';
import { ServeState } from '../src/serve/state.ts';
import { Rng } from '../src/util/rng.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const EMBED_DIM = 64;
const CLUSTERS = 1000;

interface Options {
  quick: boolean;
  duration: number;
  connections: number;
  workers: string;
  synthetic: number;
  demoIndex: string;
  model: string;
  replicaUri?: string;
  workDir: string;
  out: string;
}

interface Run {
  server: 'bare express' | 'dressmatch';
  workers: number;
  endpoint: string;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number };
  bytesPerResponse: number;
  /** CPU time the server's processes spent per answered request (all threads; children for several workers). */
  cpuMsPerRequest: number;
  errors: number;
  /** Share of this run's GET /similar requests answered from the answer cache (from /metrics). */
  answerCacheHits?: number;
  /** This run's req/s and p99 over the bare express reference's measured in the same block. */
  share?: number;
  p99Ratio?: number;
}

const benchStarted = performance.now();

/** A progress line, with the seconds since the bench started (the quick mode has a time budget). */
function log(message: string): void {
  process.stderr.write(
    `[${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(3)} s] ${message}\n`,
  );
}

/**
 * The published demo index when there is one (`npm run demo` trained and indexed it); else a demo-shaped bundle in
 * the work dir (demoShapedSource).
 */
async function demoBundle(options: Options): Promise<string> {
  if (existsSync(join(options.demoIndex, 'manifest.json'))) return options.demoIndex;
  const indexDir = join(options.workDir, 'demo-shaped');
  if (existsSync(join(indexDir, 'manifest.json'))) return indexDir;
  log(`no published demo index at ${options.demoIndex}: building a demo-shaped bundle in ${indexDir}`);
  await buildBundle(indexDir, demoShapedSource(7), { minRecall: 0 });
  log(`demo-shaped bundle ready`);
  return indexDir;
}

/** The catalogue a bench serves: its bundle directory, its product ids and the condition asked for one condition. */
interface Served {
  indexDir: string;
  ids: string[];
  condition: string;
}

/** Read once what every measurement on the demo bundle asks for. */
async function servedCatalogue(indexDir: string): Promise<Served> {
  const bundle = await openBundle(indexDir, { verify: false });
  const served = {
    indexDir,
    ids: [...bundle.entries()].map(([, product]) => product.id),
    condition: bundle.conditions[0],
  };
  bundle.close();
  return served;
}

/** Dimensions of the embedding each demo condition's labels live in (its block), and the mask's weight there. */
const BLOCK_WEIGHT = { mean: 1.5, sd: 0.4 };

/**
 * The demo catalogue's products (ids, titles, labels and fields exactly as demo-data writes them) with synthetic
 * vectors instead of a model's: every label value has a direction in its condition's block of dimensions, and
 * each condition's mask weighs its block, so that neighbours under a condition tend to share its label as with the
 * trained demo model, and answers are alike in size and wording. Nothing is rendered and no model runs: making
 * the demo images and embedding them took 50 of a quick run's 2 minutes.
 */
function demoShapedSource(seed: number): BundleSource {
  const rng = new Rng(seed);
  const products = demoProducts();
  const conditions = [...DEMO_CONDITIONS];
  const block = (c: number, d: number) => Math.floor((d * conditions.length) / EMBED_DIM) === c;
  const masks = conditions.map((_, c) =>
    Array.from({ length: EMBED_DIM }, (_, d) =>
      block(c, d)
        ? Math.max(0.1, rng.normal(BLOCK_WEIGHT.mean, BLOCK_WEIGHT.sd))
        : Math.max(0, rng.normal(0, 0.4)),
    ),
  );
  const directions = conditions.map((condition, c) =>
    Object.fromEntries(
      DEMO_ATTRIBUTES[condition].map((value) => [
        value,
        Float32Array.from({ length: EMBED_DIM }, (_, d) => (block(c, d) ? rng.normal() : 0)),
      ]),
    ),
  );
  return {
    modelId: `demo-shaped-${seed}`,
    modelKind: 'csn',
    embedDim: EMBED_DIM,
    conditions,
    masks,
    products: products.map((p) => ({ ...p, fingerprint: `demo-shaped-${seed}-${p.id}` })),
    catalogue: null,
    async embed(indices: number[]) {
      const embeddings = new Float32Array(indices.length * EMBED_DIM);
      indices.forEach((product, row) => {
        const local = new Rng(seed * 1_000_003 + product);
        const vector = embeddings.subarray(row * EMBED_DIM, (row + 1) * EMBED_DIM);
        for (let d = 0; d < EMBED_DIM; d++) vector[d] = local.normal(0, 0.35);
        conditions.forEach((condition, c) => {
          const direction = directions[c][products[product].attributes[condition][0]];
          for (let d = 0; d < EMBED_DIM; d++) vector[d] += direction[d];
        });
      });
      return { embeddings };
    },
  };
}

/** A BundleSource of random clustered embeddings, CSN-like masks and random labels (no images). */
function syntheticSource(count: number, seed: number): BundleSource {
  const rng = new Rng(seed);
  const conditions = ['color', 'sleeve', 'neckline', 'length', 'pattern', 'silhouette'];
  const values = conditions.map((c) => Array.from({ length: 8 }, (_, i) => `${c}-${i}`));
  const masks = conditions.map(() =>
    Array.from({ length: EMBED_DIM }, () => Math.max(0, rng.normal(0.9, 0.7))),
  );
  const centres = Array.from({ length: CLUSTERS }, () =>
    Float32Array.from({ length: EMBED_DIM }, () => rng.normal()),
  );
  const products: IndexedProduct[] = Array.from({ length: count }, (_, i) => ({
    id: `synthetic-${String(i).padStart(6, '0')}`,
    title: `Synthetic product ${i}`,
    image: `images/${i}.png`,
    attributes: Object.fromEntries(conditions.map((c, k) => [c, [rng.pick(values[k])]])),
    fingerprint: `synthetic-${seed}-${i}`,
  }));
  return {
    modelId: `synthetic-${seed}`,
    modelKind: 'csn',
    embedDim: EMBED_DIM,
    conditions,
    masks,
    products,
    catalogue: null,
    async embed(indices: number[]) {
      const embeddings = new Float32Array(indices.length * EMBED_DIM);
      indices.forEach((product, row) => {
        // Each product's vector is a function of its index, so any batch order gives the same data.
        const local = new Rng(seed * 1_000_003 + product);
        const centre = centres[local.int(0, CLUSTERS - 1)];
        for (let d = 0; d < EMBED_DIM; d++)
          embeddings[row * EMBED_DIM + d] = centre[d] + local.normal(0, 0.35);
      });
      return { embeddings };
    },
  };
}

/**
 * A synthetic bundle of `products` products (reused from the work dir). Graph quality does not matter for memory,
 * so the graph is built cheaply (efConstruction 16) and the recall gate is off: 100k products build in minutes.
 */
async function syntheticBundle(options: Options, products: number): Promise<string> {
  const indexDir = join(options.workDir, `synthetic-${products}`);
  if (existsSync(join(indexDir, 'manifest.json'))) return indexDir;
  log(`building a synthetic bundle of ${products} products in ${indexDir} (one-off)`);
  const started = Date.now();
  let last = 0;
  await buildBundle(indexDir, syntheticSource(products, 7), {
    batchSize: 4096,
    efConstruction: 16,
    minRecall: 0,
    recallSample: 20,
    quantilePairs: 2000,
    onProgress: (p) => {
      if (Date.now() - last > 5000) {
        last = Date.now();
        log(`  ${p.stage}${p.condition ? ` ${p.condition}` : ''}: ${p.done}/${p.total}`);
      }
    },
  });
  log(`  built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return indexDir;
}

/** A port nobody listens on right now (the server is started on it in another process). */
function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolvePromise(port));
    });
  });
}

interface Started {
  url: string;
  child: ChildProcess;
}

async function waitFor(url: string, child: ChildProcess, what: string): Promise<void> {
  let exited = child.exitCode !== null;
  child.once('exit', () => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error(`${what} exited before it was ready`);
    const ready = await fetch(url).catch(() => undefined);
    if (ready?.status === 200) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The reference: bare express on the same Node, answering what /healthz answers. Given a file of answers (URL →
 * JSON text, fetched from the service beforehand), it also sends those bytes for those URLs, computing nothing:
 * what the framework alone costs an answer of that size.
 */
async function startBare(answersFile?: string): Promise<Started> {
  const port = await freePort();
  const script =
    "import express from 'express'; import { readFileSync } from 'node:fs'; const app = express();" +
    "app.get('/healthz', (_q, r) => { r.json({ status: 'ok' }); });" +
    (answersFile
      ? `const answers = new Map(Object.entries(JSON.parse(readFileSync(${JSON.stringify(answersFile)}, 'utf8'))));` +
        "app.get('/similar/:id', (q, r) => { r.type('json').send(answers.get(q.originalUrl)); });"
      : '') +
    `app.listen(${port}, '127.0.0.1');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/healthz`, child, 'bare express');
  return { url, child };
}

/** The service as users run it (its default info-level request logs included, sent to /dev/null). */
async function startServe(indexDir: string, workers: number, extra: string[] = []): Promise<Started> {
  return startServeWith([
    '--index',
    indexDir,
    ...extra,
    ...(workers > 1 ? ['--workers', String(workers)] : []),
  ]);
}

/** `serve` with the given source and flags, on a free port. */
async function startServeWith(flags: string[]): Promise<Started> {
  const port = await freePort();
  const args = ['serve', ...flags, '--host', '127.0.0.1', '--port', String(port)];
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/readyz`, child, `serve ${flags.join(' ')}`);
  return { url, child };
}

/** Rounds of the replica comparison; the two servers alternate within each. */
const REPLICA_ROUNDS = 3;

interface ReplicaReport {
  /** Requests/s per round: the single-machine bundle's and the LanceDB replica's. */
  bundle: number[];
  replica: number[];
  ratio: number;
}

/**
 * A replica on a LanceDB store of the same catalogue (`--replica-uri`, written by `index --store lancedb`) against
 * `serve --index` on the published demo bundle: computed one-condition answers (`--answer-cache 0`,
 * `explain=none`), the two servers measured alternately; the ratio is of the summed requests.
 */
async function replicaAgainstBundle(
  { indexDir, ids, condition }: Served,
  uri: string,
  options: Options,
): Promise<ReplicaReport> {
  log(`LanceDB replica (${uri}) against the bundle, ${REPLICA_ROUNDS} alternating rounds`);
  const model = ['--model', options.model, '--answer-cache', '0'];
  const servers = [
    await startServeWith(['--index', indexDir, ...model]),
    await startServeWith(['--store', 'lancedb', '--uri', uri, ...model]),
  ];
  try {
    const query = `condition=${condition}&k=10&explain=none`;
    const path = (rng: Rng) => similarPath(rng.pick(ids), query);
    for (const server of servers) await warmUpService(server.url, [['one condition', path]], options);
    const rates: number[][] = [[], []];
    for (let round = 0; round < REPLICA_ROUNDS; round++) {
      for (const [i, server] of servers.entries()) {
        const run = await measure(server, path, options.duration, options.connections, false);
        rates[i].push(run.requestsPerSecond);
      }
    }
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    return { bundle: rates[0], replica: rates[1], ratio: sum(rates[1]) / sum(rates[0]) };
  } finally {
    await Promise.all(servers.map((server) => stop(server.child)));
  }
}

function replicaLine(report: ReplicaReport): string {
  const rounds = (values: number[]) => values.map((v) => v.toFixed(0)).join(', ');
  return (
    `LanceDB replica against the single-machine bundle (computed one-condition answers, explain=none, ` +
    `${REPLICA_ROUNDS} alternating rounds): ${rounds(report.replica)} against ${rounds(report.bundle)} req/s, ` +
    `ratio ${report.ratio.toFixed(2)} (goal at least 0.8: ${report.ratio >= 0.8 ? 'met' : 'NOT met'}).`
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Answer-cache lookups so far (hits, misses), summed over workers by /metrics; zeros for bare express. */
async function answerLookups(url: string): Promise<{ hit: number; miss: number }> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const count = (outcome: string) => {
    const prefix = `dressmatch_image_cache_lookups_total{cache="answer",outcome="${outcome}"} `;
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    return line ? Number(line.slice(prefix.length)) : 0;
  };
  return { hit: count('hit'), miss: count('miss') };
}

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system, all threads) of a process and its descendants so far, from /proc. */
async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces) start at the last ')'; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  let seconds = (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / TICKS_PER_SECOND;
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const task of tasks) {
    const children = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const child of children.split(' ').filter(Boolean)) seconds += await cpuSecondsOf(Number(child));
  }
  return seconds;
}

async function measure(
  server: Started,
  path: (rng: Rng) => string,
  seconds: number,
  connections: number,
  warmUp = true,
): Promise<Omit<Run, 'server' | 'workers' | 'endpoint'>> {
  const { url } = server;
  const pid = server.child.pid ?? 0;
  const rng = new Rng(11);
  const request = { method: 'GET' as const, setupRequest: (r: object) => ({ ...r, path: path(rng) }) };
  // Each run's own warm-up, a third of its length (the service was warmed as a whole when it started, see
  // warmUpService); a few hundred requests are too few for V8 to optimise the explain code.
  const warm = {
    method: 'GET' as const,
    setupRequest: (r: object) => ({ ...r, path: warmUpPath(path(rng)) }),
  };
  if (warmUp) {
    await autocannon({ url, connections, duration: Math.max(1, Math.round(seconds / 3)), requests: [warm] });
  }
  const before = await answerLookups(url);
  const cpuBefore = await cpuSecondsOf(pid);
  const r = await autocannon({ url, connections, duration: seconds, requests: [request] });
  const cpu = (await cpuSecondsOf(pid)) - cpuBefore;
  const after = await answerLookups(url);
  const lookups = after.hit + after.miss - before.hit - before.miss;
  return {
    answerCacheHits: lookups > 0 ? (after.hit - before.hit) / lookups : undefined,
    requestsPerSecond: r.requests.average,
    latencyMs: { p50: r.latency.p50, p99: r.latency.p99 },
    bytesPerResponse: r.requests.total > 0 ? Math.round(r.throughput.total / r.requests.total) : 0,
    cpuMsPerRequest: r.requests.total > 0 ? (1000 * cpu) / r.requests.total : NaN,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

/**
 * A new service process is warmed for one run's length on all its /similar endpoints at once (k=9 URLs, see
 * warmUpPath) before anything is measured: with 1 s of warm-up a first /similar run measured 1,600-3,500
 * requests/s, with 4 s 4,700-4,900. Each run still has its own short warm-up.
 */
async function warmUpService(
  url: string,
  similar: [string, (rng: Rng) => string][],
  options: Options,
): Promise<void> {
  const rng = new Rng(13);
  const requests = similar.map(([, path]) => ({
    method: 'GET' as const,
    setupRequest: (r: object) => ({ ...r, path: warmUpPath(path(rng)) }),
  }));
  log(`warming the service up for ${options.duration} s`);
  await autocannon({ url, connections: options.connections, duration: options.duration, requests });
}

/**
 * What a warm-up asks instead of `path`: k=9 where k=10 is measured. The same code runs, but its answers are cached
 * under other URLs, so the measured URLs meet the answer cache as cold as without a warm-up.
 */
function warmUpPath(path: string): string {
  return path.replace(/([?&]k=)10(?=&|$)/, '$19');
}

/** Explain levels measured: all of them, or `full` only (quick mode, 2-worker blocks). */
function explainLevels(everyLevel: boolean, quick: boolean): string[] {
  return everyLevel && !quick ? ['full', 'summary', 'none'] : ['full'];
}

/** The GET /similar queries measured at the given explain levels, by label. */
function similarQueries(condition: string, levels: string[]): [string, string][] {
  const explain = (level: string) => (level === 'full' ? '' : `&explain=${level}`);
  return [
    ...levels.map((level): [string, string] => [
      `one condition, explain=${level}`,
      `condition=${condition}&k=10${explain(level)}`,
    ]),
    ...levels.map((level): [string, string] => [`all conditions, explain=${level}`, `k=10${explain(level)}`]),
  ];
}

const similarPath = (id: string, query: string) => `/similar/${encodeURIComponent(id)}?${query}`;

/** The endpoints measured with `workers` workers, at the given explain levels. */
function endpoints(ids: string[], condition: string, levels: string[]): [string, (rng: Rng) => string][] {
  return [
    ['/healthz', () => '/healthz'],
    ...similarQueries(condition, levels).map(([label, query]): [string, (rng: Rng) => string] => [
      label,
      (rng) => similarPath(rng.pick(ids), query),
    ]),
  ];
}

/** One block: bare express /healthz, then the service's endpoints with `workers` workers, then bare again. */
async function block(
  { indexDir, ids, condition }: Served,
  workers: number,
  options: Options,
  everyLevel: boolean,
): Promise<Run[]> {
  const bare = await startBare();
  const serve = await startServe(indexDir, workers);
  const runs: Run[] = [];
  try {
    await warmUpService(serve.url, endpoints(ids, condition, ['full']).slice(1), options);
    const reference: Run[] = [];
    const bareRun = async () => {
      log(`bare express /healthz for ${options.duration} s`);
      const run = await measure(bare, () => '/healthz', options.duration, options.connections);
      reference.push({ server: 'bare express', workers: 1, endpoint: '/healthz', ...run });
    };
    await bareRun();
    for (const [endpoint, path] of endpoints(ids, condition, explainLevels(everyLevel, options.quick))) {
      log(`dressmatch (${workers} worker${workers > 1 ? 's' : ''}) ${endpoint} for ${options.duration} s`);
      const run = await measure(serve, path, options.duration, options.connections);
      runs.push({ server: 'dressmatch', workers, endpoint, ...run });
    }
    if (everyLevel) runs.push(...(await withoutAnswerCache(indexDir, workers, ids, condition, options)));
    if (everyLevel) runs.push(await cachedAnswers(serve, ids, condition, workers, options));
    // Fetched after the service's own runs, so that the fetching does not fill its answer cache first.
    if (everyLevel) runs.push(...(await sameBytesReference(serve.url, ids, condition, options)));
    await bareRun();
    // Against the better of the two bare runs: on this shared machine one of them was at times half the other
    // (2,548 and 5,891 requests/s), and a mean would then flatter every share of the block.
    const bareRps = Math.max(...reference.map((r) => r.requestsPerSecond));
    const bareP99 = Math.min(...reference.map((r) => r.latencyMs.p99));
    for (const run of runs) {
      run.share = run.requestsPerSecond / bareRps;
      run.p99Ratio = run.latencyMs.p99 / Math.max(bareP99, 1);
    }
    return [...reference, ...runs];
  } finally {
    await Promise.all([stop(serve.child), stop(bare.child)]);
  }
}

/** Products asked for in the cached-answer run (their answers fit the default answer cache many times over). */
const CACHED_PRODUCTS = 100;

/** What an answer from the answer cache costs: one-condition answers of a few products, each asked once before. */
async function cachedAnswers(
  serve: Started,
  ids: string[],
  condition: string,
  workers: number,
  options: Options,
): Promise<Run> {
  const [[label, query]] = similarQueries(condition, ['full']);
  const popular = ids.slice(-CACHED_PRODUCTS);
  for (const id of popular) await (await fetch(`${serve.url}${similarPath(id, query)}`)).arrayBuffer();
  const endpoint = `${label}, answered from the cache (${CACHED_PRODUCTS} products)`;
  log(`dressmatch (${workers} worker${workers > 1 ? 's' : ''}) ${endpoint} for ${options.duration} s`);
  const path = (rng: Rng) => similarPath(rng.pick(popular), query);
  return {
    server: 'dressmatch',
    workers,
    endpoint,
    ...(await measure(serve, path, options.duration, options.connections)),
  };
}

/** Products whose answers the bare reference holds (enough to vary the bytes; fetching them takes seconds). */
const SAME_BYTES_PRODUCTS = 100;

/**
 * The framework's share of an answer: bare express sending the service's full-explanation answers for some
 * products (fetched from `url`), computing nothing.
 */
async function sameBytesReference(
  url: string,
  ids: string[],
  condition: string,
  options: Options,
): Promise<Run[]> {
  const sample = ids.slice(0, SAME_BYTES_PRODUCTS);
  const queries = similarQueries(condition, ['full']);
  const answers: Record<string, string> = {};
  for (const [, query] of queries) {
    for (const id of sample) {
      const path = similarPath(id, query);
      answers[path] = await (await fetch(`${url}${path}`)).text();
    }
  }
  const file = join(options.workDir, 'answers.json');
  await writeFile(file, JSON.stringify(answers));
  const bare = await startBare(file);
  try {
    const runs: Run[] = [];
    for (const [label, query] of queries) {
      const endpoint = `${label}: the same bytes, nothing computed`;
      log(`bare express ${endpoint} for ${options.duration} s`);
      const path = (rng: Rng) => similarPath(rng.pick(sample), query);
      const run = await measure(bare, path, options.duration, options.connections);
      runs.push({ server: 'bare express', workers: 1, endpoint, ...run });
    }
    return runs;
  } finally {
    await stop(bare.child);
  }
}

/** What a request costs when its answer is computed: the full-explanation endpoints with the answer cache off. */
async function withoutAnswerCache(
  indexDir: string,
  workers: number,
  ids: string[],
  condition: string,
  options: Options,
): Promise<Run[]> {
  const serve = await startServe(indexDir, workers, ['--answer-cache', '0']);
  try {
    await warmUpService(serve.url, endpoints(ids, condition, ['full']).slice(1), options);
    const runs: Run[] = [];
    for (const [endpoint, path] of endpoints(ids, condition, ['full']).slice(1)) {
      const label = `${endpoint}, no answer cache`;
      log(`dressmatch (${workers} worker${workers > 1 ? 's' : ''}) ${label} for ${options.duration} s`);
      const run = await measure(serve, path, options.duration, options.connections);
      runs.push({ server: 'dressmatch', workers, endpoint: label, ...run });
    }
    return runs;
  } finally {
    await stop(serve.child);
  }
}

/** Distinct heat maps fired at once (every one a different product pair, so none comes from the heat-map cache). */
const BURST_HEATMAPS = 200;
/** Rounds of (window without the burst, window with one): the ratio reported is the median round's. */
const BURST_ROUNDS = 3;

/** One round: GET /similar's latency without a burst, then while one runs, and the burst's answers. */
interface BurstRound {
  /** Status -> count of the burst's answers (200 rendered, 503 refused while the model's queue is full). */
  statuses: Record<string, number>;
  /** Median time to a refusal at the client, which shares this machine's cores with the server and the load. */
  refusedMedianMs: number;
  /** The server's own median for its refusals (arrival at the app to the answer): the bound of its histogram bucket. */
  serverRefusedMedianMs: number;
  burstSeconds: number;
  /** GET /similar (one condition, computed) without the burst and while it runs. */
  similar: { quiet: Run['latencyMs']; burst: Run['latencyMs'] };
  p99Ratio: number;
}

interface BurstReport {
  heatmaps: number;
  rounds: BurstRound[];
  /** The median round's p99 ratio. */
  p99Ratio: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)];
}

/**
 * The burst's client: fires every pair's heat map at once and prints each answer's status and time. It runs in a
 * process of its own, so that parsing 200 answers does not hold up the client that measures GET /similar.
 */
const BURST_CLIENT = `
const [url, condition, pairs] = JSON.parse(process.argv[1]);
const answers = await Promise.all(pairs.map(async ([query, neighbour]) => {
  const started = performance.now();
  const path = [query, neighbour].map(encodeURIComponent).join('/');
  const response = await fetch(url + '/similar/' + path + '/heatmap.png?condition=' + condition);
  await response.arrayBuffer();
  return { status: response.status, ms: performance.now() - started };
}));
process.stdout.write(JSON.stringify(answers));
`;

/** Fire `pairs` heat-map requests at once (BURST_CLIENT); each one's status and time. */
async function fireHeatmaps(
  url: string,
  pairs: string[][],
  condition: string,
): Promise<{ status: number; ms: number }[]> {
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--input-type=module',
    '-e',
    BURST_CLIENT,
    JSON.stringify([url, condition, pairs]),
  ]);
  return JSON.parse(stdout) as { status: number; ms: number }[];
}

const REFUSAL_SERIES =
  'dressmatch_http_request_duration_seconds_bucket{le="%",method="GET",' +
  'route="/similar/{productId}/{neighbourId}/heatmap.png",status="503"} ';

/** The heat-map refusals' duration histogram so far (bucket bound in seconds -> cumulative count), from /metrics. */
async function refusalHistogram(url: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const [before, after] = REFUSAL_SERIES.split('%');
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(before)) continue;
    const bound = line.slice(before.length, line.indexOf('"', before.length));
    if (line.includes(after))
      buckets.set(Number(bound === '+Inf' ? Infinity : bound), Number(line.split(' ')[1]));
  }
  return buckets;
}

/** Upper bound (ms) of the bucket holding the median of the refusals between two histogram readings. */
function medianBucketMs(before: Map<number, number>, after: Map<number, number>): number {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => (after.get(bound) ?? 0) - (before.get(bound) ?? 0));
  const half = counts[counts.length - 1] / 2;
  const at = counts.findIndex((count) => count >= half);
  return at < 0 ? NaN : bounds[at] * 1000;
}

/** Pairs no earlier round asked for: round r pairs the r-th block of ids with ids from the other end. */
function burstPairs(ids: string[], round: number): string[][] {
  return Array.from({ length: BURST_HEATMAPS }, (_, i) => {
    const at = round * BURST_HEATMAPS + i;
    return [ids[at % ids.length], ids[(ids.length - 1 - at + ids.length) % ids.length]];
  });
}

async function burstRound(
  serve: Started,
  path: (rng: Rng) => string,
  pairs: string[][],
  condition: string,
  options: Options,
): Promise<BurstRound> {
  const quiet = await measure(serve, path, options.duration, options.connections, false);
  const refusalsBefore = await refusalHistogram(serve.url);
  const started = performance.now();
  const burstDone = fireHeatmaps(serve.url, pairs, condition).then((answers) => ({
    answers,
    seconds: (performance.now() - started) / 1000,
  }));
  const loaded = await measure(serve, path, options.duration, options.connections, false);
  const { answers, seconds } = await burstDone;
  const serverRefusedMedianMs = medianBucketMs(refusalsBefore, await refusalHistogram(serve.url));
  const statuses: Record<string, number> = {};
  for (const { status } of answers) statuses[status] = (statuses[status] ?? 0) + 1;
  return {
    statuses,
    refusedMedianMs: median(answers.filter((a) => a.status === 503).map((a) => a.ms)),
    serverRefusedMedianMs,
    burstSeconds: seconds,
    similar: { quiet: quiet.latencyMs, burst: loaded.latencyMs },
    p99Ratio: loaded.latencyMs.p99 / Math.max(1, quiet.latencyMs.p99),
  };
}

/**
 * A burst of distinct heat maps against a service answering GET /similar: the refused ones must be refused at once
 * (before their photos are decoded) and /similar's p99 must stay near its value without the burst. Each burst
 * starts with its measured window, which lasts as long as the other runs; rounds alternate quiet and burst windows
 * so that a busy moment of the machine moves one round, not the verdict.
 */
async function heatmapBurst(
  { indexDir, ids, condition }: Served,
  model: string,
  options: Options,
): Promise<BurstReport> {
  log(`heat-map burst: ${BURST_ROUNDS} rounds of ${BURST_HEATMAPS} distinct heat maps during GET /similar`);
  const serve = await startServe(indexDir, 1, ['--model', model, '--answer-cache', '0']);
  try {
    const path = (rng: Rng) => similarPath(rng.pick(ids), `condition=${condition}&k=10`);
    await warmUpService(serve.url, [['one condition', path]], options);
    const rounds: BurstRound[] = [];
    for (let round = 0; round < BURST_ROUNDS; round++) {
      rounds.push(await burstRound(serve, path, burstPairs(ids, round), condition, options));
    }
    return { heatmaps: BURST_HEATMAPS, rounds, p99Ratio: median(rounds.map((r) => r.p99Ratio)) };
  } finally {
    await stop(serve.child);
  }
}

function burstLine(burst: BurstReport): string {
  const rounds = burst.rounds.map((round) => {
    const statuses = Object.entries(round.statuses)
      .map(([status, count]) => `${count} × ${status}`)
      .join(', ');
    return (
      `${round.similar.burst.p99} against ${round.similar.quiet.p99} ms (${statuses}; refusals after a median ` +
      `${round.refusedMedianMs.toFixed(0)} ms at the client, at most ${round.serverRefusedMedianMs} ms in the ` +
      `server; the burst lasted ${round.burstSeconds.toFixed(1)} s)`
    );
  });
  return (
    `Heat-map burst: ${burst.heatmaps} distinct heat maps at once, ${burst.rounds.length} rounds. GET /similar ` +
    `(one condition, computed) p99 during the burst against without it: ${rounds.join('; ')}. A refusal's time ` +
    'at the client includes its own wait for a core (the burst client, the load generator, the server and the ' +
    `model share them here); the server's histogram times it from arrival to answer. Median round: ` +
    `${burst.p99Ratio.toFixed(2)}x (goal at most 1.5x: ${burst.p99Ratio <= 1.5 ? 'met' : 'NOT met'}).`
  );
}

/** The burst needs heat maps, hence the model the index was built with: only on the published demo index. */
async function burstOnDemo(served: Served, options: Options): Promise<BurstReport | undefined> {
  if (served.indexDir !== options.demoIndex || !existsSync(options.model)) {
    log('heat-map burst skipped: it needs the published demo index and its model (npm run demo)');
    return undefined;
  }
  return heatmapBurst(served, options.model, options);
}

/** Resident memory of the serve process once it answers, against the bytes of the version it loaded. */
async function memoryAt(indexDir: string, products: number): Promise<MemoryReport> {
  log(`memory: serving ${products} synthetic products`);
  const serve = await startServe(indexDir, 1);
  try {
    const bundle = await openBundle(indexDir, { verify: false });
    const ids = [...bundle.entries()].slice(0, 50).map(([, product]) => product.id);
    const versionDir = join(indexDir, 'versions', bundle.version);
    bundle.close();
    for (const id of ids) await (await fetch(`${serve.url}/similar/${id}?k=10`)).arrayBuffer();
    const status = await readFile(`/proc/${serve.child.pid}/status`, 'utf8');
    const rssKiB = Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
    const indexBytes = await directoryBytes(versionDir);
    return {
      products,
      rssMiB: rssKiB / 1024,
      indexMiB: indexBytes / 2 ** 20,
      ratio: (rssKiB * 1024) / indexBytes,
    };
  } finally {
    await stop(serve.child);
  }
}

/** The memory goal is set at this size; smaller bundles weigh less than the process itself. */
const MEMORY_GOAL_PRODUCTS = 100_000;

function memoryVerdict(memory: MemoryReport): string {
  if (memory.products < MEMORY_GOAL_PRODUCTS) {
    return `the goal, at most 2x, is set at ${MEMORY_GOAL_PRODUCTS} products, where the bundle outweighs Node and the modules`;
  }
  return `goal at most 2x: ${memory.ratio <= 2 ? 'met' : 'NOT met'}`;
}

interface MemoryReport {
  products: number;
  rssMiB: number;
  indexMiB: number;
  ratio: number;
}

async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? await directoryBytes(path) : (await stat(path)).size;
  }
  return total;
}

const GOALS: [string, (run: Run) => boolean, string][] = [
  ['/healthz', (r) => (r.share ?? 0) >= 0.8, 'share >= 0.8'],
  [
    'one condition, explain=full',
    (r) => (r.share ?? 0) >= 0.6 && (r.p99Ratio ?? Infinity) <= 3,
    'share >= 0.6, p99 <= 3x',
  ],
  ['all conditions, explain=full', (r) => (r.share ?? 0) >= 0.25, 'share >= 0.25'],
];

function table(runs: Run[]): string {
  const header = [
    'server',
    'workers',
    'endpoint',
    'req/s',
    'share',
    'p50 ms',
    'p99 ms',
    'p99 / bare',
    'KiB/resp',
    'CPU ms/req',
    'cache hits',
    'goal',
  ];
  const rows = runs.map((r) => {
    const goal = r.server === 'dressmatch' ? GOALS.find(([endpoint]) => endpoint === r.endpoint) : undefined;
    return [
      r.server,
      String(r.workers),
      r.endpoint,
      r.requestsPerSecond.toFixed(0),
      r.share === undefined ? '1.00' : r.share.toFixed(2),
      r.latencyMs.p50.toFixed(1),
      r.latencyMs.p99.toFixed(1),
      r.p99Ratio === undefined ? '' : r.p99Ratio.toFixed(1),
      (r.bytesPerResponse / 1024).toFixed(1),
      r.cpuMsPerRequest.toFixed(3),
      r.answerCacheHits === undefined ? '' : `${(100 * r.answerCacheHits).toFixed(0)} %`,
      goal ? `${goal[2]}: ${goal[1](r) ? 'met' : 'NOT met'}` : '',
    ];
  });
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

function parseOptions(): Options {
  const program = new Command('serve-load')
    .option('--quick', 'short runs (under 2 minutes)', false)
    .option('--duration <s>', 'seconds per measured run (default 8, quick 3)', Number)
    .option('--connections <n>', 'concurrent connections', Number, 8)
    .option('--workers <list>', 'worker counts to measure', '1,2')
    .option(
      '--synthetic <n>',
      'products in the synthetic catalogue for the memory figure (0 to skip)',
      Number,
      100_000,
    )
    .option('--demo-index <dir>', 'published demo index to use when present', 'indexes/demo')
    .option(
      '--model <checkpoint>',
      "the demo index's model, for the heat-map burst (run only on the published demo index)",
      'models/demo/model_best.dmck',
    )
    .option(
      '--replica-uri <dir>',
      'a LanceDB store of the demo catalogue (index --store lancedb): its replica against the demo bundle',
    )
    .option('--work-dir <dir>', 'where generated bundles are kept between runs', '.tmp/bench-serve')
    .option(
      '--out <file>',
      'results file (.json; a .md table is written beside it)',
      'bench/results/serve-load.json',
    )
    .parse();
  const options = program.opts<Options>();
  options.duration ??= options.quick ? 3 : 8;
  options.workDir = resolve(options.workDir);
  return options;
}

async function main(): Promise<void> {
  const options = parseOptions();
  await mkdir(options.workDir, { recursive: true });
  const started = Date.now();
  const demo = await servedCatalogue(await demoBundle(options));
  const runs: Run[] = [];
  const ratios: Ratio[] = [];
  const workerCounts = options.workers.split(',').map(Number);
  const floors = await answerFloors(demo);
  for (const workers of workerCounts) {
    const blockRuns = await block(demo, workers, options, !options.quick || workers === workerCounts[0]);
    runs.push(...blockRuns);
    ratios.push(...sameBytesRatios(blockRuns, workers, floors));
  }
  const burst = await burstOnDemo(demo, options);
  const replica = options.replicaUri
    ? await replicaAgainstBundle(demo, options.replicaUri, options)
    : undefined;
  let memory: MemoryReport | undefined;
  if (options.synthetic > 0) {
    const cached = existsSync(join(options.workDir, `synthetic-${options.synthetic}`, 'manifest.json'));
    const products = options.quick && !cached ? Math.min(options.synthetic, 20_000) : options.synthetic;
    memory = await memoryAt(await syntheticBundle(options, products), products);
  }
  const markdown = report(
    runs,
    ratios,
    floors,
    burst,
    replica,
    memory,
    demo.indexDir === options.demoIndex
      ? demo.indexDir
      : "demo-shaped bundle (the demo catalogue's products, synthetic vectors)",
  );
  process.stdout.write(`\n${markdown}\n`);
  const json = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
    quick: options.quick,
    seconds: Math.round((Date.now() - started) / 1000),
    connections: options.connections,
    durationSeconds: options.duration,
    runs,
    ratios,
    answerFloorMs: Object.fromEntries(floors),
    burst,
    replica,
    memory,
  };
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(options.out.replace(/\.json$/, '.md'), `${markdown}\n`);
  log(`results written to ${options.out} and .md (${json.seconds} s)`);
}

/** A measured share of its reference in the same block: the service against bare express sending the same bytes. */
interface Ratio {
  workers: number;
  what: string;
  ratio: number;
  /**
   * The reference's CPU time per request over the service's: what the req/s ratio is on an idle machine, where a
   * saturated server's rate is the inverse of its CPU time per request; load from other jobs moves it far less.
   */
  cpuRatio: number;
  goal: number;
  /**
   * The highest req/s ratio a server computing this answer could reach on an idle machine: bare express' CPU time
   * for the same bytes over that time plus the answer's in-process cost (answerFloors); absent for stored answers.
   */
  ceiling?: number;
}

/** Answers timed in-process, each with the query the computed runs ask (k=10, explain=full). */
const FLOOR_ANSWERS: { what: string; query: (condition: string) => { condition?: string; k: number } }[] = [
  { what: 'one condition, computed', query: (condition) => ({ condition, k: 10 }) },
  { what: 'all conditions, computed', query: () => ({ k: 10 }) },
];
const FLOOR_ANSWERS_TIMED = 2000;

/**
 * What building an answer costs with no HTTP at all: the service's own steps (the query and its explanations,
 * JSON, the UTF-8 bytes, the ETag) on the served index, in this process, over random products. Added to bare
 * express' CPU time for the same bytes, it bounds the req/s ratio any server that computes the answer can reach.
 */
async function answerFloors({ indexDir, ids, condition }: Served): Promise<Map<string, number>> {
  log('in-process cost of building each computed answer');
  // The service's ETag function: express' strong ETag, as createApp sets it.
  const etagOf = express().set('etag', 'strong').get('etag fn') as EtagFunction;
  const state = new ServeState({
    indexDir,
    pollIntervalMs: 3_600_000,
    log: pino({ level: 'silent' }),
    metrics: createMetrics(),
  });
  await state.start();
  await state.whenReady();
  const lease = state.lease();
  if (!lease) throw new Error(`no index version in ${indexDir}`);
  const floors = new Map<string, number>();
  try {
    const { index } = lease;
    const rng = new Rng(11);
    for (const { what, query } of FLOOR_ANSWERS) {
      const ask = resolveAsk(index, { ...query(condition), explain: 'full' });
      const build = async () => {
        const body = await similarToProduct(index, requireSlot(index, rng.pick(ids)), ask);
        etagOf(utf8Bytes(JSON.stringify(body)));
      };
      for (let i = 0; i < FLOOR_ANSWERS_TIMED / 4; i++) await build();
      const started = performance.now();
      for (let i = 0; i < FLOOR_ANSWERS_TIMED; i++) await build();
      floors.set(what, (performance.now() - started) / FLOOR_ANSWERS_TIMED);
    }
  } finally {
    lease.release();
    await state.close();
  }
  return floors;
}

/** The goals' ratios: computed and cached answers against bare express sending their bytes, probes against probes. */
const RATIO_GOALS: { what: string; service: string; reference: string; goal: number }[] = [
  {
    what: 'one condition, computed',
    service: 'one condition, explain=full, no answer cache',
    reference: 'one condition, explain=full: the same bytes, nothing computed',
    goal: 0.6,
  },
  {
    what: 'one condition, from the answer cache',
    service: `one condition, explain=full, answered from the cache (${CACHED_PRODUCTS} products)`,
    reference: 'one condition, explain=full: the same bytes, nothing computed',
    goal: 0.9,
  },
  {
    what: 'all conditions, computed',
    service: 'all conditions, explain=full, no answer cache',
    reference: 'all conditions, explain=full: the same bytes, nothing computed',
    goal: 0.35,
  },
  { what: '/healthz', service: '/healthz', reference: '/healthz', goal: 0.9 },
];

/** The goals' ratios of one block (one worker count, its own bare express references). */
function sameBytesRatios(runs: Run[], workers: number, floors: Map<string, number>): Ratio[] {
  const matching = (server: Run['server'], endpoint: string) =>
    runs.filter((run) => run.server === server && run.endpoint === endpoint);
  const best = (server: Run['server'], endpoint: string) =>
    Math.max(0, ...matching(server, endpoint).map((run) => run.requestsPerSecond));
  const cpu = (server: Run['server'], endpoint: string) =>
    Math.min(...matching(server, endpoint).map((run) => run.cpuMsPerRequest));
  return RATIO_GOALS.flatMap((goal) => {
    const [service, reference] = [best('dressmatch', goal.service), best('bare express', goal.reference)];
    const bareCpu = cpu('bare express', goal.reference);
    const cpuRatio = bareCpu / cpu('dressmatch', goal.service);
    const floor = floors.get(goal.what);
    const ceiling = floor === undefined ? undefined : bareCpu / (bareCpu + floor);
    return service > 0 && reference > 0
      ? [{ workers, what: goal.what, ratio: service / reference, cpuRatio, goal: goal.goal, ceiling }]
      : [];
  });
}

function ratioTable(ratios: Ratio[]): string {
  const rows = ratios.map(
    (r) =>
      `| ${r.workers} | ${r.what} | ${r.ratio.toFixed(2)} | ${r.cpuRatio.toFixed(2)} | ${r.ceiling?.toFixed(2) ?? ''} | >= ${r.goal} | ${r.ratio >= r.goal ? 'met' : 'NOT met'} |`,
  );
  return [
    '| workers | answer | req/s over bare express | CPU per request, bare express over service | at most, building this answer | goal | req/s |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

function floorText(floors: Map<string, number>): string {
  return [...floors].map(([what, ms]) => `${what} ${(ms * 1000).toFixed(0)} µs`).join(', ');
}

function report(
  runs: Run[],
  ratios: Ratio[],
  floors: Map<string, number>,
  burst: BurstReport | undefined,
  replica: ReplicaReport | undefined,
  memory: MemoryReport | undefined,
  demo: string,
): string {
  const lines = [
    `# serve-load (${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${cpus().length} cores, load ${loadavg()[0].toFixed(1)})`,
    '',
    `Catalogue: ${demo}. autocannon, 8 connections, loopback; shares are of the better of two bare express /healthz`,
    'runs, before and after each block on the same machine; p99 / bare is over the lower bare p99. Each new service',
    'process is warmed up first, and each run for a third of its length, on k=9 URLs. Products are drawn at',
    'random from the catalogue; "cache hits" is the share of those requests the answer cache answered (default',
    'size), and the "no answer cache" rows run with `--answer-cache 0`: what an answer costs to compute. The',
    '"same bytes, nothing computed" rows are bare express sending the service\'s answers for 100 products, read',
    'from a file: what the framework alone costs an answer of that size. "CPU ms/req" is the CPU time (user and',
    "system, every thread) the server's processes used during the run over the requests answered: on a machine",
    "shared with other jobs it moves far less than req/s, and a saturated server's idle-machine rate is its inverse.",
    '',
    table(runs),
    '',
    'Against bare express sending the same bytes for the same URLs (measured in the same block; /healthz against',
    'bare express\' /healthz; for 2 workers against the one bare express process). "At most" is the ratio a server',
    "that computes the answer could reach on an idle machine: bare express' CPU time for the same bytes over that",
    'time plus what building the answer costs in-process, with no HTTP (the query, its explanations, JSON, UTF-8',
    `bytes and ETag, on the served index: ${floorText(floors)}).`,
    '',
    ratioTable(ratios),
  ];
  if (burst) lines.push('', burstLine(burst));
  if (replica) lines.push('', replicaLine(replica));
  if (memory) {
    lines.push(
      '',
      `Memory: ${memory.products} synthetic products, server RSS ${memory.rssMiB.toFixed(0)} MiB against index files of ` +
        `${memory.indexMiB.toFixed(0)} MiB: ${memory.ratio.toFixed(2)}x (${memoryVerdict(memory)}).`,
    );
  }
  return lines.join('\n');
}

await main();
