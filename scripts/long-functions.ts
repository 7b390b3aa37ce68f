/**
 * Lists hand-written functions longer than the house limit (80 lines, TEAM rule) and exits 1 when there are any.
 * A function's length runs from its first line (name or `(`) to its closing brace; a nested function counts in
 * its own right and inside its parent. Generated code (any `generated/` folder) and tests are not looked at:
 * a test file's `describe` callbacks are lists of cases, not logic to hold in one's head.
 *
 *   npx tsx scripts/long-functions.ts [--max 80] [folders or files…]   (default: src bench scripts)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

interface LongFunction {
  file: string;
  line: number;
  name: string;
  lines: number;
}

const GENERATED = /(^|\/)generated\//;

function sourceFiles(path: string): string[] {
  if (GENERATED.test(path) || path.includes('node_modules')) return [];
  if (statSync(path).isDirectory()) {
    return readdirSync(path)
      .sort()
      .flatMap((entry) => sourceFiles(join(path, entry)));
  }
  return /\.(ts|mts)$/.test(path) && !path.endsWith('.d.ts') ? [path] : [];
}

function nameOf(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): string {
  if (node.name) return node.name.getText(file);
  if (ts.isConstructorDeclaration(node)) return 'constructor';
  const parent = node.parent;
  if (
    ts.isVariableDeclaration(parent) ||
    ts.isPropertyAssignment(parent) ||
    ts.isPropertyDeclaration(parent)
  ) {
    return parent.name.getText(file);
  }
  if (ts.isCallExpression(parent)) return `callback of ${parent.expression.getText(file).slice(0, 40)}`;
  return '(anonymous)';
}

function longFunctions(path: string, max: number): LongFunction[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: LongFunction[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const declaration = node as ts.FunctionLikeDeclaration;
      const first = file.getLineAndCharacterOfPosition(declaration.getStart(file)).line;
      const last = file.getLineAndCharacterOfPosition(declaration.getEnd()).line;
      const lines = last - first + 1;
      if (lines > max) found.push({ file: path, line: first + 1, name: nameOf(declaration, file), lines });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

function main(argv: string[]): number {
  let max = 80;
  const roots: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') max = Number(argv[++i]);
    else roots.push(argv[i]);
  }
  if (!Number.isInteger(max) || max < 1) throw new Error('--max takes a positive integer');
  const files = (roots.length > 0 ? roots : ['src', 'bench', 'scripts']).flatMap(sourceFiles);
  const found = files.flatMap((file) => longFunctions(file, max));
  for (const entry of found) {
    process.stdout.write(`${relative('.', entry.file)}:${entry.line}  ${entry.name}  ${entry.lines} lines\n`);
  }
  process.stdout.write(
    found.length === 0
      ? `no function over ${max} lines in ${files.length} files\n`
      : `${found.length} function(s) over ${max} lines\n`,
  );
  return found.length === 0 ? 0 : 1;
}

process.exitCode = main(process.argv.slice(2));
