/**
 * Weights in and out through the real commands' code on real files: `import-model` (an upstream CSN state dict
 * written as safetensors → a run folder whose model computes what the independent NCHW reference computes),
 * `export` (back to the same names, layouts and values), `train --init-weights` (torchvision names) and
 * `--select-on map` (ASEN's model_best is its best validation MAP epoch).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import pino from 'pino';
import { decodeImage, generateDemoCatalogue, loadCatalogue } from '../src/catalogue/index.ts';
import { readCheckpoint } from '../src/checkpoint/index.ts';
import { runExport, runImportModel, type ImportModelFlags } from '../src/cli/weights-run.ts';
import { parseSafetensors, restoreModel, selectBackend, serializeSafetensors } from '../src/model/index.ts';
import { readMetrics } from '../src/train/metrics.ts';
import { TRAIN_DEFAULTS, type TrainOptions } from '../src/train/options.ts';
import { RUN_FILES, train } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { quiet } from './fixtures/model/synthetic.ts';
import {
  makeTorchvisionState,
  referenceEmbedding,
  type TorchTensor,
} from './fixtures/model/torch-reference.ts';
import { TRIPLETS_ONLY } from './fixtures/train/settings.ts';

const WIDTH = 4;
const EMBED = 6;
const SIZE = 32;
const PREFIX = 'embeddingnet.embeddingnet.';

let root: string;
let dataDir: string;
let conditions: string[];

before(async () => {
  assert.equal(await selectBackend('wasm', quiet), 'wasm');
  root = await mkdtemp(join(tmpdir(), 'dressmatch-weights-'));
  dataDir = join(root, 'catalogue');
  await generateDemoCatalogue(dataDir, { count: 60, imageSize: 40, seed: 5 });
  conditions = (await loadCatalogue(dataDir)).conditions;
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** The official code's state dict: prefixed ResNet to layer3, fc_embed, and masks with some negative entries. */
function upstreamState(rows = conditions.length): TorchTensor[] {
  const tensors = makeTorchvisionState(WIDTH, { embedDim: EMBED, prefix: PREFIX, seed: 13 }).filter(
    (t) => !/\.(layer4|fc)\./.test(`.${t.name.slice(PREFIX.length)}`),
  );
  const rng = new Rng(17);
  tensors.push({
    name: 'embeddingnet.masks.weight',
    shape: [rows, EMBED],
    data: Float32Array.from({ length: rows * EMBED }, () => rng.range(-0.6, 1.4)),
  });
  return tensors;
}

async function writeState(name: string, tensors: TorchTensor[]): Promise<string> {
  const path = join(root, name);
  await writeFile(path, serializeSafetensors(tensors));
  return path;
}

function importFlags(
  weights: string,
  out: string,
  overrides: Partial<ImportModelFlags> = {},
): ImportModelFlags {
  return {
    weights,
    catalogue: dataDir,
    out,
    masks: 'learned',
    imageSize: SIZE,
    backend: 'wasm',
    ...overrides,
  };
}

function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

/** Our condition vectors for the first catalogue image against the reference's embedding × mask. */
async function compareWithReference(runDir: string, tensors: TorchTensor[], relu: boolean): Promise<number> {
  const checkpoint = await readCheckpoint(join(runDir, 'model_best.dmck'));
  const catalogue = await loadCatalogue(dataDir);
  const pixels = await decodeImage(join(dataDir, catalogue.products[0].image), SIZE, 'resize-crop');
  const model = restoreModel(checkpoint.model);
  const ours = tf.tidy(() => model.conditionVectors(tf.tensor4d(pixels, [1, SIZE, SIZE, 3])).dataSync());
  model.dispose();
  const embedding = referenceEmbedding(tensors, pixels, 1, SIZE, PREFIX)[0];
  const masks = tensors.find((t) => t.name === 'embeddingnet.masks.weight')!.data;
  const expected = conditions.flatMap((_, c) =>
    embedding.map((e, d) => e * (relu ? Math.max(0, masks[c * EMBED + d]) : masks[c * EMBED + d])),
  );
  return maxRelativeError(ours, expected);
}

describe('import-model and export', () => {
  it('imports an upstream CSN: the run folder model computes what the PyTorch-convention reference computes', async () => {
    const tensors = upstreamState();
    const out = join(root, 'imported');
    await runImportModel(importFlags(await writeState('csn.safetensors', tensors), out));
    const checkpoint = await readCheckpoint(join(out, 'model_best.dmck'));
    const config = checkpoint.model.config;
    assert.deepEqual(
      [config.kind, config.backbone, config.width, config.embedDim, config.maskMode, config.preprocess],
      ['csn', 'resnet18', WIDTH, EMBED, 'learned', 'resize-crop'],
    );
    assert.deepEqual(config.conditions, conditions, "conditions in conditions.txt's order");
    assert.equal(
      (checkpoint.args as { dataDir?: string }).dataDir,
      dataDir,
      'eval and index find the catalogue',
    );
    const error = await compareWithReference(out, tensors, true);
    assert.ok(error < 1e-4, `learned masks pass through ReLU as upstream: error ${error}`);
  });

  it('--masks fixed uses the stored masks as they are (no ReLU)', async () => {
    const tensors = upstreamState();
    const out = join(root, 'imported-fixed');
    await runImportModel(
      importFlags(await writeState('fixed.safetensors', tensors), out, { masks: 'fixed' }),
    );
    const error = await compareWithReference(out, tensors, false);
    assert.ok(error < 1e-4, `fixed masks are used raw: error ${error}`);
    assert.ok(
      (await compareWithReference(out, tensors, true)) > 1e-3,
      'the fixture has negative mask entries',
    );
  });

  it('refuses a mask count that does not match conditions.txt, and missing tensors', async () => {
    const wrongRows = await writeState('rows.safetensors', upstreamState(conditions.length + 1));
    await assert.rejects(
      runImportModel(importFlags(wrongRows, join(root, 'x'))),
      new RegExp(
        `embeddingnet\\.masks\\.weight has ${conditions.length + 1} rows but .*conditions\\.txt lists ${conditions.length}`,
      ),
    );
    const partial = upstreamState().filter((t) => t.name !== `${PREFIX}layer2.1.bn2.running_var`);
    await assert.rejects(
      runImportModel(importFlags(await writeState('partial.safetensors', partial), join(root, 'y'))),
      /missing \[embeddingnet\.embeddingnet\.layer2\.1\.bn2\.running_var\]/,
    );
  });

  it('export writes the same upstream names, PyTorch layouts and values back', async () => {
    const tensors = upstreamState();
    const out = join(root, 'roundtrip');
    await runImportModel(importFlags(await writeState('round.safetensors', tensors), out));
    const file = join(root, 'exported.safetensors');
    await runExport({ model: join(out, 'model_best.dmck'), out: file });
    const exported = new Map(parseSafetensors(await readFile(file)).tensors.map((t) => [t.name, t]));
    const original = tensors.filter((t) => !t.name.endsWith('num_batches_tracked'));
    assert.equal(exported.size, original.length, 'one tensor per state-dict entry (counters left out)');
    for (const tensor of original) {
      const back = exported.get(tensor.name);
      assert.ok(back, `exported ${tensor.name}`);
      assert.deepEqual(back.shape, tensor.shape, `${tensor.name} shape`);
      assert.deepEqual(back.data, tensor.data, `${tensor.name} values`);
    }
  });
});

function trainOptions(name: string, overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    ...TRAIN_DEFAULTS,
    ...TRIPLETS_ONLY,
    dataDir,
    logDir: join(root, 'runs'),
    name,
    imageSize: SIZE,
    embedDim: EMBED,
    batchSize: 16,
    poolSize: 16,
    trainTriplets: 32,
    valTriplets: 40,
    testTriplets: 20,
    mapQueries: 10,
    epochs: 1,
    logInterval: 1,
    backend: 'wasm',
    progress: false,
    ...overrides,
  };
}

/** A pino logger whose lines are collected. */
function capturingLogger(): { logger: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

describe('train --init-weights and --select-on', () => {
  it('starts the backbone from torchvision-named weights and reports loaded, missing, unexpected and ignored', async () => {
    const tensors = makeTorchvisionState(WIDTH, { seed: 23 });
    tensors.push({ name: 'stray.weight', shape: [2], data: new Float32Array(2) });
    const file = await writeState('torchvision.safetensors', tensors);
    const { logger, lines } = capturingLogger();
    const result = await train(
      trainOptions('init', { backbone: 'resnet18', width: WIDTH, initWeights: file, lr: 1e-9 }),
      { out: null, logger },
    );
    const note = lines.find((line) => line.includes('--init-weights: loaded'));
    assert.ok(note, 'the load is reported');
    assert.match(
      note,
      /loaded 75 tensors, missing 0, unexpected 1 \[stray\.weight\]; ignored 27 layer4\/fc tensors/,
    );
    const checkpoint = await readCheckpoint(join(result.runDir, RUN_FILES.latest));
    const kernel = checkpoint.model.weights.find((w) => w.name === 'backbone/layer1.1.conv2/kernel')!;
    const source = tensors.find((t) => t.name === 'layer1.1.conv2.weight')!;
    // HWIO (y=2, x=0, i=1, o=3) is OIHW (o=3, i=1, y=2, x=0); lr 1e-9 leaves the loaded values in place.
    const c = WIDTH;
    const hwio = kernel.data[((2 * 3 + 0) * c + 1) * c + 3];
    const oihw = source.data[((3 * c + 1) * 3 + 2) * 3 + 0];
    assert.ok(Math.abs(hwio - oihw) < 1e-6, `loaded in place: ${hwio} vs ${oihw}`);
  });

  it('refuses init weights whose shapes do not fit, naming the tensor', async () => {
    const file = await writeState('wide.safetensors', makeTorchvisionState(WIDTH * 2, { seed: 1 }));
    await assert.rejects(
      train(trainOptions('init-wide', { backbone: 'resnet18', width: WIDTH, initWeights: file }), {
        out: null,
      }),
      /tensor conv1\.weight has shape \[8, 3, 7, 7\], the model expects \[4, 3, 7, 7\]/,
    );
  });

  it('ASEN keeps the epoch with the best validation MAP by default (as upstream)', async () => {
    const result = await train(trainOptions('asen-map', { model: 'asen', epochs: 3, lr: 1e-2 }), {
      out: null,
    });
    const epochs = readMetrics(join(result.runDir, RUN_FILES.metrics)).filter((r) => r.type === 'epoch');
    const maps = epochs.map((r) => (r.type === 'epoch' ? r.val?.map : undefined));
    assert.ok(
      maps.every((m) => typeof m === 'number'),
      `validation MAP logged every epoch: ${String(maps)}`,
    );
    const best = await readCheckpoint(join(result.runDir, RUN_FILES.best));
    const bestEpoch = best.training?.bestEpoch ?? 0;
    const values = maps as number[];
    assert.equal(
      values[bestEpoch - 1],
      Math.max(...values),
      `model_best is the best-MAP epoch (${String(values)})`,
    );
    assert.equal(best.training?.bestValMap, Math.max(...values));
    assert.equal(best.model.config.attentionTanh, true, 'trained ASEN uses tanh attention logits by default');
  });
});
