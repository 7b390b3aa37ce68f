/**
 * Score the candidate and the served model on the same held-out test triplets of the updated catalogue. The
 * triplets are drawn once, under the candidate's conditions, exactly as the trainer draws its test split (same
 * seed and count, so they are the trainer's own test triplets); the served model answers those of them whose
 * condition it knows, with the condition renumbered to its own mask order. Only the products the triplets touch are
 * decoded.
 */
import {
  ImageCache,
  restrictCatalogue,
  splitTriplets,
  type Catalogue,
  type Triplet,
} from '../catalogue/index.ts';
import type { AccuracySummary } from '../checkpoint/index.ts';
import { embedProducts, productsOf, tripletAccuracy } from '../eval/index.ts';
import type { SimilarityModel } from '../model/index.ts';

export interface SharedScores {
  triplets: number;
  candidate: AccuracySummary;
  served: AccuracySummary;
}

/** The catalogue cut down to `products` (indices), with triplets renumbered to match. */
function subset(
  catalogue: Catalogue,
  products: number[],
  triplets: Triplet[],
): { catalogue: Catalogue; triplets: Triplet[] } {
  const position = new Map(products.map((product, i) => [product, i]));
  const at = (product: number) => position.get(product)!;
  return {
    catalogue: { ...catalogue, products: products.map((i) => catalogue.products[i]), triplets: undefined },
    triplets: triplets.map((t) => ({ ...t, anchor: at(t.anchor), far: at(t.far), close: at(t.close) })),
  };
}

/** Accuracy of `model` on `triplets` whose conditions index `conditions`; triplets of unknown conditions are skipped. */
async function score(
  model: SimilarityModel,
  catalogue: Catalogue,
  triplets: Triplet[],
  conditions: readonly string[],
  images: Map<number, ImageCache>,
  margin: number,
): Promise<AccuracySummary> {
  const own = model.config.conditions;
  const renumbered = triplets.flatMap((t) => {
    const index = own.indexOf(conditions[t.condition]);
    return index < 0 ? [] : [{ ...t, condition: index }];
  });
  const size = model.config.imageSize;
  let cache = images.get(size);
  if (!cache) {
    cache = await ImageCache.load(catalogue, size);
    images.set(size, cache);
  }
  const vectors = await embedProducts(model, cache, productsOf(renumbered));
  return tripletAccuracy(vectors, renumbered, own, margin);
}

export async function scoreOnSharedTriplets(
  catalogue: Catalogue,
  conditions: readonly string[],
  models: { candidate: SimilarityModel; served: SimilarityModel },
  sampling: { count: number; seed: number; margin: number },
): Promise<SharedScores> {
  const restricted = restrictCatalogue(catalogue, conditions);
  const all = splitTriplets(restricted, 'test', sampling.count, sampling.seed);
  const part = subset(restricted, productsOf(all), all);
  const images = new Map<number, ImageCache>();
  const candidate = await score(
    models.candidate,
    part.catalogue,
    part.triplets,
    conditions,
    images,
    sampling.margin,
  );
  const served = await score(
    models.served,
    part.catalogue,
    part.triplets,
    conditions,
    images,
    sampling.margin,
  );
  return { triplets: all.length, candidate, served };
}
