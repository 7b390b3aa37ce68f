/** Building models from a config, and rebuilding them from a snapshot. */
import { createAsenModel } from './asen.ts';
import { createCsnModel } from './csn.ts';
import { ModelInputError, type BuiltModel } from './common.ts';
import {
  BACKBONE_DEFAULTS,
  BACKBONES,
  MASK_MODES,
  MODEL_DEFAULTS,
  MODEL_KINDS,
  PREPROCESS_MODES,
} from './defaults.ts';
import {
  fromTorchTensors,
  type TorchLoadReport,
  type TorchMapping,
  type TorchTensor,
} from './torch-names.ts';
import type { ModelConfig, ModelSnapshot, SimilarityModel } from './types.ts';

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
    colourHistogram: config.colourHistogram ?? false,
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
