import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError,
  decodeCheckpoint,
  encodeCheckpoint,
  modelId,
  readCheckpoint,
  writeCheckpoint,
  type Checkpoint,
} from '../src/checkpoint/index.ts';

function sampleCheckpoint(seed = 1): Checkpoint {
  const weights = [
    {
      name: 'backbone/conv1/kernel',
      shape: [3, 3, 3, 4],
      data: Float32Array.from({ length: 108 }, (_, i) => i * 0.5 + seed),
    },
    { name: 'backbone/conv1/bias', shape: [4], data: Float32Array.from([0.1, -0.2, 0.3, Math.PI]) },
    { name: 'masks', shape: [2, 5], data: Float32Array.from({ length: 10 }, (_, i) => -i) },
    { name: 'empty', shape: [0], data: new Float32Array(0) },
  ];
  return {
    model: {
      config: {
        kind: 'csn',
        backbone: 'small',
        imageSize: 32,
        embedDim: 5,
        conditions: ['color', 'sleeve'],
        maskMode: 'learned',
        seed: 42,
      },
      weights,
    },
    optimizer: {
      kind: 'adam',
      iterations: 17,
      learningRate: 0.001,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-8,
      accBeta1: 0.15,
      accBeta2: 0.98,
      slots: weights.flatMap((w) => [{ ...w, name: `${w.name}/m`, data: w.data.map((v) => v / 7) }]),
    },
    training: {
      epoch: 3,
      stepInEpoch: 5,
      globalStep: 45,
      rngState: [123, -456, 789, 1011],
      bestValAccuracy: 0.8125,
      bestEpoch: 2,
      epochTotals: { steps: 5, loss: 1.5 },
    },
    args: { lr: 0.001, name: 'unit', conditions: ['color', 'sleeve'] },
    metrics: { val: { overall: 0.8, triplets: 10, perCondition: { color: { accuracy: 0.9, triplets: 5 } } } },
    createdAt: '2024-01-02T03:04:05.000Z',
  };
}

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dressmatch-ckpt-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkpoint format', () => {
  it('round-trips every field and weight bit for bit', async () => {
    const original = sampleCheckpoint();
    const path = join(dir, 'roundtrip.dmck');
    await writeCheckpoint(path, original);
    const loaded = await readCheckpoint(path);
    assert.deepEqual(loaded.model.config, original.model.config);
    assert.equal(loaded.model.weights.length, original.model.weights.length);
    original.model.weights.forEach((w, i) => {
      const got = loaded.model.weights[i];
      assert.equal(got.name, w.name);
      assert.deepEqual(got.shape, w.shape);
      assert.deepEqual([...got.data], [...w.data]);
      assert.ok(got.data instanceof Float32Array);
    });
    const { slots, ...optimizer } = loaded.optimizer!;
    const { slots: originalSlots, ...originalOptimizer } = original.optimizer!;
    assert.deepEqual(optimizer, originalOptimizer);
    assert.deepEqual(
      slots.map((s) => [s.name, s.shape, [...s.data]]),
      originalSlots.map((s) => [s.name, s.shape, [...s.data]]),
    );
    assert.deepEqual(loaded.training, original.training);
    assert.deepEqual(loaded.args, original.args);
    assert.deepEqual(loaded.metrics, original.metrics);
    assert.equal(loaded.createdAt, original.createdAt);
    assert.equal(loaded.modelId, modelId(original.model));
  });

  it('is byte-identical for the same content', () => {
    assert.deepEqual(encodeCheckpoint(sampleCheckpoint()), encodeCheckpoint(sampleCheckpoint()));
  });

  it('identifies models by config and weights only', () => {
    const a = sampleCheckpoint(1);
    const b = sampleCheckpoint(1);
    b.optimizer = undefined;
    b.metrics = undefined;
    assert.equal(modelId(a.model), modelId(b.model));
    assert.match(modelId(a.model), /^[0-9a-f]{64}$/);
    assert.notEqual(modelId(a.model), modelId(sampleCheckpoint(2).model));
    const renamed = sampleCheckpoint(1);
    renamed.model.config.conditions = ['color', 'collar'];
    assert.notEqual(modelId(a.model), modelId(renamed.model));
  });

  it('rejects weights whose length does not match their shape', () => {
    const bad = sampleCheckpoint();
    bad.model.weights[1].shape = [5];
    assert.throws(() => encodeCheckpoint(bad), /backbone\/conv1\/bias.*do not match shape/);
  });
});

describe('damaged checkpoints', () => {
  const expectError = async (path: string, pattern: RegExp) => {
    await assert.rejects(readCheckpoint(path), (error: unknown) => {
      assert.ok(error instanceof CheckpointError, `expected CheckpointError, got ${String(error)}`);
      assert.ok(error.message.includes(path), `message names the file: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    });
  };

  it('rejects a truncated file at any length', async () => {
    const bytes = encodeCheckpoint(sampleCheckpoint());
    for (const length of [0, 3, 40, 56, 200, bytes.length - 4, bytes.length - 1]) {
      const path = join(dir, `truncated-${length}.dmck`);
      await writeFile(path, bytes.subarray(0, length));
      await expectError(path, length < 56 ? /too short.*truncated/ : /truncated or corrupt/);
    }
  });

  it('rejects extra bytes after the blob', async () => {
    const path = join(dir, 'extra.dmck');
    await writeFile(path, Buffer.concat([encodeCheckpoint(sampleCheckpoint()), Buffer.from([1, 2, 3, 4])]));
    await expectError(path, /truncated or corrupt/);
  });

  it('rejects a flipped bit in the weights or the header', async () => {
    const bytes = encodeCheckpoint(sampleCheckpoint());
    for (const offset of [bytes.length - 10, 60]) {
      const copy = Uint8Array.from(bytes);
      copy[offset] ^= 0x10;
      const path = join(dir, `flipped-${offset}.dmck`);
      await writeFile(path, copy);
      await expectError(path, /checksum mismatch/);
    }
  });

  it('rejects other files and newer format versions', async () => {
    const png = join(dir, 'not-a-checkpoint.dmck');
    await writeFile(png, Buffer.alloc(100, 7));
    await expectError(png, /not a dressmatch checkpoint/);

    const future = Uint8Array.from(encodeCheckpoint(sampleCheckpoint()));
    new DataView(future.buffer).setUint32(4, 99, true);
    const path = join(dir, 'future.dmck');
    await writeFile(path, future);
    await expectError(path, /format version 99 is not supported/);
  });

  it('names a missing file', async () => {
    await expectError(join(dir, 'nope.dmck'), /file not found/);
  });

  it('validates the tensor table even when the checksum is right', () => {
    const bytes = encodeCheckpoint(sampleCheckpoint());
    assert.equal(decodeCheckpoint(bytes).model.weights.length, 4);
    // Rewrite the header with a weight pointing past the blob and a fresh, valid checksum.
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const jsonLength = view.getUint32(8, true);
    const header = JSON.parse(Buffer.from(bytes.subarray(56, 56 + jsonLength)).toString('utf8'));
    header.weights[0].offset = 1_000_000;
    let json = Buffer.from(JSON.stringify(header));
    json = Buffer.concat([json, Buffer.alloc((4 - ((56 + json.length) % 4)) % 4, 0x20)]);
    const blob = bytes.subarray(56 + jsonLength);
    const forged = Buffer.concat([Buffer.from(bytes.subarray(0, 56)), json, blob]);
    forged.writeUInt32LE(json.length, 8);
    createHash('sha256').update(forged.subarray(56)).digest().copy(forged, 24);
    assert.throws(
      () => decodeCheckpoint(forged, 'forged.dmck'),
      /checkpoint forged.dmck: weight entry 0 \(backbone\/conv1\/kernel\) is out of bounds/,
    );
  });

  it('truncate() on disk is caught like a short write', async () => {
    const path = join(dir, 'shrunk.dmck');
    await writeCheckpoint(path, sampleCheckpoint());
    const size = (await readFile(path)).length;
    await truncate(path, size - 100);
    await expectError(path, /truncated or corrupt/);
  });
});

describe('atomic writes', () => {
  const writer = fileURLToPath(new URL('./fixtures/train/checkpoint-writer.ts', import.meta.url));

  /** Start the writer, let it run for `ms` after its second complete round, then SIGKILL it. */
  function runAndKill(target: string, ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', writer, target], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('ready')) setTimeout(() => child.kill('SIGKILL'), ms);
      });
      child.on('error', reject);
      child.on('exit', (_code, signal) =>
        signal === 'SIGKILL'
          ? resolve()
          : reject(new Error(`writer exited without being killed (${signal})`)),
      );
    });
  }

  // Slow: five child processes, each started and then killed with SIGKILL while it writes checkpoints.
  it('never leaves an unreadable model_best or checkpoint_latest after kill -9', async () => {
    const target = join(dir, 'killed');
    let rounds = 0;
    for (const ms of [5, 37, 81, 143, 222]) {
      await runAndKill(target, ms);
      for (const file of ['model_best.dmck', 'checkpoint_latest.dmck']) {
        const checkpoint = await readCheckpoint(join(target, file));
        const weights = checkpoint.model.weights[0].data;
        // Every value of a round is the round number: a mix of two rounds would be a torn write.
        assert.ok(
          weights.every((v) => v === weights[0]),
          `${file} mixes rounds`,
        );
        rounds = Math.max(rounds, checkpoint.training!.epoch);
      }
    }
    assert.ok(rounds > 0, 'the writer completed several rounds before being killed');
    // Killed writers may leave temp files behind, but never under the real names.
    const names = await readdir(target);
    assert.ok(names.includes('model_best.dmck') && names.includes('checkpoint_latest.dmck'));
  });
});
