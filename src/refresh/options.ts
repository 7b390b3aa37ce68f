/**
 * Refresh settings that are not the trainer's (the fine-tune takes the trainer's own flags and defaults): their
 * defaults and why, in one place.
 */

export const REFRESH_DEFAULTS = {
  /**
   * Accuracy points the candidate may lose against the served model, overall and per condition (the issue's
   * figure). Both models answer the same triplets, so only their disagreements are noise: if they disagree on 10 %
   * of ~670 triplets per condition (the trainer's 4000 test triplets over 6 conditions), the standard error of the
   * per-condition difference is about 1.2 points. So 0.01 refuses a clearly worse model, but can also refuse an
   * equally good one on a single condition by chance; raise it (or --test-triplets) when refusals look like noise.
   * Measured: the demo CSN fine-tuned one epoch (its own lr 3e-3) on the demo catalogue with 7 % of products
   * touched scored 80.70 % against 80.90 % overall on the same 4000 test triplets, but −3.3 to +3.3 points per
   * condition, and was refused on three conditions.
   */
  tolerance: 0.01,
  /** Retrain (rather than re-index) when more than this share of the served products was added, removed or changed. */
  retrainShare: 0.25,
  /** Report file in the run folder. */
  reportFile: 'refresh.json',
  /** The served model with the updated conditions, as the fine-tune's starting checkpoint. */
  warmStartFile: 'warm-start.dmck',
  /** Lock file (proper-lockfile) in the bundle: one refresh per bundle at a time. */
  lockFile: '.refresh.lock',
  /** A lock not refreshed for this long belongs to a killed refresh and is taken over. */
  lockStaleMs: 10_000,
} as const;

/** Default run folder name: refresh_yyyymmdd_hhmmss (UTC), like the trainer's {model}_yyyymmdd_hhmmss. */
export function defaultRefreshName(now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace('T', '_')
    .replace(/\.\d+Z$/, '');
  return `refresh_${stamp}`;
}
