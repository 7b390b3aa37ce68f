/** Product fields in products.jsonl: parsing, the derived schema, errors at file:line, writing and the demo's fields. */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  DEMO_CATEGORIES,
  deriveFieldSchema,
  generateDemoCatalogue,
  loadCatalogue,
  writeCatalogue,
} from '../src/catalogue/index.ts';
import { copyFixture, rejectsAt, tempDir } from './fixtures/catalogue/helpers.ts';

/** The native fixture with the `fields` of product i replaced (undefined: none). */
async function withFields(fields: unknown[]): Promise<string> {
  const dir = await copyFixture('native');
  const path = join(dir, 'products.jsonl');
  const lines = (await readFile(path, 'utf8')).split('\n');
  let product = 0;
  const out = lines.map((line) => {
    if (line.trim() === '') return line;
    const record = JSON.parse(line) as Record<string, unknown>;
    const value = fields[product++];
    if (value !== undefined) record.fields = value;
    return JSON.stringify(record);
  });
  await writeFile(path, out.join('\n'));
  return dir;
}

describe('product fields', () => {
  test('strings, numbers and booleans load; the schema lists each name once with its type', async () => {
    const dir = await withFields([
      { price: 79.5, in_stock: true, brand: ' Acme ' },
      { price: 20, in_stock: false },
      undefined,
      { brand: 'Other' },
      {},
    ]);
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.fields, { brand: 'string', in_stock: 'boolean', price: 'number' });
    assert.deepEqual(catalogue.products[0].fields, { price: 79.5, in_stock: true, brand: 'Acme' });
    assert.equal(catalogue.products[2].fields, undefined);
    assert.deepEqual(catalogue.products[4].fields, {});
  });

  test('a catalogue without fields has no schema', async () => {
    const catalogue = await loadCatalogue(await copyFixture('native'));
    assert.equal(catalogue.fields, undefined);
    assert.ok(
      catalogue.products.every((p) => p.fields === undefined),
      'no product should carry fields',
    );
  });

  test('writeCatalogue round-trips fields', async () => {
    const original = await loadCatalogue(await withFields([{ price: 1, sale: true }, { price: 2.25 }]));
    const out = join(await tempDir(), 'copy');
    await writeCatalogue(original, out);
    const copy = await loadCatalogue(out);
    assert.deepEqual(copy.products[0].fields, { price: 1, sale: true });
    assert.deepEqual(copy.fields, original.fields);
  });

  // Line numbers: the fixture's third product is on line 4 (line 3 is blank).
  const errors: [string, unknown[], number, RegExp][] = [
    ['not an object', [[1, 2]], 1, /"fields" of product p1 must be an object/],
    [
      'null value',
      [{ price: null }],
      1,
      /field "price" of product p1 must be a string, a finite number or a boolean/,
    ],
    ['nested object', [undefined, { size: { eu: 38 } }], 2, /field "size" of product p2 must be/],
    ['array value', [{ tags: ['a'] }], 1, /field "tags" of product p1 must be/],
    ['invalid name', [{ 'two words': 'x' }], 1, /field name "two words" of product p1 is invalid/],
    ['name of a condition', [{ color: 'red' }], 1, /field "color" of product p1 has the name of a condition/],
    [
      'type changes between products',
      [{ price: 10 }, undefined, { price: 'cheap' }],
      4,
      /field "price" of product p3 is a string, but it is a number on line 1/,
    ],
  ];
  for (const [name, fields, line, message] of errors) {
    test(`error: ${name}, reported at products.jsonl:${line}`, async () => {
      await rejectsAt(await withFields(fields), 'products.jsonl', line, message);
    });
  }

  test('deriveFieldSchema refuses a conflict among in-memory products', () => {
    assert.throws(
      () =>
        deriveFieldSchema([
          { id: 'a', fields: { x: true } },
          { id: 'b', fields: { x: 1 } },
        ]),
      /field "x" of product b is a number, but it is a boolean on line 1/,
    );
  });

  test('the demo catalogue has price, in_stock and category on every product', async () => {
    const dir = join(await tempDir(), 'demo');
    const catalogue = await generateDemoCatalogue(dir, { count: 40, seed: 3, imageSize: 32 });
    const loaded = await loadCatalogue(dir);
    assert.deepEqual(loaded.fields, { category: 'string', in_stock: 'boolean', price: 'number' });
    assert.deepEqual(loaded.products, catalogue.products);
    for (const product of loaded.products) {
      const fields = product.fields ?? {};
      assert.ok(
        typeof fields.price === 'number' && fields.price >= 39 && fields.price < 200,
        `price of ${product.id}`,
      );
      assert.equal(typeof fields.in_stock, 'boolean', `in_stock of ${product.id}`);
      assert.ok(DEMO_CATEGORIES.includes(fields.category as never), `category of ${product.id}`);
    }
    const inStock = loaded.products.filter((p) => p.fields?.in_stock === true).length;
    assert.ok(inStock > 20 && inStock < 40, `about 80 % in stock, got ${inStock} of 40`);
  });
});
