/**
 * The candidate and the served model answer the same held-out test triplets of the updated catalogue. The
 * triplets are drawn once, under the candidate's conditions, from the test split the trainer holds out (its
 * products never train either model) with the run's seed; the served model answers those of them whose
 * condition it knows, with the condition renumbered to its own mask order. Each model's answer is kept per triplet,
 * for the gate's paired comparison. Only the products the triplets touch are decoded.
 */
import {
  ImageCache,
  restrictCatalogue,
  splitTriplets,
  type Catalogue,
  type Triplet,
} from '../catalogue/index.ts';
import { embedProducts, productsOf, tripletAccuracy } from '../eval/index.ts';
import type { SimilarityModel } from '../model/index.ts';

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

/**
 * Whether `model` answers each of `triplets` right (their conditions index `conditions`); null for a triplet whose
 * condition the model does not know. The rule is the eval stage's (tripletAccuracy of the triplet alone).
 */
async function answers(
  model: SimilarityModel,
  catalogue: Catalogue,
  triplets: Triplet[],
  conditions: readonly string[],
  images: Map<number, ImageCache>,
): Promise<(boolean | null)[]> {
  const own = model.config.conditions;
  const renumbered = triplets.map((t) => {
    const index = own.indexOf(conditions[t.condition]);
    return index < 0 ? null : { ...t, condition: index };
  });
  const known = renumbered.filter((t): t is Triplet => t !== null);
  const size = model.config.imageSize;
  let cache = images.get(size);
  if (!cache) {
    cache = await ImageCache.load(catalogue, size);
    images.set(size, cache);
  }
  const vectors = await embedProducts(model, cache, productsOf(known));
  return renumbered.map((t) => (t === null ? null : tripletAccuracy(vectors, [t], own).overall === 1));
}

/** Both models' answers to the same test triplets of the updated catalogue. */
export interface SharedAnswers {
  /** The candidate's conditions, which the triplets' `condition` indexes. */
  conditions: readonly string[];
  triplets: Triplet[];
  candidate: boolean[];
  /** null where the served model does not know the triplet's condition (a new condition). */
  served: (boolean | null)[];
}

export async function answerSharedTriplets(
  catalogue: Catalogue,
  conditions: readonly string[],
  models: { candidate: SimilarityModel; served: SimilarityModel },
  sampling: { count: number; seed: number },
): Promise<SharedAnswers> {
  const restricted = restrictCatalogue(catalogue, conditions);
  const all = splitTriplets(restricted, { split: 'test', count: sampling.count }, sampling.seed);
  const part = subset(restricted, productsOf(all), all);
  const images = new Map<number, ImageCache>();
  const candidate = await answers(models.candidate, part.catalogue, part.triplets, conditions, images);
  const served = await answers(models.served, part.catalogue, part.triplets, conditions, images);
  return { conditions, triplets: all, candidate: candidate.map((right) => right === true), served };
}
