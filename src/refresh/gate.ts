/**
 * The gate: a retrained candidate replaces the served model unless, on the same held-out test triplets of the
 * updated catalogue, it is worse with the gate's confidence (95 %) on some condition, or its overall accuracy drops
 * by more than the tolerance. Each model's answer is compared per triplet (paired.ts), per condition and over the
 * conditions both models know. A condition new to the candidate has no served answers and is reported, not gated;
 * a condition without test triplets cannot be judged and is reported, not gated. Pure.
 */
import { pairedDifference, type BootstrapSettings, type PairedOutcome } from './paired.ts';
import type { ConditionComparison, GateResult, PairedResult } from './types.ts';

/** Both models' answers to the same triplets (compare.ts gives them). */
export interface GateAnswers {
  conditions: readonly string[];
  triplets: readonly { condition: number; anchor: number }[];
  candidate: readonly boolean[];
  /** null: the served model does not know the triplet's condition. */
  served: readonly (boolean | null)[];
}

export interface GateSettings extends BootstrapSettings {
  tolerance: number;
}

/** Small float noise must not flip a tie: 0.8 − 0.01 is 0.79000000000000004 in binary. */
const EPSILON = 1e-9;

function points(value: number): string {
  return `${value >= 0 ? '+' : '−'}${Math.abs(100 * value).toFixed(2)}`;
}

function pct(value: number): string {
  return `${(100 * value).toFixed(2)} %`;
}

/** "Δ −1.20 points [−2.40, −0.10]" */
export function describeDifference(paired: PairedResult): string {
  const [low, high] = paired.interval;
  return `Δ ${points(paired.delta)} points [${points(low)}, ${points(high)}]`;
}

function checkInput(answers: GateAnswers, settings: GateSettings): void {
  const { tolerance, confidence, resamples } = settings;
  if (!(tolerance >= 0 && tolerance <= 1))
    throw new RangeError(`tolerance must be in [0, 1], got ${tolerance}`);
  if (!(confidence > 0 && confidence < 1))
    throw new RangeError(`confidence must be in (0, 1), got ${confidence}`);
  if (!(Number.isInteger(resamples) && resamples >= 1))
    throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  const n = answers.triplets.length;
  if (answers.candidate.length !== n || answers.served.length !== n)
    throw new RangeError('the models answered different triplets');
}

/** The outcomes of one condition (or of every condition both know, for `condition` null). */
function outcomesOf(answers: GateAnswers, condition: number | null): PairedOutcome[] {
  const outcomes: PairedOutcome[] = [];
  answers.triplets.forEach((t, i) => {
    const served = answers.served[i];
    if (served === null || (condition !== null && t.condition !== condition)) return;
    outcomes.push({ anchor: t.anchor, candidate: answers.candidate[i], served });
  });
  return outcomes;
}

function compareCondition(answers: GateAnswers, c: number, settings: GateSettings): ConditionComparison {
  const condition = answers.conditions[c];
  const mine = answers.triplets.flatMap((t, i) => (t.condition === c ? [i] : []));
  const candidate = mine.length > 0 ? mine.filter((i) => answers.candidate[i]).length / mine.length : 0;
  const base = { condition, triplets: mine.length, candidate };
  if (mine.length === 0) return { ...base, paired: null, verdict: 'untested', passed: true };
  if (mine.some((i) => answers.served[i] === null))
    return { ...base, paired: null, verdict: 'new', passed: true };
  const paired = pairedDifference(outcomesOf(answers, c), { ...settings, seed: settings.seed + c + 1 });
  const [low, high] = paired.interval;
  const verdict = high < 0 ? 'worse' : low > 0 ? 'better' : 'no difference';
  return { ...base, paired, verdict, passed: verdict !== 'worse' };
}

/** Judge the candidate against the served model on their answers to the same triplets. */
export function applyGate(answers: GateAnswers, settings: GateSettings): GateResult {
  checkInput(answers, settings);
  const conditions = answers.conditions.map((_, c) => compareCondition(answers, c, settings));
  const overall = pairedDifference(outcomesOf(answers, null), settings);
  const overallPassed = overall.triplets > 0 && overall.delta + EPSILON >= -settings.tolerance;
  const failures: string[] = [];
  if (overall.triplets === 0)
    failures.push('no test triplets under a condition both models know: nothing to compare');
  else if (!overallPassed) {
    failures.push(
      `overall accuracy dropped by more than the tolerance of ${(100 * settings.tolerance).toFixed(2)} ` +
        `points: ${pct(overall.candidate)} vs ${pct(overall.served)}, ${describeDifference(overall)}`,
    );
  }
  for (const c of conditions) {
    if (c.verdict === 'worse')
      failures.push(
        `${c.condition} is worse with ${pct(settings.confidence)} confidence: ${describeDifference(c.paired!)}`,
      );
  }
  const reason =
    failures.length > 0
      ? `refused: ${failures.join('; ')}`
      : `accepted: no condition is worse with ${pct(settings.confidence)} confidence, and overall ` +
        `${describeDifference(overall)} is within the tolerance of −${(100 * settings.tolerance).toFixed(2)} points`;
  return {
    passed: failures.length === 0,
    reason,
    tolerance: settings.tolerance,
    method: 'paired bootstrap over anchor products',
    confidence: settings.confidence,
    resamples: settings.resamples,
    seed: settings.seed,
    overall: { ...overall, passed: overallPassed },
    conditions,
    failures,
  };
}

/** The comparison as a table for the terminal, then the verdict's reason. */
export function formatGate(gate: GateResult): string {
  const interval = (p: PairedResult) => `[${points(p.interval[0])}, ${points(p.interval[1])}]`;
  const rows = [
    ...gate.conditions.map((c) => [
      c.condition,
      String(c.triplets),
      pct(c.candidate),
      c.paired ? pct(c.paired.served) : '-',
      c.paired ? points(c.paired.delta) : '-',
      c.paired ? interval(c.paired) : '-',
      c.verdict === 'worse' ? 'worse: REFUSED' : c.verdict,
    ]),
    [
      'overall',
      String(gate.overall.triplets),
      pct(gate.overall.candidate),
      pct(gate.overall.served),
      points(gate.overall.delta),
      interval(gate.overall),
      gate.overall.passed ? 'within tolerance' : 'REFUSED',
    ],
  ];
  const header = [
    'condition',
    'triplets',
    'candidate',
    'served',
    'Δ points',
    `${pct(gate.confidence)} interval`,
    'verdict',
  ];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 0 || i === 6 ? cell.padEnd(widths[i]) : cell.padStart(widths[i])))
      .join('  ');
  return [
    `gate: the candidate against the served model on the same test triplets (${gate.method}, ` +
      `${gate.resamples} resamples, seed ${gate.seed}); tolerance ${(100 * gate.tolerance).toFixed(2)} points overall`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line).map((text) => text.trimEnd()),
    `gate ${gate.reason}`,
  ].join('\n');
}
