/**
 * Top entries of a V8 CPU profile (node --cpu-prof) by self time, as a markdown table: where a benchmark spends
 * its time. wasm functions show up by their export name (Conv2D, FusedConv2D, ...).
 *
 *   node --cpu-prof --cpu-prof-dir .tmp/prof --import tsx bench/model-speed.ts --worker reference
 *   npx tsx scripts/profile-top.ts .tmp/prof/<file>.cpuprofile [--top 20] [--title "training step"] [--out x.md]
 */
import { readFile, writeFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : fallback;
};
const file = argv[0];
if (!file) throw new Error('usage: profile-top.ts <file.cpuprofile> [--top N] [--title T] [--out file.md]');
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMs = new Map<string, number>();
let totalMs = 0;
profile.samples.forEach((id, i) => {
  const node = byId.get(id);
  const ms = (profile.timeDeltas[i] ?? 0) / 1000;
  totalMs += ms;
  if (!node) return;
  const { functionName, url } = node.callFrame;
  const where = url
    ? url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(src|bench)\//, '$1/')
    : '';
  const key = `${functionName || '(anonymous)'}${where ? ` — ${where.split('?')[0]}` : ''}`;
  selfMs.set(key, (selfMs.get(key) ?? 0) + ms);
});
const top = [...selfMs.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(option('--top', '20')));
const lines = [
  `### ${option('--title', 'CPU profile')}: top ${top.length} by self time (${totalMs.toFixed(0)} ms sampled)`,
  '',
  '| self ms | share | function — source |',
  '|---:|---:|---|',
  ...top.map(
    ([key, ms]) =>
      `| ${ms.toFixed(0)} | ${((100 * ms) / totalMs).toFixed(1)} % | ${key.replace(/\|/g, '\\|')} |`,
  ),
  '',
].join('\n');
const out = option('--out', '');
if (out) await writeFile(out, lines);
process.stdout.write(lines);
