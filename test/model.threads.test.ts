/**
 * Multi-threaded wasm (src/model/kernels/wasm-threads.ts): the backend really runs the requested XNNPACK threads in Node,
 * and training with them gives bit-identical losses and weights to one thread. Each thread count needs its own
 * process (the backend is started once per process).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const script = fileURLToPath(new URL('./fixtures/model/threads-step.ts', import.meta.url));

interface StepResult {
  threads: number;
  losses: number[];
  weights: number[][];
}

async function steps(threads: number, nodeFlags: string[] = []): Promise<StepResult> {
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, '--import', 'tsx', script], {
    env: { ...process.env, DRESSMATCH_WASM_THREADS: String(threads) },
    maxBuffer: 64 * 2 ** 20,
    // A process kept alive by the wasm threads would fail here instead of hanging the suite.
    timeout: 240_000,
  });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '') as StepResult;
}

describe('model: wasm threads', () => {
  // Slow: three child processes (one per thread count, and 2 threads again under a process-wide Node flag), each
  // starting the wasm backend and training.
  it('trains with 2 threads exactly as with 1', async () => {
    const one = await steps(1);
    const two = await steps(2);
    assert.equal(one.threads, 1, 'DRESSMATCH_WASM_THREADS=1 starts the single-threaded backend');
    assert.equal(two.threads, 2, 'DRESSMATCH_WASM_THREADS=2 runs two XNNPACK threads');
    assert.ok(one.losses.every(Number.isFinite), `finite losses: ${one.losses.join(', ')}`);
    assert.ok(one.losses[2] !== one.losses[0], 'the steps change the loss');
    assert.deepEqual(two.losses, one.losses);
    assert.deepEqual(two.weights, one.weights);
    // A flag a worker cannot be given explicitly: the pthread workers then inherit the process's flags.
    const flagged = await steps(2, ['--expose-gc']);
    assert.equal(flagged.threads, 2, 'two XNNPACK threads in a process started with --expose-gc');
    assert.deepEqual(flagged.losses, one.losses);
  });
});
