import { Rng } from '../util/rng.ts';
import { deriveSeed, productSplit } from './split.ts';
import { SPLITS, type Catalogue, type Split, type Triplet } from './types.ts';

/**
 * How a triplet's anchor is drawn: `labels` picks a label first, uniformly among the labels, so rare labels anchor
 * as often as common ones; `products` picks a product first, uniformly, so labels anchor as often as a shop's
 * queries meet them (and as triplets drawn from random products, such as a catalogue's fixed test triplets).
 */
export type AnchorDraw = 'labels' | 'products';
export const ANCHOR_DRAWS: readonly AnchorDraw[] = ['labels', 'products'];

/** The products of one split that carry labels for one condition. */
interface ConditionPool {
  condition: number;
  members: number[];
  /** Labels per product index (only for members). */
  labelsOf: Map<number, readonly string[]>;
  byLabel: Map<string, number[]>;
  /** Labels with at least two products, so an anchor and a distinct close product can share them. */
  anchorLabels: string[];
  /** Members holding at least one anchor label. */
  anchorMembers: number[];
  /** Far candidates per anchor label set, computed when rejection sampling keeps missing. */
  farCache: Map<string, number[]>;
  seen: Set<string>;
  produced: Triplet[];
  exhausted: boolean;
}

function buildPool(
  catalogue: Catalogue,
  splits: readonly Split[],
  split: Split,
  condition: number,
): ConditionPool {
  const name = catalogue.conditions[condition];
  const pool: ConditionPool = {
    condition,
    members: [],
    labelsOf: new Map(),
    byLabel: new Map(),
    anchorLabels: [],
    anchorMembers: [],
    farCache: new Map(),
    seen: new Set(),
    produced: [],
    exhausted: false,
  };
  catalogue.products.forEach((product, index) => {
    const labels = product.attributes[name];
    if (splits[index] !== split || !labels || labels.length === 0) return;
    pool.members.push(index);
    pool.labelsOf.set(index, labels);
    for (const label of labels) {
      let list = pool.byLabel.get(label);
      if (!list) pool.byLabel.set(label, (list = []));
      list.push(index);
    }
  });
  pool.anchorLabels = [...pool.byLabel].filter(([, list]) => list.length >= 2).map(([label]) => label);
  pool.anchorMembers = pool.members.filter((index) => anchorLabelsOf(pool, index).length > 0);
  // Without a second label there is nothing to be far from.
  if (pool.byLabel.size < 2) pool.exhausted = true;
  return pool;
}

/** The labels of a member that another member shares. */
function anchorLabelsOf(pool: ConditionPool, index: number): readonly string[] {
  return pool.labelsOf.get(index)!.filter((label) => pool.byLabel.get(label)!.length >= 2);
}

/** Another holder of a label than `anchor`, uniformly (the close product of a triplet). */
function otherHolder(holders: readonly number[], anchor: number, rng: Rng): number {
  const at = holders.indexOf(anchor);
  let j = rng.int(0, holders.length - 2);
  if (j >= at) j++;
  return holders[j];
}

/** Where one condition's anchors come from: each label's holders, the labels that can anchor, their holders. */
export interface AnchorSide {
  byLabel: ReadonlyMap<string, readonly number[]>;
  anchorLabels: readonly string[];
  anchorMembers: readonly number[];
}

/**
 * An anchor and a close product sharing one of its labels, the anchor drawn as `anchors` says (AnchorDraw).
 * `anchorLabelsOf` gives a member's labels among the side's anchor labels, in the member's own order.
 */
export function drawAnchorPair(
  side: AnchorSide,
  anchorLabelsOf: (member: number) => readonly string[],
  anchors: AnchorDraw,
  rng: Rng,
): [number, number] {
  if (anchors === 'products') {
    const anchor = rng.pick(side.anchorMembers);
    const label = rng.pick(anchorLabelsOf(anchor));
    return [anchor, otherHolder(side.byLabel.get(label)!, anchor, rng)];
  }
  const holders = side.byLabel.get(rng.pick(side.anchorLabels))!;
  const anchor = holders[rng.int(0, holders.length - 1)];
  return [anchor, otherHolder(holders, anchor, rng)];
}

function disjoint(a: readonly string[], b: readonly string[]): boolean {
  return !a.some((label) => b.includes(label));
}

function pickFar(pool: ConditionPool, anchorLabels: readonly string[], rng: Rng): number | undefined {
  for (let attempt = 0; attempt < 16; attempt++) {
    const candidate = rng.pick(pool.members);
    if (disjoint(pool.labelsOf.get(candidate)!, anchorLabels)) return candidate;
  }
  const key = [...anchorLabels].sort().join('\u0000');
  let candidates = pool.farCache.get(key);
  if (!candidates) {
    candidates = pool.members.filter((index) => disjoint(pool.labelsOf.get(index)!, anchorLabels));
    pool.farCache.set(key, candidates);
  }
  return candidates.length > 0 ? rng.pick(candidates) : undefined;
}

/** Try to add `wanted` new unique triplets to the pool; marks it exhausted when attempts keep colliding. */
function fill(pool: ConditionPool, wanted: number, rng: Rng, anchors: AnchorDraw): void {
  if (pool.exhausted || pool.anchorLabels.length === 0) {
    pool.exhausted = true;
    return;
  }
  const target = pool.produced.length + wanted;
  let misses = 0;
  const maxMisses = 200 + wanted * 20;
  while (pool.produced.length < target) {
    const [anchor, close] = drawAnchorPair(pool, (member) => anchorLabelsOf(pool, member), anchors, rng);
    const far = pickFar(pool, pool.labelsOf.get(anchor)!, rng);
    const key = `${anchor},${far},${close}`;
    if (far === undefined || pool.seen.has(key)) {
      if (++misses > maxMisses) {
        pool.exhausted = true;
        return;
      }
      continue;
    }
    pool.seen.add(key);
    pool.produced.push({ anchor, far, close, condition: pool.condition });
  }
}

/** Which triplets to draw: of which split, how many, and how anchors are drawn (AnchorDraw; default by label). */
export interface TripletDraw {
  split: Split;
  count: number;
  anchors?: AnchorDraw;
}

/**
 * Sample `count` unique triplets among the products of `split`, spread evenly over the conditions that have at
 * least two labels in that split. Under condition c, anchor and close share at least one label of c and far shares
 * none with the anchor (products may carry several labels). Deterministic for a given rng state. Returns fewer than
 * `count` when the split cannot supply that many distinct triplets; conditions that run dry hand their share to
 * the others. `anchors`: see AnchorDraw.
 */
export function sampleTriplets(
  catalogue: Catalogue,
  { split, count, anchors = 'labels' }: TripletDraw,
  rng: Rng,
): Triplet[] {
  if (!SPLITS.includes(split)) throw new RangeError(`unknown split "${split}"`);
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`triplet count must be a non-negative integer`);
  const splits = productSplit(catalogue);
  const pools = catalogue.conditions.map((_, condition) => buildPool(catalogue, splits, split, condition));
  let remaining = count;
  for (let round = 0; round < 8 && remaining > 0; round++) {
    const active = pools.filter((pool) => !pool.exhausted && pool.anchorLabels.length > 0);
    if (active.length === 0) break;
    const base = Math.floor(remaining / active.length);
    let extra = remaining - base * active.length;
    for (const pool of active) {
      const share = base + (extra > 0 ? 1 : 0);
      if (extra > 0) extra--;
      const before = pool.produced.length;
      if (share > 0) fill(pool, share, rng, anchors);
      remaining -= pool.produced.length - before;
    }
  }
  return rng.shuffle(pools.flatMap((pool) => pool.produced));
}

/**
 * Triplets of one split: the catalogue's shipped lists when it has them for that split (a random subset of at most
 * `count`, as upstream CSN takes the first n after shuffling), else sampled from labels. Each split has its own
 * random stream derived from the seed, so `eval` reproduces the test triplets of a run from its seed and count.
 */
export function splitTriplets(catalogue: Catalogue, draw: TripletDraw, seed: number): Triplet[] {
  if (draw.count === 0) return [];
  const rng = new Rng(deriveSeed(seed, `triplets/${draw.split}`));
  const shipped = catalogue.triplets?.[draw.split];
  if (!shipped || shipped.length === 0) return sampleTriplets(catalogue, draw, rng);
  return rng.shuffle([...shipped]).slice(0, draw.count);
}
