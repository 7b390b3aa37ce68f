/**
 * How a model is scored unless told otherwise. The trainer scores its runs with these same values (its
 * TRAIN_DEFAULTS take them from here), so `eval` of a checkpoint whose flags are missing draws the run's own
 * test triplets. Why these numbers: see TRAIN_DEFAULTS in src/train/options.ts.
 */
import { DEMO_DATA_DIR } from '../catalogue/defaults.ts';
import type { BackendPreference } from '../model/defaults.ts';

export const EVAL_DEFAULTS = {
  dataDir: DEMO_DATA_DIR,
  seed: 42,
  margin: 0.2,
  testTriplets: 4000,
  mapQueries: 500,
  backend: 'auto' as BackendPreference,
};
