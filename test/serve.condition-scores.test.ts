/**
 * How good each condition is, as a merchandiser sees it: the test scores a model's checkpoint records reach the
 * index version's provenance and GET /conditions over real HTTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { MetricsSummary } from '../src/checkpoint/index.ts';
import type { components } from '../src/serve/generated/api-types.ts';
import { startServedFixture, type ServedFixture } from './fixtures/serve/build.ts';

/** Distinct, recognisable scores per condition, as the trainer's test would write them. */
function scores(conditions: string[]): MetricsSummary {
  const accuracy = (c: number) => 0.6 + c / 100;
  const map = (c: number) => 0.3 + c / 100;
  return {
    test: {
      overall: 0.7,
      triplets: 40 * conditions.length,
      perCondition: Object.fromEntries(
        conditions.map((name, c) => [name, { accuracy: accuracy(c), triplets: 40 }]),
      ),
    },
    testMap: { overall: 0.4, perCondition: Object.fromEntries(conditions.map((name, c) => [name, map(c)])) },
  };
}

describe('GET /conditions: the served model test scores per condition', () => {
  let served: ServedFixture;
  before(async () => {
    served = await startServedFixture('dressmatch-serve-scores-', { products: 24, testScores: scores });
  });
  after(() => served?.close());

  it('gives each condition the test accuracy and MAP its checkpoint recorded', async () => {
    const response = await fetch(`${served.server.url}/conditions`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as components['schemas']['ConditionList'];
    const recorded = scores(served.fixture.catalogue.conditions);
    assert.equal(body.conditions.length, served.fixture.catalogue.conditions.length);
    for (const condition of body.conditions) {
      assert.equal(
        condition.testAccuracy,
        recorded.test!.perCondition[condition.name].accuracy,
        condition.name,
      );
      assert.equal(condition.testMap, recorded.testMap!.perCondition[condition.name], condition.name);
    }
  });
});
