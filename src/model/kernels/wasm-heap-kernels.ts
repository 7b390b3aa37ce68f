/**
 * Memory-bound training kernels written in plain JavaScript on the wasm heap, for the ops where the wasm
 * backend's own kernels spend their time in index arithmetic, transposes or naive loops rather than arithmetic
 * (per step of the reference batch, 48 px, 96 images, 1 thread; bench/results/model-speed-profile.md):
 *
 * - max-pool 2×2 gradient (`MAX_POOL_2X2_GRAD`): one pass instead of Equal + Cast + 2 × ResizeNearestNeighbor +
 *   Multiply (about 25 ms → 7 ms);
 * - UnsortedSegmentSum (the gradient of tf.gather): row additions instead of a one-hot matrix product through the
 *   backend's naive transposed BatchMatMul (3 × 3.5 ms → about 0.6 ms for all four calls);
 * - Sum over the leading axes (every bias gradient): per-channel accumulation instead of a transpose and a sum
 *   (about 10 → 9 ms, no transposed copy; then 8 running sums in locals for widths divisible by 8, ~2× less CPU);
 * - GatherV2 along axis 0: row copies (1.1 ms a call → about 0.3 ms);
 * - MaxPoolGrad of 2×2 windows, stride 2 (the last pool): the backend's rules in one pass (4.3 → 1.5 ms of CPU);
 * - with a thread pool, small Neg, Abs, Square and column-times-matrix Multiply: loops on the calling thread instead
 *   of XNNPACK operators that wait for the pool's thread (0.3–0.8 ms a call at 2 threads → 0.1 ms).
 *
 * Each computes exactly what the kernels it replaces compute, rounding included (same float32 operations in the
 * same order; test/model.heap-kernels.test.ts compares them bit for bit), so seeded training is unchanged. Shapes they
 * do not cover go to the original kernels.
 */
import * as tf from '@tensorflow/tfjs';

type TensorInfo = tf.TensorInfo;
type KernelArgs = Parameters<tf.KernelFunc>[0];

/** What these kernels use of the wasm backend (its class is not exported by the package). */
interface WasmHeap {
  makeOutput(shape: number[], dtype: tf.DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

const BACKEND = 'wasm';

/** Name of the fused 2×2 max-pool gradient (inputs x, pooled, dy; NHWC with even height and width). */
export const MAX_POOL_2X2_GRAD = 'DressmatchMaxPool2x2Grad';

function heap(backend: unknown): WasmHeap {
  return backend as WasmHeap;
}

function f32(backend: WasmHeap, info: TensorInfo): Float32Array {
  const view = backend.typedArrayFromHeap(info);
  if (!(view instanceof Float32Array)) throw new Error(`expected a float32 tensor, got ${info.dtype}`);
  return view;
}

function i32(backend: WasmHeap, info: TensorInfo): Int32Array {
  const view = backend.typedArrayFromHeap(info);
  if (!(view instanceof Int32Array)) throw new Error(`expected an int32 tensor, got ${info.dtype}`);
  return view;
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * A new float32 output of `shape`, with float32 views of it and of `inputs` taken after the allocation: an
 * allocation may grow (and replace) the heap's buffer, which leaves views taken before it pointing at the old one.
 */
function float32Output(
  backend: WasmHeap,
  shape: number[],
  ...inputs: TensorInfo[]
): [out: TensorInfo, target: Float32Array, ...sources: Float32Array[]] {
  const out = backend.makeOutput(shape, 'float32');
  return [out, f32(backend, out), ...inputs.map((input) => f32(backend, input))];
}

/**
 * dx = resizeNearest(dy) · (x == resizeNearest(pooled)): every element equal to its window's maximum receives the
 * window's gradient (ties all do), the others dy · 0 (−0 for a negative dy), exactly as the Multiply it replaces.
 * Window by window and branch-free: a data-dependent branch here mispredicts and costs 3× (26 ms against 8 ms on
 * [96, 24, 24, 32]).
 */
function maxPool2x2Grad({ inputs, backend: anyBackend }: KernelArgs): TensorInfo {
  const backend = heap(anyBackend);
  const { x, pooled, dy } = inputs as { x: TensorInfo; pooled: TensorInfo; dy: TensorInfo };
  const [batch, height, width, channels] = x.shape;
  if (height % 2 !== 0 || width % 2 !== 0) throw new Error(`${MAX_POOL_2X2_GRAD} needs even sizes`);
  const [out, dx, xs, ps, gs] = float32Output(backend, [...x.shape], x, pooled, dy);
  const row = width * channels;
  let p = 0;
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < height; y += 2) {
      let at = (n * height + y) * row;
      for (let col = 0; col < width; col += 2, at += 2 * channels) {
        for (let c = 0; c < channels; c++, p++) {
          const max = ps[p];
          const g = gs[p];
          const i = at + c;
          dx[i] = g * +(xs[i] === max);
          dx[i + channels] = g * +(xs[i + channels] === max);
          dx[i + row] = g * +(xs[i + row] === max);
          dx[i + row + channels] = g * +(xs[i + row + channels] === max);
        }
      }
    }
  }
  return out;
}

/** The smallest normal float32 (FLT_MIN): the backend's MaxPoolGrad starts each window's maximum there. */
const FLT_MIN = 2 ** -126;

/**
 * MaxPoolGrad for 2×2 windows, stride 2, no padding, even sizes (the CSN head's last pool, 96×6×6×64 → 3×3), with
 * the backend's own rules, which differ from `maxPool2x2Grad` above: the whole gradient goes to one element, the
 * last one (row by row) that is ≥ the running maximum, which starts at FLT_MIN at tensor offset 0. So in a window
 * whose values are all below FLT_MIN (all zeros after a ReLU) nobody gets the gradient, except in the first
 * window of image 0, channel 0, which holds offset 0. Each dx is the backend's float sum `0 + dy · mask`
 * (−0 becomes +0). 96×6×6×64: 4.3 → 1.5 ms of CPU a call (the backend finds every window's maximum, then
 * loops over every element's windows); a branch-free version was no faster.
 */
function makeMaxPoolGrad(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
    const { filterSize, strides, pad, dimRoundingMode } = args.attrs as unknown as tf.MaxPoolGradAttrs;
    const info = tf.backend_util.computePool2DInfo(
      input.shape as [number, number, number, number],
      filterSize,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo, inHeight, inWidth } = info;
    const plain = filterHeight === 2 && filterWidth === 2 && strideHeight === 2 && strideWidth === 2;
    const even = inHeight % 2 === 0 && inWidth % 2 === 0 && info.outHeight * 2 === inHeight;
    const unpadded = padInfo.top === 0 && padInfo.left === 0 && info.outWidth * 2 === inWidth;
    if (!plain || !even || !unpadded || input.dtype !== 'float32') return original(args);
    return maxPoolGrad2x2Backend(heap(args.backend), input, dy);
  };
}

// The window loop is maxPool2x2Grad's; written out again rather than shared through a per-window callback, which
// this loop (55k windows a call) would pay for.
function maxPoolGrad2x2Backend(backend: WasmHeap, input: TensorInfo, dy: TensorInfo): TensorInfo {
  const [batch, height, width, channels] = input.shape;
  const [out, dx, xs, gs] = float32Output(backend, [...input.shape], input, dy);
  const row = width * channels;
  let p = 0;
  for (let n = 0; n < batch; n++) {
    for (let y = 0; y < height; y += 2) {
      let at = (n * height + y) * row;
      for (let col = 0; col < width; col += 2, at += 2 * channels) {
        for (let c = 0; c < channels; c++, p++) {
          const i = at + c;
          const a = xs[i];
          const b = xs[i + channels];
          const d = xs[i + row];
          const e = xs[i + row + channels];
          // Offset 0 is the default position: a window that never updates gives its first element the gradient
          // only if that element is offset 0.
          let winner = i === 0 ? 0 : -1;
          let best = FLT_MIN;
          if (a >= best) {
            best = a;
            winner = 0;
          }
          if (b >= best) {
            best = b;
            winner = 1;
          }
          if (d >= best) {
            best = d;
            winner = 2;
          }
          if (e >= best) winner = 3;
          const g = gs[p];
          dx[i] = 0 + g * +(winner === 0);
          dx[i + channels] = 0 + g * +(winner === 1);
          dx[i + row] = 0 + g * +(winner === 2);
          dx[i + row + channels] = 0 + g * +(winner === 3);
        }
      }
    }
  }
  return out;
}

/**
 * [N, H, W, C] → [C, H, W, N] (Transpose with perm [3, 1, 2, 0]), pixel by pixel so that the N rows read for one
 * pixel stay in cache while each channel's run of N values is written: 7 ms against the backend's 12 ms for
 * [96, 24, 24, 32] (1 thread). For a few channels (the 3 of RGB) the backend is faster; the caller keeps it there.
 */
export function transposeChannelsFirst(anyBackend: unknown, x: TensorInfo): TensorInfo {
  const backend = heap(anyBackend);
  const [batch, height, width, channels] = x.shape;
  const [out, target, source] = float32Output(backend, [channels, height, width, batch], x);
  const pixels = height * width;
  const imageStride = pixels * channels;
  const plane = pixels * batch;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) {
      let to = c * plane + p * batch;
      let at = p * channels + c;
      for (let n = 0; n < batch; n++, at += imageStride) target[to++] = source[at];
    }
  }
  return out;
}

/** A float32 vector [C] repeated to `shape` (whose last axis is C): a copy, as the backend's Tile computes it. */
export function tileVector(anyBackend: unknown, vector: TensorInfo, shape: number[]): TensorInfo {
  const backend = heap(anyBackend);
  const [out, target, source] = float32Output(backend, shape, vector);
  // Doubling copies (memcpy: every bit kept, −0 and NaN payloads included).
  target.set(source);
  for (let filled = source.length; filled < target.length; filled *= 2) {
    target.copyWithin(filled, 0, Math.min(filled, target.length - filled));
  }
  return out;
}

/** [Cout, kh, kw, Cin] with rows and columns reversed → [kh, kw, Cin, Cout] (a copy; see wasm-kernels.ts). */
export function unflipFilterGradient(anyBackend: unknown, flipped: TensorInfo): TensorInfo {
  const backend = heap(anyBackend);
  const [outChannels, height, width, inChannels] = flipped.shape;
  const [out, target, source] = float32Output(backend, [height, width, inChannels, outChannels], flipped);
  for (let co = 0; co < outChannels; co++) {
    for (let i = 0; i < height; i++) {
      for (let j = 0; j < width; j++) {
        const from = ((co * height + (height - 1 - i)) * width + (width - 1 - j)) * inChannels;
        const to = (i * width + j) * inChannels * outChannels + co;
        for (let ci = 0; ci < inChannels; ci++) target[to + ci * outChannels] = source[from + ci];
      }
    }
  }
  return out;
}

/** W [kh, kw, Cin, Cout] → W rotated by 180° with in/out swapped: out[i, j, co, ci] = W[kh−1−i, kw−1−j, ci, co]. */
export function flipSwapFilter(anyBackend: unknown, filter: TensorInfo): TensorInfo {
  const backend = heap(anyBackend);
  const [height, width, inChannels, outChannels] = filter.shape;
  const [out, target, source] = float32Output(backend, [height, width, outChannels, inChannels], filter);
  const plane = inChannels * outChannels;
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const from = ((height - 1 - i) * width + (width - 1 - j)) * plane;
      const to = (i * width + j) * plane;
      for (let ci = 0; ci < inChannels; ci++) {
        for (let co = 0; co < outChannels; co++)
          target[to + co * inChannels + ci] = source[from + ci * outChannels + co];
      }
    }
  }
  return out;
}

/** Rows summed per block by the backend's transposed BatchMatMul, which the previous kernel went through. */
const MATMUL_BLOCK = 48;

/**
 * out[s] = Σ_i [ids[i] = s] · x[i], as the one-hot product it replaces rounded it: rows are summed in blocks of 48
 * (each block's sum from 0, then added to the running total). Non-finite x (where 0 · x is NaN) falls back.
 */
function makeUnsortedSegmentSum(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const backend = heap(args.backend);
    const { x, segmentIds } = args.inputs as { x: TensorInfo; segmentIds: TensorInfo };
    const { numSegments } = args.attrs as unknown as tf.UnsortedSegmentSumAttrs;
    if (x.dtype !== 'float32' || segmentIds.dtype !== 'int32') return original(args);
    const rows = size(segmentIds.shape);
    const inner = x.shape.slice(segmentIds.shape.length);
    const width = size(inner);
    const values = f32(backend, x);
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return original(args);
    const [out, total, xs] = float32Output(backend, [numSegments, ...inner], x);
    const ids = i32(backend, segmentIds);
    total.fill(0);
    const block = new Float32Array(numSegments * width);
    const touched = new Uint8Array(numSegments);
    for (let start = 0; start < rows; start += MATMUL_BLOCK) {
      block.fill(0);
      touched.fill(0);
      const end = Math.min(start + MATMUL_BLOCK, rows);
      for (let i = start; i < end; i++) {
        const s = ids[i];
        if (s < 0 || s >= numSegments) continue;
        touched[s] = 1;
        const to = s * width;
        const from = i * width;
        for (let j = 0; j < width; j++) block[to + j] += xs[from + j];
      }
      for (let s = 0; s < numSegments; s++) {
        if (!touched[s]) continue;
        const at = s * width;
        for (let j = 0; j < width; j++) total[at + j] += block[at + j];
      }
    }
    return out;
  };
}

/** The reduction axes as given, normalised; undefined unless they are exactly 0..k−1 with k < rank. */
function leadingAxes(axis: number | number[], shape: number[]): number | undefined {
  const rank = shape.length;
  // null/undefined = all axes (tfjs's own parser), negative axes counted from the end.
  const sorted = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length >= rank) return undefined;
  return sorted.every((a, i) => a === i) ? sorted.length : undefined;
}

/**
 * Sum over the leading axes of a float32 tensor: each output element is the sum of its inputs in memory order,
 * from 0, as the backend's Sum computes it after transposing the reduced axes innermost.
 */
function makeLeadingSum(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const backend = heap(args.backend);
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as tf.SumAttrs;
    const k = leadingAxes(axis, x.shape);
    if (x.dtype !== 'float32' || k === undefined || size(x.shape) === 0) return original(args);
    const kept = x.shape.slice(k);
    const shape = keepDims ? [...x.shape.slice(0, k).map(() => 1), ...kept] : kept;
    const [out, sums, xs] = float32Output(backend, shape, x);
    const width = size(kept);
    sums.set(width % 8 === 0 ? columnSums8(xs, width) : columnSums(xs, width));
    return out;
  };
}

/** Σ of each column of a row-major [rows, width] array, rows in order, from +0, in float32. */
function columnSums(xs: Float32Array, width: number): Float32Array {
  const acc = new Float32Array(width);
  for (let at = 0; at < xs.length; at += width) {
    for (let j = 0; j < width; j++) acc[j] += xs[at + j];
  }
  return acc;
}

/** Rows per block of `columnSums8`: a block's 8-column strips stay in cache while the next strip reads it. */
const SUM_BLOCK_ROWS = 64;

/**
 * `columnSums` for widths divisible by 8: the same additions in the same order for every column (rounded to
 * float32 after each, as the Float32Array store did), with 8 running sums in locals instead of array elements,
 * over blocks of rows. About 2× faster: 55296 × 32 (conv2's bias gradient) 2.5 → 1.3 ms of CPU.
 */
function columnSums8(xs: Float32Array, width: number): Float32Array {
  const f = Math.fround;
  const acc = new Float32Array(width);
  const block = SUM_BLOCK_ROWS * width;
  for (let start = 0; start < xs.length; start += block) {
    const end = Math.min(xs.length, start + block);
    for (let j = 0; j < width; j += 8) {
      // Locals, not destructuring: V8 keeps these in registers (destructuring was up to 1.7× slower).
      let a0 = acc[j];
      let a1 = acc[j + 1];
      let a2 = acc[j + 2];
      let a3 = acc[j + 3];
      let a4 = acc[j + 4];
      let a5 = acc[j + 5];
      let a6 = acc[j + 6];
      let a7 = acc[j + 7];
      for (let at = start + j; at < end; at += width) {
        a0 = f(a0 + xs[at]);
        a1 = f(a1 + xs[at + 1]);
        a2 = f(a2 + xs[at + 2]);
        a3 = f(a3 + xs[at + 3]);
        a4 = f(a4 + xs[at + 4]);
        a5 = f(a5 + xs[at + 5]);
        a6 = f(a6 + xs[at + 6]);
        a7 = f(a7 + xs[at + 7]);
      }
      acc[j] = a0;
      acc[j + 1] = a1;
      acc[j + 2] = a2;
      acc[j + 3] = a3;
      acc[j + 4] = a4;
      acc[j + 5] = a5;
      acc[j + 6] = a6;
      acc[j + 7] = a7;
    }
  }
  return acc;
}

/** GatherV2 along axis 0 without batch dimensions: whole rows copied. Other cases go to the original kernel. */
function makeGatherRows(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const backend = heap(args.backend);
    const { x, indices } = args.inputs as { x: TensorInfo; indices: TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as tf.GatherV2Attrs;
    const rank = x.shape.length;
    if (rank === 0 || (axis + rank) % rank !== 0 || (batchDims ?? 0) !== 0) return original(args);
    if ((x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32') return original(args);
    const ids = i32(backend, indices);
    const rows = x.shape[0];
    for (let i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= rows) return original(args); // it throws the backend's own message
    }
    const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
    const target = backend.typedArrayFromHeap(out);
    const source = backend.typedArrayFromHeap(x);
    const index = i32(backend, indices);
    const width = size(x.shape.slice(1));
    for (let i = 0; i < index.length; i++) {
      const from = index[i] * width;
      target.set(source.subarray(from, from + width), i * width);
    }
    return out;
  };
}

/** Name of the fused Adam update (inputs value, m, v, gradient; attrs AdamUpdateAttrs; outputs value, m, v). */
export const ADAM_UPDATE = 'DressmatchAdamUpdate';

/** Adam's constants, each already the float32 value tfjs's own Adam would turn it into. */
export interface AdamUpdateAttrs {
  beta1: number;
  beta2: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  oneMinusAccBeta1: number;
  oneMinusAccBeta2: number;
  epsilon: number;
  negativeLearningRate: number;
}

/**
 * One variable's Adam step in one pass, with tfjs AdamOptimizer's operations in its order, each rounded to float32
 * (Math.fround of the double result is the correctly rounded float32 result for +, −, ×, ÷ and √):
 * m' = m·β1 + g·(1−β1); v' = v·β2 + g²·(1−β2); w' = (m'/(1−β1ᵗ)) / (√(v'/(1−β2ᵗ)) + ε) · (−lr) + w.
 * tfjs runs 14 kernels per variable for this (154 a step for the small CSN), each a wasm call and a buffer.
 */
function adamUpdate({ inputs, backend: anyBackend, attrs }: KernelArgs): TensorInfo[] {
  const backend = heap(anyBackend);
  const { value, m, v, gradient } = inputs as Record<'value' | 'm' | 'v' | 'gradient', TensorInfo>;
  const c = attrs as unknown as AdamUpdateAttrs;
  const outputs = [value, m, v].map((t) => backend.makeOutput([...t.shape], 'float32'));
  const [nextValue, nextM, nextV] = outputs.map((t) => f32(backend, t));
  const ws = f32(backend, value);
  const ms = f32(backend, m);
  const vs = f32(backend, v);
  const gs = f32(backend, gradient);
  const f = Math.fround;
  for (let i = 0; i < gs.length; i++) {
    const g = gs[i];
    const m1 = f(f(ms[i] * c.beta1) + f(g * c.oneMinusBeta1));
    const v1 = f(f(vs[i] * c.beta2) + f(f(g * g) * c.oneMinusBeta2));
    const mHat = f(m1 / c.oneMinusAccBeta1);
    const vHat = f(v1 / c.oneMinusAccBeta2);
    const step = f(f(mHat / f(f(Math.sqrt(vHat)) + c.epsilon)) * c.negativeLearningRate);
    nextValue[i] = step + ws[i];
    nextM[i] = m1;
    nextV[i] = v1;
  }
  return outputs;
}

/**
 * Element-wise ops on tensors up to this size run here, on the calling thread, when the backend has a thread
 * pool: each XNNPACK operator waits for the pool's thread, which is asleep after JavaScript or serial C++ work,
 * and on a loaded machine may not get a core for a while. Measured at 2 threads, load average 4: Multiply
 * [384, 1] · [384, 64] 0.02 → 0.82 ms a call, Neg, Square and Abs of [384, 64] 0.01–0.02 → 0.3–0.5 ms; about 4 ms
 * a step in all. The loops take 0.01–0.05 ms.
 */
const SMALL_ELEMENTWISE = 65536;

function pooled(): boolean {
  return tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
}

/** The float32 unary ops below, by kernel name: one loop each, so that V8 compiles each op into its loop. */
const SMALL_UNARY: Record<string, (source: Float32Array, target: Float32Array) => void> = {
  Neg: (source, target) => {
    for (let i = 0; i < source.length; i++) target[i] = -source[i];
  },
  Abs: (source, target) => {
    for (let i = 0; i < source.length; i++) target[i] = Math.abs(source[i]);
  },
  Square: (source, target) => {
    // The double product of two float32 values is exact; storing it rounds once, as float32 x · x does.
    for (let i = 0; i < source.length; i++) target[i] = source[i] * source[i];
  },
};

/**
 * Neg, Abs or Square of a small float32 tensor, exactly as the backend computes them for every non-NaN input
 * (sign flip, sign clear, the float32 product x · x); NaN stays NaN.
 */
function makeSmallUnary(name: string): (original: tf.KernelFunc) => tf.KernelFunc {
  const loop = SMALL_UNARY[name];
  return (original) => (args: KernelArgs) => {
    const { x } = args.inputs as { x: TensorInfo };
    if (x.dtype !== 'float32' || size(x.shape) > SMALL_ELEMENTWISE || !pooled()) return original(args);
    const backend = heap(args.backend);
    const [out, target, source] = float32Output(backend, [...x.shape], x);
    loop(source, target);
    return out;
  };
}

/** Multiply of a column [n, 1] and a matrix [n, m] (either order): the float32 products, row by row. */
function makeSmallColumnMultiply(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const [column, matrix] = a.shape[1] === 1 ? [a, b] : [b, a];
    const [rows, width] = matrix.shape;
    const fits =
      a.dtype === 'float32' &&
      b.dtype === 'float32' &&
      a.shape.length === 2 &&
      b.shape.length === 2 &&
      column.shape[0] === rows &&
      column.shape[1] === 1 &&
      width > 1 &&
      size(matrix.shape) <= SMALL_ELEMENTWISE;
    if (!fits || !pooled()) return original(args);
    const backend = heap(args.backend);
    const [out, target, scale, values] = float32Output(backend, [rows, width], column, matrix);
    const f = Math.fround;
    for (let r = 0, i = 0; r < rows; r++) {
      const s = scale[r];
      for (let j = 0; j < width; j++, i++) target[i] = f(s * values[i]);
    }
    return out;
  };
}

/** Backend bookkeeping for a buffer that one more tensor now shares (Reshape already works this way). */
interface RefCounted {
  incRef(dataId: tf.DataId): void;
}

/**
 * Identity, and Cast to the dtype a tensor already has: the output shares the input's buffer instead of copying
 * it. Tensors are immutable (a variable's assign swaps buffers), so nothing can tell the difference. The engine
 * clones every tensor it saves for the backward pass and gradients cast float32 to float32: about 160 copies a
 * step (the backend's JS cast and identity, copying, take 5.6 % of the main thread: bench/results/model-speed-profile.md).
 */
function share(x: TensorInfo, backend: unknown): TensorInfo {
  (backend as RefCounted).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function makeSharedIdentity(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: TensorInfo };
    return x.dtype === 'string' ? original(args) : share(x, args.backend);
  };
}

function makeSharedCast(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: TensorInfo };
    const { dtype } = args.attrs as unknown as tf.CastAttrs;
    return x.dtype === dtype && dtype !== 'string' ? share(x, args.backend) : original(args);
  };
}

/** The backend's own kernels that `replace` swapped out, for the tests that compare against them. */
const originals = new Map<string, tf.KernelFunc>();

/** The wasm backend's original kernel `name`, if one of the kernels above replaced it. */
export function originalWasmKernel(name: string): tf.KernelFunc | undefined {
  return originals.get(name);
}

function replace(name: string, make: (original: tf.KernelFunc) => tf.KernelFunc): void {
  const original = tf.getKernel(name, BACKEND);
  if (!original) throw new Error(`the wasm backend has no ${name} kernel`);
  originals.set(name, original.kernelFunc);
  tf.unregisterKernel(name, BACKEND);
  tf.registerKernel({ ...original, kernelFunc: make(original.kernelFunc) });
}

/** Register the kernels above for the wasm backend. Called once, by registerWasmTrainingKernels. */
export function registerWasmHeapKernels(): void {
  tf.registerKernel({ kernelName: MAX_POOL_2X2_GRAD, backendName: BACKEND, kernelFunc: maxPool2x2Grad });
  tf.registerKernel({ kernelName: ADAM_UPDATE, backendName: BACKEND, kernelFunc: adamUpdate });
  replace('UnsortedSegmentSum', makeUnsortedSegmentSum);
  replace('Sum', makeLeadingSum);
  replace('GatherV2', makeGatherRows);
  replace('MaxPoolGrad', makeMaxPoolGrad);
  replace('Identity', makeSharedIdentity);
  replace('Cast', makeSharedCast);
  for (const name of Object.keys(SMALL_UNARY)) replace(name, makeSmallUnary(name));
  replace('Multiply', makeSmallColumnMultiply);
}
