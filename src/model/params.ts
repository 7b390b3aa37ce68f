/**
 * Weights with deterministic names and seeded initial values.
 *
 * Each weight has a path such as `backbone/block1/conv/kernel`; its tf.Variable is registered as
 * `<scope>/<path>` where the scope is the model kind, plus `#n` when another live model already
 * uses that scope (tfjs variable names are global). Paths, not variable names, go into snapshots.
 * Initial values come from an Rng seeded by (model seed, path), so adding a weight never changes
 * the others and the same seed gives the same model on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../util/rng.ts';
import type { NamedWeight } from './types.ts';

export type Init =
  | { kind: 'zeros' }
  | { kind: 'constant'; value: number }
  /** Normal with the given mean and standard deviation. */
  | { kind: 'normal'; mean: number; std: number }
  /** Uniform in [-limit, limit]. */
  | { kind: 'uniform'; limit: number }
  | { kind: 'values'; values: Float32Array };

export const zeros: Init = { kind: 'zeros' };
/** He (Kaiming) normal for a ReLU layer with `fanIn` inputs per output. */
export const heNormal = (fanIn: number): Init => ({ kind: 'normal', mean: 0, std: Math.sqrt(2 / fanIn) });
/** PyTorch's default for linear layers: U(±1/√fanIn). */
export const linearUniform = (fanIn: number): Init => ({ kind: 'uniform', limit: 1 / Math.sqrt(fanIn) });

/** 32-bit FNV-1a of the path mixed with the seed: a per-weight stream that is stable across versions. */
function weightSeed(seed: number, path: string): number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < path.length; i++) {
    hash ^= path.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function initialValues(init: Init, size: number, seed: number, path: string): Float32Array {
  const values = new Float32Array(size);
  switch (init.kind) {
    case 'zeros':
      return values;
    case 'constant':
      return values.fill(init.value);
    case 'values':
      if (init.values.length !== size)
        throw new Error(`${path}: expected ${size} initial values, got ${init.values.length}`);
      return Float32Array.from(init.values);
    case 'normal': {
      const rng = new Rng(weightSeed(seed, path));
      for (let i = 0; i < size; i++) values[i] = rng.normal(init.mean, init.std);
      return values;
    }
    case 'uniform': {
      const rng = new Rng(weightSeed(seed, path));
      for (let i = 0; i < size; i++) values[i] = rng.range(-init.limit, init.limit);
      return values;
    }
  }
}

function scopeInUse(scope: string): boolean {
  const prefix = `${scope}/`;
  return Object.keys(tf.engine().registeredVariables).some((name) => name.startsWith(prefix));
}

/** A free variable scope for a new model: `kind`, or `kind#2`, `kind#3`… while others are alive. */
export function freeScope(base: string): string {
  if (!scopeInUse(base)) return base;
  for (let n = 2; ; n++) {
    const candidate = `${base}#${n}`;
    if (!scopeInUse(candidate)) return candidate;
  }
}

interface Entry {
  path: string;
  variable: tf.Variable;
}

export class ParamStore {
  private readonly entries: Entry[] = [];
  private readonly byPath = new Map<string, Entry>();

  constructor(
    readonly scope: string,
    private readonly seed: number,
  ) {}

  add(path: string, shape: number[], init: Init, trainable = true): tf.Variable {
    if (this.byPath.has(path)) throw new Error(`duplicate weight path ${path}`);
    const size = shape.reduce((a, b) => a * b, 1);
    const values = initialValues(init, size, this.seed, path);
    const variable = tf.tidy(() =>
      tf.variable(tf.tensor(values, shape, 'float32'), trainable, `${this.scope}/${path}`),
    );
    const entry = { path, variable };
    this.entries.push(entry);
    this.byPath.set(path, entry);
    return variable;
  }

  /** Trainable variables in creation order (the order optimiser state is stored in). */
  trainable(): tf.Variable[] {
    return this.entries.filter((e) => e.variable.trainable).map((e) => e.variable);
  }

  /** Path and shape of every weight, in creation order. */
  shapes(): { name: string; shape: number[] }[] {
    return this.entries.map(({ path, variable }) => ({ name: path, shape: [...variable.shape] }));
  }

  /** Every weight, trainable or not, copied out of the backend. */
  snapshot(): NamedWeight[] {
    return this.entries.map(({ path, variable }) => ({
      name: path,
      shape: [...variable.shape],
      data: Float32Array.from(variable.dataSync() as Float32Array),
    }));
  }

  /** Overwrite every weight from a snapshot; names and shapes must match exactly. */
  restore(weights: readonly NamedWeight[]): void {
    const given = new Map(weights.map((w) => [w.name, w]));
    const missing = this.entries.filter((e) => !given.has(e.path)).map((e) => e.path);
    const unexpected = weights.filter((w) => !this.byPath.has(w.name)).map((w) => w.name);
    if (missing.length > 0 || unexpected.length > 0) {
      throw new Error(
        `snapshot does not fit the model: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`,
      );
    }
    for (const { path, variable } of this.entries) {
      const weight = given.get(path) as NamedWeight;
      const expected = variable.shape.join('x');
      if (weight.shape.join('x') !== expected) {
        throw new Error(
          `snapshot weight ${path} has shape ${weight.shape.join('x')}, the model expects ${expected}`,
        );
      }
      if (weight.data.length !== variable.size) {
        throw new Error(`snapshot weight ${path} has ${weight.data.length} values for shape ${expected}`);
      }
      tf.tidy(() => variable.assign(tf.tensor(weight.data, variable.shape, 'float32')));
    }
  }

  /**
   * Overwrite the weights whose path starts with `prefix` from `weights` (a warm start, e.g. a trained
   * backbone). Weights missing from `weights` keep their values; a shape mismatch is an error.
   * Returns the paths that were copied.
   */
  restorePrefix(weights: readonly NamedWeight[], prefix: string): string[] {
    const copied: string[] = [];
    for (const weight of weights) {
      const entry = this.byPath.get(weight.name);
      if (!entry || !weight.name.startsWith(prefix)) continue;
      const expected = entry.variable.shape.join('x');
      if (weight.shape.join('x') !== expected || weight.data.length !== entry.variable.size) {
        throw new Error(
          `weight ${weight.name} has shape ${weight.shape.join('x')}, the model expects ${expected}`,
        );
      }
      tf.tidy(() => entry.variable.assign(tf.tensor(weight.data, entry.variable.shape, 'float32')));
      copied.push(weight.name);
    }
    return copied;
  }

  dispose(): void {
    for (const { variable } of this.entries) variable.dispose();
    this.entries.length = 0;
    this.byPath.clear();
  }
}
