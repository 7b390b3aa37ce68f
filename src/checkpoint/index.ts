/** The checkpoint stage: the `.dmck` file format that train writes and eval, index, serve and the demo read. */
export * from './types.ts';
export { BEST_CHECKPOINT, LATEST_CHECKPOINT, DEMO_MODELS_DIR, DEMO_CHECKPOINT } from './defaults.ts';
export {
  modelId,
  encodeCheckpoint,
  decodeCheckpoint,
  writeCheckpoint,
  readCheckpoint,
  loadModelFromCheckpoint,
  restoreCheckpointModel,
} from './file.ts';
