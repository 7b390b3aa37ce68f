/**
 * Decode once (issue 13): the pixels kept beside a catalogue are the decoder's own bytes, read back only for the
 * same file bytes, input size, preprocessing and decoder; and switching libvips' operation cache off (images.ts)
 * leaves every decoded pixel as it was. Real rendered demo JPEGs and the importers' fixture images.
 */
import assert from 'node:assert/strict';
import { access, readdir, readFile, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import {
  decodeImageBytes,
  generateDemoCatalogue,
  ImageCache,
  PIXEL_DIR,
  type Catalogue,
  type ImageFit,
} from '../src/catalogue/index.ts';
import { fixturesDir, tempDir } from './fixtures/catalogue/helpers.ts';

const SIZE = 24;

async function filesUnder(dir: string, pattern: RegExp): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && pattern.test(entry.name))
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

async function segments(root: string): Promise<string[]> {
  return filesUnder(join(root, PIXEL_DIR), /\.seg$/).catch(() => []);
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

function warnings(): { warn: (object: object, message: string) => void; messages: string[] } {
  const messages: string[] = [];
  return { messages, warn: (_object, message) => messages.push(message) };
}

describe('decoding with the libvips operation cache off', () => {
  test('gives the same bytes as with it on, for rendered demo images and every fixture image', async () => {
    const demo = await tempDir();
    await generateDemoCatalogue(demo, { count: 12, seed: 5 });
    const paths = [
      ...(await filesUnder(join(demo, 'images'), /\.jpg$/)),
      ...(await filesUnder(fixturesDir, /\.(jpe?g|png)$/i)),
    ];
    assert.ok(paths.length >= 40, `expected demo and fixture images, found ${paths.length}`);
    const fits: ImageFit[] = ['fit-pad', 'resize-crop'];
    const decodeAll = async () => {
      const out: Uint8Array[] = [];
      for (const path of paths) for (const fit of fits) out.push(await decodeImageBytes(path, 48, fit));
      return out;
    };
    // The module switched the cache off on import; sharp's defaults before issue 13 were these.
    sharp.cache({ memory: 50, files: 20, items: 100 });
    // Twice with the cache on, so that the second pass can be served from it.
    await decodeAll();
    const cached = await decodeAll();
    sharp.cache(false);
    const uncached = await decodeAll();
    uncached.forEach((bytes, i) =>
      assert.deepEqual(bytes, cached[i], `${paths[i >> 1]} (${fits[i % 2]}) decodes differently`),
    );
  });
});

describe('pixel store', () => {
  let catalogue: Catalogue;
  let reference: Uint8Array[];

  before(async () => {
    const dir = await tempDir();
    catalogue = await generateDemoCatalogue(dir, { count: 10, seed: 9 });
    reference = await Promise.all(
      catalogue.products.map((p) => decodeImageBytes(join(catalogue.root, p.image), SIZE)),
    );
  });

  const bytesOf = (cache: ImageCache) => catalogue.products.map((_, i) => Buffer.from(cache.bytes(i)));

  test('the first load keeps what it decoded, later loads read the same bytes back', async () => {
    await rm(join(catalogue.root, PIXEL_DIR), { recursive: true, force: true });
    const cold = await ImageCache.load(catalogue, SIZE);
    assert.equal(cold.keptImages, 0, 'nothing is kept before the first load');
    assert.equal((await segments(catalogue.root)).length, 1, 'the first load writes one segment');
    const warm = await ImageCache.load(catalogue, SIZE);
    assert.equal(warm.keptImages, catalogue.products.length, 'every image is read back');
    assert.equal((await segments(catalogue.root)).length, 1, 'a load that decoded nothing writes nothing');
    assert.deepEqual(
      bytesOf(warm),
      reference.map((r) => Buffer.from(r)),
    );
    assert.deepEqual(bytesOf(cold), bytesOf(warm));
    // Another size or preprocessing is another key.
    const other = await ImageCache.load(catalogue, SIZE, { fit: 'resize-crop' });
    assert.equal(other.keptImages, 0, 'resize-crop rows are not fit-pad rows');
    const bigger = await ImageCache.load(catalogue, SIZE + 8);
    assert.equal(bigger.keptImages, 0, 'rows of another size are not read');
    // 10 rows of 256 px are 1.9 MiB: written in runs of about 1 MiB, read back whole.
    const large = await ImageCache.load(catalogue, 256);
    const largeAgain = await ImageCache.load(catalogue, 256);
    assert.equal(largeAgain.keptImages, catalogue.products.length, 'every 256 px image is read back');
    assert.deepEqual(bytesOf(largeAgain), bytesOf(large));
  });

  test('a changed image file is decoded again, never served from the old rows', async () => {
    const first = join(catalogue.root, catalogue.products[0].image);
    const original = await readFile(first);
    await ImageCache.load(catalogue, SIZE);
    // Product 0 now shows product 1's picture.
    await writeFile(first, await readFile(join(catalogue.root, catalogue.products[1].image)));
    try {
      const changed = await ImageCache.load(catalogue, SIZE);
      assert.equal(changed.keptImages, catalogue.products.length, 'the new bytes are product 1 bytes, kept');
      assert.deepEqual(Buffer.from(changed.bytes(0)), Buffer.from(reference[1]));
      await writeFile(first, Buffer.concat([original, Buffer.from([0])]));
      const edited = await ImageCache.load(catalogue, SIZE);
      assert.equal(edited.keptImages, catalogue.products.length - 1, 'an edited file misses');
      assert.deepEqual(Buffer.from(edited.bytes(0)), Buffer.from(await decodeImageBytes(first, SIZE)));
    } finally {
      await writeFile(first, original);
    }
  });

  test('a damaged segment is skipped with a warning and the images are decoded again', async () => {
    await rm(join(catalogue.root, PIXEL_DIR), { recursive: true, force: true });
    await ImageCache.load(catalogue, SIZE);
    const [segment] = await segments(catalogue.root);
    await truncate(segment, 1000);
    // What a killed job leaves: a day-old one is removed, a fresh one (a job still writing) is left alone.
    const [old, fresh] = [`${segment}-old.seg.tmp`, `${segment}-fresh.seg.tmp`];
    await writeFile(old, 'half');
    await writeFile(fresh, 'half');
    const dayAgo = new Date(Date.now() - 25 * 3600 * 1000);
    await utimes(old, dayAgo, dayAgo);
    const log = warnings();
    const again = await ImageCache.load(catalogue, SIZE, { log });
    assert.equal(again.keptImages, 0, 'no row comes from the damaged segment');
    assert.ok(
      log.messages.some((m) => m.includes('skipping unreadable pixel segment')),
      log.messages.join('; '),
    );
    assert.deepEqual(
      bytesOf(again),
      reference.map((r) => Buffer.from(r)),
    );
    assert.deepEqual(
      [await exists(old), await exists(fresh)],
      [false, true],
      'only the abandoned temporary segment is removed',
    );
  });

  test('a catalogue folder that cannot take the rows still loads, with a warning', async () => {
    await rm(join(catalogue.root, PIXEL_DIR), { recursive: true, force: true });
    // A file where the folder should be: mkdir fails (as on a read-only catalogue, also for root).
    await writeFile(join(catalogue.root, PIXEL_DIR), 'not a folder');
    try {
      const log = warnings();
      const cache = await ImageCache.load(catalogue, SIZE, { log });
      assert.deepEqual(
        bytesOf(cache),
        reference.map((r) => Buffer.from(r)),
      );
      assert.ok(
        log.messages.some((m) => m.includes('decoded pixels not kept')),
        log.messages.join('; '),
      );
    } finally {
      await rm(join(catalogue.root, PIXEL_DIR), { force: true });
    }
  });

  test('keepPixels false and DRESSMATCH_PIXEL_CACHE=off neither read nor write', async () => {
    await rm(join(catalogue.root, PIXEL_DIR), { recursive: true, force: true });
    await ImageCache.load(catalogue, SIZE, { keepPixels: false });
    assert.deepEqual(await segments(catalogue.root), []);
    process.env.DRESSMATCH_PIXEL_CACHE = 'off';
    try {
      await ImageCache.load(catalogue, SIZE);
      assert.deepEqual(await segments(catalogue.root), []);
    } finally {
      delete process.env.DRESSMATCH_PIXEL_CACHE;
    }
  });
});
