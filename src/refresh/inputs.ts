/**
 * What a refresh reads before deciding anything: the published version (and the model it was built from) and the
 * catalogue as it is now, with every image that has to be embedded checked first so that a broken file stops the
 * run with the products named instead of half-way through a build.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeImage, type Catalogue } from '../catalogue/index.ts';
import { fingerprintProducts, type IndexBundle, type IndexedProduct } from '../index/index.ts';
import { readCheckpoint, type Checkpoint } from '../checkpoint/index.ts';
import { REFRESH_EXIT, RefreshError } from './types.ts';

/** Parallel file checks and decodes (sharp and fs run on libuv's pool of 4 threads). */
const CONCURRENCY = 8;

/** Run `check` over `items`, collecting every failure (not only the first). */
async function failuresOf<T>(
  items: readonly T[],
  check: (item: T) => Promise<void>,
): Promise<{ item: T; error: Error }[]> {
  const failures: { item: T; error: Error }[] = [];
  for (let start = 0; start < items.length; start += CONCURRENCY) {
    const chunk = items.slice(start, start + CONCURRENCY);
    const results = await Promise.allSettled(chunk.map(check));
    results.forEach((result, i) => {
      if (result.status === 'rejected') failures.push({ item: chunk[i], error: result.reason as Error });
    });
  }
  return failures;
}

function refuseImages(failures: { item: { id: string }; error: Error }[], what: string): never {
  const shown = failures.slice(0, 20).map((f) => `${f.item.id} (${f.error.message})`);
  const more = failures.length > shown.length ? `, and ${failures.length - shown.length} more` : '';
  throw new RefreshError(
    REFRESH_EXIT.badInput,
    `${failures.length} product image(s) ${what}: ${shown.join('; ')}${more}. Nothing was published`,
    failures.map((f) => f.item.id),
  );
}

/** Fingerprints of every product; missing image files are reported all at once, by product. */
export async function fingerprintCatalogue(catalogue: Catalogue): Promise<IndexedProduct[]> {
  const missing = await failuresOf(catalogue.products, async (product) => {
    const info = await stat(join(catalogue.root, product.image));
    if (!info.isFile()) throw new Error(`${product.image} is not a file`);
  });
  if (missing.length > 0) refuseImages(missing, 'are missing');
  return fingerprintProducts(catalogue);
}

/** Decode the images of `ids` at `size`; any failure names every product that failed. */
export async function checkDecodes(
  catalogue: Catalogue,
  ids: readonly string[],
  size: number,
): Promise<void> {
  const wanted = new Set(ids);
  const products = catalogue.products.filter((product) => wanted.has(product.id));
  const failures = await failuresOf(products, async (product) => {
    await decodeImage(join(catalogue.root, product.image), size);
  });
  if (failures.length > 0) refuseImages(failures, 'cannot be decoded');
}

export interface ModelFile {
  path: string;
  checkpoint: Checkpoint;
}

/**
 * The model the published version was built from (the gate's reference, and the one that embeds new products when
 * only re-indexing): the checkpoint the version carries, else --from if it holds that very model.
 */
export async function servedModel(served: IndexBundle, from: string | undefined): Promise<ModelFile> {
  const path = served.modelFile ?? from;
  if (!path) {
    throw new RefreshError(
      REFRESH_EXIT.badInput,
      `version ${served.version} does not carry its model (it was indexed before versions recorded one): ` +
        'pass the checkpoint it was built from with --from',
    );
  }
  const checkpoint = await readCheckpoint(path);
  if (checkpoint.modelId !== served.modelId) {
    throw new RefreshError(
      REFRESH_EXIT.badInput,
      `${path} holds model ${checkpoint.modelId?.slice(0, 12)}, but version ${served.version} was built from ` +
        `${served.modelId.slice(0, 12)}: --from must be the served model when the version does not carry it`,
    );
  }
  return { path, checkpoint };
}

/** Where a retrain starts: --from when given (any model of the same architecture), else the served model. */
export async function warmStartSource(served: ModelFile, from: string | undefined): Promise<ModelFile> {
  if (!from || from === served.path) return served;
  return { path: from, checkpoint: await readCheckpoint(from) };
}
