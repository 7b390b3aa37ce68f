/**
 * Publishing through the index stage: an incremental re-index with the served model, or a full re-index with the
 * candidate. Same build parameters as the served version (graph, mask threshold, recall gate), the model's
 * checkpoint carried in the version, and the provenance the service shows. The index job's own lock, temp
 * directory and atomic manifest switch make the publish crash-safe.
 */
import type { Catalogue } from '../catalogue/index.ts';
import {
  buildBundle,
  createModelSource,
  type BuildReport,
  type IndexBundle,
  type IndexedProduct,
  type ModelProvenance,
  stageBars,
} from '../index/index.ts';
import { restoreModel } from '../model/index.ts';
import type { Logger } from '../util/log.ts';
import { progressFactory } from '../util/progress.ts';
import type { ModelFile } from './inputs.ts';

export interface PublishInput {
  indexDir: string;
  served: IndexBundle;
  catalogue: Catalogue;
  products: IndexedProduct[];
  model: ModelFile;
  incremental: boolean;
  provenance: ModelProvenance;
  log: Logger;
  /** Called right before the build: throws when the refresh lock was lost (then nothing is published). */
  assertLockHeld: () => void;
}

export async function publish(input: PublishInput): Promise<BuildReport> {
  const { checkpoint, path } = input.model;
  const model = restoreModel(checkpoint.model);
  const bars = stageBars(await progressFactory(input.log));
  try {
    const source = await createModelSource({
      model,
      modelId: checkpoint.modelId!,
      catalogue: input.catalogue,
      products: input.products,
      log: input.log,
    });
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
