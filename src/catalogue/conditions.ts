/**
 * Choosing conditions: names (or upstream indices) checked against a catalogue, and the catalogue seen through
 * the chosen ones. Train and eval both go through here, so "unknown condition" is detected in one place.
 */
import type { Catalogue, RetrievalSet, Triplet } from './types.ts';

/** A requested condition the catalogue does not have, or one listed twice. */
export class ConditionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConditionError';
  }
}

/**
 * Map `--conditions` (names, or indices into the catalogue's list as upstream takes them) to names, in the order
 * given, rejecting unknown ones with the list of valid conditions.
 */
export function resolveConditions(
  requested: readonly string[] | undefined,
  available: readonly string[],
): string[] {
  if (!requested || requested.length === 0) return [...available];
  const names = requested.map((entry) => {
    if (available.includes(entry)) return entry;
    if (/^\d+$/.test(entry) && Number(entry) < available.length) return available[Number(entry)];
    throw new ConditionError(
      `unknown condition "${entry}"; valid conditions: ${available.map((name, i) => `${name} (${i})`).join(', ')}`,
    );
  });
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate) throw new ConditionError(`condition "${duplicate}" is listed twice in --conditions`);
  return names;
}

/**
 * The catalogue restricted to `conditions` (in that order): condition indices of shipped triplets and retrieval
 * items are renumbered, and entries of other conditions dropped. Products are shared, not copied.
 */
export function restrictCatalogue(catalogue: Catalogue, conditions: readonly string[]): Catalogue {
  const newIndex = catalogue.conditions.map((name) => conditions.indexOf(name));
  const remapTriplets = (list: Triplet[] | undefined) =>
    list?.filter((t) => newIndex[t.condition] >= 0).map((t) => ({ ...t, condition: newIndex[t.condition] }));
  const remapRetrieval = (set: RetrievalSet | undefined): RetrievalSet | undefined =>
    set && {
      queries: set.queries
        .filter((q) => newIndex[q.condition] >= 0)
        .map((q) => ({ ...q, condition: newIndex[q.condition] })),
      candidates: set.candidates
        .filter((q) => newIndex[q.condition] >= 0)
        .map((q) => ({ ...q, condition: newIndex[q.condition] })),
    };
  const view: Catalogue = { ...catalogue, conditions: [...conditions] };
  if (catalogue.triplets) {
    view.triplets = {
      train: remapTriplets(catalogue.triplets.train),
      val: remapTriplets(catalogue.triplets.val),
      test: remapTriplets(catalogue.triplets.test),
    };
  }
  if (catalogue.retrieval) {
    view.retrieval = {
      val: remapRetrieval(catalogue.retrieval.val),
      test: remapRetrieval(catalogue.retrieval.test),
    };
  }
  return view;
}
