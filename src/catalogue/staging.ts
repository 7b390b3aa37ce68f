import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pathExists } from './files.ts';

export async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw error;
  }
}

/**
 * Build a folder's new content in a hidden sibling and swap it in only when `build` succeeded: readers (and a
 * crash) see either the old folder or the complete new one. Refuses a non-empty target unless `overwrite`.
 */
export async function replaceDirectory(
  dir: string,
  build: (staging: string) => Promise<void>,
  options: { overwrite?: boolean } = {},
): Promise<void> {
  const target = resolve(dir);
  if (!options.overwrite && !(await isEmptyOrMissing(target))) {
    throw new Error(`${target} is not empty (use --force / overwrite to replace it)`);
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const stamp = `${process.pid}-${Date.now()}`;
  const staging = join(parent, `.${basename(target)}.partial-${stamp}`);
  await mkdir(staging, { recursive: true });
  try {
    await build(staging);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  }
  if (await pathExists(target)) {
    const old = join(parent, `.${basename(target)}.old-${stamp}`);
    await rename(target, old);
    await rename(staging, target);
    await rm(old, { recursive: true, force: true });
  } else {
    await rename(staging, target);
  }
}
