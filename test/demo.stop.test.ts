/**
 * `npm run demo` under a process supervisor: SIGTERM to npm alone stops the whole demo (the demo process and the
 * service it started), and so does killing npm outright (the demo notices it was orphaned). Real processes: npm,
 * the demo, its stages and the service on a free port, with the shipped demo model on a small catalogue.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateDemoCatalogue } from '../src/catalogue/index.ts';

let root: string;
let dataDir: string;
const started: ChildProcess[] = [];
const seen = new Set<number>();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-demo-stop-'));
  dataDir = join(root, 'catalogue');
  await generateDemoCatalogue(dataDir, { count: 80, imageSize: 48, seed: 3 });
});
after(async () => {
  // Whatever a failed case left running: each npm in its process group, the stages below it in theirs.
  for (const pid of [...started.map((child) => -child.pid!), ...seen]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(root, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** Every live process below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const [child, of] of parentOf) {
      if (of === parent) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

const answers = (url: string) =>
  fetch(url)
    .then((response) => response.ok)
    .catch(() => false);

/** Start `npm run demo` as a supervisor would, wait for the first answer, return npm and the processes below it. */
async function startDemo(
  name: string,
): Promise<{ npm: ChildProcess; below: number[]; port: number; log: () => string }> {
  const port = await freePort();
  const npm = spawn(
    'npm',
    ['run', 'demo', '--', '--data-dir', dataDir, '--index-dir', join(root, name), '--port', String(port)],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  started.push(npm);
  let output = '';
  npm.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const product = readFileSync(join(dataDir, 'products.jsonl'), 'utf8').split('\n')[0];
  const id = (JSON.parse(product) as { id: string }).id;
  await until(
    'the demo answers',
    () => answers(`http://127.0.0.1:${port}/similar/${id}?condition=color`),
    150_000,
  );
  return { npm, below: descendants(npm.pid!), port, log: () => output };
}

describe('npm run demo under a supervisor', { timeout: 400_000 }, () => {
  it('stops entirely when npm gets SIGTERM', async () => {
    const demo = await startDemo('term');
    assert.ok(demo.below.length >= 2, `the demo and its service run below npm: ${demo.below.join(', ')}`);
    process.kill(demo.npm.pid!, 'SIGTERM');
    await until('every process of the demo has exited', () => demo.below.every((pid) => !alive(pid)), 30_000);
    assert.equal(await answers(`http://127.0.0.1:${demo.port}/healthz`), false, 'nothing serves on the port');
  });

  it('stops entirely when npm is killed outright', async () => {
    const demo = await startDemo('kill');
    process.kill(demo.npm.pid!, 'SIGKILL');
    await until('every process of the demo has exited', () => demo.below.every((pid) => !alive(pid)), 30_000);
    assert.equal(await answers(`http://127.0.0.1:${demo.port}/healthz`), false, 'nothing serves on the port');
  });
});
