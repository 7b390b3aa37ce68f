/**
 * Product fields: data a shop filters on besides the labels (price, in_stock, category, brand, ...). Each product may
 * carry `fields` of strings, finite numbers and booleans; one name has one type across the catalogue, and the schema
 * (name -> type) is derived once, when the catalogue is loaded.
 */
import { isValidConditionName } from './text.ts';
import type { FieldSchema, FieldType, FieldValue, Product } from './types.ts';

/** Why a product's `fields` are invalid (the loader turns it into a CatalogueError at the product's line). */
export class FieldError extends Error {
  override name = 'FieldError';
}

function typeOf(value: unknown): FieldType | undefined {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return Number.isFinite(value) ? 'number' : undefined;
  if (typeof value === 'boolean') return 'boolean';
  return undefined;
}

/**
 * Check one product's raw `fields` value: an object of string | finite number | boolean, with names that can appear
 * in a filter expression and that are not condition names (a filter `color:red` must mean one thing).
 */
export function parseFields(
  raw: unknown,
  conditions: ReadonlySet<string>,
  productId: string,
): Record<string, FieldValue> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new FieldError(`"fields" of product ${productId} must be an object`);
  }
  const out: Record<string, FieldValue> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!isValidConditionName(name)) {
      throw new FieldError(
        `field name "${name}" of product ${productId} is invalid: use letters, digits, "_", "-" or "." (no spaces)`,
      );
    }
    if (conditions.has(name)) {
      throw new FieldError(
        `field "${name}" of product ${productId} has the name of a condition; filters could not tell them apart`,
      );
    }
    const type = typeOf(value);
    if (type === undefined) {
      throw new FieldError(
        `field "${name}" of product ${productId} must be a string, a finite number or a boolean, got ${JSON.stringify(value)}`,
      );
    }
    out[name] = type === 'string' ? (value as string).trim() : (value as FieldValue);
  }
  return out;
}

/** Where a field's type was first seen, for the message when a later product disagrees. */
export interface FieldOrigin {
  type: FieldType;
  /** Line (or product position) that fixed the type. */
  line: number;
}

/**
 * Accumulates the field schema while products are read, one product at a time, so that a type conflict is reported
 * at the line of the product that breaks it (`add` throws FieldError naming the earlier line).
 */
export class FieldSchemaBuilder {
  private readonly origins = new Map<string, FieldOrigin>();

  add(fields: Readonly<Record<string, FieldValue>> | undefined, line: number, productId: string): void {
    if (!fields) return;
    for (const [name, value] of Object.entries(fields)) {
      const type = typeOf(value) as FieldType;
      const origin = this.origins.get(name);
      if (!origin) this.origins.set(name, { type, line });
      else if (origin.type !== type) {
        throw new FieldError(
          `field "${name}" of product ${productId} is a ${type}, but it is a ${origin.type} on line ${origin.line}; one field has one type`,
        );
      }
    }
  }

  /** Field name -> type, names sorted (stable across runs and catalogue order). */
  schema(): FieldSchema {
    return Object.fromEntries(
      [...this.origins.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, o]) => [name, o.type]),
    );
  }
}

/** The schema of products already in memory (importers, writers); throws FieldError on a type conflict. */
export function deriveFieldSchema(products: readonly Pick<Product, 'id' | 'fields'>[]): FieldSchema {
  const builder = new FieldSchemaBuilder();
  products.forEach((product, i) => builder.add(product.fields, i + 1, product.id));
  return builder.schema();
}
