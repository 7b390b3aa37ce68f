/**
 * The decision rule: nothing to do, re-index incrementally with the served model, or re-index and retrain. Pure.
 *
 * Without --retrain / --no-retrain a run retrains when the served model no longer fits the catalogue:
 * - a condition is new (it has no mask) or gone from conditions.txt (its mask must be dropped);
 * - a condition the model serves has a label value it never saw in training;
 * - more than `retrainShare` of the served products were added, removed or changed (default 25 %: re-embedding
 *   is seconds, retraining minutes, so small daily edits only re-index, while a catalogue a quarter new is a
 *   different catalogue and the served model's test numbers no longer describe it).
 * Otherwise new and changed products are embedded by the served model (incremental re-index).
 */
import { nothingChanged } from './changes.ts';
import type { ChangeReport, RefreshDecision } from './types.ts';

export interface DecisionOptions {
  /** true: always retrain; false: never (re-index only); undefined: the rule above. */
  retrain?: boolean;
  /** Share of served products added, removed or changed above which the rule retrains. */
  retrainShare: number;
}

const list = (values: readonly string[]) => values.join(', ');

/** Reasons to retrain that the changes give (empty when the served model still fits). */
export function retrainReasons(changes: ChangeReport, retrainShare: number): string[] {
  const reasons: string[] = [];
  if (changes.conditionsAdded.length > 0)
    reasons.push(`new condition(s) ${list(changes.conditionsAdded)} need a mask`);
  if (changes.conditionsRemoved.length > 0)
    reasons.push(`condition(s) ${list(changes.conditionsRemoved)} left the catalogue and must be dropped`);
  const newValues = changes.labels.filter(
    (change) => change.added.length > 0 && !changes.conditionsAdded.includes(change.condition),
  );
  for (const change of newValues)
    reasons.push(`new label value(s) of ${change.condition}: ${list(change.added)}`);
  if (changes.changedShare > retrainShare) {
    reasons.push(
      `${(100 * changes.changedShare).toFixed(1)} % of the products changed (more than ${(100 * retrainShare).toFixed(0)} %)`,
    );
  }
  return reasons;
}

/**
 * What this run does after the catalogue is published with the served model: nothing more, or retrain. A
 * condition gone from the catalogue is left out of that version either way; retraining also drops its mask.
 */
export function decide(changes: ChangeReport, options: DecisionOptions): RefreshDecision {
  if (options.retrain === true) return { action: 'retrain', reasons: ['--retrain'], forced: true };
  const reasons = retrainReasons(changes, options.retrainShare);
  if (options.retrain === false) {
    if (nothingChanged(changes)) return { action: 'nothing', reasons: ['nothing changed'], forced: true };
    const ignored = reasons.map((reason) => `ignored (--no-retrain): ${reason}`);
    return { action: 'reindex', reasons: ['--no-retrain', ...ignored], forced: true };
  }
  if (nothingChanged(changes))
    return { action: 'nothing', reasons: ['nothing changed since the served version'], forced: false };
  if (reasons.length > 0) return { action: 'retrain', reasons, forced: false };
  const c = changes;
  return {
    action: 'reindex',
    reasons: [
      `${c.added.length} added, ${c.removed.length} removed, ${c.changed.length} changed: the served model still fits`,
    ],
    forced: false,
  };
}
