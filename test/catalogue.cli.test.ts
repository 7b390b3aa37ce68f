import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Command, CommanderError } from 'commander';
import { registerCatalogueCommands } from '../src/catalogue/cli.ts';
import { loadCatalogue } from '../src/catalogue/index.ts';
import { fixture, tempDir } from './fixtures/catalogue/helpers.ts';

/** Run the catalogue commands in-process, capturing what they print through commander's output hooks. */
async function run(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const program = new Command('dressmatch').exitOverride();
  const captured = { stdout: '', stderr: '' };
  program.configureOutput({
    writeOut: (text) => (captured.stdout += text),
    writeErr: (text) => (captured.stderr += text),
  });
  registerCatalogueCommands(program);
  await program.parseAsync(['node', 'dressmatch', ...args]);
  return captured;
}

// Keep the commands' progress logs out of the test output.
process.env.LOG_LEVEL = 'warn';

describe('catalogue CLI', () => {
  test('catalogue-info prints counts per condition and label, as text or JSON', async () => {
    const text = (await run('catalogue-info', fixture('farfetch'))).stdout;
    assert.match(text, /catalogue {2}farfetch \(farfetch layout\)/);
    assert.match(text, /products {3}11 \(train 5, val 3, test 3\)/);
    assert.match(text, /long sleeves +6 +2 +2 +2/);
    const json = JSON.parse((await run('catalogue-info', fixture('asen/FashionAI'), '--json')).stdout);
    assert.equal(json.layout, 'asen');
    assert.equal(json.products, 11);
    assert.deepEqual(json.retrieval, [
      { split: 'val', queries: 1, candidates: 2 },
      { split: 'test', queries: 1, candidates: 2 },
    ]);
  });

  test('import converts an upstream layout to a native catalogue', async () => {
    const out = join(await tempDir(), 'zappos-native');
    await run('import', '--from', fixture('zappos'), '--out', out);
    const native = await loadCatalogue(out);
    const original = await loadCatalogue(fixture('zappos'));
    assert.deepEqual(native.triplets, original.triplets);
    assert.deepEqual(
      native.products.map((p) => p.image),
      original.products.map((p) => p.image),
    );
    // A second import into the same folder needs --force.
    await assert.rejects(run('import', '--from', fixture('zappos'), '--out', out), (error: unknown) => {
      assert.ok(error instanceof CommanderError);
      assert.match(error.message, /is not empty/);
      return true;
    });
    await run('import', '--from', fixture('farfetch'), '--out', out, '--force');
    assert.equal((await loadCatalogue(out)).products.length, 11);
  });

  test('bad input is a one-line error with exit code 1', async () => {
    await assert.rejects(run('catalogue-info', join(fixture('farfetch'), 'nope')), (error: unknown) => {
      assert.ok(error instanceof CommanderError);
      assert.equal(error.exitCode, 1);
      assert.match(error.message, /catalogue folder not found/);
      return true;
    });
    await assert.rejects(run('demo-data', '--count', 'many'), /--count must be an integer/);
  });

  test('demo-data writes a catalogue', async () => {
    const out = join(await tempDir(), 'demo');
    await run('demo-data', '--out', out, '--count', '6', '--seed', '3', '--image-size', '32');
    const catalogue = await loadCatalogue(out);
    assert.equal(catalogue.products.length, 6);
  });
});
