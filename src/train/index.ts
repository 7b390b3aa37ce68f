/** The train stage: the training loop, its options (defaults and checks) and the files of a run folder. */
export { train, RUN_FILES, TrainingDivergedError, type TrainHooks, type TrainResult } from './trainer.ts';
export {
  TRAIN_DEFAULTS,
  INHERITED,
  inheritedFrom,
  OptionsError,
  defaultLearningRate,
  validateOptions,
  type TrainOptions,
} from './options.ts';
