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
import { applyGate, formatGate } from '../src/refresh/gate.ts';
import { REFRESH_EXIT, RefreshError } from '../src/refresh/types.ts';

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

  it('refuses --no-retrain when the catalogue lost a condition the indexes need', () => {
    const lost = withChanges(servedProducts, ['color']);
    assert.throws(
      () => decide(lost, { retrainShare: 0.25, retrain: false }),
      (error: unknown) =>
        error instanceof RefreshError &&
        error.exitCode === REFRESH_EXIT.badInput &&
        /no longer has condition\(s\) sleeve/.test(error.message),
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

const scores = (entries: Record<string, [number, number]>) => ({
  perCondition: Object.fromEntries(
    Object.entries(entries).map(([name, [accuracy, triplets]]) => [name, { accuracy, triplets }]),
  ),
});

describe('gate', () => {
  it('passes a candidate within the tolerance overall and on every condition, ties included', () => {
    const gate = applyGate(
      scores({ color: [0.79, 100], sleeve: [0.7, 100] }),
      scores({ color: [0.8, 100], sleeve: [0.65, 100] }),
      0.01,
    );
    assert.equal(gate.passed, true, gate.failures.join('; '));
    assert.equal(gate.overall.triplets, 200);
    assert.ok(Math.abs(gate.overall.delta - 0.02) < 1e-12, `overall delta ${gate.overall.delta}`);
    assert.match(formatGate(gate), /gate passed/);
  });

  it('refuses a candidate that loses one condition even when it wins overall', () => {
    const gate = applyGate(
      scores({ color: [0.95, 100], sleeve: [0.6, 100] }),
      scores({ color: [0.7, 100], sleeve: [0.62, 100] }),
      0.01,
    );
    assert.equal(gate.passed, false);
    assert.equal(gate.overall.passed, true);
    assert.deepEqual(
      gate.conditions.map((c) => [c.condition, c.passed]),
      [
        ['color', true],
        ['sleeve', false],
      ],
    );
    assert.match(gate.failures[0], /^sleeve: 60\.00 % < served 62\.00 %/);
    assert.match(formatGate(gate), /REFUSED/);
  });

  it('refuses a worse candidate overall, and a zero tolerance refuses any loss', () => {
    const bad = applyGate(scores({ color: [0.5, 100] }), scores({ color: [0.8, 100] }), 0.01);
    assert.equal(bad.passed, false);
    assert.match(bad.failures.join('\n'), /^overall: 50\.00 %/);
    assert.equal(applyGate(scores({ c: [0.799, 1000] }), scores({ c: [0.8, 1000] }), 0).passed, false);
    assert.equal(applyGate(scores({ c: [0.8, 1000] }), scores({ c: [0.8, 1000] }), 0).passed, true);
  });

  it('reports a new condition without gating it, and refuses when nothing can be compared', () => {
    const gate = applyGate(
      scores({ color: [0.8, 100], length: [0.3, 50] }),
      scores({ color: [0.8, 100], sleeve: [0.9, 100] }),
      0.01,
    );
    assert.equal(gate.passed, true, gate.failures.join('; '));
    const length = gate.conditions.find((c) => c.condition === 'length');
    assert.deepEqual([length?.served, length?.delta, length?.passed], [null, null, true]);
    assert.equal(gate.overall.triplets, 100, 'overall counts only conditions both models know');
    const nothing = applyGate(scores({ length: [0.9, 50] }), scores({ sleeve: [0.9, 50] }), 0.01);
    assert.equal(nothing.passed, false);
    assert.match(nothing.failures[0], /nothing to compare/);
  });

  it('rejects scores from different triplets and a tolerance outside [0, 1]', () => {
    assert.throws(
      () => applyGate(scores({ c: [0.8, 10] }), scores({ c: [0.8, 11] }), 0.01),
      /different triplets/,
    );
    assert.throws(() => applyGate(scores({ c: [0.8, 10] }), scores({ c: [0.8, 10] }), -1), /tolerance/);
  });
});
