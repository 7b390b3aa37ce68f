/**
 * Refresh settings that are not the trainer's (the fine-tune takes the trainer's own flags and defaults): their
 * defaults and why, in one place.
 */

export const REFRESH_DEFAULTS = {
  /**
   * Overall accuracy (a fraction) the candidate may lose against the served model on the gate's triplets. A
   * condition is refused on its own only when it is worse with `confidence`, so this point rule guards against a
   * model a little worse everywhere, where no single condition is clearly worse.
   */
  tolerance: 0.01,
  /** Two-sided confidence of the gate's intervals: a condition whose whole interval is below zero is refused. */
  confidence: 0.95,
  /** Bootstrap resamples per interval: 50 of them lie beyond each end of a 95 % percentile interval. */
  resamples: 2000,
  /**
   * Test triplets both models answer at the gate. If the models disagree on 15 % of the triplets, a condition's
   * 95 % interval over n independent triplets is about ±1.96·√(0.15 / n): ±2.9 points at the trainer's 4000 test
   * triplets over 6 conditions (670 each), too wide to tell a 2-point loss from noise; ±1.2 points at 24000 (4000
   * each). Triplets sharing anchors widen it (the bootstrap resamples anchors), so more triplets than products
   * still help only up to a point. The gate embeds each test product once per model and compares triplets in
   * microseconds, so the larger count costs seconds.
   */
  gateTriplets: 24_000,
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
