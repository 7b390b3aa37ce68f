import { readFile } from 'node:fs/promises';
import { CatalogueError } from './types.ts';

/** One non-blank line of a text file with its 1-based line number (for error messages). */
export interface NumberedLine {
  line: number;
  text: string;
}

/** Read a UTF-8 text file as trimmed, non-blank lines; a missing file is a CatalogueError naming it. */
export async function readLines(path: string, displayName = path): Promise<NumberedLine[]> {
  let content: string;
  try {
    content = await readFile(path, 'utf8');
  } catch (error) {
    throw new CatalogueError(displayName, undefined, `cannot read file (${(error as Error).message})`);
  }
  return splitLines(content);
}

export function splitLines(content: string): NumberedLine[] {
  const lines: NumberedLine[] = [];
  const raw = content.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let i = 0; i < raw.length; i++) {
    const text = raw[i].trim();
    if (text !== '') lines.push({ line: i + 1, text });
  }
  return lines;
}

/** Parse a whitespace-separated row of non-negative integers with an exact column count. */
export function parseIndexRow(
  row: NumberedLine,
  file: string,
  columns: number | ((count: number) => boolean),
  expected: string,
): number[] {
  const fields = row.text.split(/\s+/);
  const countOk = typeof columns === 'number' ? fields.length === columns : columns(fields.length);
  if (!countOk || !fields.every((field) => /^\d+$/.test(field))) {
    throw new CatalogueError(file, row.line, `malformed row "${row.text}": expected ${expected}`);
  }
  return fields.map(Number);
}

/**
 * Split one CSV record (RFC 4180 quoting: fields with commas or quotes are wrapped in double quotes and inner
 * quotes doubled). Records spanning several lines are not supported: the catalogue CSVs never need them.
 */
export function parseCsvRecord(text: string, file: string, line: number): string[] {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const char = text[i];
    if (quoted) {
      if (char === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (char === '"') {
        quoted = false;
        i++;
        if (i < text.length && text[i] !== ',') {
          throw new CatalogueError(file, line, `malformed CSV row: unexpected text after a closing quote`);
        }
        continue;
      }
      field += char;
      i++;
      continue;
    }
    if (char === ',') {
      fields.push(field);
      field = '';
    } else if (char === '"' && field === '') {
      quoted = true;
    } else {
      field += char;
    }
    i++;
  }
  if (quoted) throw new CatalogueError(file, line, 'malformed CSV row: unterminated quote');
  fields.push(field);
  return fields.map((value) => value.trim());
}

/** Product ids appear in whitespace-separated triplet files and in URLs: no whitespace, no slashes. */
export function isValidProductId(id: string): boolean {
  return id.length > 0 && id.length <= 200 && !/[\s/\\]/.test(id);
}

/** Condition names appear in file names (`triplets/{condition}_{split}.txt`) and query strings. */
export function isValidConditionName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name) && name.length <= 100;
}

/** Turn an upstream attribute name ("neck design") into a valid condition name ("neck_design"). */
export function toConditionName(name: string): string {
  return name
    .trim()
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/^[^A-Za-z0-9]+/, '');
}
