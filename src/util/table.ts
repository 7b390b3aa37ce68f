/** Plain-text tables for command-line reports (eval, index, benchmarks): one formatter for all of them. */

export interface TableOptions {
  /** A line above the header. */
  title?: string;
  /** Draw a rule above the last row (a total). */
  totalRow?: boolean;
  /**
   * 'numbers' (default): columns whose every cell is a number (or "-", "12.3x", "3/5") are right-aligned, others
   * left-aligned; 'first-left': the first column left-aligned, all others right-aligned.
   */
  align?: 'numbers' | 'first-left';
}

const NUMERIC = /^(-|-?[\d.]+(x|\/\d+)?)$/;

export function formatTable(header: string[], rows: string[][], options: TableOptions = {}): string {
  const widths = header.map((h, j) => Math.max(h.length, ...rows.map((row) => (row[j] ?? '').length)));
  const right = header.map((_, j) =>
    options.align === 'first-left' ? j > 0 : rows.length > 0 && rows.every((row) => NUMERIC.test(row[j])),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, j) => (right[j] ? cell.padStart(widths[j]) : cell.padEnd(widths[j])))
      .join('  ')
      .trimEnd();
  const rule = line(widths.map((w) => '-'.repeat(w)));
  const body = rows.map(line);
  if (options.totalRow && body.length > 1) body.splice(body.length - 1, 0, rule);
  return [...(options.title ? [options.title] : []), line(header), rule, ...body].join('\n');
}
