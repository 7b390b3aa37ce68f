/**
 * Upstream ResNet-18 backbone, batch norm and PyTorch weights in and out: batch-norm gradients against autodiff and
 * the cpu backend, running statistics by hand, and the whole network against an independent NCHW reference
 * (test/fixtures/model/torch-reference.ts) so that a transposed or misassigned tensor fails.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  createModel,
  createModelFromTorch,
  defaultModelConfig,
  parseSafetensors,
  selectBackend,
  serializeSafetensors,
  toTorchTensors,
  torchvisionMapping,
  upstreamCsnMapping,
  type ModelConfig,
} from '../src/model/index.ts';
import { addBatchNorm, applyBatchNorm } from '../src/model/batchnorm.ts';
import { ParamStore } from '../src/model/params.ts';
import { Rng } from '../src/util/rng.ts';
import {
  makeTorchvisionState,
  referenceEmbedding,
  type TorchTensor,
} from './fixtures/model/torch-reference.ts';
import { quiet, syntheticBatch, lossValue, train } from './fixtures/model/synthetic.ts';

function randomValues(count: number, seed: number, from = 0, to = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: count }, () => rng.range(from, to));
}

function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, 'same number of values');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

const SHAPE: [number, number, number, number] = [3, 4, 5, 6];

/** Loss, input gradient and γ/β gradients of Σ w·BN(x) with our op (training mode). */
function ourBatchNormGradients(seedOffset = 0): Float32Array[] {
  const params = new ParamStore(`bn-test-${seedOffset}`, 1);
  const bn = addBatchNorm(params, 'bn', SHAPE[3]);
  bn.gamma.assign(tf.tensor1d(randomValues(SHAPE[3], 3, 0.5, 1.5)));
  bn.beta.assign(tf.tensor1d(randomValues(SHAPE[3], 4, -1, 1)));
  const x = tf.tensor4d(randomValues(3 * 4 * 5 * 6, 1, -2, 3), SHAPE);
  const w = tf.tensor4d(randomValues(3 * 4 * 5 * 6, 2, -1, 1), SHAPE);
  const f = (input: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => {
    const saved = [bn.gamma, bn.beta];
    void saved;
    const local = { ...bn, gamma: gamma as tf.Variable, beta: beta as tf.Variable };
    return tf.sum(tf.mul(applyBatchNorm(input as tf.Tensor4D, local, true), w));
  };
  const grads = tf.grads(f)([x, bn.gamma, bn.beta]);
  const value = f(x, bn.gamma, bn.beta);
  const out = [value, ...grads].map((t) => Float32Array.from(t.dataSync()));
  params.dispose();
  return out;
}

/** The same by autodiff of the textbook formula (tf.moments), as a reference. */
function autodiffBatchNormGradients(): Float32Array[] {
  const gamma = tf.tensor1d(randomValues(SHAPE[3], 3, 0.5, 1.5));
  const beta = tf.tensor1d(randomValues(SHAPE[3], 4, -1, 1));
  const x = tf.tensor4d(randomValues(3 * 4 * 5 * 6, 1, -2, 3), SHAPE);
  const w = tf.tensor4d(randomValues(3 * 4 * 5 * 6, 2, -1, 1), SHAPE);
  const f = (input: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(input, [0, 1, 2]);
    const y = tf.add(tf.mul(tf.div(tf.sub(input, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b);
    return tf.sum(tf.mul(y, w));
  };
  const grads = tf.grads(f)([x, gamma, beta]);
  return [f(x, gamma, beta), ...grads].map((t) => Float32Array.from(t.dataSync()));
}

describe('model: batch norm', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });
  after(async () => {
    await tf.setBackend('wasm');
  });

  it('training-mode gradients (x, γ, β) match autodiff of the formula, on wasm and on the cpu backend', async () => {
    await tf.setBackend('cpu');
    const reference = tf.tidy(() => autodiffBatchNormGradients());
    const cpu = ourBatchNormGradients(1);
    await tf.setBackend('wasm');
    const wasm = ourBatchNormGradients(2);
    const names = ['value', 'dx', 'dγ', 'dβ'];
    reference.forEach((expected, i) => {
      assert.ok(maxRelativeError(cpu[i], expected) < 1e-4, `cpu ${names[i]} matches autodiff`);
      assert.ok(maxRelativeError(wasm[i], cpu[i]) < 1e-4, `wasm ${names[i]} matches cpu`);
    });
    assert.ok(Math.abs(reference[1][0]) > 1e-3, 'the input gradient is not trivially zero');
  });

  it('moves the running statistics as PyTorch (momentum 0.1, unbiased variance) and uses them in eval mode', () => {
    const params = new ParamStore('bn-running', 1);
    const bn = addBatchNorm(params, 'bn', 2);
    // Channel 0 holds 1, 2, 3, 6 and channel 1 holds 0, 0, 4, 4 (n = 4 positions).
    const x = tf.tensor4d([1, 0, 2, 0, 3, 4, 6, 4], [1, 2, 2, 2]);
    tf.tidy(() => applyBatchNorm(x, bn, true));
    // mean 3 and 2; unbiased variance 14/3 and 16/3.
    const mean = Array.from(bn.runningMean.dataSync());
    const variance = Array.from(bn.runningVar.dataSync());
    [0.3, 0.2].forEach((m, c) => assert.ok(Math.abs(mean[c] - m) < 1e-6, `running mean ${c}: ${mean[c]}`));
    [0.9 + 1.4 / 3, 0.9 + 1.6 / 3].forEach((v, c) =>
      assert.ok(Math.abs(variance[c] - v) < 1e-6, `running var ${c}: ${variance[c]}`),
    );
    bn.gamma.assign(tf.tensor1d([2, 1]));
    bn.beta.assign(tf.tensor1d([0.5, -1]));
    const y = tf.tidy(() => applyBatchNorm(x, bn, false)).dataSync();
    const expected = [1, 0, 2, 0, 3, 4, 6, 4].map((value, i) => {
      const c = i % 2;
      return ((value - mean[c]) / Math.sqrt(variance[c] + 1e-5)) * [2, 1][c] + [0.5, -1][c];
    });
    assert.ok(maxRelativeError(y, expected) < 1e-5, 'eval mode normalises with the running statistics');
    params.dispose();
    x.dispose();
  });
});

const WIDTH = 4;
const SIZE = 32;
const EMBED = 6;
const CONDITIONS = ['color', 'shape', 'size'];

function resnetConfig(overrides: Partial<ModelConfig> = {}): ModelConfig {
  return defaultModelConfig(CONDITIONS, {
    backbone: 'resnet18',
    imageSize: SIZE,
    width: WIDTH,
    embedDim: EMBED,
    seed: 3,
    ...overrides,
  });
}

/** A CSN state dict as the official code saves it: prefixed network, fc_embed and learned masks. */
function upstreamCsnState(): TorchTensor[] {
  const prefix = 'embeddingnet.embeddingnet.';
  const tensors = makeTorchvisionState(WIDTH, { embedDim: EMBED, prefix }).filter(
    (t) => !/^embeddingnet\.embeddingnet\.(layer4|fc)\./.test(t.name),
  );
  const rng = new Rng(11);
  tensors.push({
    name: 'embeddingnet.masks.weight',
    shape: [CONDITIONS.length, EMBED],
    data: Float32Array.from({ length: CONDITIONS.length * EMBED }, () => rng.range(-0.5, 1.5)),
  });
  return tensors;
}

function ourVectors(model: ReturnType<typeof createModel>, pixels: Float32Array, n: number): Float32Array {
  return tf
    .tidy(() => model.conditionVectors(tf.tensor4d(pixels, [n, SIZE, SIZE, 3])))
    .dataSync() as Float32Array;
}

/** Reference condition vectors: embedding × ReLU(mask) per condition, flattened [n, C, D]. */
function referenceVectors(tensors: TorchTensor[], pixels: Float32Array, n: number): number[] {
  const embedding = referenceEmbedding(tensors, pixels, n, SIZE, 'embeddingnet.embeddingnet.');
  const masks = tensors.find((t) => t.name === 'embeddingnet.masks.weight')!.data;
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    for (let c = 0; c < CONDITIONS.length; c++)
      for (let d = 0; d < EMBED; d++) out.push(embedding[i][d] * Math.max(0, masks[c * EMBED + d]));
  return out;
}

describe('model: upstream resnet18 and PyTorch weights', () => {
  before(async () => {
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
  });

  it('has torchvision names for every weight, 256 channels at layer3 and a 7×7 map at 112 px', () => {
    const model = createModel(defaultModelConfig(CONDITIONS, { backbone: 'resnet18' }));
    assert.equal(model.config.imageSize, 112, 'resnet18 defaults to 112 px');
    assert.equal(model.config.preprocess, 'resize-crop', 'resnet18 defaults to upstream preprocessing');
    const tensors = toTorchTensors(model.snapshot());
    const names = tensors.map((t) => t.name.replace('embeddingnet.embeddingnet.', ''));
    const expected = makeTorchvisionState(64, { embedDim: 64 })
      .map((t) => t.name)
      .filter((n) => !/^(layer4|fc)\./.test(n) && !n.endsWith('num_batches_tracked'));
    assert.deepEqual(
      [...names].filter((n) => n !== 'embeddingnet.masks.weight').sort(),
      [...expected].sort(),
    );
    const shapes = new Map(tensors.map((t) => [t.name, t.shape.join('x')]));
    assert.equal(shapes.get('embeddingnet.embeddingnet.conv1.weight'), '64x3x7x7', 'conv1 in OIHW');
    assert.equal(shapes.get('embeddingnet.embeddingnet.layer3.0.downsample.0.weight'), '256x128x1x1');
    assert.equal(shapes.get('embeddingnet.embeddingnet.fc_embed.weight'), '64x256', 'fc_embed is [out, in]');
    const features = tf.tidy(() => model.embed(tf.zeros([1, 112, 112, 3])).shape);
    assert.deepEqual(features, [1, 64]);
    model.dispose();
  });

  it('an imported upstream CSN computes what the NCHW reference computes (layouts, names, masks, paddings)', () => {
    const tensors = upstreamCsnState();
    const { model, report } = createModelFromTorch(resnetConfig(), tensors, upstreamCsnMapping);
    assert.deepEqual(report.missing, [], 'nothing missing');
    assert.deepEqual(report.unexpected, [], 'nothing unexpected');
    assert.equal(report.loaded.length, tensors.filter((t) => !t.name.endsWith('num_batches_tracked')).length);
    const n = 2;
    const pixels = randomValues(n * SIZE * SIZE * 3, 21);
    const ours = ourVectors(model, pixels, n);
    const reference = referenceVectors(tensors, pixels, n);
    assert.ok(
      maxRelativeError(ours, reference) < 1e-4,
      `matches the reference: ${maxRelativeError(ours, reference)}`,
    );
    model.dispose();
  });

  it('the reference notices a transposed kernel or swapped batch norms (the fixture is asymmetric)', () => {
    const tensors = upstreamCsnState();
    const n = 1;
    const pixels = randomValues(n * SIZE * SIZE * 3, 22);
    const reference = referenceVectors(tensors, pixels, n);
    const transposed = tensors.map((t) => {
      if (t.name !== 'embeddingnet.embeddingnet.conv1.weight') return t;
      const [o, i, k] = t.shape;
      const data = new Float32Array(t.data.length);
      for (let a = 0; a < o * i; a++)
        for (let y = 0; y < k; y++)
          for (let x = 0; x < k; x++) data[a * k * k + x * k + y] = t.data[a * k * k + y * k + x];
      return { ...t, data };
    });
    assert.ok(
      maxRelativeError(referenceVectors(transposed, pixels, n), reference) > 1e-2,
      'kh↔kw changes the output',
    );
    const swapped = tensors.map((t) => {
      const twin = t.name.includes('layer1.0.bn1.')
        ? t.name.replace('bn1', 'bn2')
        : t.name.includes('layer1.0.bn2.')
          ? t.name.replace('bn2', 'bn1')
          : undefined;
      return twin ? { ...t, data: tensors.find((u) => u.name === twin)!.data } : t;
    });
    assert.ok(
      maxRelativeError(referenceVectors(swapped, pixels, n), reference) > 1e-2,
      'bn1↔bn2 changes the output',
    );
  });

  it('torchvision weights warm-start the backbone: layer4/fc ignored, counts reported, embedding untouched', () => {
    const tensors = makeTorchvisionState(WIDTH);
    tensors.push({ name: 'extra.weight', shape: [1], data: new Float32Array(1) });
    const fresh = createModel(resnetConfig());
    const { model, report } = createModelFromTorch(resnetConfig(), tensors, torchvisionMapping);
    assert.deepEqual(report.unexpected, ['extra.weight']);
    assert.deepEqual(report.missing, []);
    assert.ok(
      report.ignored.includes('layer4.1.bn2.running_var') && report.ignored.includes('fc.weight'),
      'layer4 and fc ignored',
    );
    assert.ok(report.ignored.includes('bn1.num_batches_tracked'), 'counters ignored');
    assert.equal(report.loaded.length, 1 + 4 + 3 * (2 * 10) + 2 * 5, 'conv1, bn1, 6 blocks, 2 shortcuts');
    const exported = toTorchTensors(model.snapshot());
    const embedding = fresh.snapshot().weights.find((w) => w.name === 'embedding/kernel')!;
    const ourEmbedding = model.snapshot().weights.find((w) => w.name === 'embedding/kernel')!;
    assert.deepEqual(ourEmbedding.data, embedding.data, 'fc_embed keeps its seeded values');
    // The backbone now computes what the reference computes with these tensors and our own fc_embed.
    const withHead = [
      ...tensors,
      ...exported
        .filter((t) => /fc_embed|masks/.test(t.name))
        .map((t) => ({ ...t, name: t.name.replace('embeddingnet.embeddingnet.', '') })),
    ];
    const pixels = randomValues(SIZE * SIZE * 3, 23);
    const reference = referenceEmbedding(withHead, pixels, 1, SIZE).flat();
    const ours = tf.tidy(() => model.embed(tf.tensor4d(pixels, [1, SIZE, SIZE, 3]))).dataSync();
    assert.ok(maxRelativeError(ours, reference) < 1e-4, 'backbone loaded in the right places');
    model.dispose();
    fresh.dispose();
  });

  it('refuses a shape mismatch, naming the tensor', () => {
    const tensors = makeTorchvisionState(WIDTH * 2);
    assert.throws(
      () => createModelFromTorch(resnetConfig(), tensors, torchvisionMapping),
      /tensor conv1\.weight has shape \[8, 3, 7, 7\], the model expects \[4, 3, 7, 7\]/,
    );
  });

  it('export → safetensors → import gives the same model; kernels are OIHW in the file', () => {
    const model = createModel(resnetConfig({ seed: 9 }));
    train(model, resnetBatch(), 2);
    const bytes = serializeSafetensors(toTorchTensors(model.snapshot()));
    const file = parseSafetensors(bytes);
    const kernel = model.snapshot().weights.find((w) => w.name === 'backbone/layer2.0.conv1/kernel')!;
    const stored = file.tensors.find((t) => t.name === 'embeddingnet.embeddingnet.layer2.0.conv1.weight')!;
    const [kh, kw, ci, co] = kernel.shape;
    assert.deepEqual(stored.shape, [co, ci, kh, kw]);
    // Element (y=0, x=2, i=1, o=3) in HWIO sits at (o=3, i=1, y=0, x=2) in OIHW.
    assert.equal(
      stored.data[((3 * ci + 1) * kh + 0) * kw + 2],
      kernel.data[((0 * kw + 2) * ci + 1) * co + 3],
    );
    const { model: back, report } = createModelFromTorch(model.config, file.tensors, upstreamCsnMapping);
    assert.deepEqual(report.missing, []);
    const pixels = randomValues(2 * SIZE * SIZE * 3, 24);
    assert.deepEqual(
      ourVectors(back, pixels, 2),
      ourVectors(model, pixels, 2),
      'same vectors after the round trip',
    );
    model.dispose();
    back.dispose();
  });

  it('trains with batch norm: loss falls, running statistics move, eval mode is deterministic', () => {
    const model = createModel(resnetConfig({ seed: 4 }));
    const batch = resnetBatch();
    const before = lossValue(model, batch).total;
    const runningBefore = model.snapshot().weights.find((w) => w.name === 'backbone/bn1/running_mean')!.data;
    train(model, batch, 8);
    const after = lossValue(model, batch).total;
    const runningAfter = model.snapshot().weights.find((w) => w.name === 'backbone/bn1/running_mean')!.data;
    assert.ok(after < before, `loss falls: ${before} → ${after}`);
    assert.notDeepEqual(runningAfter, runningBefore, 'running mean moved');
    assert.equal(lossValue(model, batch).total, after, 'eval mode does not move the statistics');
    model.dispose();
  });
});

/** The synthetic triplets with images at the resnet test size (they are drawn at 32 px). */
function resnetBatch() {
  return syntheticBatch();
}

describe('model: safetensors', () => {
  it('reads F16, BF16, F64 and I64 tensors written byte by byte, with metadata', () => {
    const header = JSON.stringify({
      __metadata__: { format: 'pt' },
      half: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      brain: { dtype: 'BF16', shape: [1], data_offsets: [4, 6] },
      double: { dtype: 'F64', shape: [1], data_offsets: [6, 14] },
      count: { dtype: 'I64', shape: [], data_offsets: [14, 22] },
    });
    const head = new TextEncoder().encode(header);
    const bytes = new Uint8Array(8 + head.length + 22);
    const view = new DataView(bytes.buffer);
    view.setBigUint64(0, BigInt(head.length), true);
    bytes.set(head, 8);
    const base = 8 + head.length;
    view.setUint16(base, 0x3c00, true); // 1.0
    view.setUint16(base + 2, 0xc100, true); // −2.5
    view.setUint16(base + 4, 0x4049, true); // bf16 3.140625
    view.setFloat64(base + 6, -0.125, true);
    view.setBigInt64(base + 14, 12345n, true);
    const file = parseSafetensors(bytes);
    assert.deepEqual(file.metadata, { format: 'pt' });
    const values = Object.fromEntries(file.tensors.map((t) => [t.name, Array.from(t.data)]));
    assert.deepEqual(values, { half: [1, -2.5], brain: [3.140625], double: [-0.125], count: [12345] });
    assert.deepEqual(file.tensors.find((t) => t.name === 'count')!.shape, []);
  });

  it('writes an 8-byte-aligned header and refuses truncated data, naming the tensor', () => {
    const bytes = serializeSafetensors([{ name: 'w', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }]);
    const length = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + length) % 8, 0, 'data starts 8-byte aligned');
    assert.deepEqual(Array.from(parseSafetensors(bytes).tensors[0].data), [1, 2, 3, 4]);
    assert.throws(() => parseSafetensors(bytes.subarray(0, bytes.length - 4)), /tensor w: data_offsets/);
    assert.throws(() => parseSafetensors(new Uint8Array(4)), /not a safetensors file/);
  });
});
