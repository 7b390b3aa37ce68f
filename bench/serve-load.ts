/**
 * Load benchmark of the HTTP service: requests/s and latency percentiles of GET /similar against the real server
 * (started through the CLI in its own process, on loopback), for the demo catalogue and a synthetic 100k-product
 * catalogue. Each scenario runs for a fixed time with autocannon; every request asks for a random product.
 *
 *   npx tsx bench/serve-load.ts [--duration 10] [--connections 8] [--synthetic 100000] [--demo-index indexes/demo]
 *                               [--work-dir .tmp/bench-serve] [--out bench/results/serve-load.json]
 *
 * Demo catalogue: the bundle at --demo-index when one was published there (`npm run demo`), otherwise the demo
 * catalogue is generated and indexed with an untrained model of the demo configuration (query latency does not
 * depend on training). Synthetic: 64-dim embeddings clustered around 1000 random centres and CSN-like masks,
 * indexed through the index stage's buildBundle with its default parameters; reused from --work-dir when present.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { Command } from 'commander';
import { buildBundle, openBundle, type BundleSource, type IndexedProduct } from '../src/index/index.ts';
import { Rng } from '../src/util/rng.ts';

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const EMBED_DIM = 64;
const CLUSTERS = 1000;

interface Options {
  duration: number;
  connections: number;
  synthetic: number;
  demoIndex: string;
  workDir: string;
  out: string;
}

interface ScenarioResult {
  catalogue: string;
  products: number;
  conditions: number;
  endpoint: string;
  connections: number;
  durationSeconds: number;
  requests: number;
  requestsPerSecond: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; max: number };
  errors: number;
  non2xx: number;
}

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Run a stage of the CLI to completion (used to make the demo bundle when none exists). */
function runCli(args: string[]): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    child.on('exit', (code) =>
      code === 0 ? resolvePromise() : reject(new Error(`${args[0]} exited with ${code}`)),
    );
  });
}

async function demoBundle(options: Options): Promise<string> {
  if (existsSync(join(options.demoIndex, 'manifest.json'))) return options.demoIndex;
  const dir = join(options.workDir, 'demo');
  const indexDir = join(dir, 'index');
  if (existsSync(join(indexDir, 'manifest.json'))) return indexDir;
  log(
    `no published demo index at ${options.demoIndex}: generating the demo catalogue and indexing it with an untrained model`,
  );
  const catalogueDir = join(dir, 'catalogue');
  if (!existsSync(join(catalogueDir, 'products.jsonl'))) await runCli(['demo-data', '--out', catalogueDir]);
  const { loadCatalogue } = await import('../src/catalogue/index.ts');
  const { createModel, defaultModelConfig, selectBackend } = await import('../src/model/index.ts');
  const { modelId, writeCheckpoint } = await import('../src/checkpoint/index.ts');
  const { createModelSource, fingerprintProducts } = await import('../src/index/index.ts');
  await selectBackend('auto');
  const catalogue = await loadCatalogue(catalogueDir);
  const model = createModel(defaultModelConfig(catalogue.conditions));
  const snapshot = model.snapshot();
  await writeCheckpoint(join(dir, 'model.dmck'), { model: snapshot });
  const source = await createModelSource({
    model,
    modelId: modelId(snapshot),
    catalogue,
    products: await fingerprintProducts(catalogue),
  });
  await buildBundle(indexDir, source);
  model.dispose();
  return indexDir;
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

async function syntheticBundle(options: Options): Promise<string> {
  const indexDir = join(options.workDir, `synthetic-${options.synthetic}`);
  if (existsSync(join(indexDir, 'manifest.json'))) return indexDir;
  log(`building a synthetic bundle of ${options.synthetic} products in ${indexDir} (one-off)`);
  const started = Date.now();
  let last = 0;
  await buildBundle(indexDir, syntheticSource(options.synthetic, 7), {
    batchSize: 2048,
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

/** The service as users run it (its default info-level request logs included, sent to /dev/null). */
async function startServe(indexDir: string): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, 'serve', '--index', indexDir, '--host', '127.0.0.1', '--port', String(port)],
    { stdio: 'ignore' },
  );
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const url = `http://127.0.0.1:${port}`;
  for (;;) {
    if (exited) throw new Error(`serve --index ${indexDir} exited before it was ready`);
    const ready = await fetch(`${url}/readyz`).catch(() => undefined);
    if (ready?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child };
}

async function stopServe(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function load(url: string, ids: string[], path: (id: string) => string, options: Options) {
  const rng = new Rng(11);
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.duration,
    requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: path(rng.pick(ids)) }) }],
  });
  return result;
}

async function scenario(name: string, indexDir: string, options: Options): Promise<ScenarioResult[]> {
  const bundle = await openBundle(indexDir, { verify: false });
  const ids = [...bundle.entries()].map(([, product]) => product.id);
  const conditions = [...bundle.conditions];
  bundle.close();
  const { url, child } = await startServe(indexDir);
  const results: ScenarioResult[] = [];
  try {
    const endpoints: [string, (id: string) => string][] = [
      [
        `/similar/:id?condition=${conditions[0]}&k=10`,
        (id) => `/similar/${encodeURIComponent(id)}?condition=${conditions[0]}&k=10`,
      ],
      ['/similar/:id?k=10 (all conditions)', (id) => `/similar/${encodeURIComponent(id)}?k=10`],
    ];
    for (const [endpoint, path] of endpoints) {
      // A short warm-up so that JIT and caches are not part of the measurement.
      await load(url, ids, path, { ...options, duration: 1 });
      log(`${name}: ${endpoint} for ${options.duration} s with ${options.connections} connections`);
      const r = await load(url, ids, path, options);
      results.push({
        catalogue: name,
        products: ids.length,
        conditions: conditions.length,
        endpoint,
        connections: options.connections,
        durationSeconds: options.duration,
        requests: r.requests.total,
        requestsPerSecond: r.requests.average,
        latencyMs: {
          mean: r.latency.average,
          p50: r.latency.p50,
          p90: r.latency.p90,
          p99: r.latency.p99,
          max: r.latency.max,
        },
        errors: r.errors + r.timeouts,
        non2xx: r.non2xx,
      });
    }
  } finally {
    await stopServe(child);
  }
  return results;
}

function table(results: ScenarioResult[]): string {
  const header = [
    'catalogue',
    'products',
    'endpoint',
    'req/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'errors',
  ];
  const rows = results.map((r) => [
    r.catalogue,
    String(r.products),
    r.endpoint,
    r.requestsPerSecond.toFixed(0),
    r.latencyMs.p50.toFixed(1),
    r.latencyMs.p90.toFixed(1),
    r.latencyMs.p99.toFixed(1),
    r.latencyMs.max.toFixed(1),
    String(r.errors + r.non2xx),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const program = new Command('serve-load')
    .option('--duration <s>', 'seconds per measured run', Number, 10)
    .option('--connections <n>', 'concurrent connections', Number, 8)
    .option('--synthetic <n>', 'products in the synthetic catalogue (0 to skip)', Number, 100_000)
    .option('--demo-index <dir>', 'published demo index to use when present', 'indexes/demo')
    .option('--work-dir <dir>', 'where generated bundles are kept between runs', '.tmp/bench-serve')
    .option('--out <file>', 'results file', 'bench/results/serve-load.json')
    .parse();
  const options = program.opts<Options>();
  options.workDir = resolve(options.workDir);
  await mkdir(options.workDir, { recursive: true });

  const results: ScenarioResult[] = [];
  const demoIndex = await demoBundle(options);
  const demoSource =
    demoIndex === options.demoIndex
      ? `published demo index ${demoIndex}`
      : 'demo catalogue generated and indexed with an untrained model of the demo configuration';
  results.push(...(await scenario('demo', demoIndex, options)));
  if (options.synthetic > 0) {
    results.push(
      ...(await scenario(`synthetic ${options.synthetic / 1000}k`, await syntheticBundle(options), options)),
    );
  }

  process.stdout.write(`\n${table(results)}\n`);
  const report = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))),
    demoIndex: demoSource,
    note: 'server and load generator share this machine (loopback); the server runs in its own process',
    results,
  };
  await mkdir(dirname(options.out), { recursive: true });
  await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);
  log(`results written to ${options.out}`);
}

await main();
