/**
 * kill -9 during a re-index: the index job runs in a child process (test/fixtures/index/build-child.ts) and is
 * killed with SIGKILL at every stage of the build and at random moments. Each time the previously published
 * version must still be the one served, complete and passing its checksums; the next run must succeed and clean up.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { buildBundle } from '../src/index/build.ts';
import { openBundle } from '../src/index/bundle.ts';
import { readManifest } from '../src/index/files.ts';
import { Rng } from '../src/util/rng.ts';
import { products, syntheticSource } from './fixtures/index/synthetic.ts';

const childScript = fileURLToPath(new URL('./fixtures/index/build-child.ts', import.meta.url));
const COUNT = 600;
let root = '';
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

function startChild(
  dir: string,
  revision: number,
  pauseAt = '',
  msPerBatch = 0,
): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', childScript, dir, String(COUNT), String(revision), pauseAt, String(msPerBatch)],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'silent' } },
  );
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, output: () => text };
}

function waitFor(
  child: ChildProcess,
  output: () => string,
  pattern: RegExp,
  timeoutMs = 30_000,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (pattern.test(output())) done(resolve);
    }, 20);
    const deadline = setTimeout(
      () => done(() => reject(new Error(`timed out waiting for ${pattern}:\n${output()}`))),
      timeoutMs,
    );
    const onExit = () => {
      if (!pattern.test(output()))
        done(() => reject(new Error(`child exited before ${pattern}:\n${output()}`)));
    };
    child.once('exit', onExit);
    function done(finish: () => void) {
      clearInterval(timer);
      clearTimeout(deadline);
      child.off('exit', onExit);
      finish();
    }
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function kill(child: ChildProcess): Promise<void> {
  const done = exited(child);
  child.kill('SIGKILL');
  await done;
}

/** The served version is `expected`, opens with every checksum verified, and answers queries for revision `revision`. */
async function assertServing(dir: string, expected: string): Promise<void> {
  const manifest = await readManifest(dir);
  assert.equal(manifest?.current, expected);
  const bundle = await openBundle(dir);
  assert.equal(bundle.version, expected);
  assert.equal(bundle.liveCount, COUNT);
  const hits = bundle.search('color', bundle.productIndex('p7')!, 10);
  assert.deepEqual(
    hits.map((h) => h.id),
    bundle.exactSearch('color', bundle.productIndex('p7')!, 10).map((h) => h.id),
  );
}

// Slow: index jobs in child processes, killed with SIGKILL at each stage of the build and at random moments, then
// one more run to the end.
test('kill -9 at any point of a re-index leaves the published version intact, and the next run recovers', async () => {
  root = await mkdtemp(join(tmpdir(), 'dressmatch-index-crash-'));
  const dir = join(root, 'bundle');
  const first = await buildBundle(dir, syntheticSource(products(COUNT)), { lockStaleMs: 2000 });
  let served = first.version!;
  await assertServing(dir, served);

  // Killed at each stage of the build; the last one ('published') is after the atomic switch.
  for (const stage of ['embedded', 'indexed', 'files-written', 'renamed', 'published']) {
    const { child, output } = startChild(dir, 1, stage);
    await waitFor(child, output, new RegExp(`PAUSED ${stage}`));
    await kill(child);
    const leftovers = await readdir(join(dir, 'versions'));
    if (stage === 'files-written')
      assert.ok(
        leftovers.some((name) => name.startsWith('.tmp-')),
        'a temp dir is left',
      );
    if (stage === 'renamed') assert.equal(leftovers.length, 2, 'a complete but unpublished version is left');
    if (stage === 'published') {
      const manifest = await readManifest(dir);
      assert.notEqual(manifest?.current, served, 'killed after the switch: the new version is served');
      served = manifest!.current;
    }
    await assertServing(dir, served);
  }

  // Killed at random moments while it embeds slowly (50 ms per batch of 50), writes and publishes.
  const rng = new Rng(42);
  for (let trial = 0; trial < 2; trial++) {
    const before = (await readManifest(dir))!.current;
    const { child, output } = startChild(dir, 2 + trial, '', 50);
    await waitFor(child, output, /STAGE locked/);
    await new Promise((resolve) => setTimeout(resolve, rng.int(50, 900)));
    await kill(child);
    const now = (await readManifest(dir))!.current;
    assert.ok(
      now === before || /DONE|STAGE published/.test(output()),
      'the manifest only moves once a version is complete',
    );
    await assertServing(dir, now);
  }

  // The next run takes over the dead job's lock, publishes, and removes every leftover.
  const { child, output } = startChild(dir, 9);
  await waitFor(child, output, /DONE v\d+/);
  await exited(child);
  const manifest = (await readManifest(dir))!;
  await assertServing(dir, manifest.current);
  const left = await readdir(join(dir, 'versions'));
  assert.ok(!left.some((name) => name.startsWith('.tmp-')), `temp directories left: ${left.join(', ')}`);
  assert.ok(left.includes(manifest.current));
  assert.ok(left.length <= 2, `keepVersions 2, found ${left.join(', ')}`);
  const top = await readdir(dir);
  assert.ok(!top.some((name) => name.endsWith('.tmp')), `manifest temp files left: ${top.join(', ')}`);
});
