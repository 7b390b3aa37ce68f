/** The train stage: the training loop, its options (defaults and checks) and the files of a run folder. */
export { train, RUN_FILES, type TrainHooks, type TrainResult } from './trainer.ts';
export { TRAIN_DEFAULTS, OptionsError, validateOptions, type TrainOptions } from './options.ts';
