/**
 * Training kernels the tfjs wasm backend lacks (or runs slowly), written as compositions of the
 * wasm kernels it does have so that the heavy lifting stays in XNNPACK:
 *
 * - Conv2DBackpropFilter: the filter gradient is itself a convolution of the input with the output
 *   gradient once batch and channel axes are swapped (the stride becomes a dilation); for stride 1 with x as
 *   that convolution's filter and dy as its input (smaller filter to pack, same sums: swappedFilterGradient).
 * - Conv2DBackpropInput: a forward convolution of the output gradient (zeros inserted between its rows
 *   and columns for strides above 1) with the spatially flipped, in/out-swapped filter. The original
 *   kernel stays as the fallback; for stride 2 this is about 2.6× faster than it (bench notes).
 * - UnsortedSegmentSum (the gradient of tf.gather): a one-hot matrix product (the fallback of the JavaScript
 *   kernel in wasm-heap-kernels.ts, which registerWasmTrainingKernels also registers).
 * - Sub, RealDiv, Add, Multiply of a tensor and a vector along a short last axis (the input normalisation,
 *   (images − mean) / std with 3 channels): XNNPACK handles a broadcast run of 3 values at a time; tiling the
 *   vector over the trailing axes first makes the run thousands of values long. Same subtraction per element,
 *   bit-identical result; [96, 48, 48, 3] − [3]: 3.5 ms → 0.3 ms (1 thread).
 *
 * Every intermediate buffer is released with backend.disposeData; only the returned one survives.
 */
import * as tf from '@tensorflow/tfjs';
import {
  flipSwapFilter,
  registerWasmHeapKernels,
  tileVector,
  transposeChannelsFirst,
  unflipFilterGradient,
} from './wasm-heap-kernels.ts';

type TensorInfo = tf.TensorInfo;
type Attrs = Record<string, unknown>;
type KernelArgs = Parameters<tf.KernelFunc>[0];

const BACKEND = 'wasm';

/** Run another wasm kernel directly on backend buffers (no engine bookkeeping, no autograd). */
function run(
  backend: tf.KernelBackend,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: Attrs = {},
): TensorInfo {
  const kernel = tf.getKernel(kernelName, BACKEND);
  if (!kernel) throw new Error(`wasm kernel ${kernelName} is not registered`);
  const out = kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap });
  if (Array.isArray(out)) throw new Error(`wasm kernel ${kernelName} returned several outputs`);
  return out;
}

/** Collects intermediates so that a kernel frees everything but its result, even when it throws. */
class Scratch {
  private readonly infos: TensorInfo[] = [];
  constructor(private readonly backend: tf.KernelBackend) {}

  run(kernelName: string, inputs: Record<string, TensorInfo>, attrs: Attrs = {}): TensorInfo {
    const out = run(this.backend, kernelName, inputs, attrs);
    this.infos.push(out);
    return out;
  }

  /** Track a buffer made outside `run` (a JavaScript kernel's output) so that it is freed like the others. */
  track(info: TensorInfo): TensorInfo {
    this.infos.push(info);
    return info;
  }

  /** Hand `result` to the caller and free the rest. */
  finish(result: TensorInfo): TensorInfo {
    for (const info of this.infos) {
      if (info !== result) this.backend.disposeData(info.dataId);
    }
    this.infos.length = 0;
    return result;
  }

  release(): void {
    for (const info of this.infos) this.backend.disposeData(info.dataId);
    this.infos.length = 0;
  }
}

function withScratch(backend: tf.KernelBackend, body: (scratch: Scratch) => TensorInfo): TensorInfo {
  const scratch = new Scratch(backend);
  try {
    return scratch.finish(body(scratch));
  } catch (error) {
    scratch.release();
    throw error;
  }
}

function nhwcOnly(dataFormat: unknown, kernelName: string): void {
  if (dataFormat !== undefined && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new Error(`${kernelName} on wasm supports only NHWC, got ${String(dataFormat)}`);
  }
}

type Shape4 = [number, number, number, number];

/** dW[i,j,ci,co] = Σ_n,oy,ox x[n, oy·s + i − pad, ox·s + j − pad, ci] · dy[n, oy, ox, co]. */
function conv2DBackpropFilter({ inputs, backend: anyBackend, attrs }: KernelArgs): TensorInfo {
  const backend = anyBackend as tf.KernelBackend;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } =
    attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  nhwcOnly(dataFormat, 'Conv2DBackpropFilter');
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as Shape4,
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const { filterHeight, filterWidth, inChannels, outChannels, strideHeight, strideWidth, padInfo } = info;
  const swapped = swappedFilterGradient(backend, x, dy, info);
  if (swapped) return swapped;
  return withScratch(backend, (scratch) => {
    // Channels become the batch, the batch becomes the channels: [Cin, H, W, N].
    const xT = scratch.run('Transpose', { x }, { perm: [3, 1, 2, 0] });
    // The output gradient is the filter: [oh, ow, N, Cout].
    const dyT = scratch.run('Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
    const conv = scratch.run(
      'Conv2D',
      { x: xT, filter: dyT },
      {
        strides: [1, 1],
        dilations: [strideHeight, strideWidth],
        pad: [
          [0, 0],
          [padInfo.top, padInfo.bottom],
          [padInfo.left, padInfo.right],
          [0, 0],
        ],
        dataFormat: 'NHWC',
      },
    );
    // Bottom/right padding can leave extra rows and columns beyond the filter size.
    let cropped = conv;
    if (conv.shape[1] !== filterHeight || conv.shape[2] !== filterWidth) {
      cropped = scratch.run(
        'Slice',
        { x: conv },
        { begin: [0, 0, 0, 0], size: [inChannels, filterHeight, filterWidth, outChannels] },
      );
    }
    return scratch.run('Transpose', { x: cropped }, { perm: [1, 2, 0, 3] });
  });
}

/**
 * The same filter gradient with the roles of x and dy swapped, for stride 1: the forward convolution's filter is
 * x ([H, W, N, Cin]) and its input dy ([Cout, OH, OW, N]); the result comes out spatially flipped
 * ([Cout, kh, kw, Cin]) and is flipped back. Each output is the same sum over (row, column, image) in the same
 * order (x's rows and dy's rows advance together; the terms that differ are padding, exact zeros), so the
 * result is bit-identical. Why: the backend builds an XNNPACK operator for every new filter (transposing and
 * packing it), which is most of this kernel's time; x is half the size of dy in the small backbone's layers.
 */
function swappedFilterGradient(
  backend: tf.KernelBackend,
  x: TensorInfo,
  dy: TensorInfo,
  info: tf.backend_util.Conv2DInfo,
): TensorInfo | undefined {
  const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo, inHeight, inWidth } = info;
  const { outHeight, outWidth, dilationHeight, dilationWidth } = info;
  if (strideHeight !== 1 || strideWidth !== 1 || dilationHeight !== 1 || dilationWidth !== 1)
    return undefined;
  if (size(x.shape) > size(dy.shape)) return undefined;
  const top = filterHeight - 1 - padInfo.top;
  const left = filterWidth - 1 - padInfo.left;
  const bottom = inHeight - outHeight + padInfo.top;
  const right = inWidth - outWidth + padInfo.left;
  if (Math.min(top, left, bottom, right) < 0) return undefined;
  return withScratch(backend, (scratch) => {
    const input =
      dy.shape[3] >= 8
        ? scratch.track(transposeChannelsFirst(backend, dy))
        : scratch.run('Transpose', { x: dy }, { perm: [3, 1, 2, 0] });
    const filter = scratch.run('Transpose', { x }, { perm: [1, 2, 0, 3] });
    const flipped = scratch.run('Conv2D', { x: input, filter }, stride1Conv(top, bottom, left, right));
    return scratch.track(unflipFilterGradient(backend, flipped));
  });
}

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Attributes of a stride-1 NHWC Conv2D with explicit padding (both gradient kernels run one). */
function stride1Conv(top: number, bottom: number, left: number, right: number): tf.NamedAttrMap {
  return {
    strides: [1, 1],
    dilations: [1, 1],
    pad: [
      [0, 0],
      [top, bottom],
      [left, right],
      [0, 0],
    ],
    dataFormat: 'NHWC',
  };
}

/**
 * dx = conv(dy', flip(W) with in/out swapped), where dy' is dy with (stride − 1) zeros inserted after every
 * row and column (dy itself for stride 1), padded so that the output has the input's size. Falls back to
 * the original kernel for paddings this cannot express (negative pads) and non-NHWC layouts.
 */
function makeConv2DBackpropInput(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { inputs, attrs } = args;
    const backend = args.backend as tf.KernelBackend;
    const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, inputShape } =
      attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (dataFormat !== undefined && dataFormat !== 'NHWC') return original(args);
    const info = tf.backend_util.computeConv2DInfo(
      inputShape,
      filter.shape as Shape4,
      strides,
      1,
      pad,
      dimRoundingMode,
    );
    const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels } = info;
    const { filterHeight, filterWidth, strideHeight, strideWidth, padInfo } = info;
    const top = filterHeight - 1 - padInfo.top;
    const left = filterWidth - 1 - padInfo.left;
    const bottom = inHeight - strideHeight * outHeight + padInfo.top;
    const right = inWidth - strideWidth * outWidth + padInfo.left;
    if (Math.min(top, bottom, left, right) < 0) return original(args);
    return withScratch(backend, (scratch) => {
      let spread = dy;
      if (strideHeight > 1 || strideWidth > 1) {
        const split = scratch.run(
          'Reshape',
          { x: dy },
          { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] },
        );
        const padded = scratch.run(
          'PadV2',
          { x: split },
          {
            paddings: [
              [0, 0],
              [0, 0],
              [0, strideHeight - 1],
              [0, 0],
              [0, strideWidth - 1],
              [0, 0],
            ],
            constantValue: 0,
          },
        );
        spread = scratch.run(
          'Reshape',
          { x: padded },
          { shape: [batchSize, outHeight * strideHeight, outWidth * strideWidth, outChannels] },
        );
      }
      // One JavaScript copy instead of Reverse + Transpose (the backend's Reverse took ~1.5 ms for 3×3×64×64).
      const swapped = scratch.track(flipSwapFilter(backend, filter));
      return scratch.run('Conv2D', { x: spread, filter: swapped }, stride1Conv(top, bottom, left, right));
    });
  };
}

/** out[s, …] = Σ_i [ids[i] = s] · x[i, …]: a one-hot matrix (ids outside [0, S) drop out) times x. */
function unsortedSegmentSum({ inputs, backend: anyBackend, attrs }: KernelArgs): TensorInfo {
  const backend = anyBackend as tf.KernelBackend;
  const { x, segmentIds } = inputs as { x: TensorInfo; segmentIds: TensorInfo };
  const { numSegments } = attrs as unknown as tf.UnsortedSegmentSumAttrs;
  if (x.dtype !== 'float32') throw new Error(`UnsortedSegmentSum on wasm supports float32, got ${x.dtype}`);
  const rows = segmentIds.shape.reduce((a, b) => a * b, 1);
  const inner = x.shape.slice(segmentIds.shape.length);
  const innerSize = inner.reduce((a, b) => a * b, 1);
  return withScratch(backend, (scratch) => {
    const ids =
      segmentIds.dtype === 'int32' ? segmentIds : scratch.run('Cast', { x: segmentIds }, { dtype: 'int32' });
    const flatIds = scratch.run('Reshape', { x: ids }, { shape: [rows] });
    // The wasm OneHot kernel writes int32 whatever dtype is asked for: ask for int32 and cast.
    const oneHot = scratch.run(
      'OneHot',
      { indices: flatIds },
      { depth: numSegments, onValue: 1, offValue: 0, dtype: 'int32' },
    );
    const oneHotFloat = scratch.run('Cast', { x: oneHot }, { dtype: 'float32' });
    const a = scratch.run('Reshape', { x: oneHotFloat }, { shape: [1, rows, numSegments] });
    const b = scratch.run('Reshape', { x }, { shape: [1, rows, innerSize] });
    const product = scratch.run('BatchMatMul', { a, b }, { transposeA: true, transposeB: false });
    return scratch.run('Reshape', { x: product }, { shape: [numSegments, ...inner] });
  });
}

/** Broadcast runs shorter than this (the vector's length) are tiled first. */
const SHORT_BROADCAST = 8;

/**
 * `a op b` with b of shape [C] (C = a's last dim, small): b is tiled to a's trailing axes (up to 16384 values) so
 * that the original kernel broadcasts it over long contiguous runs. Any other shapes go to the original kernel.
 */
function makeTiledBroadcast(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const backend = args.backend as tf.KernelBackend;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const channels = a.shape[a.shape.length - 1];
    if (
      a.dtype !== 'float32' ||
      b.dtype !== 'float32' ||
      a.shape.length < 3 ||
      b.shape.length !== 1 ||
      b.shape[0] !== channels ||
      channels >= SHORT_BROADCAST
    ) {
      return original(args);
    }
    // The trailing axes of a that fit in the tile: [..., H, W, C] → [H, W, C] when H·W·C ≤ 16384.
    const trailing: number[] = [channels];
    for (let axis = a.shape.length - 2; axis >= 1; axis--) {
      if (trailing.reduce((x, y) => x * y, a.shape[axis]) > 16384) break;
      trailing.unshift(a.shape[axis]);
    }
    const repeats = trailing.slice(0, -1).reduce((x, y) => x * y, 1);
    if (repeats === 1) return original(args);
    const scratch = new Scratch(backend);
    try {
      // One JavaScript copy: the backend's Tile took 0.3–0.6 ms for [1, 3] → [2304, 3] (index arithmetic).
      const shaped = scratch.track(tileVector(backend, b, trailing));
      const out = original({ ...args, inputs: { a, b: shaped } });
      if (Array.isArray(out)) throw new Error('a binary kernel returned several outputs');
      scratch.release();
      return out;
    } catch (error) {
      scratch.release();
      throw error;
    }
  };
}

/** The backend's transposed BatchMatMul sums the shared axis in blocks of this many, each block from 0. */
const MATMUL_BLOCK = 48;

/**
 * BatchMatMul with a transposed operand (one matrix each side): the backend runs those through a naive blocked
 * loop (each output = block sums over 48 values of the shared axis, added in order), while untransposed ones go to
 * XNNPACK. Here the operands are transposed first and every block is an XNNPACK product (which sums its block in
 * order from 0, as the loop does), the blocks added in order: the same float32 operations, bit-identical
 * (test/model.heap-kernels.test.ts checks it against a float32 model of the loop). The embedding layer's two
 * gradients took 3.9 + 4.4 ms a step (1 thread).
 */
function makeBlockedMatMul(original: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const backend = args.backend as tf.KernelBackend;
    const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as tf.BatchMatMulAttrs;
    const single = (t: TensorInfo) => t.shape.length === 2 || (t.shape.length === 3 && t.shape[0] === 1);
    if (!(transposeA || transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return original(args);
    if (!single(a) || !single(b)) return original(args);
    const [a0, a1] = a.shape.slice(-2);
    const [b0, b1] = b.shape.slice(-2);
    const [rows, shared] = transposeA ? [a1, a0] : [a0, a1];
    const columns = transposeB ? b0 : b1;
    return withScratch(backend, (scratch) => {
      const matrix = (t: TensorInfo, r: number, c: number, transpose: boolean) => {
        const flat = scratch.run('Reshape', { x: t }, { shape: [r, c] });
        return transpose ? scratch.run('Transpose', { x: flat }, { perm: [1, 0] }) : flat;
      };
      const left = matrix(a, a0, a1, transposeA);
      const right = matrix(b, b0, b1, transposeB);
      let total: TensorInfo | undefined;
      for (let start = 0; start < shared; start += MATMUL_BLOCK) {
        const width = Math.min(MATMUL_BLOCK, shared - start);
        const part = scratch.run(
          'BatchMatMul',
          {
            a: scratch.run('Slice', { x: left }, { begin: [0, start], size: [rows, width] }),
            b: scratch.run('Slice', { x: right }, { begin: [start, 0], size: [width, columns] }),
          },
          { transposeA: false, transposeB: false },
        );
        total = total ? scratch.run('Add', { a: total, b: part }) : part;
      }
      const shape = a.shape.length === 3 ? [1, rows, columns] : [rows, columns];
      return scratch.run('Reshape', { x: total as TensorInfo }, { shape });
    });
  };
}

const TILED_BROADCAST_KERNELS = ['Sub', 'RealDiv', 'Add', 'Multiply'];

let registered = false;

/**
 * Register the kernels above for the wasm backend (idempotent). Call after the wasm backend is
 * registered; the original Conv2DBackpropInput is kept as a fallback for paddings the rewrite cannot express.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  const originalInput = tf.getKernel('Conv2DBackpropInput', BACKEND);
  if (!originalInput) throw new Error('the wasm backend is not registered (no Conv2DBackpropInput kernel)');
  if (!tf.getKernel('Conv2DBackpropFilter', BACKEND)) {
    tf.registerKernel({
      kernelName: 'Conv2DBackpropFilter',
      backendName: BACKEND,
      kernelFunc: conv2DBackpropFilter,
    });
  }
  if (!tf.getKernel('UnsortedSegmentSum', BACKEND)) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: BACKEND,
      kernelFunc: unsortedSegmentSum,
    });
  }
  for (const name of TILED_BROADCAST_KERNELS) {
    const original = tf.getKernel(name, BACKEND);
    if (!original) continue;
    tf.unregisterKernel(name, BACKEND);
    tf.registerKernel({
      kernelName: name,
      backendName: BACKEND,
      kernelFunc: makeTiledBroadcast(original.kernelFunc),
      setupFunc: original.setupFunc,
    });
  }
  tf.unregisterKernel('Conv2DBackpropInput', BACKEND);
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: BACKEND,
    kernelFunc: makeConv2DBackpropInput(originalInput.kernelFunc),
    // The original kernel binds its wasm function in setup; keep that for backends initialised later.
    setupFunc: originalInput.setupFunc,
  });
  const originalMatMul = tf.getKernel('BatchMatMul', BACKEND);
  if (originalMatMul) {
    tf.unregisterKernel('BatchMatMul', BACKEND);
    tf.registerKernel({ ...originalMatMul, kernelFunc: makeBlockedMatMul(originalMatMul.kernelFunc) });
  }
  registerWasmHeapKernels();
  registered = true;
}
