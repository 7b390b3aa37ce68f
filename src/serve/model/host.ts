/**
 * The model side of serving: load a checkpoint, embed plain float arrays, render heat maps from photo files to PNG.
 * Runs inside the model worker (or in-process when asked to); tensors never leave this module, and a heat map's
 * decoding, overlay and encoding run here too, off the thread that answers requests.
 */
import sharp from 'sharp';
import { decodeImage, type ImageFit } from '../../catalogue/index.ts';
import { loadAttribution, overlaySaliency, resizeMap, type HeatmapMethod } from '../../explain/index.ts';
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

/** One heat map to render: where `shownPath`'s photo makes it close to `otherPath`'s under `condition`. */
export interface HeatmapRender {
  shownPath: string;
  otherPath: string;
  /** Side of the PNG in pixels. */
  size: number;
  condition: number;
  method: HeatmapMethod;
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

  /** The heat map as PNG: the saliency map, resized to `size`, laid over the shown photo decoded at that size. */
  async heatmapPng(render: HeatmapRender): Promise<Uint8Array> {
    const { imageSize, preprocess } = this.describe();
    const [image, reference, photo] = await Promise.all([
      decodeImage(render.shownPath, imageSize, preprocess),
      decodeImage(render.otherPath, imageSize, preprocess),
      // The same fit and padding as the model's input, so that the map lines up with the photo shown.
      decodeImage(render.shownPath, render.size, preprocess),
    ]);
    const map = await this.saliency(image, reference, 1, render.condition, render.method);
    const overlay = overlaySaliency(photo, resizeMap(map, imageSize, render.size), render.size);
    const raw = { width: render.size, height: render.size, channels: 3 as const };
    return sharp(overlay, { raw }).png().toBuffer();
  }

  private describe(): ModelDescription {
    if (!this.description) throw new Error('no model loaded');
    return this.description;
  }

  /**
   * Heat maps of `images` with respect to their distance to `references` under `condition`, by `method`
   * (src/explain/methods.ts): count x S x S in [0, 1].
   */
  private async saliency(
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
