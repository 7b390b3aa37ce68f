/** The model stage: similarity networks as pure tensor maths (no file or network I/O). */
export * from './types.ts';
export { selectBackend, resolvePreference, BackendError, type BackendLog } from './backend.ts';
export { registerWasmTrainingKernels } from './wasm-kernels.ts';
export { createModel, restoreModel, defaultModelConfig, resolveConfig } from './create.ts';
export {
  BACKEND_PREFERENCES,
  MODEL_DEFAULTS,
  MODEL_KINDS,
  BACKBONES,
  MASK_MODES,
  type BackendPreference,
} from './defaults.ts';
export { csnLoss, blockMasks, type TripletIndices } from './csn.ts';
export { asenLoss, isAsenModel, type AsenModel } from './asen.ts';
export { ModelInputError, PAIRWISE_EPS } from './common.ts';
