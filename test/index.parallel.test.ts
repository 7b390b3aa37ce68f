/**
 * Parallel per-condition HNSW builds (src/index/parallel-build.ts): real worker threads and real hnswlib indexes,
 * compared with the single-threaded build of the same rows.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildBundle } from '../src/index/build.ts';
import { readManifest, versionPath } from '../src/index/files.ts';
import { buildIndex, searchIndex, type HnswIndex } from '../src/index/hnsw.ts';
import {
  buildConditionIndexes,
  buildThreads,
  IndexBuilders,
  startIndexBuilders,
  type BuildTimeline,
  type ConditionRows,
} from '../src/index/parallel-build.ts';
import { Rng } from '../src/util/rng.ts';
import { products, syntheticSource } from './fixtures/index/synthetic.ts';

const params = { m: 8, efConstruction: 50, efSearch: 32, seed: 5 };

function conditions(n: number, dims: number[]): ConditionRows[] {
  const rng = new Rng(11);
  return dims.map((d) => ({
    rows: Float32Array.from({ length: n * d }, () => rng.normal()),
    d,
    metric: 'l2' as const,
  }));
}

/** Every row's 5 nearest labels in every index. */
function answers(indexes: HnswIndex[], data: ConditionRows[], n: number): number[][] {
  return indexes.flatMap((index, c) => {
    const { rows, d } = data[c];
    return Array.from({ length: n }, (_, i) =>
      searchIndex(index, 'l2', Array.from(rows.subarray(i * d, (i + 1) * d)), 5, { ef: 32, live: n }).map(
        (hit) => hit.index,
      ),
    );
  });
}

describe('index: parallel per-condition build', () => {
  const n = 600;
  const data = conditions(n, [8, 4, 6]);
  const labels = Array.from({ length: n }, (_, i) => i);

  it('builds in worker threads the same graphs as one thread, in condition order', async () => {
    const sequential: HnswIndex[] = [];
    for (const c of data) sequential.push(await buildIndex(c.rows, c.d, labels, c.metric, params));
    const seen = new Map<number, number>();
    const parallel = await buildConditionIndexes(data, labels, params, {
      threads: 2,
      minInserts: 0,
      onProgress: (c, done, total) => {
        assert.equal(total, n, 'progress counts the labels');
        seen.set(c, Math.max(seen.get(c) ?? 0, done));
      },
    });
    assert.equal(parallel.length, 3);
    parallel.forEach((index, c) => {
      assert.equal(index.getNumDimensions(), data[c].d, `condition ${c} keeps its dimensions`);
      assert.equal(index.getCurrentCount(), n, `condition ${c} holds every row`);
      assert.equal(index.getEf(), params.efSearch, 'search ef is set after reading back');
    });
    assert.deepEqual(answers(parallel, data, n), answers(sequential, data, n));
    assert.deepEqual([...seen.entries()].sort(), [
      [0, n],
      [1, n],
      [2, n],
    ]);
  });

  it('builds small jobs in this thread', async () => {
    const indexes = await buildConditionIndexes(data, labels, params, { threads: 2 });
    assert.equal(indexes.length, 3);
    assert.equal(indexes[1].getNumDimensions(), 4);
  });

  it('refuses rows too short for the labels before inserting anything (hnswlib would abort)', async () => {
    const broken = [...data, { rows: new Float32Array(3), d: 3, metric: 'l2' as const }];
    await assert.rejects(
      buildConditionIndexes(broken, labels, params, { threads: 2, minInserts: 0 }),
      /condition 3: 3 values cannot hold row 599 of 3 dims/,
    );
  });

  it('builds with workers started beforehand, twice, the same graphs, and leaves them running', async () => {
    const sequential: HnswIndex[] = [];
    for (const c of data) sequential.push(await buildIndex(c.rows, c.d, labels, c.metric, params));
    const builders = new IndexBuilders(2);
    try {
      const readyAt = await builders.ready();
      assert.ok(
        readyAt <= performance.timeOrigin + performance.now(),
        'ready is a wall-clock time in the past',
      );
      for (let round = 0; round < 2; round++) {
        const parallel = await buildConditionIndexes(data, labels, params, { builders });
        assert.deepEqual(answers(parallel, data, n), answers(sequential, data, n), `round ${round}`);
      }
    } finally {
      await builders.close();
    }
  });

  it('reports the phases of a build in worker threads, in order', async () => {
    let timeline: BuildTimeline | undefined;
    await buildConditionIndexes(data, labels, params, {
      threads: 2,
      minInserts: 0,
      onTimeline: (t) => (timeline = t),
    });
    assert.ok(timeline, 'a build in workers reports its timeline');
    assert.equal(timeline.threads, 2);
    assert.equal(timeline.ready.length, 2);
    assert.deepEqual(timeline.jobs.map((job) => job.condition).sort(), [0, 1, 2]);
    // Largest condition (8 dims) first.
    const first = timeline.jobs.reduce((a, b) => (a.posted <= b.posted ? a : b));
    assert.equal(first.condition, 0, 'the largest condition starts first');
    const { jobs, end } = timeline;
    for (const job of jobs) {
      const steps: number[] = [job.posted, job.received, job.built, job.written, job.read, end];
      assert.deepEqual(
        [...steps].sort((a, b) => a - b),
        steps,
        `condition ${job.condition}: ${steps.join(' ≤ ')}`,
      );
      assert.ok(
        job.worker === 0 || job.worker === 1,
        `condition ${job.condition} ran on worker ${job.worker}`,
      );
    }
  });

  it('does not report a timeline for a build in this thread', async () => {
    let called = false;
    await buildConditionIndexes(data, labels, params, { threads: 1, onTimeline: () => (called = true) });
    assert.equal(called, false);
  });

  it('fails, not hangs, when a worker started beforehand has stopped', async () => {
    const builders = new IndexBuilders(2);
    try {
      await builders.ready();
      const stopped = new Promise((resolve) => builders.workers[1].worker.once('exit', resolve));
      await builders.workers[1].worker.terminate();
      await stopped;
      await assert.rejects(buildConditionIndexes(data, labels, params, { builders }), /worker stopped/);
    } finally {
      await builders.close();
    }
  });

  it('starts workers only for builds large enough to gain from them', async () => {
    assert.equal(buildThreads(6, 100, { threads: 2 }), 1, '600 inserts stay in this thread');
    assert.equal(buildThreads(6, 3000, { threads: 2 }), 2);
    assert.equal(buildThreads(1, 30000, { threads: 2 }), 1, 'one condition needs one thread');
    assert.equal(startIndexBuilders(6, 100, { threads: 2 }), null);
    const builders = startIndexBuilders(6, 3000, { threads: 2 });
    assert.ok(builders, 'workers for 18 000 inserts');
    assert.equal(builders.workers.length, 2);
    await builders.close();
  });

  it('the index job makes the same index files with its workers (started before embedding) as in one thread', async () => {
    const root = await mkdtemp(join(tmpdir(), 'dressmatch-parallel-'));
    const saved = process.env.DRESSMATCH_INDEX_THREADS;
    try {
      const hashes: string[] = [];
      // 4000 products x 3 conditions: above PARALLEL_MIN_INSERTS, so two threads build in workers.
      for (const threads of ['1', '2']) {
        process.env.DRESSMATCH_INDEX_THREADS = threads;
        const dir = join(root, threads);
        await buildBundle(dir, syntheticSource(products(4000), { dim: 24 }), { m: 8, efConstruction: 40 });
        const version = versionPath(dir, (await readManifest(dir))!.current);
        const files = (await readdir(version)).filter((name) => name.endsWith('.hnsw')).sort();
        assert.equal(files.length, 3, `${threads} thread(s): one index per condition`);
        const hash = createHash('sha256');
        for (const name of files) hash.update(name).update(await readFile(join(version, name)));
        hashes.push(hash.digest('hex'));
      }
      assert.equal(hashes[1], hashes[0], 'the same bytes from workers as from one thread');
    } finally {
      if (saved === undefined) delete process.env.DRESSMATCH_INDEX_THREADS;
      else process.env.DRESSMATCH_INDEX_THREADS = saved;
      await rm(root, { recursive: true, force: true });
    }
  });
});
