/**
 * Training batches: triplet batches (with random flips) and the pool sampler of the 'pool' batch mode.
 */
import * as tf from '@tensorflow/tfjs';
import {
  anchorHolders,
  drawMixedPool,
  drawAnchorPair,
  type AnchorDraw,
  type AnchorHolders,
  type Catalogue,
  type ImageSource,
  type Triplet,
} from '../catalogue/index.ts';
import type { TripletBatch } from '../model/index.ts';
import type { Rng } from '../util/rng.ts';

/** Mirror image `row` of an NHWC batch left-right, in place. */
export function flipHorizontal(pixels: Float32Array, row: number, size: number): void {
  const rowLength = size * 3;
  const base = row * size * rowLength;
  for (let y = 0; y < size; y++) {
    const line = base + y * rowLength;
    for (let x = 0; x < size >> 1; x++) {
      const left = line + x * 3;
      const right = line + (size - 1 - x) * 3;
      for (let c = 0; c < 3; c++) {
        const keep = pixels[left + c];
        pixels[left + c] = pixels[right + c];
        pixels[right + c] = keep;
      }
    }
  }
}

/**
 * A TripletBatch: every distinct product of the triplets once (in order of first appearance) plus index tensors.
 * With `flipRng`, each distinct image is mirrored with probability 1/2.
 */
export function buildBatch(
  triplets: readonly Triplet[],
  images: ImageSource,
  flipRng?: Rng,
  labelIds?: readonly Int32Array[],
): TripletBatch {
  const rowOf = new Map<number, number>();
  const distinct: number[] = [];
  const row = (product: number) => {
    let r = rowOf.get(product);
    if (r === undefined) {
      r = distinct.length;
      rowOf.set(product, r);
      distinct.push(product);
    }
    return r;
  };
  const anchor = new Int32Array(triplets.length);
  const far = new Int32Array(triplets.length);
  const close = new Int32Array(triplets.length);
  const condition = new Int32Array(triplets.length);
  triplets.forEach((t, i) => {
    anchor[i] = row(t.anchor);
    far[i] = row(t.far);
    close[i] = row(t.close);
    condition[i] = t.condition;
  });
  const pixels = images.batch(distinct);
  if (flipRng) {
    for (let r = 0; r < distinct.length; r++)
      if (flipRng.next() < 0.5) flipHorizontal(pixels, r, images.size);
  }
  return {
    images: tf.tensor4d(pixels, [distinct.length, images.size, images.size, 3]),
    anchor: tf.tensor1d(anchor, 'int32'),
    far: tf.tensor1d(far, 'int32'),
    close: tf.tensor1d(close, 'int32'),
    condition: tf.tensor1d(condition, 'int32'),
    ...(labelIds ? { labels: labelsOf(distinct, labelIds) } : {}),
  };
}

/** Label ids [rows, C] of the batch's distinct products. */
function labelsOf(products: readonly number[], labelIds: readonly Int32Array[]): tf.Tensor2D {
  const values = new Int32Array(products.length * labelIds.length);
  products.forEach((product, row) => {
    labelIds.forEach((ids, c) => (values[row * labelIds.length + c] = ids[product]));
  });
  return tf.tensor2d(values, [products.length, labelIds.length], 'int32');
}

/**
 * Per condition, each product's label id (−1 without a label): the index of its first label among the condition's
 * values in catalogue order. What the in-batch label loss compares.
 */
export function labelIdsOf(catalogue: Catalogue): Int32Array[] {
  return catalogue.conditions.map((name) => {
    const ids = new Map<string, number>();
    return Int32Array.from(catalogue.products, (product) => {
      const label = product.attributes[name]?.[0];
      if (label === undefined) return -1;
      if (!ids.has(label)) ids.set(label, ids.size);
      return ids.get(label)!;
    });
  });
}

export function disposeBatch(batch: TripletBatch): void {
  tf.dispose([batch.images, batch.anchor, batch.far, batch.close, batch.condition]);
  if (batch.labels) batch.labels.dispose();
}

/**
 * Triplets drawn inside small pools of products ("pool" batch mode). A batch of independent triplets needs about
 * three images per triplet; drawing many triplets among a pool of P products embeds only P images for the same
 * number of triplets, which on a CPU is the difference between a few hundred and a few thousand triplets per
 * second. Every triplet follows the sampler's rule: anchor and close share a label of the condition, far shares
 * none with the anchor. Pools are seeded with holders of every label (catalogue pool-mix.ts), so anchors follow
 * the triplets mode's label mix; `labelMix: false` draws plain random pools (rare labels under-sampled).
 * `anchors: 'products'` draws plain random pools and each anchor uniformly among the pool's products, as a shop's
 * queries come (catalogue AnchorDraw).
 */
export class PoolSampler {
  /** Train products with at least one label among the conditions. */
  readonly products: number[];
  private readonly labels: (readonly string[] | undefined)[][];
  private readonly holders: AnchorHolders | undefined;
  private readonly anchors: AnchorDraw;

  constructor(
    catalogue: Catalogue,
    products: readonly number[],
    readonly poolSize: number,
    options: { labelMix?: boolean; anchors?: AnchorDraw } = {},
  ) {
    this.labels = catalogue.conditions.map((name) =>
      catalogue.products.map((product) => {
        const list = product.attributes[name];
        return list && list.length > 0 ? list : undefined;
      }),
    );
    this.products = products.filter((p) => this.labels.some((byProduct) => byProduct[p] !== undefined));
    this.anchors = options.anchors ?? 'labels';
    const labelMix = options.labelMix !== false && this.anchors === 'labels';
    this.holders = labelMix ? anchorHolders(this.products, this.labels) : undefined;
  }

  /** Whether any condition can form a triplet at all among these products (at most one pool's worth checked). */
  usable(): boolean {
    return this.labels.some((byProduct) => usableCondition(this.products, byProduct));
  }

  /**
   * `count` distinct triplets among one random pool of products, spread over the conditions round-robin (a
   * condition that cannot form a triplet in this pool is skipped). Returns fewer when the pool runs dry.
   */
  sample(count: number, rng: Rng): Triplet[] {
    const pool = this.holders
      ? drawMixedPool(this.products, this.holders, this.poolSize, rng)
      : this.products.length <= this.poolSize
        ? [...this.products]
        : rng.shuffle([...this.products]).slice(0, this.poolSize);
    const conditions = this.labels
      .map((byProduct, condition) => ({ condition, index: indexPool(pool, byProduct) }))
      .filter((entry) => entry.index.anchorLabels.length > 0);
    const triplets: Triplet[] = [];
    if (conditions.length === 0) return triplets;
    const seen = new Set<string>();
    // Round-robin with retries on the same condition, so conditions get equal shares; a condition that keeps
    // missing (its pool is exhausted) leaves the rotation.
    const active = [...conditions];
    const misses = new Array<number>(active.length).fill(0);
    let turn = rng.int(0, active.length - 1);
    while (triplets.length < count && active.length > 0) {
      turn %= active.length;
      const { condition, index } = active[turn];
      const triplet = this.draw(condition, index, rng);
      const key = triplet && `${condition},${triplet.anchor},${triplet.far},${triplet.close}`;
      if (!triplet || seen.has(key!)) {
        if (++misses[turn] > 64) {
          active.splice(turn, 1);
          misses.splice(turn, 1);
        }
        continue;
      }
      seen.add(key!);
      triplets.push(triplet);
      misses[turn] = 0;
      turn++;
    }
    return triplets;
  }

  private draw(condition: number, index: PoolIndex, rng: Rng): Triplet | undefined {
    const shared = (member: number) =>
      this.labels[condition][member]!.filter((label) => index.anchorLabels.includes(label));
    const [anchor, close] = drawAnchorPair(index, shared, this.anchors, rng);
    const anchorLabels = this.labels[condition][anchor]!;
    for (let attempt = 0; attempt < 8; attempt++) {
      const far = rng.pick(index.members);
      if (!this.labels[condition][far]!.some((l) => anchorLabels.includes(l))) {
        return { anchor, far, close, condition };
      }
    }
    return undefined;
  }
}

interface PoolIndex {
  members: number[];
  byLabel: Map<string, number[]>;
  /** Labels held by two or more pool members that leave at least one member without them. */
  anchorLabels: string[];
  /** Members holding one of those labels. */
  anchorMembers: number[];
}

function indexPool(
  pool: readonly number[],
  byProduct: readonly (readonly string[] | undefined)[],
): PoolIndex {
  const members = pool.filter((p) => byProduct[p] !== undefined);
  const byLabel = new Map<string, number[]>();
  for (const p of members) {
    for (const label of byProduct[p]!) {
      let list = byLabel.get(label);
      if (!list) byLabel.set(label, (list = []));
      list.push(p);
    }
  }
  const anchorLabels = [...byLabel]
    .filter(([, holders]) => holders.length >= 2 && holders.length < members.length)
    .map(([label]) => label);
  const anchorSet = new Set(anchorLabels);
  const anchorMembers = members.filter((p) => byProduct[p]!.some((label) => anchorSet.has(label)));
  return { members, byLabel, anchorLabels, anchorMembers };
}

function usableCondition(
  products: readonly number[],
  byProduct: readonly (readonly string[] | undefined)[],
): boolean {
  return indexPool(products, byProduct).anchorLabels.length > 0;
}
