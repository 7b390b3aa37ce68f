/**
 * What changed between the published bundle version and the catalogue as it is now: products added, removed and
 * changed (image, labels or title), label values new or gone per condition, conditions added or removed. Pure: the
 * caller reads the bundle's product table and fingerprints the catalogue (index stage), this only compares.
 */
import type { ChangeKind, ChangeReport, LabelChange, ProductChange } from './types.ts';

/** A product as both sides describe it (the index stage's IndexedProduct has these fields). */
export interface ComparedProduct {
  id: string;
  title: string;
  image: string;
  attributes: Record<string, string[]>;
  /** Hash of title, image path, attributes and image bytes: equal fingerprints mean nothing changed. */
  fingerprint: string;
  /** SHA-256 of the image file alone, when recorded (bundles indexed before it existed lack it). */
  imageSha256?: string;
}

export interface ServedSide {
  version: string;
  /** Conditions the served model (and its indexes) have. */
  conditions: readonly string[];
  products: readonly ComparedProduct[];
  /**
   * Label values the served model has seen, per condition (recorded by refresh in the versions it publishes). New
   * label values are counted against these when given, else against the version's products: once a refresh has
   * published a catalogue with a value the model never learned, the next run still knows it is new to the model.
   */
  labelsSeen?: Readonly<Record<string, readonly string[]>>;
}

export interface CatalogueSide {
  /** conditions.txt of the catalogue now. */
  conditions: readonly string[];
  products: readonly ComparedProduct[];
  /** Conditions a retrained model would have (--conditions, else every catalogue condition). */
  target?: readonly string[];
}

function sameLabels(a: Record<string, string[]>, b: Record<string, string[]>): boolean {
  const canonical = (attributes: Record<string, string[]>) =>
    JSON.stringify(
      Object.keys(attributes)
        .filter((key) => attributes[key].length > 0)
        .sort()
        .map((key) => [key, [...attributes[key]].sort()]),
    );
  return canonical(a) === canonical(b);
}

/**
 * Why a product's fingerprint changed. Labels and title are compared directly; the image counts as changed when
 * its path or recorded hash differs, or when nothing else explains the new fingerprint (then only the bytes can
 * have changed, since the fingerprint covers exactly title, path, labels and bytes).
 */
export function productChange(served: ComparedProduct, now: ComparedProduct): ChangeKind[] {
  if (served.fingerprint === now.fingerprint) return [];
  const what: ChangeKind[] = [];
  const labels = !sameLabels(served.attributes, now.attributes);
  const title = served.title !== now.title;
  const hashes = served.imageSha256 !== undefined && now.imageSha256 !== undefined;
  const image =
    served.image !== now.image || (hashes ? served.imageSha256 !== now.imageSha256 : !labels && !title);
  if (image) what.push('image');
  if (labels) what.push('labels');
  if (title) what.push('title');
  return what;
}

/** Every label value of `condition` among `products`. */
function labelValues(products: readonly ComparedProduct[], condition: string): Set<string> {
  const values = new Set<string>();
  for (const product of products) for (const value of product.attributes[condition] ?? []) values.add(value);
  return values;
}

/** The label values of `conditions` among `products`, sorted, per condition. */
export function labelsOf(
  products: readonly ComparedProduct[],
  conditions: readonly string[],
): Record<string, string[]> {
  return Object.fromEntries(conditions.map((c) => [c, [...labelValues(products, c)].sort()]));
}

function labelChanges(
  served: ServedSide,
  now: readonly ComparedProduct[],
  conditions: readonly string[],
): LabelChange[] {
  const changes: LabelChange[] = [];
  for (const condition of conditions) {
    const seen = served.labelsSeen?.[condition];
    const before = seen ? new Set(seen) : labelValues(served.products, condition);
    const after = labelValues(now, condition);
    const added = [...after].filter((value) => !before.has(value)).sort();
    const removed = [...before].filter((value) => !after.has(value)).sort();
    if (added.length > 0 || removed.length > 0) changes.push({ condition, added, removed });
  }
  return changes;
}

/** Compare the served version with the catalogue now. */
export function compareCatalogue(served: ServedSide, now: CatalogueSide): ChangeReport {
  const before = new Map(served.products.map((product) => [product.id, product]));
  const currentIds = new Set(now.products.map((product) => product.id));
  const added: string[] = [];
  const changed: ProductChange[] = [];
  let unchanged = 0;
  for (const product of now.products) {
    const old = before.get(product.id);
    if (!old) {
      added.push(product.id);
      continue;
    }
    const what = productChange(old, product);
    if (what.length === 0) unchanged++;
    else changed.push({ id: product.id, what });
  }
  const removed = served.products.filter((p) => !currentIds.has(p.id)).map((p) => p.id);
  const target = now.target ?? now.conditions;
  const servedConditions = new Set(served.conditions);
  const catalogueConditions = new Set(now.conditions);
  const touched = added.length + removed.length + changed.length;
  return {
    servedVersion: served.version,
    servedProducts: served.products.length,
    catalogueProducts: now.products.length,
    added,
    removed,
    changed,
    unchanged,
    changedShare: served.products.length === 0 ? 1 : touched / served.products.length,
    conditionsAdded: target.filter((c) => !servedConditions.has(c)),
    conditionsRemoved: served.conditions.filter((c) => !catalogueConditions.has(c)),
    labels: labelChanges(served, now.products, target),
  };
}

/** True when the catalogue is exactly what the served version indexed. */
export function nothingChanged(report: ChangeReport): boolean {
  return (
    report.added.length + report.removed.length + report.changed.length === 0 &&
    report.conditionsAdded.length === 0 &&
    report.conditionsRemoved.length === 0 &&
    report.labels.length === 0
  );
}

/** A few lines for the terminal: counts, then the label and condition differences. */
export function describeChanges(report: ChangeReport): string {
  const lines = [
    `since version ${report.servedVersion} (${report.servedProducts} products): ` +
      `${report.added.length} added, ${report.removed.length} removed, ${report.changed.length} changed, ` +
      `${report.unchanged} unchanged (${(100 * report.changedShare).toFixed(1)} % touched)`,
  ];
  if (report.conditionsAdded.length > 0) lines.push(`conditions added: ${report.conditionsAdded.join(', ')}`);
  if (report.conditionsRemoved.length > 0)
    lines.push(`conditions removed: ${report.conditionsRemoved.join(', ')}`);
  for (const change of report.labels) {
    const parts = [
      change.added.length > 0 ? `new ${change.added.join(', ')}` : '',
      change.removed.length > 0 ? `gone ${change.removed.join(', ')}` : '',
    ].filter(Boolean);
    lines.push(`labels of ${change.condition}: ${parts.join('; ')}`);
  }
  return lines.join('\n');
}
