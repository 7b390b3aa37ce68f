import { basename, join, resolve } from 'node:path';
import {
  addLabel,
  assignSplitsFromTriplets,
  titleFromAttributes,
  type LayoutResult,
  type SourceRef,
} from './layout.ts';
import { readConditions, readTripletFolder } from './native.ts';
import { isValidProductId, parseCsvRecord, parseIndexRow, readLines } from './text.ts';
import { CatalogueError, type Catalogue, type Product } from './types.ts';
import { pathExists } from './files.ts';

/**
 * The layout of gabrielfu/pytorch-csn-farfetch (data/farfetch):
 *   conditions.txt          one condition per line, written sorted (collar, color, fabric, hem, length, pattern, sleeve)
 *   product_ids.txt         one Farfetch product id per line; the 0-based line index is the product's integer index
 *   product_labels.csv      header product_id,label,condition; one row per (product, label)
 *   triplets/{condition}_{train,val,test}.txt   rows "anchor negative positive" as integer indices
 *   images/{first two characters of id}/{id}.jpg
 */
export const FARFETCH_FILES = {
  conditions: 'conditions.txt',
  productIds: 'product_ids.txt',
  labels: 'product_labels.csv',
  triplets: 'triplets',
} as const;

export function farfetchImagePath(id: string): string {
  return `images/${id.slice(0, 2)}/${id}.jpg`;
}

export async function isFarfetchLayout(dir: string): Promise<boolean> {
  return (
    (await pathExists(join(dir, FARFETCH_FILES.productIds))) &&
    (await pathExists(join(dir, FARFETCH_FILES.conditions)))
  );
}

export async function loadFarfetchCatalogue(dir: string): Promise<LayoutResult> {
  const root = resolve(dir);
  const conditions = await readConditions(join(dir, FARFETCH_FILES.conditions));
  const idsFile = join(dir, FARFETCH_FILES.productIds);
  const { products, sources, indexById } = await readProductIds(idsFile);
  const labelsFile = join(dir, FARFETCH_FILES.labels);
  if (await pathExists(labelsFile)) await readLabels(labelsFile, conditions, products, indexById);
  for (const product of products) {
    product.title = titleFromAttributes(conditions, product.attributes, product.id);
  }

  const catalogue: Catalogue = { root, name: basename(root), conditions, products };
  const triplets = await loadIndexTriplets(
    join(dir, FARFETCH_FILES.triplets),
    conditions,
    products.length,
    idsFile,
  );
  if (triplets) {
    catalogue.triplets = triplets;
    assignSplitsFromTriplets(catalogue);
  }
  return { catalogue, sources };
}

/** product_ids.txt: one product per line, in the order triplet files refer to them. */
async function readProductIds(
  idsFile: string,
): Promise<{ products: Product[]; sources: SourceRef[]; indexById: Map<string, number> }> {
  const products: Product[] = [];
  const sources: SourceRef[] = [];
  const indexById = new Map<string, number>();
  for (const row of await readLines(idsFile)) {
    const id = row.text;
    if (!isValidProductId(id)) throw new CatalogueError(idsFile, row.line, `malformed product id "${id}"`);
    const earlier = indexById.get(id);
    if (earlier !== undefined) {
      throw new CatalogueError(
        idsFile,
        row.line,
        `duplicate product id "${id}" (first on line ${sources[earlier].line})`,
      );
    }
    indexById.set(id, products.length);
    products.push({ id, title: id, image: farfetchImagePath(id), attributes: {} });
    sources.push({ file: idsFile, line: row.line });
  }
  if (products.length === 0) throw new CatalogueError(idsFile, undefined, 'no product ids listed');
  return { products, sources, indexById };
}

/** product_labels.csv: product_id, label and condition columns (any order, named by the header). */
async function readLabels(
  labelsFile: string,
  conditions: readonly string[],
  products: Product[],
  indexById: Map<string, number>,
): Promise<void> {
  const rows = await readLines(labelsFile);
  const header = rows.length > 0 ? parseCsvRecord(rows[0].text, labelsFile, rows[0].line) : [];
  const column = (name: string): number => {
    const index = header.indexOf(name);
    if (index < 0)
      throw new CatalogueError(labelsFile, 1, `header must name product_id, label and condition`);
    return index;
  };
  const [idColumn, labelColumn, conditionColumn] = [
    column('product_id'),
    column('label'),
    column('condition'),
  ];
  for (const row of rows.slice(1)) {
    const fields = parseCsvRecord(row.text, labelsFile, row.line);
    if (fields.length !== header.length) {
      throw new CatalogueError(
        labelsFile,
        row.line,
        `malformed row: expected ${header.length} fields, got ${fields.length}`,
      );
    }
    const [id, label, condition] = [fields[idColumn], fields[labelColumn], fields[conditionColumn]];
    const index = indexById.get(id);
    if (index === undefined) {
      throw new CatalogueError(
        labelsFile,
        row.line,
        `unknown product id "${id}" (not in ${FARFETCH_FILES.productIds})`,
      );
    }
    if (!conditions.includes(condition)) {
      throw new CatalogueError(
        labelsFile,
        row.line,
        `unknown condition "${condition}" (not in ${FARFETCH_FILES.conditions})`,
      );
    }
    if (label === '') throw new CatalogueError(labelsFile, row.line, 'empty label');
    addLabel(products[index].attributes, condition, label);
  }
}

function loadIndexTriplets(
  dir: string,
  conditions: readonly string[],
  productCount: number,
  listName: string,
): Promise<Catalogue['triplets']> {
  return readTripletFolder(dir, conditions, FARFETCH_FILES.conditions, (row, file) => {
    const [anchor, far, close] = parseIndexRow(row, file, 3, '"anchor far close" as integer indices');
    for (const index of [anchor, far, close]) {
      if (index >= productCount) {
        throw new CatalogueError(
          file,
          row.line,
          `triplet index ${index} out of range (${listName} has ${productCount} products, indices 0-${productCount - 1})`,
        );
      }
    }
    return [anchor, far, close];
  });
}
