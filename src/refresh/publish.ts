/**
 * Publishing through the index stage: an incremental re-index with the served model, or a full re-index with the
 * candidate, each for the conditions given (a subset of the model's: a condition the catalogue dropped is left
 * out, the model's other masks still apply). Same build parameters as the served version (graph, mask threshold, recall gate), the model's
 * checkpoint carried in the version, and the provenance the service shows. The index job's own lock, temp
 * directory and atomic manifest switch make the publish crash-safe.
 */
import type { Catalogue } from '../catalogue/index.ts';
import {
  buildBundle,
  createModelSource,
  type BuildReport,
  type BundleSource,
  type EmbeddedRows,
  type IndexBundle,
  type IndexedProduct,
  stageBars,
} from '../index/index.ts';
import { restoreModel } from '../model/index.ts';
import type { Logger } from '../util/log.ts';
import { progressFactory } from '../util/progress.ts';
import type { ModelFile } from './inputs.ts';
import type { RefreshProvenance } from './types.ts';

export interface PublishInput {
  indexDir: string;
  served: IndexBundle;
  catalogue: Catalogue;
  products: IndexedProduct[];
  model: ModelFile;
  /** The conditions to index, in the model's order (all of the model's, or fewer). */
  conditions: readonly string[];
  incremental: boolean;
  provenance: RefreshProvenance;
  log: Logger;
  /** Called right before the build: throws when the refresh lock was lost (then nothing is published). */
  assertLockHeld: () => void;
}

/** `source` indexing only `conditions` (the rows of the others' masks and vectors left out). */
export function restrictSource(source: BundleSource, conditions: readonly string[]): BundleSource {
  const keep = conditions.map((condition) => {
    const at = source.conditions.indexOf(condition);
    if (at < 0) throw new RangeError(`the model has no condition ${condition}`);
    return at;
  });
  if (keep.length === source.conditions.length && keep.every((at, i) => at === i)) return source;
  const embed = async (indices: number[]): Promise<EmbeddedRows> => {
    const rows = await source.embed(indices);
    const vectors = rows.conditionVectors;
    return vectors ? { ...rows, conditionVectors: keep.map((at) => vectors[at]) } : rows;
  };
  return {
    ...source,
    conditions: keep.map((at) => source.conditions[at]),
    masks: keep.map((at) => source.masks[at]),
    embed,
  };
}

export async function publish(input: PublishInput): Promise<BuildReport> {
  const { checkpoint, path } = input.model;
  const model = restoreModel(checkpoint.model);
  const bars = stageBars(await progressFactory(input.log));
  try {
    const full = await createModelSource({
      model,
      modelId: checkpoint.modelId!,
      catalogue: input.catalogue,
      products: input.products,
      log: input.log,
    });
    const source = restrictSource(full, input.conditions);
    input.assertLockHeld();
    const report = await buildBundle(
      input.indexDir,
      { ...source, checkpointFile: path, provenance: input.provenance },
      {
        ...input.served.info.params,
        incremental: input.incremental,
        log: input.log,
        onProgress: bars.onProgress,
      },
    );
    return report;
  } finally {
    bars.stop();
    model.dispose();
  }
}
