/** The checkpoint stage: the `.dmck` file format that train writes and eval, index, serve and the demo read. */
export * from './types.ts';
export {
  modelId,
  encodeCheckpoint,
  decodeCheckpoint,
  writeCheckpoint,
  readCheckpoint,
  loadModelFromCheckpoint,
} from './file.ts';
