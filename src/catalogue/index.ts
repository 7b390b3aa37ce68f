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
  decodeImageBytesKept,
  bytesToFloats,
  type ImageCacheOptions,
  type ImageSource,
  type ImageDecodeReason,
} from './images.ts';
export { PixelStore, PIXEL_DIR, imageDigest, pixelStoreEnabled, type PixelStoreLog } from './pixel-store.ts';
export { mapWithConcurrency } from './pool.ts';
export { ANCHOR_DRAWS, drawAnchorPair, sampleTriplets, splitTriplets, type AnchorDraw } from './sampler.ts';
export { productSplit, hashSplit, stableHash, deriveSeed, splitProducts } from './split.ts';
export { resolveConditions, restrictCatalogue, ConditionError } from './conditions.ts';
export {
  generateDemoCatalogue,
  demoProducts,
  demoTitle,
  DEMO_ATTRIBUTES,
  DEMO_CONDITIONS,
  DEMO_CATEGORIES,
  DEMO_PARTS,
  DEMO_CONDITION_PARTS,
  DEMO_PARTS_MANIFEST,
  type DemoAttributes,
  type DemoCondition,
  type DemoCatalogueOptions,
} from './demo.ts';
export {
  readPartsManifest,
  readPartRegion,
  partMaskPath,
  conditionBits,
  packPartLayers,
  encodePartMask,
  type PartsManifest,
} from './masks.ts';
export { summarizeCatalogue, formatSummary, type CatalogueSummary, type ConditionSummary } from './info.ts';
export { anchorHolders, drawMixedPool, type AnchorHolders } from './pool-mix.ts';
