/**
 * Warm start of a retrain on real (tiny) CSN and ASEN models: shared weights copied, kept conditions keep their
 * mask rows (moved to their new position), a new condition gets the fresh row a new model would get, a dropped one
 * disappears, and the result restores into a working model.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createModel, restoreModel, selectBackend, type ModelSnapshot } from '../src/model/index.ts';
import { perConditionWeights, warmStart } from '../src/refresh/warm-start.ts';
import { quiet, syntheticImages, tinyConfig } from './fixtures/model/synthetic.ts';

function snapshotOf(kind: 'csn' | 'asen', conditions: string[], seed: number): ModelSnapshot {
  const model = createModel(tinyConfig({ kind, conditions, seed }));
  try {
    return model.snapshot();
  } finally {
    model.dispose();
  }
}

function weight(snapshot: ModelSnapshot, name: string) {
  const found = snapshot.weights.find((w) => w.name === name);
  assert.ok(found, `weight ${name} exists`);
  return found;
}

function row(snapshot: ModelSnapshot, name: string, index: number): number[] {
  const w = weight(snapshot, name);
  const length = w.data.length / w.shape[0];
  return [...w.data.subarray(index * length, (index + 1) * length)];
}

describe('refresh: warm start', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  for (const [kind, perCondition] of [
    ['csn', 'masks'],
    ['asen', 'asen/attribute_embedding'],
  ] as const) {
    it(`${kind}: finds the per-condition weights by probing the model`, () => {
      const names = perConditionWeights(tinyConfig({ kind }));
      assert.deepEqual([...names], [perCondition]);
    });

    it(`${kind}: keeps, moves, adds and drops condition rows and copies every shared weight`, () => {
      const served = snapshotOf(kind, ['color', 'shape', 'size'], 11);
      const result = warmStart(served, ['size', 'color', 'pattern']);
      assert.deepEqual(result.kept, ['size', 'color']);
      assert.deepEqual(result.added, ['pattern']);
      assert.deepEqual(result.dropped, ['shape']);
      assert.deepEqual(result.fresh, []);
      assert.deepEqual(result.snapshot.config.conditions, ['size', 'color', 'pattern']);
      assert.deepEqual(row(result.snapshot, perCondition, 0), row(served, perCondition, 2), 'size row moved');
      assert.deepEqual(row(result.snapshot, perCondition, 1), row(served, perCondition, 0), 'color row kept');
      // The new condition's row is what a fresh model of the new config starts with.
      const fresh = createModel({ ...served.config, conditions: ['size', 'color', 'pattern'] });
      try {
        assert.deepEqual(row(result.snapshot, perCondition, 2), row(fresh.snapshot(), perCondition, 2));
      } finally {
        fresh.dispose();
      }
      for (const w of served.weights.filter((w) => w.name !== perCondition)) {
        assert.deepEqual([...weight(result.snapshot, w.name).data], [...w.data], `${w.name} copied`);
      }
      const model = restoreModel(result.snapshot);
      try {
        const { images } = syntheticImages();
        const vectors = model.conditionVectors(images);
        assert.deepEqual(vectors.shape.slice(0, 2), [16, 3], 'one vector per new condition');
        vectors.dispose();
        images.dispose();
      } finally {
        model.dispose();
      }
    });
  }

  it('refuses a model with no condition left', () => {
    assert.throws(() => warmStart(snapshotOf('csn', ['color'], 1), []), /at least one condition/);
  });
});
