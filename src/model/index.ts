/** The model stage: similarity networks as pure tensor maths (no file or network I/O). */
export * from './types.ts';
export { selectBackend, resolvePreference, BackendError, type BackendLog } from './backend.ts';
export { registerWasmTrainingKernels } from './kernels/wasm-kernels.ts';
export { wasmThreadCount } from './kernels/wasm-threads.ts';
export { ADAM_UPDATE, type AdamUpdateAttrs } from './kernels/wasm-heap-kernels.ts';
export {
  createModel,
  createModelFromTorch,
  restoreModel,
  defaultModelConfig,
  resolveConfig,
} from './create.ts';
export {
  BACKEND_PREFERENCES,
  MODEL_DEFAULTS,
  MODEL_KINDS,
  BACKBONES,
  MASK_MODES,
  PREPROCESS_MODES,
  BACKBONE_DEFAULTS,
  type BackendPreference,
} from './defaults.ts';
export { csnLoss, blockMasks, type TripletIndices } from './csn.ts';
export { asenLoss, isAsenModel, type AsenModel } from './asen.ts';
export { ModelInputError, PAIRWISE_EPS } from './common.ts';
export { BN_EPSILON, BN_MOMENTUM } from './batchnorm.ts';
export {
  parseSafetensors,
  serializeSafetensors,
  SafetensorsError,
  type SafeTensor,
  type SafetensorsFile,
} from './safetensors.ts';
export {
  fromTorchTensors,
  torchvisionMapping,
  upstreamCsnMapping,
  upstreamCsnName,
  toTorchTensors,
  toTorchLayout,
  torchName,
  permute,
  hasUpstreamNames,
  CSN_NETWORK_PREFIX,
  CSN_MASKS_NAME,
  type TorchLoadReport,
  type TorchMapping,
  type TorchTensor,
} from './torch-names.ts';
