/**
 * What other stages' command lines take from the trainer without loading it (no tfjs): its option table, the
 * options a continued run inherits, and its defaults.
 */
export { TRAIN_OPTIONS, INHERITED, TRAIN_DEFAULTS } from './options.ts';
