import { join } from 'node:path';
import { isAsenLayout, loadAsenCatalogue } from './asen.ts';
import { isFarfetchLayout, loadFarfetchCatalogue } from './farfetch.ts';
import type { LayoutKind, LayoutResult } from './layout.ts';
import { loadNativeCatalogue, NATIVE_FILES } from './native.ts';
import { mapWithConcurrency } from './pool.ts';
import { CatalogueError, type Catalogue } from './types.ts';
import { isZapposLayout, loadZapposCatalogue } from './zappos.ts';
import { isDirectory, isFile } from './files.ts';

export interface LoadCatalogueOptions {
  /** Skip auto-detection. */
  layout?: LayoutKind;
  /** Check up front that every image file exists (default true), so that training never stops half-way. */
  checkImages?: boolean;
  /** Parallel fs.stat calls while checking images. */
  concurrency?: number;
}

const LOADERS: Record<LayoutKind, (dir: string) => Promise<LayoutResult>> = {
  native: loadNativeCatalogue,
  farfetch: loadFarfetchCatalogue,
  zappos: loadZapposCatalogue,
  asen: loadAsenCatalogue,
};

/** Which layout a folder holds; checked in the order native, Farfetch CSN, ASEN, CSN/Zappos. */
export async function detectLayout(dir: string): Promise<LayoutKind> {
  if (!(await isDirectory(dir))) throw new CatalogueError(dir, undefined, 'catalogue folder not found');
  if (await isFile(join(dir, NATIVE_FILES.products))) return 'native';
  if (await isFarfetchLayout(dir)) return 'farfetch';
  if (await isAsenLayout(dir)) return 'asen';
  if (await isZapposLayout(dir)) return 'zappos';
  throw new CatalogueError(
    dir,
    undefined,
    'no supported catalogue layout found: expected products.jsonl (native), product_ids.txt + conditions.txt ' +
      '(Farfetch CSN), filenames_{train,valid,test}.txt + meta.json (ASEN) or *_tripletlist_*.txt + filenames.json ' +
      '(CSN/Zappos); see data/README.md',
  );
}

/** Load a catalogue in any supported layout, validated, with every image checked to exist. */
export async function loadCatalogue(dir: string, options: LoadCatalogueOptions = {}): Promise<Catalogue> {
  const layout = options.layout ?? (await detectLayout(dir));
  const result = await LOADERS[layout](dir);
  if (options.checkImages !== false) await verifyImages(result, options.concurrency);
  return result.catalogue;
}

/** Stat every image (in parallel) and report the first missing one at the line that declared it. */
export async function verifyImages({ catalogue, sources }: LayoutResult, concurrency = 64): Promise<void> {
  const present = await mapWithConcurrency(catalogue.products, concurrency, (product) =>
    isFile(join(catalogue.root, product.image)),
  );
  const missing = present.flatMap((ok, index) => (ok ? [] : [index]));
  if (missing.length === 0) return;
  const first = missing[0];
  const product = catalogue.products[first];
  const source = sources[first];
  const more =
    missing.length > 1
      ? ` (and ${missing.length - 1} more of ${catalogue.products.length} images missing)`
      : '';
  throw new CatalogueError(
    source.file,
    source.entry ? undefined : source.line,
    `${source.entry ? `entry ${source.line}: ` : ''}image file not found for product ${product.id}: ${join(catalogue.root, product.image)}${more}`,
  );
}
