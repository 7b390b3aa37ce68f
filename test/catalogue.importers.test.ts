import assert from 'node:assert/strict';
import { appendFile, rm, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  detectLayout,
  loadCatalogue,
  writeCatalogue,
  type Catalogue,
  type Triplet,
} from '../src/catalogue/index.ts';
import { copyFixture, fixture, rejectsAt, tempDir } from './fixtures/catalogue/helpers.ts';

const ids = (catalogue: Catalogue, t: Triplet) =>
  [t.anchor, t.far, t.close].map((i) => catalogue.products[i].id);
const byId = (catalogue: Catalogue, id: string) => {
  const product = catalogue.products.find((p) => p.id === id);
  assert.ok(product, `no product ${id}`);
  return product;
};

/** In every labelled triplet, anchor and close share a label of the condition and far shares none with the anchor. */
function assertTripletSemantics(catalogue: Catalogue): number {
  let checked = 0;
  for (const triplets of Object.values(catalogue.triplets ?? {})) {
    for (const t of triplets ?? []) {
      const condition = catalogue.conditions[t.condition];
      const [a, f, c] = [t.anchor, t.far, t.close].map(
        (i) => catalogue.products[i].attributes[condition] ?? [],
      );
      assert.ok(
        a.some((label) => c.includes(label)),
        `anchor/close share no ${condition} label`,
      );
      assert.ok(!a.some((label) => f.includes(label)), `anchor/far share a ${condition} label`);
      checked++;
    }
  }
  return checked;
}

describe('Farfetch CSN layout (gabrielfu/pytorch-csn-farfetch)', () => {
  test('reads product ids, labels, triplets as "anchor negative positive" indices and image paths', async () => {
    const dir = fixture('farfetch');
    assert.equal(await detectLayout(dir), 'farfetch');
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.conditions, ['color', 'length', 'sleeve']);
    assert.equal(catalogue.products.length, 11);
    assert.equal(catalogue.products[0].id, '17863678');
    assert.equal(catalogue.products[0].image, 'images/17/17863678.jpg');
    assert.deepEqual(byId(catalogue, '16849958').attributes, { color: ['black', 'white'], length: ['mini'] });
    // A quoted CSV field ("maxi") and a label with a space.
    assert.deepEqual(byId(catalogue, '17943585').attributes, {
      color: ['red'],
      length: ['maxi'],
      sleeve: ['short sleeves'],
    });
    assert.match(byId(catalogue, '17863678').title, /Black, midi, long sleeves/);

    // triplets/color_train.txt row 1 is "0 2 1": anchor product 0, negative (far) 2, positive (close) 1.
    assert.deepEqual(catalogue.triplets?.train?.[0], { anchor: 0, far: 2, close: 1, condition: 0 });
    assert.deepEqual(ids(catalogue, catalogue.triplets!.val![0]), ['16001122', '18000001', '16001133']);
    assert.equal(assertTripletSemantics(catalogue), 8);

    // Splits come from the triplet files each product appears in.
    assert.deepEqual(
      catalogue.products.map((p) => p.split),
      ['train', 'train', 'train', 'train', 'train', 'val', 'val', 'val', 'test', 'test', 'test'],
    );
  });

  test('a triplet index beyond product_ids.txt is out of range at its line', async () => {
    const dir = await copyFixture('farfetch');
    await appendFile(join(dir, 'triplets/color_train.txt'), '0 1 11\n');
    await rejectsAt(
      dir,
      'color_train.txt',
      4,
      /triplet index 11 out of range \(.*11 products, indices 0-10\)/,
    );
  });

  test('malformed rows, unknown conditions and duplicate ids are reported at their line', async () => {
    let dir = await copyFixture('farfetch');
    await appendFile(join(dir, 'triplets/sleeve_train.txt'), '0 x 2\n');
    await rejectsAt(dir, 'sleeve_train.txt', 2, /malformed row "0 x 2"/);

    dir = await copyFixture('farfetch');
    await appendFile(join(dir, 'product_labels.csv'), '17863678,silk,fabric\n');
    await rejectsAt(dir, 'product_labels.csv', 35, /unknown condition "fabric"/);

    dir = await copyFixture('farfetch');
    await appendFile(join(dir, 'product_labels.csv'), '99999999,red,color\n');
    await rejectsAt(dir, 'product_labels.csv', 35, /unknown product id "99999999"/);

    dir = await copyFixture('farfetch');
    await appendFile(join(dir, 'product_ids.txt'), '17536231\n');
    await rejectsAt(dir, 'product_ids.txt', 12, /duplicate product id "17536231" \(first on line 3\)/);

    dir = await copyFixture('farfetch');
    await writeFile(join(dir, 'triplets/fabric_train.txt'), '0 1 2\n');
    await rejectsAt(dir, 'fabric_train.txt', undefined, /unknown condition "fabric"/);
  });

  test('a missing image is reported at the product_ids.txt line of its product', async () => {
    const dir = await copyFixture('farfetch');
    await rm(join(dir, 'images/17/17536231.jpg'));
    await rejectsAt(dir, 'product_ids.txt', 3, /image file not found for product 17536231/);
  });

  test('import to the native layout keeps products, labels and triplets', async () => {
    const original = await loadCatalogue(fixture('farfetch'));
    const out = join(await tempDir(), 'farfetch-native');
    await writeCatalogue(original, out);
    assert.equal(await detectLayout(out), 'native');
    const native = await loadCatalogue(out);
    assert.deepEqual({ ...native, root: '', name: '' }, { ...original, root: '', name: '' });
    const colorTrain = await readFile(join(out, 'triplets/color_train.txt'), 'utf8');
    assert.equal(colorTrain.split('\n')[0], '17863678 17536231 16849958');
  });
});

describe('CSN/Zappos triplet-list layout (andreasveit/conditional-similarity-networks)', () => {
  test('reads filenames.json lines, {condition}_tripletlist_{split}.txt rows "a b c" as anchor a, far b, close c', async () => {
    const dir = fixture('zappos');
    assert.equal(await detectLayout(dir), 'zappos');
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.conditions, ['class', 'closure', 'gender', 'heel']);
    assert.equal(catalogue.products.length, 10);
    const first = catalogue.products[0];
    assert.equal(first.id, '7716996.288224');
    assert.equal(first.image, 'ut-zap50k-images/Shoes/Sneakers and Athletic Shoes/Nike/7716996.288224.jpg');
    assert.equal(first.title, 'Shoes / Sneakers and Athletic Shoes / Nike (7716996.288224)');
    assert.deepEqual(first.attributes, {});
    // class_tripletlist_train.txt row 1 "0 2 1": image 0 is more similar to image 1 than to image 2.
    const classTrain = catalogue.triplets!.train!.filter((t) => t.condition === 0);
    assert.deepEqual(classTrain[0], { anchor: 0, far: 2, close: 1, condition: 0 });
    const heelVal = catalogue.triplets!.val!.filter((t) => t.condition === 3);
    assert.deepEqual(heelVal, [{ anchor: 6, far: 4, close: 5, condition: 3 }]);
    assert.deepEqual(
      catalogue.products.map((p) => p.split),
      ['train', 'train', 'train', 'train', 'val', 'val', 'val', 'test', 'test', 'test'],
    );
  });

  test('filenames.json may also hold a JSON array of paths', async () => {
    const dir = await copyFixture('zappos');
    const lines = (await readFile(join(dir, 'filenames.json'), 'utf8')).trim().split('\n');
    await writeFile(join(dir, 'filenames.json'), JSON.stringify(lines));
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(
      catalogue.products.map((p) => p.image),
      lines.map((line) => `ut-zap50k-images/${line}`),
    );
  });

  test('out-of-range indices and malformed rows are reported at their line', async () => {
    const dir = await copyFixture('zappos');
    await appendFile(join(dir, 'tripletlists/gender_tripletlist_train.txt'), '1 2 10\n');
    await rejectsAt(
      dir,
      'gender_tripletlist_train.txt',
      2,
      /triplet index 10 out of range \(filenames\.json has 10 images/,
    );
    await writeFile(join(dir, 'tripletlists/gender_tripletlist_train.txt'), '3 1 2\n1 2\n');
    await rejectsAt(dir, 'gender_tripletlist_train.txt', 2, /malformed row "1 2"/);
  });

  test('a missing image is reported at its filenames.json line', async () => {
    const dir = await copyFixture('zappos');
    await rm(join(dir, 'ut-zap50k-images/Boots/Ankle/Clarks/7977212.255.jpg'));
    await rejectsAt(dir, 'filenames.json', 4, /image file not found for product 7977212\.255/);
  });
});

describe('ASEN meta layout (Maryeon/asen)', () => {
  test('reads meta.json, filenames, label_train.txt and the query/candidate retrieval protocol', async () => {
    const dir = fixture('asen/FashionAI');
    assert.equal(await detectLayout(dir), 'asen');
    const catalogue = await loadCatalogue(dir);
    assert.deepEqual(catalogue.conditions, ['skirt_length', 'sleeve_length', 'neckline_design']);
    assert.equal(catalogue.products.length, 11);
    assert.equal(catalogue.triplets, undefined);
    // label_train.txt "0 0 2": image 0 of filenames_train.txt has skirt_length value 2 = "Knee Length".
    const first = catalogue.products[0];
    assert.equal(first.id, '0a1b2c3d4e5f60718293a4b5c6d7e8f9');
    assert.equal(first.image, 'train/Images/skirt_length_labels/0a1b2c3d4e5f60718293a4b5c6d7e8f9.jpg');
    assert.deepEqual(first.attributes, { skirt_length: ['Knee Length'] });
    assert.equal(first.split, 'train');
    assert.deepEqual(catalogue.products[3].attributes, { neckline_design: ['V Neck'] });

    // query_valid.txt "0 0 2" indexes filenames_valid.txt (products 5..7 here).
    const val = catalogue.retrieval?.val;
    assert.deepEqual(val?.queries, [{ product: 5, condition: 0, value: 'Knee Length' }]);
    assert.deepEqual(val?.candidates, [
      { product: 6, condition: 0, value: 'Knee Length' },
      { product: 7, condition: 0, value: 'Floor Length' },
    ]);
    assert.deepEqual(catalogue.retrieval?.test?.queries, [
      { product: 8, condition: 1, value: 'Long Sleeves' },
    ]);
    // Retrieval labels are product attributes too, and valid/test products get their split.
    assert.deepEqual(catalogue.products[7].attributes, { skirt_length: ['Floor Length'] });
    assert.deepEqual(
      catalogue.products.map((p) => p.split),
      ['train', 'train', 'train', 'train', 'train', 'val', 'val', 'val', 'test', 'test', 'test'],
    );
  });

  test('a parent meta.json keyed by dataset and multi-attribute label rows (later upstream versions)', async () => {
    const catalogue = await loadCatalogue(fixture('asen-keyed/DARN'));
    assert.deepEqual(catalogue.conditions, ['clothes_category', 'clothes_button']);
    // "0 0 1 1 2": image 0 is a Dress (category 1) with a Zipper (button 2).
    assert.deepEqual(catalogue.products[0].attributes, {
      clothes_category: ['Dress'],
      clothes_button: ['Zipper'],
    });
    assert.deepEqual(catalogue.products[2].attributes, { clothes_category: ['Coat'] });
  });

  test('index errors name the file and line', async () => {
    let dir = await copyFixture('asen/FashionAI');
    await appendFile(join(dir, 'label_train.txt'), '1 0 6\n');
    await rejectsAt(dir, 'label_train.txt', 6, /value index 6 out of range for skirt_length \(6 values\)/);

    dir = await copyFixture('asen/FashionAI');
    await appendFile(join(dir, 'label_train.txt'), '1 3 0\n');
    await rejectsAt(dir, 'label_train.txt', 6, /unknown condition: attribute index 3 out of range/);

    dir = await copyFixture('asen/FashionAI');
    await writeFile(join(dir, 'candidate_test.txt'), '1 1 7\n3 1 3\n');
    await rejectsAt(
      dir,
      'candidate_test.txt',
      2,
      /image index 3 out of range \(filenames_test\.txt has 3 images\)/,
    );

    dir = await copyFixture('asen/FashionAI');
    await appendFile(join(dir, 'query_valid.txt'), '0 0\n');
    await rejectsAt(dir, 'query_valid.txt', 2, /malformed row "0 0"/);
  });

  test('meta.json must be consistent', async () => {
    const dir = await copyFixture('asen/FashionAI');
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
    meta.ATTRIBUTES_NUM.skirt_length = 7;
    await writeFile(join(dir, 'meta.json'), JSON.stringify(meta));
    await rejectsAt(
      dir,
      'meta.json',
      undefined,
      /ATTRIBUTES_NUM\.skirt_length is 7 but ATTRIBUTES_VALUES\.skirt_length has 6/,
    );
    await rm(join(dir, 'meta.json'));
    await rejectsAt(dir, 'meta.json', undefined, /meta\.json not found/);
  });

  test('import to native keeps the retrieval sets', async () => {
    const original = await loadCatalogue(fixture('asen/FashionAI'));
    const out = join(await tempDir(), 'asen-native');
    await writeCatalogue(original, out);
    const native = await loadCatalogue(out);
    assert.deepEqual(native.retrieval, original.retrieval);
    assert.deepEqual(native.products, original.products);
  });
});
