import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DEMO_ATTRIBUTES,
  DEMO_CONDITIONS,
  decodeImageBytes,
  generateDemoCatalogue,
  loadCatalogue,
  type Catalogue,
} from '../src/catalogue/index.ts';
import { tempDir } from './fixtures/catalogue/helpers.ts';
import { nearestColour } from './fixtures/catalogue/colours.ts';

const COUNT = 24;
const SIZE = 64;

describe('generateDemoCatalogue', () => {
  let catalogue: Catalogue;
  let dir: string;

  test('writes a loadable native catalogue with every attribute value represented', async () => {
    dir = join(await tempDir(), 'demo');
    const progress: number[] = [];
    catalogue = await generateDemoCatalogue(dir, {
      count: COUNT,
      seed: 11,
      imageSize: SIZE,
      onProgress: (done) => progress.push(done),
    });
    assert.equal(progress.at(-1), COUNT);
    const loaded = await loadCatalogue(dir);
    assert.deepEqual(loaded, catalogue);
    assert.deepEqual(loaded.conditions, ['color', 'sleeve', 'neckline', 'length', 'pattern', 'silhouette']);
    assert.equal(loaded.products.length, COUNT);
    for (const condition of DEMO_CONDITIONS) {
      const seen = new Set(loaded.products.map((p) => p.attributes[condition][0]));
      assert.deepEqual([...seen].sort(), [...DEMO_ATTRIBUTES[condition]].sort(), `values of ${condition}`);
      for (const product of loaded.products) assert.equal(product.attributes[condition].length, 1);
    }
    const splits = loaded.products.map((p) => p.split);
    assert.deepEqual(
      ['train', 'val', 'test'].map((s) => splits.filter((x) => x === s).length),
      [17, 2, 5],
    );
    const first = loaded.products[0];
    assert.match(first.title, new RegExp(`^${first.attributes.color[0]} `, 'i'));
    assert.match(first.title, / dress, /);
    const pixels = await decodeImageBytes(join(dir, first.image), SIZE);
    assert.equal(pixels.length, SIZE * SIZE * 3);
    // Nothing is left behind next to the catalogue (the staging folder was renamed into place).
    assert.deepEqual(await readdir(join(dir, '..')), ['demo']);
  });

  test('solid dresses show their colour at the centre of the figure', async () => {
    const solid = catalogue.products.filter((p) => p.attributes.pattern[0] === 'solid');
    assert.ok(solid.length >= 4);
    for (const product of solid) {
      const pixels = await decodeImageBytes(join(dir, product.image), SIZE);
      const mean = [0, 0, 0];
      const cx = Math.round(SIZE * 0.5);
      const cy = Math.round(SIZE * 0.465);
      for (let y = cy - 1; y <= cy + 1; y++) {
        for (let x = cx - 1; x <= cx + 1; x++)
          for (let c = 0; c < 3; c++) mean[c] += pixels[(y * SIZE + x) * 3 + c] / 9;
      }
      const nearest = nearestColour(mean);
      assert.equal(nearest, product.attributes.color[0], `${product.id} mean ${mean.map(Math.round)}`);
    }
  });

  test('is deterministic for a seed, image bytes included, and differs for another seed', async () => {
    const again = join(await tempDir(), 'demo-again');
    await generateDemoCatalogue(again, { count: COUNT, seed: 11, imageSize: SIZE });
    assert.equal(
      await readFile(join(again, 'products.jsonl'), 'utf8'),
      await readFile(join(dir, 'products.jsonl'), 'utf8'),
    );
    for (const product of catalogue.products) {
      assert.deepEqual(
        await readFile(join(again, product.image)),
        await readFile(join(dir, product.image)),
        product.id,
      );
    }
    const other = join(await tempDir(), 'demo-other');
    const different = await generateDemoCatalogue(other, { count: COUNT, seed: 12, imageSize: SIZE });
    assert.notDeepEqual(
      different.products.map((p) => p.attributes),
      catalogue.products.map((p) => p.attributes),
    );
  });

  test('renders only the splits asked for, each product as in the full catalogue, image bytes included', async () => {
    const part = join(await tempDir(), 'demo-test-split');
    const subset = await generateDemoCatalogue(part, {
      count: COUNT,
      seed: 11,
      imageSize: SIZE,
      splits: ['test'],
    });
    const expected = catalogue.products.filter((product) => product.split === 'test');
    assert.equal(expected.length, 5);
    assert.deepEqual(subset.products, expected);
    assert.deepEqual((await loadCatalogue(part)).products, expected);
    for (const product of expected) {
      assert.deepEqual(
        await readFile(join(part, product.image)),
        await readFile(join(dir, product.image)),
        product.id,
      );
      const mask = join('masks', `${product.id}.png`);
      assert.deepEqual(await readFile(join(part, mask)), await readFile(join(dir, mask)), mask);
    }
    assert.deepEqual(
      (await readdir(join(part, 'images'))).length,
      expected.length,
      'no other image is rendered',
    );
  });

  test('refuses to overwrite a non-empty folder unless asked', async () => {
    const target = await tempDir();
    await writeFile(join(target, 'keep.txt'), 'precious');
    await assert.rejects(generateDemoCatalogue(target, { count: 2, imageSize: 32 }), /is not empty/);
    assert.equal(await readFile(join(target, 'keep.txt'), 'utf8'), 'precious');
    await generateDemoCatalogue(target, { count: 2, imageSize: 32, overwrite: true });
    assert.deepEqual((await readdir(target)).sort(), [
      'conditions.txt',
      'generator.json',
      'images',
      'masks',
      'products.jsonl',
    ]);
  });
});
