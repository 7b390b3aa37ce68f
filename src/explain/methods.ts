/**
 * The heat-map methods: the one list of them, the default per model kind, and what "bright" means in each.
 * Plain data (no tensors), so that the HTTP layer and the page can use it without loading tfjs.
 */
import type { ModelKind } from '../model/types.ts';

export const HEATMAP_METHODS = [
  'gradient',
  'gradient-input',
  'integrated-gradients',
  'grad-cam',
  'occlusion',
  'attention',
] as const;
export type HeatmapMethod = (typeof HEATMAP_METHODS)[number];

/**
 * Chosen by bench/explain-faithfulness.ts on the demo models (bench/results/explain-faithfulness.md); see the
 * comment at each entry for the numbers behind the choice.
 */
export const DEFAULT_HEATMAP_METHOD: Record<ModelKind, HeatmapMethod> = {
  csn: 'gradient',
  unconditional: 'gradient',
  asen: 'attention',
};

/** One line per method for the page: what a bright region means. */
export const HEATMAP_LEGEND: Record<HeatmapMethod, string> = {
  gradient: 'Bright: pixels whose smallest change moves this distance most (input gradient).',
  'gradient-input':
    'Bright: what keeps the pair close; greying it out would push them apart (gradient × input).',
  'integrated-gradients':
    'Bright: what keeps the pair close; greying it out pushes them apart (integrated gradients from grey).',
  'grad-cam': 'Bright: regions of the last feature map that keep the pair close (Grad-CAM).',
  occlusion: 'Bright: regions whose greying out pushes the pair apart the most (occlusion, measured).',
  attention: "Bright: where the model's attention for this condition looks (ASEN spatial attention).",
};

/** Methods that apply to a model kind (attention exists only in ASEN). */
export function methodsFor(kind: ModelKind): HeatmapMethod[] {
  return HEATMAP_METHODS.filter((m) => m !== 'attention' || kind === 'asen');
}

export function isHeatmapMethod(value: string): value is HeatmapMethod {
  return (HEATMAP_METHODS as readonly string[]).includes(value);
}
