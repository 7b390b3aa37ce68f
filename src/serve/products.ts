/**
 * Products, conditions and the catalogue as an index version has them, shaped into the contract's types: lookups
 * only, no maths.
 */
import type { components } from './generated/api-types.ts';
import { HttpProblem } from './problem.ts';
import type { ServedCondition, ServedIndex } from './served-index.ts';

type Schemas = components['schemas'];
export type ProductBody = Schemas['Product'];
export type ConditionList = Schemas['ConditionList'];
export type ProductPage = Schemas['ProductPage'];

export function productUrl(id: string): string {
  return `/products/${encodeURIComponent(id)}`;
}

export function toProduct(index: ServedIndex, slot: number): ProductBody {
  const product = index.store.product(slot);
  const body: ProductBody = {
    id: product.id,
    title: product.title,
    attributes: product.attributes,
    imageUrl: `${productUrl(product.id)}/image`,
  };
  if (product.fields) body.fields = product.fields;
  return body;
}

export function requireSlot(index: ServedIndex, productId: string): number {
  const slot = index.store.productIndex(productId);
  if (slot === undefined) {
    throw new HttpProblem(
      404,
      'unknown-product',
      `No product ${JSON.stringify(productId)} in index version ${index.version}.`,
    );
  }
  return slot;
}

/** One condition by its name (heat maps need where the model keeps it); an unknown name is a 400 listing them. */
export function servedCondition(index: ServedIndex, name: string): ServedCondition {
  const condition = index.conditions.find((c) => c.name === name);
  if (!condition) {
    const names = index.conditions.map((c) => c.name);
    throw new HttpProblem(
      400,
      'unknown-condition',
      `Unknown condition ${JSON.stringify(name)}; valid conditions are ${names.join(', ')}.`,
      { validConditions: names },
    );
  }
  return condition;
}

export function conditionList(index: ServedIndex): ConditionList {
  return {
    version: index.version,
    conditions: index.store.spaces.map((space, c) => ({
      name: space.condition,
      index: c,
      metric: space.metric,
      mask: index.masks[c],
      medianRandomDistance: index.references[c].quantile(0.5),
      values: index.valueCounts[c],
      testAccuracy: index.store.info.provenance?.conditionScores?.[space.condition]?.testAccuracy ?? null,
      testMap: index.store.info.provenance?.conditionScores?.[space.condition]?.testMap ?? null,
    })),
    fields: index.store.filterTable().describeFields(),
  };
}

export function productPage(
  index: ServedIndex,
  q: string | undefined,
  offset: number,
  limit: number,
): ProductPage {
  const matches = index.search(q);
  return {
    version: index.version,
    total: matches.length,
    offset,
    limit,
    items: matches.slice(offset, offset + limit).map((slot) => toProduct(index, slot)),
  };
}
