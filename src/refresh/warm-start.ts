/**
 * Warm start for a retrain: the served model's weights under the updated list of conditions. Shared weights
 * (backbone, embedding, attention) are copied; per-condition weights (CSN masks, ASEN attribute embeddings) keep
 * the rows of conditions that stay, a new condition gets the fresh row a new model would start with, and a removed
 * condition's row is dropped. Which weights are per-condition is asked of the model itself: a probe model with one
 * more condition shows which shapes grow with the condition count, so no weight name is hard-coded here.
 */
import { createModel, type ModelConfig, type ModelSnapshot, type NamedWeight } from '../model/index.ts';

export interface WarmStart {
  snapshot: ModelSnapshot;
  kept: string[];
  added: string[];
  dropped: string[];
  /** Weights that were not copied from the served model (new shapes), by name. */
  fresh: string[];
}

/** Initial weights of a model with `config` (seeded, so the same config gives the same weights). */
function initialWeights(config: ModelConfig): NamedWeight[] {
  const model = createModel(config);
  try {
    return model.snapshot().weights;
  } finally {
    model.dispose();
  }
}

/** Names of the weights whose first dimension is the number of conditions. */
export function perConditionWeights(config: ModelConfig): Set<string> {
  const base = initialWeights(config);
  const probe = initialWeights({ ...config, conditions: [...config.conditions, '\u0000probe'] });
  const shapeOf = new Map(base.map((w) => [w.name, w.shape]));
  const names = new Set<string>();
  for (const weight of probe) {
    const shape = shapeOf.get(weight.name);
    if (shape && shape.length > 0 && weight.shape[0] === shape[0] + 1) names.add(weight.name);
  }
  return names;
}

/** Rows of `served` (one per served condition) rearranged for `target`, fresh rows where a condition is new. */
function remapRows(
  served: NamedWeight,
  fresh: NamedWeight,
  servedConditions: readonly string[],
  target: readonly string[],
): NamedWeight {
  const rowLength = fresh.data.length / fresh.shape[0];
  if (served.data.length / served.shape[0] !== rowLength) {
    throw new RangeError(
      `${served.name}: rows of ${served.data.length / served.shape[0]} values, the model expects ${rowLength}`,
    );
  }
  const data = Float32Array.from(fresh.data);
  target.forEach((condition, row) => {
    const from = servedConditions.indexOf(condition);
    if (from >= 0) data.set(served.data.subarray(from * rowLength, (from + 1) * rowLength), row * rowLength);
  });
  return { name: fresh.name, shape: [...fresh.shape], data };
}

/**
 * The served model re-shaped for `conditions`. Throws when a shared weight has another shape than the
 * architecture expects (the snapshot is not a model of that config).
 */
export function warmStart(served: ModelSnapshot, conditions: readonly string[]): WarmStart {
  if (conditions.length === 0) throw new RangeError('a model needs at least one condition');
  const config: ModelConfig = { ...served.config, conditions: [...conditions] };
  const perCondition = perConditionWeights(config);
  const byName = new Map(served.weights.map((w) => [w.name, w]));
  const servedConditions = served.config.conditions;
  const fresh: string[] = [];
  const weights = initialWeights(config).map((init): NamedWeight => {
    const old = byName.get(init.name);
    if (!old) {
      fresh.push(init.name);
      return init;
    }
    if (perCondition.has(init.name)) return remapRows(old, init, servedConditions, conditions);
    if (old.shape.join('x') !== init.shape.join('x')) {
      throw new RangeError(
        `${init.name}: the served model has shape ${old.shape.join('x')}, the architecture ${init.shape.join('x')}`,
      );
    }
    return { name: old.name, shape: [...old.shape], data: Float32Array.from(old.data) };
  });
  return {
    snapshot: { config, weights },
    kept: conditions.filter((c) => servedConditions.includes(c)),
    added: conditions.filter((c) => !servedConditions.includes(c)),
    dropped: servedConditions.filter((c) => !conditions.includes(c)),
    fresh,
  };
}
