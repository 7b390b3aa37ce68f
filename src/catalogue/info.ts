import { productSplit } from './split.ts';
import { SPLITS, type Catalogue, type Split } from './types.ts';

export type SplitCounts = Record<Split, number>;

export interface LabelSummary {
  label: string;
  products: SplitCounts & { total: number };
}

export interface ConditionSummary {
  name: string;
  labels: LabelSummary[];
  /** Products with at least one label for the condition. */
  labelled: number;
  /** Shipped triplets per split. */
  triplets: SplitCounts;
}

export interface CatalogueSummary {
  name: string;
  root: string;
  products: number;
  splits: SplitCounts;
  conditions: ConditionSummary[];
  retrieval: { split: 'val' | 'test'; queries: number; candidates: number }[];
}

const zero = (): SplitCounts => ({ train: 0, val: 0, test: 0 });

/** Counts per split, condition and label (labels sorted by frequency), plus shipped triplets and retrieval sets. */
export function summarizeCatalogue(catalogue: Catalogue): CatalogueSummary {
  const splits = productSplit(catalogue);
  const splitCounts = zero();
  for (const split of splits) splitCounts[split]++;
  const conditions = catalogue.conditions.map((name, c): ConditionSummary => {
    const byLabel = new Map<string, LabelSummary>();
    let labelled = 0;
    catalogue.products.forEach((product, index) => {
      const labels = product.attributes[name] ?? [];
      if (labels.length > 0) labelled++;
      for (const label of labels) {
        let entry = byLabel.get(label);
        if (!entry) byLabel.set(label, (entry = { label, products: { ...zero(), total: 0 } }));
        entry.products[splits[index]]++;
        entry.products.total++;
      }
    });
    const triplets = zero();
    for (const split of SPLITS) {
      triplets[split] = (catalogue.triplets?.[split] ?? []).filter((t) => t.condition === c).length;
    }
    const labels = [...byLabel.values()].sort(
      (a, b) => b.products.total - a.products.total || a.label.localeCompare(b.label),
    );
    return { name, labels, labelled, triplets };
  });
  const retrieval = (['val', 'test'] as const).flatMap((split) => {
    const set = catalogue.retrieval?.[split];
    return set ? [{ split, queries: set.queries.length, candidates: set.candidates.length }] : [];
  });
  return {
    name: catalogue.name,
    root: catalogue.root,
    products: catalogue.products.length,
    splits: splitCounts,
    conditions,
    retrieval,
  };
}

function table(rows: string[][], rightAligned: (column: number) => boolean): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  return rows
    .map((row) =>
      row
        .map((cell, c) => (rightAligned(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Plain-text report for `catalogue-info`. */
export function formatSummary(summary: CatalogueSummary, layout?: string): string {
  const lines: string[] = [];
  const splitText = (counts: SplitCounts) => SPLITS.map((split) => `${split} ${counts[split]}`).join(', ');
  lines.push(`catalogue  ${summary.name}${layout ? ` (${layout} layout)` : ''}  ${summary.root}`);
  lines.push(`products   ${summary.products} (${splitText(summary.splits)})`);
  lines.push(`conditions ${summary.conditions.length}`);
  for (const set of summary.retrieval) {
    lines.push(`retrieval  ${set.split}: ${set.queries} queries, ${set.candidates} candidates`);
  }
  lines.push('');
  const overview: string[][] = [['condition', 'labels', 'labelled', 'triplets train', 'val', 'test']];
  for (const condition of summary.conditions) {
    overview.push([
      condition.name,
      String(condition.labels.length),
      String(condition.labelled),
      ...SPLITS.map((split) => String(condition.triplets[split])),
    ]);
  }
  lines.push(table(overview, (c) => c > 0));
  for (const condition of summary.conditions) {
    if (condition.labels.length === 0) continue;
    lines.push('', `${condition.name}:`);
    const rows: string[][] = [['  label', 'products', 'train', 'val', 'test']];
    for (const entry of condition.labels) {
      rows.push([
        `  ${entry.label}`,
        String(entry.products.total),
        ...SPLITS.map((split) => String(entry.products[split])),
      ]);
    }
    lines.push(table(rows, (c) => c > 0));
  }
  return `${lines.join('\n')}\n`;
}
