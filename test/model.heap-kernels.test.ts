/**
 * The JavaScript kernels on the wasm heap (src/model/kernels/wasm-heap-kernels.ts) against the wasm kernels they replace,
 * bit for bit: each must round exactly as before, or seeded training would change. The references are computed
 * on the same backend with the compositions the new kernels replaced (which still run on the original kernels).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/model/backend.ts';
import { maxPool2x2 } from '../src/model/backbones.ts';
import { MAX_POOL_2X2_GRAD, originalWasmKernel } from '../src/model/kernels/wasm-heap-kernels.ts';
import { quiet } from './fixtures/model/synthetic.ts';

/** Float32 values as their bit patterns: −0 ≠ +0 and every last bit counts. */
function bits(t: tf.Tensor): number[] {
  return Array.from(new Uint32Array(Float32Array.from(t.dataSync()).buffer));
}

function assertSameBits(actual: tf.Tensor, expected: tf.Tensor, what: string): void {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = bits(actual);
  const b = bits(expected);
  const first = a.findIndex((v, i) => v !== b[i]);
  assert.equal(first, -1, `${what}: first differing element ${first} of ${a.length}`);
}

describe('model: JavaScript kernels on the wasm heap', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm', 'the wasm backend starts');
  });

  it('max-pool 2×2 gradient: as Equal · ResizeNearestNeighbor · Multiply, ties and −0 included', () => {
    tf.tidy(() => {
      // ReLU'd values: many zero ties; rounding to 1/4 adds ties among positive maxima too.
      const x = tf.relu(tf.div(tf.round(tf.mul(tf.randomNormal([3, 8, 6, 5], 0, 1, 'float32', 1), 4)), 4));
      const weights = tf.randomNormal([3, 4, 3, 5], 0, 1, 'float32', 2);
      const fused = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(maxPool2x2(a as tf.Tensor4D), weights)))(x);
      const pooled = tf.maxPool(x as tf.Tensor4D, 2, 2, 'same');
      const winners = tf.cast(tf.equal(x, tf.image.resizeNearestNeighbor(pooled, [8, 6])), 'float32');
      const reference = tf.mul(tf.image.resizeNearestNeighbor(weights as tf.Tensor4D, [8, 6]), winners);
      assertSameBits(fused, reference, 'dx');
      assert.ok(bits(reference).includes(0x80000000), 'the case covers −0 (a negative dy times 0)');
    });
    assert.ok(tf.getKernel(MAX_POOL_2X2_GRAD, 'wasm'), 'the fused kernel is registered for wasm');
  });

  it('max-pool 2×2 gradient of odd sizes still takes the composed path', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([2, 7, 5, 3], 0, 1, 'float32', 3);
      const dx = tf.grad((a: tf.Tensor) => tf.sum(maxPool2x2(a as tf.Tensor4D)))(x);
      assert.deepEqual(dx.shape, [2, 7, 5, 3]);
      assert.equal(tf.sum(dx).dataSync()[0], 2 * 4 * 3 * 3, 'one winner per window (no ties in random data)');
    });
  });

  it('UnsortedSegmentSum: as the one-hot product, blocks of 48 rows included', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([130, 7], 0, 1, 'float32', 4);
      const ids = tf.randomUniform([130], 0, 5, 'int32', 5) as tf.Tensor1D;
      const reference = tf.matMul(tf.cast(tf.oneHot(ids, 6), 'float32'), x, true, false);
      assertSameBits(tf.unsortedSegmentSum(x, ids, 6), reference, 'segment sums');
    });
  });

  it('Sum over leading axes: as the transposed sum, keepDims too; other axes unchanged', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([4, 9, 7, 6], 0, 1, 'float32', 6);
      const innermost = tf.sum(tf.transpose(x, [3, 0, 1, 2]), [1, 2, 3]);
      assertSameBits(tf.sum(x, [0, 1, 2]), innermost, 'bias-gradient sum');
      assertSameBits(tf.sum(x, [2, 0, 1], true), tf.reshape(innermost, [1, 1, 1, 6]), 'keepDims');
      assertSameBits(tf.sum(x, 0), tf.sum(tf.transpose(x, [1, 2, 3, 0]), 3), 'first axis only');
      // Widths divisible by 8 take the 8-column strips over blocks of 64 rows: 150 rows cross two block edges.
      const wide = tf.concat([tf.randomNormal([150, 24], 0, 1, 'float32', 8), tf.fill([150, 8], -0)], 1);
      assertSameBits(tf.sum(wide, 0), tf.sum(tf.transpose(wide), 1), 'strips of 8 columns, −0 columns too');
      const maps = tf.randomNormal([3, 5, 7, 16], 0, 1, 'float32', 9);
      assertSameBits(
        tf.sum(maps, [0, 1, 2]),
        tf.sum(tf.transpose(maps, [3, 0, 1, 2]), [1, 2, 3]),
        '16 channels',
      );
      assert.deepEqual(tf.sum(x).shape, [], 'all axes');
      assert.deepEqual(tf.sum(x, -1).shape, [4, 9, 7], 'last axis');
    });
  });

  it('BatchMatMul with a transposed operand: as the backend’s blocked float32 loop, bit for bit', () => {
    const f = Math.fround;
    /** The backend's loop: per output, sums over blocks of 48 shared values (each from 0), added in order. */
    const reference = (
      a: Float32Array,
      b: Float32Array,
      m: number,
      k: number,
      n: number,
      ta: boolean,
      tb: boolean,
    ) => {
      const out = new Float32Array(m * n);
      for (let start = 0; start < k; start += 48) {
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let sum = 0;
            for (let p = start; p < Math.min(k, start + 48); p++) {
              sum = f(sum + f((ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j])));
            }
            out[i * n + j] = f(out[i * n + j] + sum);
          }
        }
      }
      return out;
    };
    const cases: Array<[number, number, number, boolean, boolean]> = [
      [96, 64, 576, false, true], // the embedding's input gradient
      [576, 96, 64, true, false], // its weight gradient
      [7, 130, 5, true, true],
      [33, 50, 9, false, true],
    ];
    for (const [m, k, n, ta, tb] of cases) {
      tf.tidy(() => {
        const a = tf.relu(tf.randomNormal(ta ? [k, m] : [m, k], 0, 1, 'float32', 8)); // with exact zeros
        const b = tf.randomNormal(tb ? [n, k] : [k, n], 0, 1, 'float32', 9);
        const expected = reference(
          a.dataSync() as Float32Array,
          b.dataSync() as Float32Array,
          m,
          k,
          n,
          ta,
          tb,
        );
        assertSameBits(tf.matMul(a, b, ta, tb), tf.tensor2d(expected, [m, n]), `${m}×${k}×${n}`);
        const batched = tf.matMul(tf.expandDims(a), tf.expandDims(b), ta, tb);
        assertSameBits(batched, tf.tensor3d(expected, [1, m, n]), `batch of one ${m}×${k}×${n}`);
      });
    }
  });

  it('GatherV2 along axis 0 copies rows; bad indices still throw; other axes unchanged', async () => {
    const x = tf.randomNormal([5, 3, 2], 0, 1, 'float32', 7);
    const indices = tf.tensor1d([4, 0, 0, 2], 'int32');
    const rows = tf.gather(x, indices);
    const columns = tf.gather(x, tf.tensor1d([1, 1], 'int32'), 1);
    const values = x.arraySync() as number[][][];
    assert.deepEqual(rows.arraySync(), [values[4], values[0], values[0], values[2]]);
    assert.deepEqual(
      columns.arraySync(),
      values.map((plane) => [plane[1], plane[1]]),
    );
    assert.throws(() => tf.gather(x, tf.tensor1d([5], 'int32')), /not in \[0, 4\]/);
    tf.dispose([x, indices, rows, columns]);
  });

  it('MaxPoolGrad 2×2 stride 2: as the backend’s kernel, ties, all-zero windows, offset 0, NaN and −0 included', () => {
    const original = originalWasmKernel('MaxPoolGrad');
    assert.ok(original, 'MaxPoolGrad is replaced and its original kept');
    const run = (kernel: 'ours' | 'backend', inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap) =>
      kernel === 'ours'
        ? (tf.engine().runKernel('MaxPoolGrad', inputs, attrs) as tf.Tensor)
        : tf
            .engine()
            .makeTensorFromTensorInfo(original({ inputs, attrs, backend: tf.backend() }) as tf.TensorInfo);
    tf.tidy(() => {
      // Rounded ReLU'd values: zero windows and ties among maxima; then the edge values the rules hinge on.
      const relu = tf.relu(
        tf.div(tf.round(tf.mul(tf.randomNormal([3, 6, 8, 5], 0, 1, 'float32', 11), 2)), 2),
      );
      const values = Float32Array.from(relu.dataSync());
      values.fill(0, 0, 5); // image 0's first pixel, every channel: with its neighbours below, a zero window at offset 0
      [values[5], values[40], values[45]] = [0, 0, 0];
      values[7] = 1e-40; // below FLT_MIN: never a maximum
      values[41] = NaN; // never a maximum
      values[100] = -1;
      const input = tf.tensor4d(values, [3, 6, 8, 5]);
      const output = tf.maxPool(input, 2, 2, 'valid');
      const dyValues = Float32Array.from(tf.randomNormal([3, 3, 4, 5], 0, 1, 'float32', 12).dataSync());
      [dyValues[0], dyValues[2], dyValues[3]] = [1.5, -0, -2];
      const dy = tf.tensor4d(dyValues, [3, 3, 4, 5]);
      for (const pad of ['valid', 'same'] as const) {
        const attrs = { filterSize: [2, 2], strides: [2, 2], pad };
        const ours = run('ours', { dy, input, output }, attrs);
        assertSameBits(ours, run('backend', { dy, input, output }, attrs), `dx (${pad})`);
      }
      const ours = run('ours', { dy, input, output }, { filterSize: [2, 2], strides: [2, 2], pad: 'valid' });
      const dx = ours.dataSync();
      assert.ok(dx[0] !== 0, 'the zero window at offset 0 hands its gradient to offset 0');
      assert.ok(
        bits(ours).every((b) => b !== 0x80000000),
        '−0 gradients become +0, as the backend’s sum',
      );
    });
  });

  it('MaxPoolGrad of odd sizes or other windows and strides still takes the backend’s kernel', () => {
    const original = originalWasmKernel('MaxPoolGrad');
    assert.ok(original, 'MaxPoolGrad is replaced and its original kept');
    tf.tidy(() => {
      const input = tf.randomNormal([2, 7, 5, 3], 0, 1, 'float32', 13) as tf.Tensor4D;
      for (const [filterSize, strides, pad] of [
        [2, 2, 'same'],
        [3, 1, 'valid'],
        [2, 1, 'same'],
      ] as const) {
        const output = tf.maxPool(input, filterSize, strides, pad);
        const dy = tf.randomNormal(output.shape, 0, 1, 'float32', 14);
        const attrs = { filterSize, strides, pad };
        const ours = tf.engine().runKernel('MaxPoolGrad', { dy, input, output }, attrs) as tf.Tensor;
        const info = original({
          inputs: { dy, input, output },
          attrs,
          backend: tf.backend(),
        }) as tf.TensorInfo;
        assertSameBits(ours, tf.engine().makeTensorFromTensorInfo(info), `${filterSize}/${strides} ${pad}`);
      }
    });
  });

  it('small Neg, Abs, Square and column Multiply on the calling thread: as the backend’s kernels, bit for bit', () => {
    const flag = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    // They take over only with a thread pool; the flag is read per call (the backend has started already).
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    try {
      tf.tidy(() => {
        const special = [0, -0, Infinity, -Infinity, 1e-45, -1e-40, 3e38, -2e19, 1e-20, 1.5];
        const random = Float32Array.from(
          tf.randomNormal([384 * 64 - special.length], 0, 3, 'float32', 21).dataSync(),
        );
        const values = Float32Array.from([...special, ...random]);
        const x = tf.tensor2d(values, [384, 64]);
        const column = tf.tensor2d(values.slice(0, 384), [384, 1]);
        const backend = (name: string, inputs: Record<string, tf.Tensor>) => {
          const original = originalWasmKernel(name);
          assert.ok(original, `${name} is replaced and its original kept`);
          const info = original({ inputs, attrs: {}, backend: tf.backend() }) as tf.TensorInfo;
          return tf.engine().makeTensorFromTensorInfo(info);
        };
        for (const name of ['Neg', 'Abs', 'Square']) {
          const ours = tf.engine().runKernel(name, { x }, {}) as tf.Tensor;
          assertSameBits(ours, backend(name, { x }), name);
        }
        const product = tf.mul(column, x);
        assertSameBits(product, backend('Multiply', { a: column, b: x }), 'column · matrix');
        assertSameBits(tf.mul(x, column), backend('Multiply', { a: x, b: column }), 'matrix · column');
        assert.ok(bits(product).includes(0x7f800000), 'the case covers an overflow to +Infinity');
      });
    } finally {
      tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', flag);
    }
  });

  it('Identity and same-dtype Cast share the buffer: values survive disposal of either, nothing leaks', () => {
    const before = tf.memory();
    const x = tf.tensor1d([1.5, -0, 3]);
    const clone = tf.clone(x);
    const cast = tf.cast(x, 'float32');
    const asInt = tf.cast(x, 'int32');
    x.dispose();
    assert.deepEqual(bits(clone), [0x3fc00000, 0x80000000, 0x40400000], 'clone keeps its values, −0 too');
    clone.dispose();
    assert.deepEqual(Array.from(cast.dataSync()), [1.5, -0, 3], 'cast keeps its values');
    assert.deepEqual(Array.from(asInt.dataSync()), [1, 0, 3], 'a real cast still converts');
    tf.dispose([cast, asInt]);
    const after = tf.memory();
    assert.equal(after.numTensors, before.numTensors, 'no tensor left');
    assert.equal(after.numDataBuffers, before.numDataBuffers, 'no buffer left');
  });
});

describe('model: convolution gradients on wasm, bit for bit against the previous formulation', () => {
  type Shape4 = [number, number, number, number];
  type Pads = [[number, number], [number, number], [number, number], [number, number]];
  const cases: Array<{ x: Shape4; filter: Shape4; pad: 'same' | 'valid' }> = [
    { x: [2, 8, 8, 3], filter: [3, 3, 3, 4], pad: 'same' },
    { x: [2, 9, 7, 3], filter: [3, 3, 3, 4], pad: 'valid' },
    { x: [1, 7, 7, 2], filter: [4, 4, 2, 3], pad: 'same' },
    { x: [3, 10, 11, 4], filter: [1, 1, 4, 6], pad: 'same' },
    { x: [2, 12, 12, 3], filter: [7, 7, 3, 2], pad: 'valid' },
    { x: [6, 12, 12, 8], filter: [3, 3, 8, 16], pad: 'same' },
  ];
  for (const { x: xShape, filter: filterShape, pad } of cases) {
    it(`stride 1: x ${xShape.join('x')}, filter ${filterShape.join('x')}, ${pad}`, () => {
      tf.tidy(() => {
        const x = tf.randomNormal(xShape, 0, 1, 'float32', 61) as tf.Tensor4D;
        const filter = tf.randomNormal(filterShape, 0, 1, 'float32', 62) as tf.Tensor4D;
        const weights = tf.randomNormal(tf.conv2d(x, filter, 1, pad).shape, 0, 1, 'float32', 63);
        const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, pad), weights)),
        )([x, filter]);
        const [kh, kw] = filterShape;
        const info = tf.backend_util.computeConv2DInfo(xShape, filterShape, 1, 1, pad);
        const { top, bottom, left, right } = info.padInfo;
        const dy = weights as tf.Tensor4D;
        // Filter gradient as before: x with batch and channels swapped, convolved with dy as the filter.
        const previousDw = tf.transpose(
          tf.slice(
            tf.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D, 1, [
              [0, 0],
              [top, bottom],
              [left, right],
              [0, 0],
            ] as Pads),
            [0, 0, 0, 0],
            [xShape[3], kh, kw, filterShape[3]],
          ),
          [1, 2, 0, 3],
        );
        // Input gradient as before: dy convolved with the flipped (Reverse) and in/out-swapped (Transpose) filter.
        const previousDx = tf.conv2d(
          dy,
          tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D,
          1,
          [
            [0, 0],
            [kh - 1 - top, kh - 1 - bottom],
            [kw - 1 - left, kw - 1 - right],
            [0, 0],
          ] as Pads,
        );
        assertSameBits(dw, previousDw, 'filter gradient');
        assertSameBits(dx, previousDx, 'input gradient');
      });
    });
  }
});
