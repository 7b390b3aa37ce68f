import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus, xoroshiro128plusFromState } from 'pure-rand/generator/xoroshiro128plus';

/**
 * Seeded random source for everything that must be reproducible (sampling, shuffling, synthetic data).
 * Its state is plain numbers so that a checkpoint can store it and `--resume` continues the same stream.
 */
export class Rng {
  private generator;

  constructor(seed: number, state?: readonly number[]) {
    this.generator = state ? xoroshiro128plusFromState(state) : xoroshiro128plus(seed);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return uniformFloat64(this.generator);
  }

  /** Uniform integer in [from, to] (both included). */
  int(from: number, to: number): number {
    return uniformInt(this.generator, from, to);
  }

  /** Uniform float in [from, to). */
  range(from: number, to: number): number {
    return from + (to - from) * this.next();
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Rng.pick on an empty list');
    return items[this.int(0, items.length - 1)];
  }

  /** Standard normal sample (Box-Muller). */
  normal(mean = 0, std = 1): number {
    const u = 1 - this.next();
    const v = this.next();
    return mean + std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }

  state(): number[] {
    return [...this.generator.getState()];
  }
}
