/**
 * Errors in what a caller asks of an index (a filter expression, a combined condition, recommendation examples).
 * Each names the offending expression and lists what would have been valid, so the HTTP layer can answer with a
 * 400 problem+json without knowing the rules.
 */

export type QueryErrorCode =
  /** A filter that is not `name:value`, `name<n`, `name<=n`, `name>n` or `name>=n`. */
  | 'malformed-filter'
  /** A filter on a name that is neither a condition nor a product field. */
  | 'unknown-filter-name'
  /** `condition:label` with a label no indexed product carries. */
  | 'unknown-label'
  /** `<`, `<=`, `>`, `>=` on a label or a string or boolean field. */
  | 'not-numeric'
  /** A value that does not fit the field's type (`in_stock:maybe`, `price<cheap`). */
  | 'invalid-filter-value'
  /** A combined condition naming an unknown condition. */
  | 'unknown-condition'
  /** A combined condition that is not `name[:weight],...` with positive weights, or repeats a name. */
  | 'malformed-condition'
  /** Recommendation examples out of bounds (none positive, too many, or one both positive and negative). */
  | 'invalid-examples';

export class QueryError extends Error {
  override name = 'QueryError';

  constructor(
    readonly code: QueryErrorCode,
    message: string,
    /** The expression at fault, as the caller wrote it. */
    readonly expression: string,
    /** What would have been valid here (names, labels, operators), for the caller to pick from. */
    readonly valid: readonly string[] = [],
  ) {
    super(message);
  }
}
