/** Part masks from the demo generator: the ground truth that bench/explain-faithfulness.ts scores heat maps against. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, test } from 'node:test';
import {
  conditionBits,
  decodeImageBytes,
  DEMO_CONDITIONS,
  DEMO_PARTS,
  generateDemoCatalogue,
  partMaskPath,
  readPartRegion,
  readPartsManifest,
  type Catalogue,
  type PartsManifest,
} from '../src/catalogue/index.ts';
import { tempDir } from './fixtures/catalogue/helpers.ts';
import { COLOUR_PROTOTYPES, nearestColour } from './fixtures/catalogue/colours.ts';

const SIZE = 64;
let dir: string;
let catalogue: Catalogue;
let manifest: PartsManifest;

before(async () => {
  dir = join(await tempDir(), 'demo');
  catalogue = await generateDemoCatalogue(dir, { count: 20, seed: 5, imageSize: SIZE });
  manifest = await readPartsManifest(dir);
});

/** Mean of `values` over the pixels where `region` is 1. */
function regionMean(values: ArrayLike<number>, region: Uint8Array, channels: number, c: number): number {
  let sum = 0;
  let count = 0;
  for (let p = 0; p < region.length; p++) {
    if (region[p]) {
      sum += values[p * channels + c];
      count++;
    }
  }
  return count > 0 ? sum / count : Number.NaN;
}

test('the generator record and masks/parts.json list the parts and which parts each condition concerns', async () => {
  const record = JSON.parse(await readFile(join(dir, 'generator.json'), 'utf8')) as { masks: PartsManifest };
  assert.deepEqual(record.masks, manifest, 'generator.json and masks/parts.json agree');
  assert.deepEqual(manifest.parts, [...DEMO_PARTS]);
  for (const condition of DEMO_CONDITIONS) {
    assert.ok(conditionBits(manifest, condition) > 0, `condition ${condition} concerns at least one part`);
  }
  assert.equal(conditionBits(manifest, 'color'), 1, 'color concerns the garment (bit 0)');
  assert.equal(conditionBits(manifest, 'length'), 8, 'length concerns the hem (bit 3)');
});

test('every product has a mask whose parts cover a plausible share of the image', async () => {
  for (const product of catalogue.products) {
    for (const [k, part] of manifest.parts.entries()) {
      const region = await readPartRegion(partMaskPath(dir, product.id), 1 << k, SIZE);
      const share = region.reduce((s, v) => s + v, 0) / region.length;
      const allowed = part === 'garment' ? [0.04, 0.35] : [0.004, 0.15];
      assert.ok(
        share > allowed[0] && share < allowed[1],
        `${product.id} ${part} covers ${(share * 100).toFixed(1)} % of the image`,
      );
    }
  }
});

test('the garment mask lies on the dress colour, and the rest of the image does not', async () => {
  const solid = catalogue.products.filter((p) => p.attributes.pattern[0] === 'solid');
  assert.ok(solid.length >= 2, 'the catalogue has solid dresses');
  for (const product of solid) {
    const pixels = await decodeImageBytes(join(dir, product.image), SIZE);
    const garment = await readPartRegion(partMaskPath(dir, product.id), 1, SIZE);
    const outside = garment.map((v) => 1 - v);
    const colourOf = (region: Uint8Array) => [0, 1, 2].map((c) => regionMean(pixels, region, 3, c));
    const label = product.attributes.color[0];
    assert.equal(
      nearestColour(colourOf(garment)),
      label,
      `${product.id}: garment colour ${colourOf(garment).map(Math.round)}`,
    );
    const prototype = COLOUR_PROTOTYPES[label];
    const gap = (rgb: number[]) => Math.hypot(...prototype.map((v, c) => v - rgb[c]));
    assert.ok(
      gap(colourOf(garment)) < gap(colourOf(outside)),
      `${product.id}: the garment is nearer its label colour than the rest of the image`,
    );
  }
});

test('the hem band sits lower for longer dresses', async () => {
  const centre = async (id: string) => {
    const hem = await readPartRegion(partMaskPath(dir, id), 8, SIZE);
    return regionMean(
      Float32Array.from(hem, (_, p) => Math.floor(p / SIZE)),
      hem,
      1,
      0,
    );
  };
  const byLength = new Map<string, number[]>();
  for (const product of catalogue.products) {
    const length = product.attributes.length[0];
    byLength.set(length, [...(byLength.get(length) ?? []), await centre(product.id)]);
  }
  const mean = (length: string) => {
    const rows = byLength.get(length) ?? [];
    return rows.reduce((s, v) => s + v, 0) / rows.length;
  };
  assert.ok(mean('mini') < mean('knee'), `mini ${mean('mini')} above knee ${mean('knee')}`);
  assert.ok(mean('knee') < mean('midi'), `knee ${mean('knee')} above midi ${mean('midi')}`);
  assert.ok(mean('midi') < mean('maxi'), `midi ${mean('midi')} above maxi ${mean('maxi')}`);
});
