/**
 * The model stage's lists of choices and defaults, in a file free of tfjs so that command lines can offer them
 * in --help without loading the network code (the model face takes seconds to import; this file milliseconds).
 */
import type { ChoiceSpec } from '../util/options-table.ts';
import type { Backbone, ModelConfig, Preprocess } from './types.ts';

/** tfjs backend preferences: 'auto' tries native TensorFlow (GPU, then CPU), then wasm, then cpu. */
export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

/** The `--backend` flag as the eval, index and weight commands declare it (one row of their option tables). */
export const BACKEND_OPTION = {
  type: 'choice',
  arg: 'name',
  choices: BACKEND_PREFERENCES,
  help: 'tfjs backend',
  default: 'auto' as BackendPreference,
} satisfies ChoiceSpec;

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
 * defaults; `prein` masks learned faster in a five-minute demo run.
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
  colourHistogram: false,
} as const satisfies Omit<Required<ModelConfig>, 'conditions'>;

/** How a model's photos become inputs: its config's choice, else its backbone's default (older checkpoints). */
export function preprocessOf(config: Pick<ModelConfig, 'backbone' | 'preprocess'>): Preprocess {
  return config.preprocess ?? BACKBONE_DEFAULTS[config.backbone]?.preprocess ?? 'fit-pad';
}
