/**
 * Pools of products whose label mix matches the triplets mode's. The triplets sampler picks each anchor label
 * uniformly among a split's labels held by two or more products; a uniformly random pool of 96 products rarely
 * holds two products of a rare label, so pool batches under-sampled rare labels as anchors (Zipf-distributed
 * labels: the rarest got 2.5 % of anchors in pool mode against about 8 % in val and test). Seeding each pool with
 * two holders of every anchor label (of a random subset when they do not fit in half the pool) and filling the
 * rest at random restores the triplets mode's mix (test/train.pool-mix.test.ts).
 */
import type { Rng } from '../util/rng.ts';

/** Per condition: label → the products holding it, only labels with two or more holders. */
export type AnchorHolders = ReadonlyArray<ReadonlyMap<string, readonly number[]>>;

/** Anchor labels and their holders among `products`, per condition (`labels[condition][product]`). */
export function anchorHolders(
  products: readonly number[],
  labels: ReadonlyArray<ReadonlyArray<readonly string[] | undefined>>,
): AnchorHolders {
  return labels.map((byProduct) => {
    const holders = new Map<string, number[]>();
    for (const product of products) {
      for (const label of byProduct[product] ?? []) {
        let list = holders.get(label);
        if (!list) holders.set(label, (list = []));
        list.push(product);
      }
    }
    for (const [label, list] of holders) if (list.length < 2) holders.delete(label);
    return holders;
  });
}

/**
 * `poolSize` distinct products of `products`: two random holders of each anchor label first (labels in random
 * order, while they fit in half the pool), then random others.
 */
export function drawMixedPool(
  products: readonly number[],
  holders: AnchorHolders,
  poolSize: number,
  rng: Rng,
): number[] {
  if (products.length <= poolSize) return [...products];
  const chosen = new Set<number>();
  const pairs = holders.flatMap((byLabel) => [...byLabel.values()]);
  const seedBudget = Math.floor(poolSize / 2);
  for (const list of rng.shuffle(pairs)) {
    if (chosen.size + 2 > seedBudget) break;
    const first = rng.int(0, list.length - 1);
    let second = rng.int(0, list.length - 2);
    if (second >= first) second++;
    chosen.add(list[first]);
    chosen.add(list[second]);
  }
  for (const product of rng.shuffle([...products])) {
    if (chosen.size >= poolSize) break;
    chosen.add(product);
  }
  return [...chosen];
}
