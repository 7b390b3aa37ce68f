/** Building models from a config, and rebuilding them from a snapshot. */
import { createAsenModel } from './asen.ts';
import { createCsnModel } from './csn.ts';
import { ModelInputError, type BuiltModel } from './common.ts';
import {
  fromTorchTensors,
  type TorchLoadReport,
  type TorchMapping,
  type TorchTensor,
} from './torch-names.ts';
import type { Backbone, ModelConfig, ModelSnapshot, Preprocess, SimilarityModel } from './types.ts';

export const MODEL_KINDS = ['csn', 'asen', 'unconditional'] as const;
export const BACKBONES = ['small', 'resnet18', 'resnet18-skipinit'] as const;
export const MASK_MODES = ['learned', 'prein', 'fixed'] as const;
export const PREPROCESS_MODES = ['fit-pad', 'resize-crop'] as const;

/**
 * Input size, width and preprocessing each backbone is built for when a config does not say: resnet18 is
 * upstream's network (112 px, 64 channels, Scale + CenterCrop); the others are ours, sized for CPU training.
 */
export const BACKBONE_DEFAULTS: Record<
  Backbone,
  { imageSize: number; width: number; preprocess: Preprocess }
> = {
  small: { imageSize: 48, width: 16, preprocess: 'fit-pad' },
  resnet18: { imageSize: 112, width: 64, preprocess: 'resize-crop' },
  'resnet18-skipinit': { imageSize: 48, width: 16, preprocess: 'fit-pad' },
};

/**
 * Defaults for CPU training on the wasm backend. 48 px is the size the demo images are drawn to stay legible
 * at, and with the small backbone (width 16) one Adam step on 96 images / 384 pooled triplets takes about
 * 0.22 s on an idle core (bench/model-speed.ts); 64 px doubles that and learned no more per second on the
 * demo catalogue, 32 px loses sleeve and neckline detail. embedDim 64 and learned masks are the upstream
 * defaults; `prein` masks learned faster in a five-minute demo run (bench/model-demo-accuracy.ts).
 */
export const MODEL_DEFAULTS = {
  kind: 'csn',
  backbone: 'small',
  imageSize: 48,
  embedDim: 64,
  maskMode: 'learned',
  seed: 42,
  width: 16,
  preprocess: 'fit-pad',
  attentionTanh: true,
} as const satisfies Omit<Required<ModelConfig>, 'conditions'>;

/** A complete config from the conditions plus any overrides (image size, width and preprocessing per backbone). */
export function defaultModelConfig(conditions: string[], overrides: Partial<ModelConfig> = {}): ModelConfig {
  const backbone = overrides.backbone ?? MODEL_DEFAULTS.backbone;
  const perBackbone = BACKBONE_DEFAULTS[backbone] ?? {};
  return {
    ...MODEL_DEFAULTS,
    ...perBackbone,
    ...overrides,
    conditions: overrides.conditions ?? [...conditions],
  };
}

function oneOf<T extends string>(value: string, allowed: readonly T[], what: string): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ModelInputError(`${what} must be one of ${allowed.join(', ')}, got ${value}`);
  }
  return value as T;
}

function positiveInteger(value: number, what: string, minimum = 1): number {
  if (!Number.isInteger(value) || value < minimum) {
    throw new ModelInputError(`${what} must be an integer ≥ ${minimum}, got ${value}`);
  }
  return value;
}

/** Check a config and fill optional fields; errors name the offending field. */
export function resolveConfig(config: ModelConfig): Required<ModelConfig> {
  const conditions = [...config.conditions];
  if (conditions.length === 0) throw new ModelInputError('a model needs at least one condition');
  if (new Set(conditions).size !== conditions.length) {
    throw new ModelInputError(`conditions must be distinct, got [${conditions.join(', ')}]`);
  }
  const resolved: Required<ModelConfig> = {
    kind: oneOf(config.kind, MODEL_KINDS, 'kind'),
    backbone: oneOf(config.backbone, BACKBONES, 'backbone'),
    imageSize: positiveInteger(config.imageSize, 'imageSize', 16),
    embedDim: positiveInteger(config.embedDim, 'embedDim'),
    conditions,
    maskMode: oneOf(config.maskMode, MASK_MODES, 'maskMode'),
    seed: config.seed,
    width: 0,
    preprocess: 'fit-pad',
    attentionTanh: config.attentionTanh ?? false,
  };
  const perBackbone = BACKBONE_DEFAULTS[resolved.backbone];
  resolved.width = positiveInteger(config.width ?? perBackbone.width, 'width');
  resolved.preprocess = oneOf(config.preprocess ?? perBackbone.preprocess, PREPROCESS_MODES, 'preprocess');
  if (!Number.isFinite(resolved.seed)) throw new ModelInputError(`seed must be a number, got ${config.seed}`);
  if (resolved.kind === 'csn' && resolved.maskMode !== 'learned' && resolved.embedDim < conditions.length) {
    throw new ModelInputError(
      `${resolved.maskMode} masks need embedDim ≥ number of conditions (${conditions.length}), got ${resolved.embedDim}`,
    );
  }
  return resolved;
}

function build(config: ModelConfig): BuiltModel {
  const resolved = resolveConfig(config);
  return resolved.kind === 'asen' ? createAsenModel(resolved) : createCsnModel(resolved);
}

export interface CreateModelOptions {
  /**
   * Warm start: weights whose names start with `prefix` (default 'backbone/') are copied from this snapshot,
   * e.g. a trained CSN's backbone into a new ASEN (upstream starts both from ImageNet weights). The backbone and
   * width must match; the rest of the model keeps its seeded initialisation.
   */
  initialWeights?: ModelSnapshot;
  prefix?: string;
}

/** A fresh model with seeded initial weights: the same config (seed included) gives the same weights. */
export function createModel(config: ModelConfig, options: CreateModelOptions = {}): SimilarityModel {
  const { model, params } = build(config);
  if (options.initialWeights) {
    const source = options.initialWeights.config;
    try {
      if (source.backbone !== config.backbone || source.imageSize !== config.imageSize) {
        throw new ModelInputError(
          `initial weights are for a ${source.backbone} backbone at ${source.imageSize} px, not ${config.backbone} at ${config.imageSize} px`,
        );
      }
      const copied = params.restorePrefix(options.initialWeights.weights, options.prefix ?? 'backbone/');
      if (copied.length === 0)
        throw new ModelInputError('initial weights hold no weight with the requested prefix');
    } catch (error) {
      model.dispose();
      throw error;
    }
  }
  return model;
}

/** A model with the snapshot's config and weights; throws if the weights do not fit. */
export function restoreModel(snapshot: ModelSnapshot): SimilarityModel {
  const { model, params } = build(snapshot.config);
  try {
    params.restore(snapshot.weights);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}

/**
 * A fresh model whose weights named in `tensors` (PyTorch names and layouts, mapped by `mapping`, e.g.
 * torchvisionMapping or upstreamCsnMapping) replace the seeded ones. Throws on a shape mismatch, naming the
 * tensor; the report says what was loaded, missing, unexpected and ignored (the caller decides what is fatal).
 */
export function createModelFromTorch(
  config: ModelConfig,
  tensors: readonly TorchTensor[],
  mapping: (targets: readonly { name: string; shape: number[] }[]) => TorchMapping,
): { model: SimilarityModel; report: TorchLoadReport } {
  const { model, params } = build(config);
  try {
    const targets = params.shapes();
    const { weights, report } = fromTorchTensors(tensors, mapping(targets));
    params.restorePrefix(weights, '');
    return { model, report };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
