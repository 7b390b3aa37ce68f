import { readFile } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { addLabel, titleFromAttributes, type LayoutResult, type SourceRef } from './layout.ts';
import { isSafeRelativePath } from './native.ts';
import { parseIndexRow, readLines, toConditionName, isValidConditionName } from './text.ts';
import { CatalogueError, type Catalogue, type Product, type RetrievalSet, type Split } from './types.ts';
import { isFile } from './files.ts';

/**
 * The layout of Maryeon/asen (data/{dataset}/, e.g. data/FashionAI):
 *   meta.json              {"ATTRIBUTES": [...], "ATTRIBUTES_NUM": {attr: n}, "ATTRIBUTES_VALUES": {attr: [...]}};
 *                          later versions keep one data/meta.json keyed by dataset name ({"FashionAI": {...}})
 *   filenames_{train,valid,test}.txt   one image path per line, relative to the dataset folder
 *   label_train.txt        rows "img attr value [attr value ...]": indices into filenames_train.txt, ATTRIBUTES and
 *                          that attribute's ATTRIBUTES_VALUES (FashionAI has one pair per row, DARN several)
 *   {query,candidate}_{valid,test}.txt rows "img attr value" with img indexing filenames_{valid,test}.txt
 * Training triplets are not shipped: upstream samples them from label_train.txt, as sampleTriplets does here.
 */
export const ASEN_FILES = {
  meta: 'meta.json',
  filenames: (split: AsenSplit) => `filenames_${split}.txt`,
  labels: 'label_train.txt',
  retrieval: (role: 'query' | 'candidate', split: 'valid' | 'test') => `${role}_${split}.txt`,
} as const;

type AsenSplit = 'train' | 'valid' | 'test';
const ASEN_SPLITS: readonly AsenSplit[] = ['train', 'valid', 'test'];
const TO_SPLIT: Record<AsenSplit, Split> = { train: 'train', valid: 'val', test: 'test' };

export async function isAsenLayout(dir: string): Promise<boolean> {
  for (const split of ASEN_SPLITS) {
    if (await isFile(join(dir, ASEN_FILES.filenames(split)))) return true;
  }
  return isFile(join(dir, ASEN_FILES.labels));
}

interface AsenMeta {
  file: string;
  attributes: string[];
  values: string[][];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new CatalogueError(file, undefined, `malformed JSON: ${(error as Error).message}`);
  }
}

/** meta.json in the dataset folder (flat or keyed by dataset), else the parent's meta.json keyed by the folder name. */
async function readAsenMeta(dir: string): Promise<AsenMeta> {
  const dataset = basename(resolve(dir));
  const pickKeyed = (json: Record<string, unknown>, allowSingle: boolean): unknown => {
    if (dataset in json) return json[dataset];
    const key = Object.keys(json).find((name) => name.toLowerCase() === dataset.toLowerCase());
    if (key) return json[key];
    const keys = Object.keys(json);
    return allowSingle && keys.length === 1 ? json[keys[0]] : undefined;
  };
  const own = join(dir, ASEN_FILES.meta);
  const parent = join(dirname(resolve(dir)), ASEN_FILES.meta);
  for (const [file, isOwn] of [
    [own, true],
    [parent, false],
  ] as const) {
    if (!(await isFile(file))) continue;
    const json = await readJson(file);
    if (!isRecord(json)) throw new CatalogueError(file, undefined, 'expected a JSON object');
    const meta = isOwn && 'ATTRIBUTES' in json ? json : pickKeyed(json, isOwn);
    if (meta !== undefined) return parseMeta(meta, file);
  }
  throw new CatalogueError(
    own,
    undefined,
    `meta.json not found here or in the parent folder (keyed "${dataset}")`,
  );
}

function parseMeta(meta: unknown, file: string): AsenMeta {
  if (!isRecord(meta)) throw new CatalogueError(file, undefined, 'dataset meta must be an object');
  const { ATTRIBUTES: attributes, ATTRIBUTES_NUM: counts, ATTRIBUTES_VALUES: valueNames } = meta;
  if (
    !Array.isArray(attributes) ||
    attributes.length === 0 ||
    !attributes.every((a) => typeof a === 'string')
  ) {
    throw new CatalogueError(file, undefined, 'ATTRIBUTES must be a non-empty list of names');
  }
  const values = (attributes as string[]).map((attribute) => {
    const names = isRecord(valueNames) ? valueNames[attribute] : undefined;
    const count = isRecord(counts) ? counts[attribute] : undefined;
    if (names !== undefined) {
      if (!Array.isArray(names) || !names.every((name) => typeof name === 'string' && name.trim() !== '')) {
        throw new CatalogueError(file, undefined, `ATTRIBUTES_VALUES.${attribute} must be a list of names`);
      }
      if (count !== undefined && count !== names.length) {
        throw new CatalogueError(
          file,
          undefined,
          `ATTRIBUTES_NUM.${attribute} is ${String(count)} but ATTRIBUTES_VALUES.${attribute} has ${names.length} names`,
        );
      }
      return (names as string[]).map((name) => name.trim());
    }
    if (typeof count === 'number' && Number.isInteger(count) && count > 0) {
      return Array.from({ length: count }, (_, index) => String(index));
    }
    throw new CatalogueError(
      file,
      undefined,
      `attribute "${attribute}" has neither ATTRIBUTES_VALUES nor ATTRIBUTES_NUM`,
    );
  });
  return { file, attributes: attributes as string[], values };
}

export async function loadAsenCatalogue(dir: string): Promise<LayoutResult> {
  const root = resolve(dir);
  const meta = await readAsenMeta(dir);
  const conditions = asenConditions(meta);
  const { products, sources, listed } = await readImageLists(dir);
  const load: AsenLoad = { meta, conditions, products, listed };
  await readLabels(load, join(dir, ASEN_FILES.labels));
  const retrieval = await readRetrieval(load, dir);
  for (const product of products)
    product.title = titleFromAttributes(conditions, product.attributes, product.id);
  const catalogue: Catalogue = { root, name: basename(root), conditions, products };
  if (Object.keys(retrieval).length > 0) catalogue.retrieval = retrieval;
  return { catalogue, sources };
}

/** One ASEN image list (filenames_{split}.txt): list position -> product index. */
interface ImageList {
  file: string;
  indices: number[];
}

/** What the label and retrieval files are read against. */
interface AsenLoad {
  meta: AsenMeta;
  conditions: string[];
  products: Product[];
  listed: Partial<Record<AsenSplit, ImageList>>;
}

function asenConditions(meta: AsenMeta): string[] {
  const conditions = meta.attributes.map(toConditionName);
  conditions.forEach((condition, index) => {
    if (!isValidConditionName(condition) || conditions.indexOf(condition) !== index) {
      throw new CatalogueError(
        meta.file,
        undefined,
        `attribute "${meta.attributes[index]}" gives an invalid or repeated condition name`,
      );
    }
  });
  return conditions;
}

/** Products of every filenames_{train,valid,test}.txt (an image listed in several is one product without split). */
async function readImageLists(
  dir: string,
): Promise<{ products: Product[]; sources: SourceRef[]; listed: AsenLoad['listed'] }> {
  const products: Product[] = [];
  const sources: SourceRef[] = [];
  const indexByPath = new Map<string, number>();
  const splitsByIndex = new Map<number, Set<Split>>();
  const listed: AsenLoad['listed'] = {};
  for (const split of ASEN_SPLITS) {
    const file = join(dir, ASEN_FILES.filenames(split));
    if (!(await isFile(file))) continue;
    const indices: number[] = [];
    for (const row of await readLines(file)) {
      if (!isSafeRelativePath(row.text)) {
        throw new CatalogueError(
          file,
          row.line,
          `image path "${row.text}" must be relative and stay inside the dataset folder`,
        );
      }
      let index = indexByPath.get(row.text);
      if (index === undefined) {
        index = products.length;
        indexByPath.set(row.text, index);
        products.push({ id: '', title: '', image: row.text, attributes: {} });
        sources.push({ file, line: row.line });
      }
      let splits = splitsByIndex.get(index);
      if (!splits) splitsByIndex.set(index, (splits = new Set()));
      splits.add(TO_SPLIT[split]);
      indices.push(index);
    }
    listed[split] = { file, indices };
  }
  if (products.length === 0) {
    throw new CatalogueError(
      join(dir, ASEN_FILES.filenames('train')),
      undefined,
      'no filenames_{train,valid,test}.txt with images',
    );
  }
  assignIds(products);
  for (const [index, splits] of splitsByIndex) if (splits.size === 1) products[index].split = [...splits][0];
  return { products, sources, listed };
}

function listFor(load: AsenLoad, split: AsenSplit, referrer: string): ImageList {
  const list = load.listed[split];
  if (!list)
    throw new CatalogueError(referrer, undefined, `needs ${ASEN_FILES.filenames(split)}, which is missing`);
  return list;
}

/** An (image, attribute, value) triple of a label or retrieval file must point into the lists and meta.json. */
function checkLabel(
  load: AsenLoad,
  at: { file: string; line: number },
  list: ImageList,
  img: number,
  attr: number,
  value: number,
): void {
  const { file, line } = at;
  if (img >= list.indices.length) {
    throw new CatalogueError(
      file,
      line,
      `image index ${img} out of range (${basename(list.file)} has ${list.indices.length} images)`,
    );
  }
  if (attr >= load.conditions.length) {
    throw new CatalogueError(
      file,
      line,
      `unknown condition: attribute index ${attr} out of range (meta.json lists ${load.conditions.length})`,
    );
  }
  if (value >= load.meta.values[attr].length) {
    throw new CatalogueError(
      file,
      line,
      `value index ${value} out of range for ${load.meta.attributes[attr]} (${load.meta.values[attr].length} values)`,
    );
  }
}

/** label_train.txt: "img attr value [attr value ...]" rows labelling images of the train list. */
async function readLabels(load: AsenLoad, labelsFile: string): Promise<void> {
  if (!(await isFile(labelsFile))) return;
  const list = listFor(load, 'train', labelsFile);
  for (const row of await readLines(labelsFile)) {
    const fields = parseIndexRow(
      row,
      labelsFile,
      (n) => n >= 3 && n % 2 === 1,
      '"img attr value [attr value ...]"',
    );
    for (let k = 1; k < fields.length; k += 2) {
      checkLabel(load, { file: labelsFile, line: row.line }, list, fields[0], fields[k], fields[k + 1]);
      const product = load.products[list.indices[fields[0]]];
      addLabel(product.attributes, load.conditions[fields[k]], load.meta.values[fields[k]][fields[k + 1]]);
    }
  }
}

/** query_/candidate_{valid,test}.txt: the retrieval protocol, whose rows also label their images. */
async function readRetrieval(
  load: AsenLoad,
  dir: string,
): Promise<Partial<Record<'val' | 'test', RetrievalSet>>> {
  const retrieval: Partial<Record<'val' | 'test', RetrievalSet>> = {};
  for (const split of ['valid', 'test'] as const) {
    for (const role of ['query', 'candidate'] as const) {
      const file = join(dir, ASEN_FILES.retrieval(role, split));
      if (!(await isFile(file))) continue;
      const list = listFor(load, split, file);
      const set = (retrieval[TO_SPLIT[split] as 'val' | 'test'] ??= { queries: [], candidates: [] });
      for (const row of await readLines(file)) {
        const [img, attr, value] = parseIndexRow(row, file, 3, '"img attr value" as integer indices');
        checkLabel(load, { file, line: row.line }, list, img, attr, value);
        const product = list.indices[img];
        const label = load.meta.values[attr][value];
        addLabel(load.products[product].attributes, load.conditions[attr], label);
        (role === 'query' ? set.queries : set.candidates).push({ product, condition: attr, value: label });
      }
    }
  }
  return retrieval;
}

/** Upstream identifies an image by its file name without extension; fall back to the path when those collide. */
function assignIds(products: Product[]): void {
  const stems = products.map((product) => posix.basename(product.image).replace(/\.[^.]*$/, ''));
  const counts = new Map<string, number>();
  for (const stem of stems) counts.set(stem, (counts.get(stem) ?? 0) + 1);
  products.forEach((product, index) => {
    const stem = stems[index];
    product.id =
      stem !== '' && counts.get(stem) === 1 && !/\s/.test(stem)
        ? stem
        : product.image.replace(/\.[^./]*$/, '').replace(/[\s/\\]+/g, '__');
  });
}
