/**
 * The vectors of a version being built, by slot: the shared embedding (CSN, unconditional) and each condition's
 * projected rows, filled from the previous version's vectors or from newly embedded batches. The condition rows
 * live in shared memory so the parallel HNSW build hands them to its workers without copying.
 */
import type { ConditionSpace } from '../model/index.ts';
import type { IndexBundle } from './bundle.ts';
import { BundleError, type BundleSource, type EmbeddedRows } from './types.ts';
import { projectRows } from './vectors.ts';

/** Per-condition rows for every slot (plus the shared embedding), filled from the previous version and new vectors. */
export class SlotVectors {
  readonly embeddings: Float32Array | null;
  readonly rows: Float32Array[];

  constructor(
    private readonly source: BundleSource,
    readonly spaces: ConditionSpace[],
    slots: number,
  ) {
    const D = source.embedDim;
    this.embeddings = source.modelKind === 'asen' ? null : new Float32Array(slots * D);
    // Shared memory: the parallel HNSW build hands the rows to its workers without copying them.
    this.rows = spaces.map(
      (space) =>
        new Float32Array(new SharedArrayBuffer(slots * space.dims.length * Float32Array.BYTES_PER_ELEMENT)),
    );
  }

  copyFromPrevious(previous: IndexBundle, fromSlot: number, toSlot: number): void {
    const D = this.source.embedDim;
    const embedding = previous.embedding(fromSlot);
    if (this.embeddings && embedding) this.embeddings.set(embedding, toSlot * D);
    this.spaces.forEach((space, c) => {
      this.rows[c].set(previous.vector(space.condition, fromSlot), toSlot * space.dims.length);
    });
  }

  /** Store the vectors of a batch: `targets[r]` is the slot of row r. */
  put(batch: EmbeddedRows, targets: readonly number[], bundleDir: string): void {
    const D = this.source.embedDim;
    const count = targets.length;
    const check = (array: Float32Array | undefined, what: string): Float32Array => {
      if (!array || array.length !== count * D) {
        throw new BundleError(
          'invalid-input',
          bundleDir,
          `embed() returned ${array ? array.length : 'no'} ${what} values for ${count} products x ${D} dims`,
        );
      }
      return array;
    };
    if (this.source.modelKind === 'asen') {
      if (batch.conditionVectors?.length !== this.spaces.length) {
        throw new BundleError(
          'invalid-input',
          bundleDir,
          'embed() must return one condition-vector array per condition',
        );
      }
      this.spaces.forEach((space, c) => {
        const projected = projectRows(check(batch.conditionVectors?.[c], 'condition-vector'), D, space);
        this.scatter(c, projected, targets);
      });
      return;
    }
    const embeddings = check(batch.embeddings, 'embedding');
    targets.forEach((slot, r) => this.embeddings?.set(embeddings.subarray(r * D, (r + 1) * D), slot * D));
    this.spaces.forEach((space, c) => this.scatter(c, projectRows(embeddings, D, space), targets));
  }

  private scatter(c: number, projected: Float32Array, targets: readonly number[]): void {
    const d = this.spaces[c].dims.length;
    targets.forEach((slot, r) => this.rows[c].set(projected.subarray(r * d, (r + 1) * d), slot * d));
  }
}
