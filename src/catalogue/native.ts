import { copyFile, constants, mkdir, readdir, symlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../util/atomic.ts';
import { FieldError, FieldSchemaBuilder, parseFields } from './fields.ts';
import { mapWithConcurrency } from './pool.ts';
import { isValidConditionName, isValidProductId, readLines, type NumberedLine } from './text.ts';
import {
  CatalogueError,
  SPLITS,
  type Catalogue,
  type Product,
  type RetrievalItem,
  type RetrievalSet,
  type Split,
  type Triplet,
} from './types.ts';
import type { LayoutResult, SourceRef } from './layout.ts';

export const NATIVE_FILES = {
  conditions: 'conditions.txt',
  products: 'products.jsonl',
  triplets: 'triplets',
  retrieval: 'retrieval',
} as const;

const RETRIEVAL_SPLITS = ['val', 'test'] as const;
const RETRIEVAL_ROLES = ['query', 'candidate'] as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Image paths are relative to the catalogue root and may not leave it. */
export function isSafeRelativePath(path: string): boolean {
  if (path === '' || isAbsolute(path) || /^[A-Za-z]:/.test(path) || path.includes('\\')) return false;
  return path.split('/').every((segment) => segment !== '..' && segment !== '');
}

export async function readConditions(path: string): Promise<string[]> {
  const conditions: string[] = [];
  const seen = new Map<string, number>();
  for (const row of await readLines(path)) {
    if (!isValidConditionName(row.text)) {
      throw new CatalogueError(
        path,
        row.line,
        `invalid condition name "${row.text}": use letters, digits, "_", "-" or "." (no spaces)`,
      );
    }
    const earlier = seen.get(row.text);
    if (earlier !== undefined) {
      throw new CatalogueError(
        path,
        row.line,
        `duplicate condition "${row.text}" (first on line ${earlier})`,
      );
    }
    seen.set(row.text, row.line);
    conditions.push(row.text);
  }
  if (conditions.length === 0) throw new CatalogueError(path, undefined, 'no conditions listed');
  return conditions;
}

function parseProduct(value: unknown, conditions: ReadonlySet<string>, file: string, line: number): Product {
  const fail = (message: string): never => {
    throw new CatalogueError(file, line, message);
  };
  if (!isRecord(value)) return fail('expected a JSON object per line');
  const { id, title, image, attributes, split, fields } = value;
  if (typeof id !== 'string' || !isValidProductId(id)) {
    return fail(`"id" must be a non-empty string without spaces or slashes, got ${JSON.stringify(id)}`);
  }
  if (title !== undefined && typeof title !== 'string') fail(`"title" of product ${id} must be a string`);
  if (typeof image !== 'string' || !isSafeRelativePath(image)) {
    return fail(
      `"image" of product ${id} must be a relative path inside the catalogue (forward slashes, no ".."), got ${JSON.stringify(image)}`,
    );
  }
  const parsedAttributes: Record<string, string[]> = {};
  if (attributes !== undefined) {
    if (!isRecord(attributes)) return fail(`"attributes" of product ${id} must be an object`);
    for (const [condition, labels] of Object.entries(attributes)) {
      if (!conditions.has(condition)) {
        fail(
          `unknown condition "${condition}" in product ${id} (conditions.txt lists: ${[...conditions].join(', ')})`,
        );
      }
      const list = typeof labels === 'string' ? [labels] : labels;
      if (!Array.isArray(list) || !list.every((label) => typeof label === 'string' && label.trim() !== '')) {
        fail(`labels of "${condition}" in product ${id} must be a non-empty string or a list of them`);
      }
      parsedAttributes[condition] = [...new Set((list as string[]).map((label) => label.trim()))];
    }
  }
  if (split !== undefined && !SPLITS.includes(split as Split)) {
    fail(`"split" of product ${id} must be one of ${SPLITS.join(', ')}, got ${JSON.stringify(split)}`);
  }
  const product: Product = {
    id,
    title: (title as string | undefined) ?? id,
    image,
    attributes: parsedAttributes,
  };
  if (split !== undefined) product.split = split as Split;
  if (fields !== undefined) {
    try {
      product.fields = parseFields(fields, conditions, id);
    } catch (error) {
      if (error instanceof FieldError) fail(error.message);
      throw error;
    }
  }
  return product;
}

export async function listFiles(dir: string): Promise<string[] | undefined> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isFile())
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Read a catalogue in the native layout (see data/README.md). */
export async function loadNativeCatalogue(dir: string): Promise<LayoutResult> {
  const root = resolve(dir);
  const conditions = await readConditions(join(dir, NATIVE_FILES.conditions));
  const conditionSet = new Set(conditions);
  const productsFile = join(dir, NATIVE_FILES.products);
  const products: Product[] = [];
  const sources: SourceRef[] = [];
  const indexById = new Map<string, number>();
  const fieldSchema = new FieldSchemaBuilder();
  for (const row of await readLines(productsFile)) {
    let value: unknown;
    try {
      value = JSON.parse(row.text);
    } catch (error) {
      throw new CatalogueError(productsFile, row.line, `malformed JSON: ${(error as Error).message}`);
    }
    const product = parseProduct(value, conditionSet, productsFile, row.line);
    const earlier = indexById.get(product.id);
    if (earlier !== undefined) {
      throw new CatalogueError(
        productsFile,
        row.line,
        `duplicate product id "${product.id}" (first on line ${sources[earlier].line})`,
      );
    }
    try {
      fieldSchema.add(product.fields, row.line, product.id);
    } catch (error) {
      if (error instanceof FieldError) throw new CatalogueError(productsFile, row.line, error.message);
      throw error;
    }
    indexById.set(product.id, products.length);
    products.push(product);
    sources.push({ file: productsFile, line: row.line });
  }
  if (products.length === 0) throw new CatalogueError(productsFile, undefined, 'no products listed');

  const catalogue: Catalogue = { root, name: basename(root), conditions, products };
  const fields = fieldSchema.schema();
  if (Object.keys(fields).length > 0) catalogue.fields = fields;
  const triplets = await loadNativeTriplets(join(dir, NATIVE_FILES.triplets), conditions, indexById);
  if (triplets) catalogue.triplets = triplets;
  const retrieval = await loadNativeRetrieval(join(dir, NATIVE_FILES.retrieval), conditions, indexById);
  if (retrieval) catalogue.retrieval = retrieval;
  return { catalogue, sources };
}

/** Reads the row of one triplet file into product indices (anchor, far, close), throwing a located error. */
export type TripletRowParser = (row: NumberedLine, file: string) => [number, number, number];

/**
 * Reads a folder of `{condition}_{train|val|test}.txt` triplet files, the shape shared by the native and Farfetch
 * layouts; only the row format differs, so each layout passes its own parser.
 */
export async function readTripletFolder(
  dir: string,
  conditions: readonly string[],
  conditionsFile: string,
  parseRow: TripletRowParser,
): Promise<Catalogue['triplets']> {
  const files = await listFiles(dir);
  if (!files) return undefined;
  const result: Partial<Record<Split, Triplet[]>> = {};
  for (const name of files.filter((file) => file.endsWith('.txt'))) {
    const file = join(dir, name);
    const match = /^(.+)_(train|val|test)\.txt$/.exec(name);
    if (!match) {
      throw new CatalogueError(
        file,
        undefined,
        'unexpected triplet file name: expected {condition}_{train|val|test}.txt',
      );
    }
    const condition = conditions.indexOf(match[1]);
    if (condition < 0) {
      throw new CatalogueError(file, undefined, `unknown condition "${match[1]}" (not in ${conditionsFile})`);
    }
    const list = (result[match[2] as Split] ??= []);
    for (const row of await readLines(file)) {
      const [anchor, far, close] = parseRow(row, file);
      list.push({ anchor, far, close, condition });
    }
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

function loadNativeTriplets(
  dir: string,
  conditions: readonly string[],
  indexById: ReadonlyMap<string, number>,
): Promise<Catalogue['triplets']> {
  return readTripletFolder(dir, conditions, NATIVE_FILES.conditions, (row, file) => {
    const fields = row.text.split(/\s+/);
    if (fields.length !== 3) {
      throw new CatalogueError(
        file,
        row.line,
        `malformed row "${row.text}": expected "anchor_id far_id close_id"`,
      );
    }
    const [anchor, far, close] = fields.map((id) => {
      const index = indexById.get(id);
      if (index === undefined) throw new CatalogueError(file, row.line, `unknown product id "${id}"`);
      return index;
    });
    return [anchor, far, close];
  });
}

async function loadNativeRetrieval(
  dir: string,
  conditions: readonly string[],
  indexById: ReadonlyMap<string, number>,
): Promise<Catalogue['retrieval']> {
  const files = await listFiles(dir);
  if (!files) return undefined;
  const result: Partial<Record<'val' | 'test', RetrievalSet>> = {};
  for (const name of files.filter((file) => file.endsWith('.jsonl'))) {
    const file = join(dir, name);
    const match = /^(query|candidate)_(val|test)\.jsonl$/.exec(name);
    if (!match) {
      throw new CatalogueError(
        file,
        undefined,
        'unexpected retrieval file name: expected {query|candidate}_{val|test}.jsonl',
      );
    }
    const set = (result[match[2] as 'val' | 'test'] ??= { queries: [], candidates: [] });
    const items = match[1] === 'query' ? set.queries : set.candidates;
    for (const row of await readLines(file)) {
      let value: unknown;
      try {
        value = JSON.parse(row.text);
      } catch (error) {
        throw new CatalogueError(file, row.line, `malformed JSON: ${(error as Error).message}`);
      }
      if (!isRecord(value) || typeof value.product !== 'string' || typeof value.condition !== 'string') {
        throw new CatalogueError(
          file,
          row.line,
          'expected {"product": id, "condition": name, "value": label}',
        );
      }
      if (typeof value.value !== 'string' || value.value === '') {
        throw new CatalogueError(file, row.line, '"value" must be a non-empty string');
      }
      const product = indexById.get(value.product);
      if (product === undefined)
        throw new CatalogueError(file, row.line, `unknown product id "${value.product}"`);
      const condition = conditions.indexOf(value.condition);
      if (condition < 0) throw new CatalogueError(file, row.line, `unknown condition "${value.condition}"`);
      items.push({ product, condition, value: value.value });
    }
  }
  return Object.keys(result).length > 0 ? result : undefined;
}

export type ImageTransfer = 'copy' | 'symlink';

export interface WriteCatalogueOptions {
  /** How images reach the new directory when it differs from the catalogue root (default copy). */
  images?: ImageTransfer;
  /** Parallel file copies. */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Write `catalogue` in the native layout to `outDir`. Text files are written atomically and products.jsonl goes
 * last, so a directory with a products.jsonl is always complete.
 */
export async function writeCatalogue(
  catalogue: Catalogue,
  outDir: string,
  options: WriteCatalogueOptions = {},
): Promise<void> {
  const out = resolve(outDir);
  checkWritable(catalogue, out);
  await mkdir(out, { recursive: true });
  if (out !== resolve(catalogue.root)) await transferImages(catalogue, out, options);
  await writeTripletLists(catalogue, out);
  await writeRetrievalLists(catalogue, out);
  await writeFileAtomic(
    join(out, NATIVE_FILES.conditions),
    catalogue.conditions.map((c) => `${c}\n`).join(''),
  );
  const productLines = catalogue.products.map((product) => {
    const record: Record<string, unknown> = {
      id: product.id,
      title: product.title,
      image: product.image,
      attributes: product.attributes,
    };
    if (product.split) record.split = product.split;
    if (product.fields && Object.keys(product.fields).length > 0) record.fields = product.fields;
    return `${JSON.stringify(record)}\n`;
  });
  await writeFileAtomic(join(out, NATIVE_FILES.products), productLines.join(''));
}

/** Names, ids and image paths that the native layout cannot hold are refused before anything is written. */
function checkWritable(catalogue: Catalogue, out: string): void {
  for (const condition of catalogue.conditions) {
    if (!isValidConditionName(condition)) {
      throw new CatalogueError(out, undefined, `condition "${condition}" cannot be written: invalid name`);
    }
  }
  const seen = new Set<string>();
  for (const product of catalogue.products) {
    if (!isValidProductId(product.id)) {
      throw new CatalogueError(
        out,
        undefined,
        `product id "${product.id}" cannot be written: spaces or slashes`,
      );
    }
    if (seen.has(product.id))
      throw new CatalogueError(out, undefined, `duplicate product id "${product.id}"`);
    seen.add(product.id);
    if (!isSafeRelativePath(product.image)) {
      throw new CatalogueError(
        out,
        undefined,
        `image path "${product.image}" of ${product.id} leaves the catalogue`,
      );
    }
  }
}

/** Copy (or symlink) every product image from the catalogue's root to the same relative path under `out`. */
async function transferImages(
  catalogue: Catalogue,
  out: string,
  options: WriteCatalogueOptions,
): Promise<void> {
  const transfer = options.images ?? 'copy';
  let done = 0;
  const made = new Set<string>();
  await mapWithConcurrency(catalogue.products, options.concurrency ?? 16, async (product) => {
    const source = join(catalogue.root, product.image);
    const target = join(out, product.image);
    const targetDir = dirname(target);
    if (!made.has(targetDir)) {
      await mkdir(targetDir, { recursive: true });
      made.add(targetDir);
    }
    if (transfer === 'symlink') {
      await symlink(relative(targetDir, source), target);
    } else {
      await copyFile(source, target, constants.COPYFILE_FICLONE);
    }
    options.onProgress?.(++done, catalogue.products.length);
  });
}

async function writeTripletLists(catalogue: Catalogue, out: string): Promise<void> {
  const ids = catalogue.products.map((product) => product.id);
  for (const split of SPLITS) {
    const bySplit = catalogue.triplets?.[split] ?? [];
    for (let c = 0; c < catalogue.conditions.length; c++) {
      const rows = bySplit.filter((triplet) => triplet.condition === c);
      if (rows.length === 0) continue;
      const text = rows.map((t) => `${ids[t.anchor]} ${ids[t.far]} ${ids[t.close]}\n`).join('');
      await writeFileAtomic(
        join(out, NATIVE_FILES.triplets, `${catalogue.conditions[c]}_${split}.txt`),
        text,
      );
    }
  }
}

async function writeRetrievalLists(catalogue: Catalogue, out: string): Promise<void> {
  const ids = catalogue.products.map((product) => product.id);
  for (const split of RETRIEVAL_SPLITS) {
    const set = catalogue.retrieval?.[split];
    if (!set) continue;
    for (const role of RETRIEVAL_ROLES) {
      const items: RetrievalItem[] = role === 'query' ? set.queries : set.candidates;
      const text = items
        .map((item) =>
          JSON.stringify({
            product: ids[item.product],
            condition: catalogue.conditions[item.condition],
            value: item.value,
          }),
        )
        .map((line) => `${line}\n`)
        .join('');
      await writeFileAtomic(join(out, NATIVE_FILES.retrieval, `${role}_${split}.jsonl`), text);
    }
  }
}
