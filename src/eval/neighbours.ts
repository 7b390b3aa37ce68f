/**
 * What a shopper sees in the k nearest products under a condition: how many share the query's label of that
 * condition (precision@k), and how many share each other condition's label compared with random pairs (leakage).
 *
 * Leakage of o under c = (share of the k nearest under c that share the query's o label) / (share of all product
 * pairs that share an o label). 1.0: the neighbours are no more alike on o than random products; a colour space
 * that has learned product type shows a type leakage far above 1.
 */
import type { Catalogue } from '../catalogue/index.ts';
import { vectorOf, type ProductVectors } from './evaluate.ts';
import { sharesLabel } from './retrieval.ts';

export interface NeighbourAgreement {
  /** Queries (products with a label of this condition). */
  queries: number;
  /** Share of the k nearest that share the query's label of this condition. */
  precision: number;
  /** Per other condition: its share among the k nearest divided by its base rate over all pairs. */
  leakage: Record<string, number>;
}

type Labelled = Pick<Catalogue, 'conditions' | 'products'>;

function labelsOf(catalogue: Labelled, product: number, condition: number): readonly string[] {
  return catalogue.products[product].attributes[catalogue.conditions[condition]] ?? [];
}

/** Share of pairs of distinct `products` that share a label of `condition` (pairs with a label on both sides). */
export function pairBaseRate(catalogue: Labelled, products: readonly number[], condition: number): number {
  const labelled = products.map((p) => labelsOf(catalogue, p, condition)).filter((l) => l.length > 0);
  let shared = 0;
  for (let i = 0; i < labelled.length; i++) {
    for (let j = i + 1; j < labelled.length; j++) if (sharesLabel(labelled[i], labelled[j])) shared++;
  }
  const pairs = (labelled.length * (labelled.length - 1)) / 2;
  return pairs > 0 ? shared / pairs : 0;
}

/** The k nearest of `products` to `query` under `condition` (the query itself left out). */
export function nearest(
  vectors: ProductVectors,
  products: readonly number[],
  query: number,
  condition: number,
  k: number,
): number[] {
  const q = vectorOf(vectors, query, condition);
  const scored: [number, number][] = [];
  for (const p of products) {
    if (p === query) continue;
    const v = vectorOf(vectors, p, condition);
    let sum = 0;
    for (let i = 0; i < v.length; i++) sum += (q[i] - v[i]) ** 2;
    scored.push([sum, p]);
  }
  scored.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return scored.slice(0, k).map(([, p]) => p);
}

/** Precision@k and leakage per condition, every labelled product of `products` a query against the others. */
export function neighbourAgreement(
  vectors: ProductVectors,
  catalogue: Labelled,
  products: readonly number[],
  k = 10,
): Record<string, NeighbourAgreement> {
  const conditions = catalogue.conditions.map((_, c) => c);
  const baseRates = conditions.map((o) => pairBaseRate(catalogue, products, o));
  const result: Record<string, NeighbourAgreement> = {};
  for (const c of conditions) {
    const queries = products.filter((p) => labelsOf(catalogue, p, c).length > 0);
    const shared = new Array<number>(conditions.length).fill(0);
    const counted = new Array<number>(conditions.length).fill(0);
    for (const query of queries) {
      for (const neighbour of nearest(vectors, products, query, c, k)) {
        for (const o of conditions) {
          const mine = labelsOf(catalogue, query, o);
          const theirs = labelsOf(catalogue, neighbour, o);
          if (mine.length === 0 || theirs.length === 0) continue;
          counted[o]++;
          if (sharesLabel(mine, theirs)) shared[o]++;
        }
      }
    }
    const share = (o: number) => (counted[o] > 0 ? shared[o] / counted[o] : 0);
    const leakage: Record<string, number> = {};
    for (const o of conditions)
      if (o !== c && baseRates[o] > 0) leakage[catalogue.conditions[o]] = share(o) / baseRates[o];
    result[catalogue.conditions[c]] = { queries: queries.length, precision: share(c), leakage };
  }
  return result;
}
