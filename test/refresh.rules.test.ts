/**
 * The refresh stage's rules on plain data: the change report (products, labels, conditions), the decision rule
 * (re-index vs retrain, forced either way, the lost-condition error), and the gate (overall, per condition, ties,
 * new conditions, tolerance).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareCatalogue,
  describeChanges,
  nothingChanged,
  productChange,
  type ComparedProduct,
} from '../src/refresh/changes.ts';
import { decide } from '../src/refresh/decision.ts';
import { applyGate, formatGate, type GateAnswers } from '../src/refresh/gate.ts';

function product(id: string, attributes: Record<string, string[]>, extra: Partial<ComparedProduct> = {}) {
  return {
    id,
    title: `dress ${id}`,
    image: `images/${id}.png`,
    attributes,
    fingerprint: `${id}:${JSON.stringify(attributes)}:${extra.imageSha256 ?? 'img'}`,
    ...extra,
  };
}

const servedProducts = [
  product('a', { color: ['red'], sleeve: ['long'] }),
  product('b', { color: ['blue'], sleeve: ['short'] }),
  product('c', { color: ['red'], sleeve: ['short'] }),
  product('d', { color: ['green'], sleeve: ['long'] }),
];
const served = { version: 'v000001', conditions: ['color', 'sleeve'], products: servedProducts };

describe('change report', () => {
  it('finds added, removed and changed products and new and gone label values per condition', () => {
    const now = [
      servedProducts[0],
      product('b', { color: ['blue'], sleeve: ['sleeveless'] }),
      { ...servedProducts[2], fingerprint: 'c:new-bytes' },
      product('e', { color: ['teal'], sleeve: ['long'] }),
    ];
    const report = compareCatalogue(served, { conditions: ['color', 'sleeve'], products: now });
    assert.deepEqual(report.added, ['e']);
    assert.deepEqual(report.removed, ['d']);
    assert.deepEqual(report.changed, [
      { id: 'b', what: ['labels'] },
      { id: 'c', what: ['image'] },
    ]);
    assert.equal(report.unchanged, 1);
    assert.equal(report.changedShare, 4 / 4, 'added + removed + changed over the 4 served products');
    assert.deepEqual(report.labels, [
      { condition: 'color', added: ['teal'], removed: ['green'] },
      { condition: 'sleeve', added: ['sleeveless'], removed: [] },
    ]);
    assert.deepEqual(report.conditionsAdded, []);
    assert.deepEqual(report.conditionsRemoved, []);
    assert.equal(nothingChanged(report), false);
    assert.match(describeChanges(report), /1 added, 1 removed, 2 changed, 1 unchanged \(100\.0 % touched\)/);
    assert.match(describeChanges(report), /labels of color: new teal; gone green/);
  });

  it('reports conditions added to conditions.txt and conditions it lost', () => {
    const report = compareCatalogue(served, {
      conditions: ['color', 'length'],
      products: servedProducts,
    });
    assert.deepEqual(report.conditionsAdded, ['length']);
    assert.deepEqual(report.conditionsRemoved, ['sleeve']);
    assert.equal(nothingChanged(report), false);
    const restricted = compareCatalogue(served, {
      conditions: ['color', 'sleeve', 'length'],
      products: servedProducts,
      target: ['color', 'sleeve'],
    });
    assert.deepEqual(
      restricted.conditionsAdded,
      [],
      '--conditions leaves the new condition out of the model',
    );
    assert.equal(nothingChanged(restricted), true);
  });

  it('tells image, labels and title changes apart, exactly when image hashes were recorded', () => {
    const old = product('x', { color: ['red'] }, { imageSha256: 'h1' });
    const relabelled = product('x', { color: ['blue'] }, { imageSha256: 'h1' });
    const both = product('x', { color: ['blue'] }, { imageSha256: 'h2' });
    assert.deepEqual(productChange(old, old), []);
    assert.deepEqual(productChange(old, relabelled), ['labels']);
    assert.deepEqual(productChange(old, both), ['image', 'labels']);
    const renamed = { ...old, title: 'new title', fingerprint: 'other' };
    assert.deepEqual(productChange(old, renamed), ['title']);
    const moved = { ...old, image: 'images/other.png', fingerprint: 'moved' };
    assert.deepEqual(productChange(old, moved), ['image']);
    // Label order and empty lists do not count as a label change.
    const reordered = product('y', { color: ['a', 'b'], sleeve: [] });
    const same = { ...product('y', { color: ['b', 'a'] }), fingerprint: 'changed-bytes' };
    assert.deepEqual(productChange(reordered, same), ['image']);
  });
});

describe('decision rule', () => {
  const base = compareCatalogue(served, { conditions: ['color', 'sleeve'], products: servedProducts });
  const withChanges = (products: ComparedProduct[], conditions = ['color', 'sleeve']) =>
    compareCatalogue(served, { conditions, products });

  it('does nothing when nothing changed, unless --retrain', () => {
    assert.equal(decide(base, { retrainShare: 0.25 }).action, 'nothing');
    assert.equal(decide(base, { retrainShare: 0.25, retrain: false }).action, 'nothing');
    const forced = decide(base, { retrainShare: 0.25, retrain: true });
    assert.deepEqual([forced.action, forced.forced], ['retrain', true]);
  });

  it('re-indexes small changes with known labels and retrains above the share', () => {
    const oneNew = withChanges([...servedProducts, product('e', { color: ['red'], sleeve: ['long'] })]);
    const small = decide(oneNew, { retrainShare: 0.25 });
    assert.equal(small.action, 'reindex', small.reasons.join('; '));
    assert.equal(decide(oneNew, { retrainShare: 0.2 }).action, 'retrain', '1 of 4 is above 20 %');
  });

  it('retrains for a new label value, a new condition and a lost condition', () => {
    const teal = withChanges([
      ...servedProducts.slice(1),
      product('a', { color: ['teal'], sleeve: ['long'] }),
    ]);
    const decision = decide(teal, { retrainShare: 0.9 });
    assert.equal(decision.action, 'retrain');
    assert.match(decision.reasons.join('\n'), /new label value\(s\) of color: teal/);
    const more = decide(withChanges(servedProducts, ['color', 'sleeve', 'length']), { retrainShare: 0.9 });
    assert.match(more.reasons.join('\n'), /new condition\(s\) length need a mask/);
    const lost = decide(withChanges(servedProducts, ['color']), { retrainShare: 0.9 });
    assert.equal(lost.action, 'retrain');
    assert.match(lost.reasons.join('\n'), /sleeve left the catalogue/);
  });

  it('only re-indexes under --no-retrain, also when the catalogue lost a condition (it is left out)', () => {
    const lost = decide(withChanges(servedProducts, ['color']), { retrainShare: 0.25, retrain: false });
    assert.equal(lost.action, 'reindex');
    assert.match(
      lost.reasons.join('\n'),
      /ignored \(--no-retrain\): condition\(s\) sleeve left the catalogue/,
    );
    const teal = withChanges([
      ...servedProducts.slice(1),
      product('a', { color: ['teal'], sleeve: ['long'] }),
    ]);
    const decision = decide(teal, { retrainShare: 0.25, retrain: false });
    assert.equal(decision.action, 'reindex');
    assert.match(decision.reasons.join('\n'), /ignored \(--no-retrain\): new label value/);
  });
});

/** How one condition's triplets were answered: only the candidate right, only the served model, both, neither. */
interface Split {
  onlyCandidate: number;
  onlyServed: number;
  both: number;
  neither: number;
}

/** Gate input: per condition its split of answers, or 'new' (n triplets the served model cannot answer). */
function answers(spec: Record<string, Split | { new: number }>): GateAnswers {
  const out: GateAnswers & { triplets: { condition: number; anchor: number }[] } = {
    conditions: Object.keys(spec),
    triplets: [],
    candidate: [],
    served: [],
  };
  const candidate = out.candidate as boolean[];
  const served = out.served as (boolean | null)[];
  Object.values(spec).forEach((split, condition) => {
    const add = (count: number, c: boolean, s: boolean | null) => {
      for (let i = 0; i < count; i++) {
        out.triplets.push({ condition, anchor: out.triplets.length });
        candidate.push(c);
        served.push(s);
      }
    };
    if ('new' in split) return add(split.new, true, null);
    add(split.onlyCandidate, true, false);
    add(split.onlyServed, false, true);
    add(split.both, true, true);
    add(split.neither, false, false);
  });
  return out;
}

const split = (onlyCandidate: number, onlyServed: number, total = 400): Split => ({
  onlyCandidate,
  onlyServed,
  both: Math.round(0.7 * total) - onlyServed,
  neither: total - Math.round(0.7 * total) - onlyCandidate,
});

const SETTINGS = { tolerance: 0.01, confidence: 0.95, resamples: 2000, seed: 3 };

describe('gate', () => {
  it('accepts a candidate that answers exactly as the served model: zero difference, zero-width intervals', () => {
    const gate = applyGate(answers({ color: split(0, 0), sleeve: split(0, 0) }), SETTINGS);
    assert.equal(gate.passed, true, gate.failures.join('; '));
    assert.deepEqual([gate.overall.delta, gate.overall.interval], [0, [0, 0]]);
    assert.deepEqual(
      gate.conditions.map((c) => c.verdict),
      ['no difference', 'no difference'],
    );
    assert.match(formatGate(gate), /gate accepted: no condition is worse with 95\.00 % confidence/);
  });

  it('tells noise from harm: a 1.5-point loss on 400 triplets is no difference, a 14-point one is refused', () => {
    const noise = applyGate(answers({ color: split(8, 14), sleeve: split(10, 8) }), SETTINGS);
    assert.equal(noise.passed, true, noise.failures.join('; '));
    const color = noise.conditions[0];
    assert.equal(color.verdict, 'no difference');
    assert.ok(
      color.paired!.interval[0] < -0.015 && color.paired!.interval[1] > 0,
      `${color.paired!.interval}`,
    );
    const harm = applyGate(answers({ color: split(100, 5), sleeve: split(5, 60) }), SETTINGS);
    assert.equal(harm.passed, false);
    assert.equal(harm.overall.passed, true, 'better overall');
    assert.deepEqual(
      harm.conditions.map((c) => [c.condition, c.verdict, c.passed]),
      [
        ['color', 'better', true],
        ['sleeve', 'worse', false],
      ],
    );
    assert.match(
      harm.failures[0],
      /^sleeve is worse with 95\.00 % confidence: Δ −13\.75 points \[−\d+\.\d\d, −\d+\.\d\d\]/,
    );
    assert.match(formatGate(harm), /worse: REFUSED/);
    assert.match(harm.reason, /^refused: sleeve/);
  });

  it('refuses an overall drop beyond the tolerance even when no single condition is clearly worse', () => {
    const spread = Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((name) => [name, split(8, 14)]));
    const gate = applyGate(answers(spread), SETTINGS);
    assert.ok(gate.conditions.every((c) => c.verdict === 'no difference'));
    assert.equal(gate.passed, false);
    assert.match(gate.failures[0], /^overall accuracy dropped by more than the tolerance of 1\.00 points/);
    assert.equal(applyGate(answers(spread), { ...SETTINGS, tolerance: 0.02 }).passed, true);
    const tiny = answers({ c: split(0, 1) });
    assert.equal(applyGate(tiny, { ...SETTINGS, tolerance: 0 }).passed, false, 'zero tolerance: any loss');
  });

  it('the interval is the paired one: about ±1.96·√(discordant share − Δ²)/√n for independent anchors', () => {
    const outcomes = answers({ c: { onlyCandidate: 100, onlyServed: 60, both: 600, neither: 240 } });
    const gate = applyGate(outcomes, SETTINGS);
    const n = 1000;
    const delta = 0.04;
    const half = (1.96 * Math.sqrt(160 / n - delta * delta)) / Math.sqrt(n);
    const [low, high] = gate.overall.interval;
    assert.ok(Math.abs(gate.overall.delta - delta) < 1e-12);
    assert.ok(Math.abs(low - (delta - half)) < 0.2 * half, `low ${low} vs ${delta - half}`);
    assert.ok(Math.abs(high - (delta + half)) < 0.2 * half, `high ${high} vs ${delta + half}`);
    assert.deepEqual(applyGate(outcomes, SETTINGS).overall.interval, [low, high], 'seeded: same interval');
  });

  it('triplets sharing an anchor widen the interval (the bootstrap resamples anchors)', () => {
    const independent = answers({ c: split(30, 10) });
    const clustered: GateAnswers = {
      ...independent,
      // 20 triplets per anchor, answered alike (an anchor the models embed differently): correlated outcomes.
      triplets: independent.triplets.map((t) => ({ ...t, anchor: Math.floor(t.anchor / 20) })),
    };
    const width = (a: GateAnswers) => {
      const [low, high] = applyGate(a, SETTINGS).overall.interval;
      return high - low;
    };
    assert.ok(width(clustered) > width(independent), `${width(clustered)} vs ${width(independent)}`);
  });

  it('reports a new condition without gating it, and refuses when nothing can be compared', () => {
    const gate = applyGate(answers({ color: split(0, 0), length: { new: 50 } }), SETTINGS);
    assert.equal(gate.passed, true, gate.failures.join('; '));
    const length = gate.conditions.find((c) => c.condition === 'length');
    assert.deepEqual([length?.paired, length?.verdict, length?.passed], [null, 'new', true]);
    assert.equal(gate.overall.triplets, 400, 'overall counts only conditions both models know');
    const nothing = applyGate(answers({ length: { new: 50 } }), SETTINGS);
    assert.equal(nothing.passed, false);
    assert.match(nothing.failures[0], /nothing to compare/);
  });

  it('rejects answers of different lengths and settings out of range', () => {
    const one = answers({ c: split(1, 1) });
    assert.throws(() => applyGate({ ...one, served: one.served.slice(1) }, SETTINGS), /different triplets/);
    assert.throws(() => applyGate(one, { ...SETTINGS, tolerance: -1 }), /tolerance/);
    assert.throws(() => applyGate(one, { ...SETTINGS, confidence: 1 }), /confidence/);
  });
});
