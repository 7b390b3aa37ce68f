/**
 * The gate: a retrained candidate replaces the served model only if, on the same held-out test triplets of the
 * updated catalogue, its triplet accuracy is at least the served model's minus the tolerance, overall and on every
 * condition both models know. A condition new to the candidate has no served score and is reported, not gated; a
 * condition with no test triplets cannot be judged and is reported, not gated. Pure.
 */
import type { ConditionComparison, GateResult } from './types.ts';

/** Accuracy per condition on the shared triplets (the eval stage's AccuracySummary has this shape). */
export interface ConditionScores {
  perCondition: Record<string, { accuracy: number; triplets: number }>;
}

/** Small float noise must not flip a tie: 0.8 − 0.01 is 0.79000000000000004 in binary. */
const EPSILON = 1e-9;

export function applyGate(
  candidate: ConditionScores,
  served: ConditionScores,
  tolerance: number,
): GateResult {
  if (!(tolerance >= 0 && tolerance <= 1))
    throw new RangeError(`tolerance must be in [0, 1], got ${tolerance}`);
  const failures: string[] = [];
  const conditions: ConditionComparison[] = [];
  let triplets = 0;
  let candidateRight = 0;
  let servedRight = 0;
  for (const [condition, score] of Object.entries(candidate.perCondition)) {
    const old = served.perCondition[condition];
    const judged = old !== undefined && score.triplets > 0;
    if (old !== undefined && old.triplets !== score.triplets) {
      throw new RangeError(
        `${condition}: the models were scored on different triplets (${score.triplets} vs ${old.triplets})`,
      );
    }
    const passed = !judged || score.accuracy + EPSILON >= old.accuracy - tolerance;
    conditions.push({
      condition,
      triplets: score.triplets,
      candidate: score.accuracy,
      served: old?.accuracy ?? null,
      delta: old ? score.accuracy - old.accuracy : null,
      passed,
    });
    if (!passed) {
      failures.push(
        `${condition}: ${pct(score.accuracy)} < served ${pct(old.accuracy)} − ${pct(tolerance)} tolerance`,
      );
    }
    if (judged) {
      triplets += score.triplets;
      candidateRight += score.accuracy * score.triplets;
      servedRight += old.accuracy * old.triplets;
    }
  }
  const overallCandidate = triplets > 0 ? candidateRight / triplets : 0;
  const overallServed = triplets > 0 ? servedRight / triplets : 0;
  const overallPassed = triplets === 0 || overallCandidate + EPSILON >= overallServed - tolerance;
  if (triplets === 0)
    failures.push('no test triplets under a condition both models know: nothing to compare');
  else if (!overallPassed) {
    failures.unshift(
      `overall: ${pct(overallCandidate)} < served ${pct(overallServed)} − ${pct(tolerance)} tolerance`,
    );
  }
  return {
    passed: failures.length === 0,
    tolerance,
    overall: {
      triplets,
      candidate: overallCandidate,
      served: overallServed,
      delta: overallCandidate - overallServed,
      passed: overallPassed && triplets > 0,
    },
    conditions,
    failures,
  };
}

function pct(value: number): string {
  return `${(100 * value).toFixed(2)} %`;
}

/** The comparison as a table for the terminal. */
export function formatGate(gate: GateResult): string {
  const rows = [
    ...gate.conditions.map((c) => [
      c.condition,
      String(c.triplets),
      pct(c.candidate),
      c.served === null ? 'new' : pct(c.served),
      c.delta === null ? '-' : `${c.delta >= 0 ? '+' : ''}${(100 * c.delta).toFixed(2)}`,
      c.passed ? 'ok' : 'REFUSED',
    ]),
    [
      'overall',
      String(gate.overall.triplets),
      pct(gate.overall.candidate),
      pct(gate.overall.served),
      `${gate.overall.delta >= 0 ? '+' : ''}${(100 * gate.overall.delta).toFixed(2)}`,
      gate.overall.passed ? 'ok' : 'REFUSED',
    ],
  ];
  const header = ['condition', 'triplets', 'candidate', 'served', 'Δ points', 'gate'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  return [
    `gate: candidate ≥ served − ${pct(gate.tolerance)}, overall and per condition`,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    gate.passed ? 'gate passed' : `gate refused: ${gate.failures.join('; ')}`,
  ].join('\n');
}
