/**
 * Real catalogue photos (../shared/data/shop-photos, kept outside the repository): the catalogue loads with its fixed
 * test triplets, photos are padded (not squashed) to squares, and the colour channels see the labelled colours.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { ImageCache, loadCatalogue, splitProducts, type Catalogue } from '../src/catalogue/index.ts';
import { colourBinMap, histogramOf } from '../src/model/colour.ts';
import { selectBackend } from '../src/model/index.ts';
import { quiet } from './fixtures/model/synthetic.ts';

const DATA = join(import.meta.dirname, '..', '..', 'shared', 'data', 'shop-photos');
const absent = existsSync(join(DATA, 'products.jsonl'))
  ? false
  : `real photos not found at ${DATA} (the shared data folder beside the checkout); skipped`;

// Slow: loads the whole real-photo catalogue (thousands of products and their test triplets).
describe('catalogue: real shop photos', { skip: absent }, () => {
  let catalogue: Catalogue;
  before(async () => {
    process.env.DRESSMATCH_PIXEL_CACHE = 'off';
    assert.equal(await selectBackend('wasm', quiet), 'wasm');
    catalogue = await loadCatalogue(DATA);
  });

  it('has four conditions, a test split and 1,000 fixed test triplets per condition inside it', () => {
    assert.deepEqual(catalogue.conditions, ['type', 'colour', 'usage', 'gender']);
    const test = new Set(splitProducts(catalogue, 'test'));
    const triplets = catalogue.triplets?.test ?? [];
    assert.equal(triplets.length, 4000);
    assert.ok(triplets.every((t) => test.has(t.anchor) && test.has(t.far) && test.has(t.close)));
  });

  it('pads a 60×80 photo with its background instead of squashing it', async () => {
    const one = { ...catalogue, products: catalogue.products.slice(0, 1) };
    const images = await ImageCache.load(one, 64);
    const pixels = images.batch([0]);
    // The left and right columns are padding: the white studio background.
    for (const x of [0, 63]) {
      for (let y = 0; y < 64; y += 8) assert.ok(pixels[(y * 64 + x) * 3] > 0.9, `pixel ${x},${y}`);
    }
  });

  it('colour channels: red-labelled products hold more red than blue-labelled ones, and the reverse', async () => {
    const pick = (colour: string) =>
      catalogue.products.flatMap((p, i) => (p.attributes.colour?.[0] === colour ? [i] : [])).slice(0, 40);
    // Decode only the 80 photos compared (the whole catalogue would take most of this file's time).
    const [redPhotos, bluePhotos] = [pick('red'), pick('blue')];
    const compared = [...redPhotos, ...bluePhotos].map((i) => catalogue.products[i]);
    const images = await ImageCache.load({ ...catalogue, products: compared }, 32);
    const reds = redPhotos.map((_, i) => i);
    const blues = bluePhotos.map((_, i) => redPhotos.length + i);
    const mean = (products: number[], bin: number) =>
      tf.tidy(() => {
        const batch = tf.tensor4d(images.batch(products), [products.length, 32, 32, 3]);
        return tf.mean(tf.slice(histogramOf(colourBinMap(batch, 4)), [0, bin], [-1, 1])).dataSync()[0];
      });
    const [redBins, blueBins] = [
      [48, 52, 32],
      [3, 7, 2],
    ];
    const redMass = (products: number[]) => redBins.reduce((s, b) => s + mean(products, b), 0);
    const blueMass = (products: number[]) => blueBins.reduce((s, b) => s + mean(products, b), 0);
    assert.ok(redMass(reds) > 2 * redMass(blues), `red mass ${redMass(reds)} vs ${redMass(blues)}`);
    assert.ok(blueMass(blues) > 2 * blueMass(reds), `blue mass ${blueMass(blues)} vs ${blueMass(reds)}`);
  });
});
