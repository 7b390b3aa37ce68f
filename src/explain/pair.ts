/** The full explanation of one neighbour: why it is near under the asked condition and how it fares under the others. */
import { compareAttributes, type AttributeComparison } from './attributes.ts';
import {
  conditionDistance,
  dimensionBreakdown,
  type DimensionBreakdown,
  type SpaceDescription,
  type Vector,
} from './distance.ts';
import type { DistanceReference } from './reference.ts';

export interface OtherCondition {
  condition: string;
  distance: number;
  score: number;
}

export interface PairExplanation {
  condition: string;
  distance: number;
  /** Fraction of random pairs that are farther apart under this condition. */
  score: number;
  dimensions: DimensionBreakdown;
  /** The same pair under every other condition. */
  otherConditions: OtherCondition[];
  /** Absent when the query has no catalogue labels (an uploaded image). */
  attributes: AttributeComparison | null;
  summary: string;
}

export interface PairInput {
  /** Index of the asked condition into `spaces`. */
  condition: number;
  spaces: readonly SpaceDescription[];
  references: readonly DistanceReference[];
  /** Condition-space vector of each side under condition c. */
  queryVector: (condition: number) => Vector;
  neighbourVector: (condition: number) => Vector;
  queryAttributes?: Readonly<Record<string, readonly string[]>>;
  neighbourAttributes?: Readonly<Record<string, readonly string[]>>;
  topDims?: number;
}

function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/**
 * "closer than N% of random pairs" with enough digits to tell near neighbours apart: in a large catalogue every
 * top neighbour beats more than 99% of random pairs.
 */
export function describeScore(score: number): string {
  if (score >= 1) return 'closer than every sampled random pair';
  if (score >= 0.99)
    return `closer than ${Math.min(99.9, Math.floor(score * 1000) / 10).toFixed(1)}% of random pairs`;
  return `closer than ${Math.round(score * 100)}% of random pairs`;
}

/** The condition names of a list of spaces, made once per list (explanations are made per neighbour). */
const namesOfSpaces = new WeakMap<readonly SpaceDescription[], readonly string[]>();
function conditionNames(spaces: readonly SpaceDescription[]): readonly string[] {
  let names = namesOfSpaces.get(spaces);
  if (!names) namesOfSpaces.set(spaces, (names = spaces.map((s) => s.condition)));
  return names;
}

export function explainPair(input: PairInput): PairExplanation {
  const space = input.spaces[input.condition];
  const dimensions = dimensionBreakdown(
    input.queryVector(input.condition),
    input.neighbourVector(input.condition),
    space,
    input.topDims ?? 5,
  );
  const score = input.references[input.condition].score(dimensions.distance);
  const otherConditions: OtherCondition[] = [];
  for (let c = 0; c < input.spaces.length; c++) {
    if (c === input.condition) continue;
    const distance = conditionDistance(
      input.queryVector(c),
      input.neighbourVector(c),
      input.spaces[c].metric,
    );
    otherConditions.push({
      condition: input.spaces[c].condition,
      distance,
      score: input.references[c].score(distance),
    });
  }
  const attributes =
    input.queryAttributes && input.neighbourAttributes
      ? compareAttributes(input.queryAttributes, input.neighbourAttributes, conditionNames(input.spaces))
      : null;
  return {
    condition: space.condition,
    distance: dimensions.distance,
    score,
    dimensions,
    otherConditions,
    attributes,
    summary: summarize(space.condition, score, dimensions, attributes),
  };
}

function summarize(
  condition: string,
  score: number,
  dimensions: DimensionBreakdown,
  attributes: AttributeComparison | null,
): string {
  const parts = [`Under ${condition}, ${describeScore(score)}.`];
  const leading = dimensions.top.slice(0, 2).filter((c) => c.share > 0);
  if (leading.length > 0) {
    const share = leading.reduce((sum, c) => sum + c.share, 0);
    const dims = leading.map((c) => c.dim).join(' and ');
    parts.push(
      `Dimension${leading.length > 1 ? 's' : ''} ${dims} carry ${percent(share)} of the remaining distance.`,
    );
  } else {
    parts.push('Identical under this condition.');
  }
  if (attributes) {
    const own = attributes.shared.find((s) => s.condition === condition);
    const differ = attributes.differing.find((d) => d.condition === condition);
    if (own) parts.push(`Both are labelled ${condition}: ${own.values.join(', ')}.`);
    else if (differ) {
      parts.push(
        `Labels differ in ${condition}: ${differ.query.join(', ')} vs ${differ.neighbour.join(', ')}.`,
      );
    }
  }
  return parts.join(' ');
}
