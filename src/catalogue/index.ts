/** The catalogue stage: loading and importing catalogues, decoding images, sampling triplets, demo data. */
export * from './types.ts';
export { loadCatalogue, detectLayout, type LoadCatalogueOptions } from './load.ts';
export { LAYOUT_KINDS, type LayoutKind } from './layout.ts';
export {
  writeCatalogue,
  loadNativeCatalogue,
  type WriteCatalogueOptions,
  type ImageTransfer,
} from './native.ts';
export { parseFields, deriveFieldSchema, FieldSchemaBuilder, FieldError } from './fields.ts';
export { loadFarfetchCatalogue, farfetchImagePath } from './farfetch.ts';
export { loadZapposCatalogue } from './zappos.ts';
export { loadAsenCatalogue } from './asen.ts';
export {
  ImageCache,
  ImageDecodeError,
  decodeImage,
  decodeImageBytes,
  type ImageCacheOptions,
  type ImageDecodeReason,
} from './images.ts';
export { sampleTriplets, selectTriplets } from './sampler.ts';
export { productSplit, hashSplit, stableHash } from './split.ts';
export {
  generateDemoCatalogue,
  demoTitle,
  DEMO_ATTRIBUTES,
  DEMO_CONDITIONS,
  DEMO_CATEGORIES,
  type DemoAttributes,
  type DemoCondition,
  type DemoCatalogueOptions,
} from './demo.ts';
export { summarizeCatalogue, formatSummary, type CatalogueSummary, type ConditionSummary } from './info.ts';
