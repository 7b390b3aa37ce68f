/**
 * Parallel per-condition HNSW builds (src/index/parallel-build.ts): real worker threads and real hnswlib indexes,
 * compared with the single-threaded build of the same rows.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildIndex, searchIndex, type HnswIndex } from '../src/index/hnsw.ts';
import { buildConditionIndexes, type ConditionRows } from '../src/index/parallel-build.ts';
import { Rng } from '../src/util/rng.ts';

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
});
