import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { BackendError, selectBackend } from '../src/model/backend.ts';
import { quiet } from './fixtures/model/synthetic.ts';

function resolvable(name: string): boolean {
  try {
    import.meta.resolve(name);
    return true;
  } catch {
    return false;
  }
}
const nativeInstalled = resolvable('@tensorflow/tfjs-node') || resolvable('@tensorflow/tfjs-node-gpu');

/** Largest |a − b| relative to the largest |a|. */
function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / (scale || 1);
}

/** Run `compute` on the cpu backend and on wasm; returns both results as plain arrays. */
async function onBothBackends(
  compute: () => tf.Tensor[],
): Promise<{ cpu: Float32Array[]; wasm: Float32Array[] }> {
  const run = async (name: string): Promise<Float32Array[]> => {
    await tf.setBackend(name);
    const tensors = tf.tidy(compute);
    const values = tensors.map((t) => Float32Array.from(t.dataSync()));
    tf.dispose(tensors);
    return values;
  };
  const cpu = await run('cpu');
  const wasm = await run('wasm');
  return { cpu, wasm };
}

describe('model: wasm training kernels', () => {
  before(async () => {
    const backend = await selectBackend('wasm', quiet);
    assert.equal(backend, 'wasm');
  });
  after(async () => {
    await tf.setBackend('wasm');
  });

  type Shape4 = [number, number, number, number];
  const convCases: Array<{ x: Shape4; filter: Shape4; stride: number; pad: 'same' | 'valid' }> = [
    { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], stride: 1, pad: 'same' },
    { x: [2, 9, 7, 3], filter: [3, 3, 3, 4], stride: 1, pad: 'valid' },
    { x: [2, 9, 7, 3], filter: [3, 3, 3, 4], stride: 2, pad: 'same' },
    { x: [2, 8, 8, 3], filter: [3, 3, 3, 5], stride: 2, pad: 'valid' },
    { x: [1, 11, 10, 2], filter: [5, 5, 2, 3], stride: 2, pad: 'same' },
    { x: [1, 7, 7, 2], filter: [4, 4, 2, 3], stride: 1, pad: 'same' },
    { x: [1, 7, 8, 2], filter: [4, 2, 2, 3], stride: 2, pad: 'same' },
    { x: [3, 10, 11, 4], filter: [1, 1, 4, 6], stride: 2, pad: 'same' },
    { x: [2, 12, 12, 3], filter: [7, 7, 3, 2], stride: 1, pad: 'valid' },
  ];
  for (const { x: xShape, filter: filterShape, stride, pad } of convCases) {
    it(`conv2d gradients match cpu: x ${xShape.join('x')}, filter ${filterShape.join('x')}, stride ${stride}, ${pad}`, async () => {
      const { cpu, wasm } = await onBothBackends(() => {
        const x = tf.randomNormal(xShape, 0, 1, 'float32', 11) as tf.Tensor4D;
        const filter = tf.randomNormal(filterShape, 0, 1, 'float32', 12) as tf.Tensor4D;
        // A non-uniform upstream gradient: sum of squares weights every output differently.
        const f = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.square(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad)));
        return tf.grads(f)([x, filter]);
      });
      assert.ok(relativeError(cpu[0], wasm[0]) < 1e-5, `dx differs by ${relativeError(cpu[0], wasm[0])}`);
      assert.ok(relativeError(cpu[1], wasm[1]) < 1e-5, `dW differs by ${relativeError(cpu[1], wasm[1])}`);
    });
  }

  it('fused conv2d (bias + relu) gradients match cpu', async () => {
    const { cpu, wasm } = await onBothBackends(() => {
      const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 21) as tf.Tensor4D;
      const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 22) as tf.Tensor4D;
      const bias = tf.randomNormal([4], 0, 1, 'float32', 23);
      const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
        tf.sum(
          tf.square(
            tf.fused.conv2d({
              x: a as tf.Tensor4D,
              filter: b as tf.Tensor4D,
              bias: c,
              strides: 1,
              pad: 'same',
              activation: 'relu',
            }),
          ),
        );
      return tf.grads(f)([x, filter, bias]);
    });
    cpu.forEach((values, i) => assert.ok(relativeError(values, wasm[i]) < 1e-5, `gradient ${i} differs`));
  });

  it('tf.gather gradients (UnsortedSegmentSum) match cpu, with repeated and unused rows', async () => {
    const { cpu, wasm } = await onBothBackends(() => {
      const params = tf.randomNormal([6, 3, 2], 0, 1, 'float32', 31);
      const indices = tf.tensor1d([0, 2, 2, 5, 0, 0, 3], 'int32');
      const weights = tf.randomNormal([7, 3, 2], 0, 1, 'float32', 32);
      return [tf.grad((p: tf.Tensor) => tf.sum(tf.mul(tf.gather(p, indices), weights)))(params)];
    });
    assert.ok(relativeError(cpu[0], wasm[0]) < 1e-6);
    // Row 1 and 4 are never gathered: their gradient must be exactly zero.
    assert.deepEqual(Array.from(wasm[0].slice(6, 12)), [0, 0, 0, 0, 0, 0]);
  });

  it('unsortedSegmentSum matches cpu directly', async () => {
    const { cpu, wasm } = await onBothBackends(() => [
      tf.unsortedSegmentSum(
        tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]),
        tf.tensor1d([2, 0, 2, 1], 'int32'),
        4,
      ),
    ]);
    assert.deepEqual(Array.from(wasm[0]), Array.from(cpu[0]));
    assert.deepEqual(Array.from(wasm[0]), [3, 4, 7, 8, 6, 8, 0, 0]);
  });

  it('a vector along a short last axis (tiled broadcast) gives exactly the cpu result, other shapes too', async () => {
    const { cpu, wasm } = await onBothBackends(() => {
      const images = tf.randomUniform([3, 40, 40, 3], 0, 1, 'float32', 51);
      const mean = tf.tensor1d([0.485, 0.456, 0.406]);
      const std = tf.tensor1d([0.229, 0.224, 0.225]);
      const rows = tf.randomUniform([5, 3], 0, 1, 'float32', 52);
      return [
        tf.div(tf.sub(images, mean), std),
        tf.add(images, mean),
        tf.mul(images, std),
        tf.sub(rows, mean), // rank 2: the original kernel
        tf.sub(images, tf.scalar(0.5)),
      ];
    });
    cpu.forEach((values, i) =>
      assert.deepEqual(Array.from(wasm[i]), Array.from(values), `result ${i} differs`),
    );
  });

  it('the kernels leave no tensor or wasm buffer behind', () => {
    const x = tf.randomNormal([2, 9, 9, 3], 0, 1, 'float32', 41) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 42) as tf.Tensor4D;
    const params = tf.randomNormal([5, 4], 0, 1, 'float32', 43);
    const indices = tf.tensor1d([0, 4, 4, 1], 'int32');
    const run = () => {
      const grads = tf.tidy(() => [
        ...tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'same')),
        )([x, filter]),
        ...tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'valid')),
        )([x, filter]),
        tf.grad((p: tf.Tensor) => tf.sum(tf.gather(p, indices)))(params),
        tf.sub(x, tf.tensor1d([1, 2, 3])),
      ]);
      tf.dispose(grads);
    };
    run(); // warm-up: first calls may allocate lasting backend state
    const before = tf.memory();
    for (let i = 0; i < 3; i++) run();
    const afterRuns = tf.memory();
    assert.equal(afterRuns.numTensors, before.numTensors);
    assert.equal(afterRuns.numDataBuffers, before.numDataBuffers);
    assert.equal(afterRuns.numBytes, before.numBytes);
    tf.dispose([x, filter, params, indices]);
  });
});

describe('model: backend selection', () => {
  after(async () => {
    delete process.env.DRESSMATCH_BACKEND;
    await selectBackend('wasm', quiet);
  });

  it('logs the backend it chose', async () => {
    const lines: string[] = [];
    const log = { info: (_: unknown, message?: string) => void lines.push(String(message)), warn: () => {} };
    const name = await selectBackend('wasm', log);
    assert.equal(name, 'wasm');
    assert.equal(tf.getBackend(), 'wasm');
    assert.ok(
      lines.some((line) => line.includes('wasm')),
      lines.join('\n'),
    );
  });

  it('honours DRESSMATCH_BACKEND when the preference is auto, and an explicit preference over it', async () => {
    process.env.DRESSMATCH_BACKEND = 'cpu';
    assert.equal(await selectBackend('auto', quiet), 'cpu');
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
    process.env.DRESSMATCH_BACKEND = 'gpu-please';
    await assert.rejects(selectBackend('auto', quiet), BackendError);
    delete process.env.DRESSMATCH_BACKEND;
  });

  it('auto prefers native TensorFlow, else wasm, never the slow cpu backend when wasm works', async () => {
    assert.equal(await selectBackend('auto', quiet), nativeInstalled ? 'tensorflow' : 'wasm');
  });

  it(
    'an explicit request for native TensorFlow fails clearly when it is not installed',
    { skip: nativeInstalled },
    async () => {
      await assert.rejects(selectBackend('tensorflow', quiet), /tfjs-node/);
    },
  );
});
