/**
 * The filter every store understands, in a file of its own that imports nothing: the API's filter language
 * (src/index/filter.ts) is mapped onto it, and the store interface (types.ts) takes it, without either importing the
 * other.
 */

/** A product field's value as a store keeps it. */
export type StoreFieldValue = string | number | boolean;

/**
 * A filter in conjunctive form: every clause must hold (AND); a clause holds when any of its alternatives does
 * (OR). The API's filter language (src/index/filter.ts) is mapped onto it by `toStoreFilter`; each store turns it
 * into its own form (a selection over loaded products for hnswlib, a SQL prefilter for LanceDB). An empty clause
 * list matches every product.
 */
export interface StoreFilter {
  clauses: FilterClause[];
}

export type FilterClause =
  /** A condition label: the product carries one of `values` under `condition`. */
  | { kind: 'label'; condition: string; values: string[] }
  /** A string, boolean or number field equal to one of `values`. */
  | { kind: 'equals'; field: string; values: StoreFieldValue[] }
  /** A numeric field satisfying any of the comparisons. */
  | { kind: 'compare'; field: string; comparisons: { op: '<' | '<=' | '>' | '>='; value: number }[] };
