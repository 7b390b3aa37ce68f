/**
 * The model side of serving: load a checkpoint, run conditionVectors and saliency on plain float arrays.
 * Runs inside the model worker (or in-process when asked to); tensors never leave this module.
 */
import { loadAttribution, type HeatmapMethod } from '../../explain/index.ts';
import type { ImageFit } from '../../catalogue/index.ts';
import { preprocessOf } from '../../model/defaults.ts';
import type { BackendPreference, ModelKind, SimilarityModel } from '../../model/index.ts';

export interface ModelDescription {
  /** modelId of the checkpoint (SHA-256 of config and weights): must match the index bundle's. */
  id: string;
  kind: ModelKind;
  imageSize: number;
  /** How photos become inputs (the model's config: fit-pad or upstream's resize-crop). */
  preprocess: ImageFit;
  embedDim: number;
  conditions: string[];
  backend: string;
}

export interface LoadRequest {
  checkpoint: string;
  backend: BackendPreference;
  /** Cores the model's wasm threads leave free (the wasm backend's threads: one per core less these). */
  coresKept?: number;
}

/** Condition vectors of a batch: count x conditions x dims, row-major. */
export interface VectorsResult {
  data: Float32Array;
  count: number;
  conditions: number;
  dims: number;
}

export class ModelHost {
  private model: SimilarityModel | undefined;
  private description: ModelDescription | undefined;

  async load(request: LoadRequest): Promise<ModelDescription> {
    const { selectBackend, wasmThreadCount } = await import('../../model/index.ts');
    const { loadModelFromCheckpoint, modelId } = await import('../../checkpoint/index.ts');
    // The backend is chosen once per thread; reloading a checkpoint keeps it.
    const backend =
      this.description?.backend ??
      (await selectBackend(request.backend, undefined, wasmThreadCount(request.coresKept)));
    const model = await loadModelFromCheckpoint(request.checkpoint);
    const id = modelId(model.snapshot());
    this.model?.dispose();
    this.model = model;
    const config = model.config;
    this.description = {
      id,
      kind: config.kind,
      imageSize: config.imageSize,
      preprocess: preprocessOf(config),
      embedDim: config.embedDim,
      conditions: [...config.conditions],
      backend,
    };
    return this.description;
  }

  private loaded(): SimilarityModel {
    if (!this.model) throw new Error('no model loaded');
    return this.model;
  }

  async vectors(images: Float32Array, count: number): Promise<VectorsResult> {
    const tf = await import('@tensorflow/tfjs');
    const model = this.loaded();
    const size = model.config.imageSize;
    const output = tf.tidy(() => model.conditionVectors(tf.tensor4d(images, [count, size, size, 3])));
    try {
      const [, conditions, dims] = output.shape;
      return { data: (await output.data()) as Float32Array, count, conditions, dims };
    } finally {
      output.dispose();
    }
  }

  /**
   * Heat maps of `images` with respect to their distance to `references` under `condition`, by `method`
   * (src/explain/methods.ts): count x S x S in [0, 1].
   */
  async saliency(
    images: Float32Array,
    references: Float32Array,
    count: number,
    condition: number,
    method: HeatmapMethod,
  ): Promise<Float32Array> {
    const tf = await import('@tensorflow/tfjs');
    const { heatMaps } = await loadAttribution();
    const model = this.loaded();
    const size = model.config.imageSize;
    const maps = tf.tidy(() =>
      heatMaps(
        model,
        method,
        tf.tensor4d(images, [count, size, size, 3]),
        tf.tensor4d(references, [count, size, size, 3]),
        condition,
      ),
    );
    try {
      return (await maps.data()) as Float32Array;
    } finally {
      maps.dispose();
    }
  }

  dispose(): void {
    this.model?.dispose();
    this.model = undefined;
  }
}
