import { readFile, readdir } from 'node:fs/promises';
import { basename, join, posix, resolve } from 'node:path';
import { assignSplitsFromTriplets, type LayoutResult, type SourceRef } from './layout.ts';
import { isSafeRelativePath } from './native.ts';
import { isValidConditionName, parseIndexRow, readLines, splitLines } from './text.ts';
import { CatalogueError, type Catalogue, type Product, type Split, type Triplet } from './types.ts';
import { isDirectory, isFile } from './files.ts';

/**
 * The layout of andreasveit/conditional-similarity-networks (after `python get_data.py`, under data/):
 *   filenames.json        despite the extension, a text file with one image path per line; line i (0-based) is image i
 *   tripletlists/{condition}_tripletlist_{train,val,test}.txt   rows "a b c": a is more similar to c than to b,
 *                         read upstream as (anchor, far, close); conditions class, closure, gender, heel
 *   ut-zap50k-images/     the images; paths in filenames.json are relative to this folder
 * Also accepted: the triplet lists directly in the folder, filenames.txt, or filenames.json holding a JSON array.
 */
export const ZAPPOS_FILES = {
  filenames: ['filenames.json', 'filenames.txt'],
  tripletDir: 'tripletlists',
  imageDir: 'ut-zap50k-images',
} as const;

const TRIPLET_LIST = /^(.+)_tripletlist_(train|val|test)\.txt$/;

/** Triplet list files, from tripletlists/ when it exists, else from the folder itself. */
async function findTripletLists(dir: string): Promise<{ folder: string; names: string[] }> {
  for (const folder of [join(dir, ZAPPOS_FILES.tripletDir), dir]) {
    if (!(await isDirectory(folder))) continue;
    const names = (await readdir(folder)).filter((name) => TRIPLET_LIST.test(name)).sort();
    if (names.length > 0) return { folder, names };
  }
  return { folder: dir, names: [] };
}

async function findFilenameList(dir: string): Promise<string | undefined> {
  for (const name of ZAPPOS_FILES.filenames) {
    if (await isFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export async function isZapposLayout(dir: string): Promise<boolean> {
  return (await findTripletLists(dir)).names.length > 0 && (await findFilenameList(dir)) !== undefined;
}

interface ListedImage {
  path: string;
  source: SourceRef;
}

async function readImageList(file: string): Promise<ListedImage[]> {
  const text = await readFile(file, 'utf8');
  if (text.trimStart().startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new CatalogueError(file, undefined, `malformed JSON: ${(error as Error).message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((entry) => typeof entry === 'string')) {
      throw new CatalogueError(file, undefined, 'expected a JSON array of image paths');
    }
    return parsed.map((path, index) => ({
      path: path.trim(),
      source: { file, line: index + 1, entry: true },
    }));
  }
  // Upstream keeps blank lines out of the list; indices count every non-blank line in order.
  return splitLines(text).map((row) => ({ path: row.text, source: { file, line: row.line } }));
}

function titleFromPath(path: string, id: string): string {
  const folders = posix.dirname(path);
  return folders === '.' ? id : `${folders.split('/').join(' / ')} (${id})`;
}

export async function loadZapposCatalogue(dir: string): Promise<LayoutResult> {
  const root = resolve(dir);
  const listFile = await findFilenameList(dir);
  if (!listFile) throw new CatalogueError(join(dir, 'filenames.json'), undefined, 'image list not found');
  const images = await readImageList(listFile);
  if (images.length === 0) throw new CatalogueError(listFile, undefined, 'no image paths listed');
  const prefix = (await isDirectory(join(dir, ZAPPOS_FILES.imageDir))) ? `${ZAPPOS_FILES.imageDir}/` : '';

  // Ids: the file name without extension when those are unique (they are for UT-Zap50K), else the list index.
  const stems = images.map((image) =>
    posix
      .basename(image.path)
      .replace(/\.[^.]*$/, '')
      .replace(/\s+/g, '_'),
  );
  const unique = new Set(stems).size === stems.length && stems.every((stem) => stem !== '');
  const products: Product[] = images.map((image, index) => {
    if (!isSafeRelativePath(image.path)) {
      throw new CatalogueError(
        listFile,
        image.source.line,
        `image path "${image.path}" must be relative and stay inside the catalogue`,
      );
    }
    const id = unique ? stems[index] : String(index);
    return { id, title: titleFromPath(image.path, id), image: `${prefix}${image.path}`, attributes: {} };
  });

  const { folder, names } = await findTripletLists(dir);
  const conditions = [...new Set(names.map((name) => TRIPLET_LIST.exec(name)![1]))].sort();
  for (const condition of conditions) {
    if (!isValidConditionName(condition)) {
      throw new CatalogueError(
        join(folder, `${condition}_tripletlist_train.txt`),
        undefined,
        `invalid condition name`,
      );
    }
  }
  const triplets: Partial<Record<Split, Triplet[]>> = {};
  for (const name of names) {
    const [, conditionName, split] = TRIPLET_LIST.exec(name)!;
    const file = join(folder, name);
    const condition = conditions.indexOf(conditionName);
    const list = (triplets[split as Split] ??= []);
    for (const row of await readLines(file)) {
      // "a b c": a is closer to c than to b.
      const [anchor, far, close] = parseIndexRow(row, file, 3, '"a b c" as integer indices');
      for (const index of [anchor, far, close]) {
        if (index >= products.length) {
          throw new CatalogueError(
            file,
            row.line,
            `triplet index ${index} out of range (${basename(listFile)} has ${products.length} images, indices 0-${products.length - 1})`,
          );
        }
      }
      list.push({ anchor, far, close, condition });
    }
  }
  const catalogue: Catalogue = { root, name: basename(root), conditions, products, triplets };
  assignSplitsFromTriplets(catalogue);
  return { catalogue, sources: images.map((image) => image.source) };
}
