/**
 * The index job's model source (issue 13): batches decoded in flight into reused buffers and pixels read back from
 * the catalogue's pixel store give exactly the vectors of a plain decode, on rendered demo images and the wasm
 * backend.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateDemoCatalogue, ImageCache, PIXEL_DIR, type Catalogue } from '../src/catalogue/index.ts';
import { createModelSource, fingerprintProducts, type BundleSource } from '../src/index/index.ts';
import type { IndexedProduct } from '../src/index/types.ts';
import { createModel, defaultModelConfig, selectBackend, type SimilarityModel } from '../src/model/index.ts';
import { quiet } from './fixtures/model/synthetic.ts';

let root: string;
let catalogue: Catalogue;
let products: IndexedProduct[];
let model: SimilarityModel;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-model-source-'));
  catalogue = await generateDemoCatalogue(join(root, 'catalogue'), { count: 21, seed: 4 });
  products = await fingerprintProducts(catalogue);
  assert.equal(await selectBackend('wasm', quiet), 'wasm');
  model = createModel(
    defaultModelConfig(catalogue.conditions, { kind: 'csn', backbone: 'small', imageSize: 48, seed: 1 }),
  );
});

after(async () => {
  model.dispose();
  await rm(root, { recursive: true, force: true });
});

/** Every product, in batches of 8 (the last one shorter), prefetching as the bundle build does. */
async function embedAll(source: BundleSource): Promise<Float32Array> {
  const n = source.products.length;
  const out = new Float32Array(n * source.embedDim);
  const all = Array.from({ length: n }, (_, i) => i);
  try {
    for (let begin = 0; begin < n; begin += 8) {
      const end = Math.min(n, begin + 8);
      const pending = source.embed(all.slice(begin, end));
      if (end < n) source.prefetch?.(all.slice(end, end + 8));
      out.set((await pending).embeddings!, begin * source.embedDim);
    }
  } finally {
    await source.finish?.();
  }
  return out;
}

async function segmentCount(): Promise<number> {
  const names = await readdir(join(catalogue.root, PIXEL_DIR), { recursive: true }).catch(() => []);
  return names.filter((name) => name.endsWith('.seg')).length;
}

describe('index model source', () => {
  test('reads back the pixels training kept, with the same vectors as decoding', async () => {
    const source = (keepPixels: boolean, decodeConcurrency?: number) =>
      createModelSource({ model, modelId: 'm', catalogue, products, keepPixels, decodeConcurrency });
    // Decoded one image at a time, nothing kept: the reference.
    const plain = await embedAll(await source(false, 1));
    assert.equal(await segmentCount(), 0, 'keepPixels false writes nothing');
    assert.ok(
      plain.some((v) => v !== 0),
      'the reference vectors are not all zero',
    );
    // A whole batch in flight into reused buffers: same vectors, twice over (the second run reuses buffers).
    const batched = await source(false);
    assert.deepEqual(await embedAll(batched), plain);
    assert.deepEqual(await embedAll(batched), plain);

    // Training decodes the catalogue at the model's size and preprocessing and keeps the pixels.
    await ImageCache.load(catalogue, 48);
    assert.equal(await segmentCount(), 1, 'training kept its pixels');
    // Break every image file: the index job can now only have its pixels from the store.
    for (const product of catalogue.products)
      await writeFile(join(catalogue.root, product.image), 'no longer a picture');
    assert.deepEqual(await embedAll(await source(true)), plain);
    assert.equal(await segmentCount(), 1, 'an index run that decoded nothing writes no segment');
    // Without the store the broken files are noticed.
    await assert.rejects(embedAll(await source(false)), /cannot decode image|not a supported image/);
  });

  test('an index run keeps what it decoded for the next run', async () => {
    const fresh = await generateDemoCatalogue(join(root, 'fresh'), { count: 9, seed: 6 });
    const freshProducts = await fingerprintProducts(fresh);
    const make = () => createModelSource({ model, modelId: 'm', catalogue: fresh, products: freshProducts });
    const cold = await embedAll(await make());
    const names = await readdir(join(fresh.root, PIXEL_DIR), { recursive: true });
    assert.equal(names.filter((name) => name.endsWith('.seg')).length, 1, 'the cold run kept its pixels');
    await rm(join(fresh.root, 'images'), { recursive: true });
    assert.deepEqual(await embedAll(await make()), cold);
  });
});
