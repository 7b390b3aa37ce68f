/** The catalogue stage: products, their images and attribute labels, and the triplets that teach similarity. */

export type Split = 'train' | 'val' | 'test';
export const SPLITS: readonly Split[] = ['train', 'val', 'test'];

export interface Product {
  id: string;
  title: string;
  /** Image path relative to the catalogue root. */
  image: string;
  /** Labels per condition; a product may carry several labels for one condition, or none. */
  attributes: Record<string, string[]>;
  /** Which split the product belongs to, when the source layout says so. */
  split?: Split;
  /** Product fields to filter on (price, in_stock, category...); absent when the catalogue has none. */
  fields?: Record<string, FieldValue>;
}

/** A product field's value, and the type names the schema uses for them. */
export type FieldValue = string | number | boolean;
export type FieldType = 'string' | 'number' | 'boolean';
/** Field name -> type, the same for every product that has the field. */
export type FieldSchema = Record<string, FieldType>;

/** One similarity constraint: under `condition`, `anchor` is closer to `close` than to `far` (indices into products). */
export interface Triplet {
  anchor: number;
  far: number;
  close: number;
  /** Index into Catalogue.conditions. */
  condition: number;
}

/** Attribute-specific retrieval queries (ASEN layout): for a query, relevant candidates share the value. */
export interface RetrievalItem {
  product: number;
  condition: number;
  value: string;
}
export interface RetrievalSet {
  queries: RetrievalItem[];
  candidates: RetrievalItem[];
}

export interface Catalogue {
  /** Absolute directory that image paths are relative to. */
  root: string;
  name: string;
  conditions: string[];
  products: Product[];
  /** Triplet lists shipped with the catalogue; when absent the trainer samples triplets from attributes. */
  triplets?: Partial<Record<Split, Triplet[]>>;
  /** Retrieval protocol shipped with the catalogue (ASEN meta layout). */
  retrieval?: Partial<Record<'val' | 'test', RetrievalSet>>;
  /** Types of the product fields, derived once when the catalogue is loaded (absent or empty: no fields). */
  fields?: FieldSchema;
}

/** A problem in catalogue input, always naming the file and (when known) the line. */
export class CatalogueError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    message: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${message}`);
    this.name = 'CatalogueError';
  }
}

/**
 * How a photo becomes a size×size input (the model's config says which; see ModelConfig.preprocess).
 * - fit-pad: the whole picture is scaled to fit and non-square images are padded with the mean colour of their
 *   corners (product photos have plain backgrounds), so no part of the garment is cropped;
 * - resize-crop: upstream's transforms.Scale(size) + CenterCrop(size): the shorter side is resized (bilinear, as
 *   torchvision's default) to size and the centre square kept.
 */
export type ImageFit = 'fit-pad' | 'resize-crop';
