import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { decodeImage, ImageCache, ImageDecodeError, type Catalogue } from '../src/catalogue/index.ts';
import { fixture, tempDir } from './fixtures/catalogue/helpers.ts';

/** A lossless PNG from raw RGB(A) bytes. */
async function png(
  path: string,
  width: number,
  height: number,
  channels: 1 | 3 | 4,
  bytes: number[],
): Promise<string> {
  await sharp(Buffer.from(bytes), { raw: { width, height, channels } }).png().toFile(path);
  return path;
}

/** A size×size RGB image whose pixel (x, y) is (x*40, y*40, 200). */
function gradient(size: number): number[] {
  const bytes: number[] = [];
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) bytes.push(x * 40, y * 40, 200);
  return bytes;
}

describe('decodeImage', () => {
  test('returns RGB float32 in [0, 1], HWC, with exact values when no resampling is needed', async () => {
    const dir = await tempDir();
    const path = await png(join(dir, 'g.png'), 4, 4, 3, gradient(4));
    const pixels = await decodeImage(path, 4);
    assert.ok(pixels instanceof Float32Array);
    assert.equal(pixels.length, 4 * 4 * 3);
    const expected = Float32Array.from(gradient(4), (v) => v / 255);
    assert.deepEqual(pixels, expected);
    // Same result from a Buffer.
    assert.deepEqual(await decodeImage(await readFile(path), 4), expected);
  });

  test('resizes to size×size and keeps values in [0, 1]', async () => {
    const dir = await tempDir();
    const path = await png(join(dir, 'g.png'), 4, 4, 3, gradient(4));
    const pixels = await decodeImage(path, 16);
    assert.equal(pixels.length, 16 * 16 * 3);
    assert.ok(pixels.every((v) => v >= 0 && v <= 1));
    // Blue is 200 everywhere, so it stays 200/255 after interpolation.
    for (let p = 0; p < 16 * 16; p++) assert.ok(Math.abs(pixels[p * 3 + 2] - 200 / 255) < 1e-6);
  });

  test('keeps a whole non-square picture and pads it with its background colour', async () => {
    const dir = await tempDir();
    // 8 wide, 4 high: blue border, red 4×2 centre.
    const bytes: number[] = [];
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 8; x++) {
        const inside = x >= 2 && x < 6 && y >= 1 && y < 3;
        bytes.push(...(inside ? [255, 0, 0] : [0, 0, 255]));
      }
    }
    const path = await png(join(dir, 'wide.png'), 8, 4, 3, bytes);
    const pixels = await decodeImage(path, 8);
    const at = (x: number, y: number) => Array.from(pixels.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
    // Rows 0-1 and 6-7 are padding in the corner (background) colour; rows 2-5 hold the picture.
    for (const y of [0, 1, 6, 7]) for (let x = 0; x < 8; x++) assert.deepEqual(at(x, y), [0, 0, 1]);
    assert.deepEqual(at(0, 2), [0, 0, 1]);
    assert.deepEqual(at(3, 3), [1, 0, 0]);
    assert.deepEqual(at(4, 4), [1, 0, 0]);
  });

  test('resize-crop (upstream Scale + CenterCrop) resizes the shorter side and keeps the centre square', async () => {
    const dir = await tempDir();
    // 24 wide, 8 high: three 8×8 squares, red | green | blue; an 8-px shorter side needs no resampling.
    const bytes: number[] = [];
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 24; x++)
        bytes.push(...[x < 8 ? [255, 0, 0] : x < 16 ? [0, 255, 0] : [0, 0, 255]][0]);
    }
    const path = await png(join(dir, 'strip.png'), 24, 8, 3, bytes);
    const cropped = await decodeImage(path, 8, 'resize-crop');
    assert.equal(cropped.length, 8 * 8 * 3);
    for (let p = 0; p < 64; p++) {
      assert.deepEqual(
        Array.from(cropped.subarray(p * 3, p * 3 + 3)),
        [0, 1, 0],
        `pixel ${p} is the centre square`,
      );
    }
    const padded = await decodeImage(path, 8);
    assert.notDeepEqual(
      Array.from(padded.subarray(0, 3)),
      [0, 1, 0],
      'fit-pad keeps the whole strip instead',
    );
  });

  test('grey images become RGB and transparency is flattened onto white', async () => {
    const dir = await tempDir();
    const grey = await decodeImage(await png(join(dir, 'grey.png'), 2, 2, 1, [0, 85, 170, 255]), 2);
    assert.deepEqual(
      Array.from(grey),
      [0, 0, 0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3, 1, 1, 1].map(Math.fround),
    );
    const clear = await decodeImage(await png(join(dir, 'alpha.png'), 1, 1, 4, [10, 20, 30, 0]), 1);
    assert.deepEqual(Array.from(clear), [1, 1, 1]);
  });

  test('rejects non-images, missing files and corrupt data with a typed error', async () => {
    const dir = await tempDir();
    await assert.rejects(decodeImage(Buffer.from('definitely not an image'), 8), (error: unknown) => {
      assert.ok(error instanceof ImageDecodeError);
      assert.equal(error.reason, 'unsupported');
      assert.equal(error.source, 'buffer');
      return true;
    });
    await assert.rejects(decodeImage(Buffer.alloc(0), 8), {
      name: 'ImageDecodeError',
      reason: 'unsupported',
    });
    await assert.rejects(decodeImage(join(dir, 'nope.jpg'), 8), {
      name: 'ImageDecodeError',
      reason: 'not-found',
    });
    const jpeg = await readFile(join(fixture('native'), 'images/p1.jpg'));
    await writeFile(join(dir, 'cut.jpg'), jpeg.subarray(0, jpeg.length - 60));
    await assert.rejects(decodeImage(join(dir, 'cut.jpg'), 8), {
      name: 'ImageDecodeError',
      reason: 'invalid',
    });
    await assert.rejects(decodeImage(Buffer.from('x'), 0), RangeError);
  });
});

describe('ImageCache', () => {
  async function catalogueOf(dir: string, images: [string, number[]][]): Promise<Catalogue> {
    await mkdir(join(dir, 'images'), { recursive: true });
    for (const [name, bytes] of images) await png(join(dir, 'images', name), 4, 4, 3, bytes);
    return {
      root: dir,
      name: 'cache',
      conditions: ['color'],
      products: images.map(([name]) => ({ id: name, title: name, image: `images/${name}`, attributes: {} })),
    };
  }

  test('decodes every product once and serves float32 NHWC batches', async () => {
    const dir = await tempDir();
    const solid = (r: number, g: number, b: number) => Array.from({ length: 16 }, () => [r, g, b]).flat();
    const catalogue = await catalogueOf(dir, [
      ['a.png', gradient(4)],
      ['b.png', solid(255, 0, 51)],
      ['c.png', solid(0, 102, 0)],
    ]);
    const progress: [number, number][] = [];
    const cache = await ImageCache.load(catalogue, 4, {
      onProgress: (done, total) => progress.push([done, total]),
    });
    assert.equal(cache.count, 3);
    assert.equal(cache.size, 4);
    assert.deepEqual(progress.at(-1), [3, 3]);
    assert.equal(progress.length, 4);

    const batch = cache.batch([1, 0, 1]);
    const one = 4 * 4 * 3;
    assert.equal(batch.length, 3 * one);
    assert.deepEqual(batch.subarray(0, 3), Float32Array.from([1, 0, 0.2]));
    assert.deepEqual(batch.subarray(one, 2 * one), await decodeImage(join(dir, 'images/a.png'), 4));
    assert.deepEqual(batch.subarray(2 * one), batch.subarray(0, one));
    assert.deepEqual(Array.from(cache.batch([2]).subarray(0, 3)), [0, 0.4, 0].map(Math.fround));
    assert.throws(() => cache.batch([3]), /image index 3 out of range/);
  });

  test('names the product whose image cannot be decoded', async () => {
    const dir = await tempDir();
    const catalogue = await catalogueOf(dir, [['a.png', gradient(4)]]);
    await writeFile(join(dir, 'images/broken.png'), 'not a png');
    catalogue.products.push({ id: 'broken-1', title: '', image: 'images/broken.png', attributes: {} });
    await assert.rejects(ImageCache.load(catalogue, 4), (error: unknown) => {
      assert.ok(error instanceof ImageDecodeError);
      assert.match(error.message, /product broken-1/);
      assert.match(error.source, /broken\.png$/);
      return true;
    });
  });
});
