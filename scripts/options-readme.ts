/**
 * Keeps each README's flag tables in step with the commands' option tables (src/util/options-table.ts). A table
 * sits between `<!-- options:NAME -->` and `<!-- /options:NAME -->`; this script renders it from the command's
 * table and formats the README with prettier, as `npm run format` would.
 *
 *   npx tsx scripts/options-readme.ts           exits 1 and names the README when a flag table drifted
 *   npx tsx scripts/options-readme.ts --write   rewrites the tables
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import prettier from 'prettier';
import { readmeTable } from '../src/util/options-table.ts';
import { FLAG_TABLES, type FlagTable } from './flag-tables.ts';

function markers(name: string): [string, string] {
  return [`<!-- options:${name} -->`, `<!-- /options:${name} -->`];
}

/** The README text with one flag table put in its place. */
function withTable(text: string, entry: FlagTable): string {
  const [open, close] = markers(entry.name);
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < start) throw new Error(`${entry.readme} has no ${open} … ${close} section`);
  const table = readmeTable(entry.table, entry.columns);
  return `${text.slice(0, start + open.length)}\n\n${table}\n\n${text.slice(end)}`;
}

/** What the README at `readme` should hold: `text` with its flag tables rendered, formatted as prettier would. */
export async function renderFlagTables(readme: string, text: string, entries: FlagTable[]): Promise<string> {
  const raw = entries.reduce(withTable, text);
  const config = (await prettier.resolveConfig(readme)) ?? {};
  return prettier.format(raw, { ...config, filepath: readme });
}

async function main(write: boolean): Promise<number> {
  const readmes = [...new Set(FLAG_TABLES.map((entry) => entry.readme))];
  let drifted = 0;
  for (const readme of readmes) {
    const text = readFileSync(readme, 'utf8');
    const entries = FLAG_TABLES.filter((entry) => entry.readme === readme);
    const want = await renderFlagTables(readme, text, entries);
    if (want === text) continue;
    if (write) {
      writeFileSync(readme, want);
      process.stdout.write(`${readme}: flag tables rewritten\n`);
    } else {
      drifted++;
      process.stdout.write(`${readme}: a flag table differs from its command (npm run options:readme)\n`);
    }
  }
  if (drifted === 0 && !write) process.stdout.write(`flag tables of ${readmes.length} READMEs are current\n`);
  return drifted === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv.includes('--write'));
}
