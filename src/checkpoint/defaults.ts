/**
 * The checkpoint file names of a run folder and the demo model's path, in a file with no imports so that command
 * lines can show them in --help without loading the model code.
 */

/** The run's best checkpoint (highest validation accuracy): what eval, index and the demo read. */
export const BEST_CHECKPOINT = 'model_best.dmck';
/** The run's latest checkpoint (every epoch, on Ctrl-C): what --resume continues from. */
export const LATEST_CHECKPOINT = 'checkpoint_latest.dmck';
/** Where the demo puts its run folders (`models/demo`, `models/demo-asen`, …). */
export const DEMO_MODELS_DIR = 'models';
/** The demo CSN's best checkpoint, the model commands read unless told otherwise. */
export const DEMO_CHECKPOINT = `${DEMO_MODELS_DIR}/demo/${BEST_CHECKPOINT}`;
