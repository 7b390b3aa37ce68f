import assert from 'node:assert/strict';
import { appendFile, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { detectLayout, loadCatalogue, writeCatalogue, type Catalogue } from '../src/catalogue/index.ts';
import { copyFixture, fixture, rejectsAt, tempDir } from './fixtures/catalogue/helpers.ts';

function productIds(catalogue: Catalogue, indices: number[]): string[] {
  return indices.map((index) => catalogue.products[index].id);
}

describe('native catalogue layout', () => {
  test('loads products, labels, splits, triplets and retrieval sets', async () => {
    const dir = fixture('native');
    assert.equal(await detectLayout(dir), 'native');
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.conditions, ['color', 'sleeve']);
    assert.equal(catalogue.name, 'native');
    assert.deepEqual(
      catalogue.products.map((p) => p.id),
      ['p1', 'p2', 'p3', 'p4', 'p5'],
    );
    // A single label given as a string is normalised to a list; a missing title falls back to the id.
    assert.deepEqual(catalogue.products[1].attributes, { color: ['red'], sleeve: ['short'] });
    assert.deepEqual(catalogue.products[3].attributes, { color: ['blue', 'white'] });
    assert.equal(catalogue.products[4].title, 'p5');
    assert.equal(catalogue.products[4].split, undefined);
    assert.equal(catalogue.products[3].split, 'val');
    assert.equal(catalogue.products[0].image, 'images/p1.jpg');

    const colorTrain = catalogue.triplets?.train?.filter((t) => t.condition === 0) ?? [];
    assert.deepEqual(
      colorTrain.map((t) => productIds(catalogue, [t.anchor, t.far, t.close])),
      [
        ['p1', 'p3', 'p2'],
        ['p3', 'p1', 'p4'],
      ],
    );
    assert.equal(catalogue.triplets?.train?.filter((t) => t.condition === 1).length, 1);
    assert.deepEqual(catalogue.retrieval?.val?.queries, [{ product: 3, condition: 0, value: 'blue' }]);
    assert.equal(catalogue.retrieval?.val?.candidates.length, 2);
  });

  test('writeCatalogue round-trips a catalogue, images included', async () => {
    const original = await loadCatalogue(fixture('native'));
    const out = join(await tempDir(), 'copy');
    await writeCatalogue(original, out);
    const copy = await loadCatalogue(out);
    assert.deepEqual({ ...copy, root: '', name: '' }, { ...original, root: '', name: '' });
    assert.deepEqual(
      await readFile(join(out, 'images/p3.jpg')),
      await readFile(join(fixture('native'), 'images/p3.jpg')),
    );
  });

  test('a missing image is reported at the products.jsonl line that declares it, before any decoding', async () => {
    const dir = await copyFixture('native');
    await rm(join(dir, 'images/p3.jpg'));
    // Line 4: the fixture has a blank line 3, which is skipped but counted.
    await rejectsAt(dir, 'products.jsonl', 4, /image file not found for product p3/);
    const unchecked = await loadCatalogue(dir, { checkImages: false });
    assert.equal(unchecked.products.length, 5);
  });

  test('counts every missing image in the message', async () => {
    const dir = await copyFixture('native');
    await rm(join(dir, 'images/p1.jpg'));
    await rm(join(dir, 'images/p5.jpg'));
    await rejectsAt(dir, 'products.jsonl', 1, /and 1 more of 5 images missing/);
  });

  test('an unknown condition in a product is reported with its line', async () => {
    const dir = await copyFixture('native');
    await appendFile(
      join(dir, 'products.jsonl'),
      '{"id":"p6","image":"images/p1.jpg","attributes":{"fabric":["silk"]}}\n',
    );
    await rejectsAt(dir, 'products.jsonl', 7, /unknown condition "fabric"/);
  });

  test('malformed JSON is reported with its line', async () => {
    const dir = await copyFixture('native');
    await appendFile(join(dir, 'products.jsonl'), '{"id":"p6", "image": \n');
    await rejectsAt(dir, 'products.jsonl', 7, /malformed JSON/);
  });

  test('invalid fields are reported with their line', async () => {
    const cases: [string, RegExp][] = [
      ['{"id":"has space","image":"images/p1.jpg"}', /"id" must be/],
      ['{"id":"p6","image":"../outside.jpg"}', /"image" of product p6 must be a relative path/],
      ['{"id":"p6","image":"images/p1.jpg","split":"holdout"}', /"split" of product p6/],
      ['{"id":"p6","image":"images/p1.jpg","attributes":{"color":[3]}}', /labels of "color"/],
      ['["not","an","object"]', /expected a JSON object/],
    ];
    for (const [line, message] of cases) {
      const dir = await copyFixture('native');
      await appendFile(join(dir, 'products.jsonl'), `${line}\n`);
      await rejectsAt(dir, 'products.jsonl', 7, message);
    }
  });

  test('a duplicate product id names both lines', async () => {
    const dir = await copyFixture('native');
    await appendFile(join(dir, 'products.jsonl'), '{"id":"p2","image":"images/p2.jpg"}\n');
    await rejectsAt(dir, 'products.jsonl', 7, /duplicate product id "p2" \(first on line 2\)/);
  });

  test('conditions.txt must list valid, distinct names', async () => {
    const dir = await copyFixture('native');
    await writeFile(join(dir, 'conditions.txt'), 'color\nsleeve\ncolor\n');
    await rejectsAt(dir, 'conditions.txt', 3, /duplicate condition "color"/);
    await writeFile(join(dir, 'conditions.txt'), 'color\nsleeve length\n');
    await rejectsAt(dir, 'conditions.txt', 2, /invalid condition name/);
  });

  test('triplet files: unknown ids, malformed rows and unknown conditions', async () => {
    const dir = await copyFixture('native');
    await writeFile(join(dir, 'triplets/color_train.txt'), 'p1 p3 p2\np1 p9 p2\n');
    await rejectsAt(dir, 'color_train.txt', 2, /unknown product id "p9"/);
    await writeFile(join(dir, 'triplets/color_train.txt'), 'p1 p3\n');
    await rejectsAt(dir, 'color_train.txt', 1, /malformed row "p1 p3"/);
    await writeFile(join(dir, 'triplets/color_train.txt'), 'p1 p3 p2\n');
    await writeFile(join(dir, 'triplets/fabric_val.txt'), 'p1 p3 p2\n');
    await rejectsAt(dir, 'fabric_val.txt', undefined, /unknown condition "fabric"/);
    await rm(join(dir, 'triplets/fabric_val.txt'));
    await writeFile(join(dir, 'triplets/color_holdout.txt'), 'p1 p3 p2\n');
    await rejectsAt(dir, 'color_holdout.txt', undefined, /expected \{condition\}_\{train\|val\|test\}\.txt/);
  });

  test('retrieval files are validated', async () => {
    const dir = await copyFixture('native');
    await appendFile(
      join(dir, 'retrieval/query_val.jsonl'),
      '{"product":"p1","condition":"fabric","value":"silk"}\n',
    );
    await rejectsAt(dir, 'query_val.jsonl', 2, /unknown condition "fabric"/);
  });

  test('a folder without a known layout says what it expected', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'empty'));
    await assert.rejects(
      detectLayout(join(dir, 'empty')),
      /no supported catalogue layout found: expected products\.jsonl/,
    );
    await assert.rejects(loadCatalogue(join(dir, 'missing')), /catalogue folder not found/);
  });
});
