/**
 * The heat-map methods: the one list of them, the default per model kind, and what "bright" means in each.
 * Plain data (no tensors), so that the HTTP layer and the page can use it without loading tfjs.
 */
import type { ModelKind } from '../model/index.ts';

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
 * Chosen by bench/explain-faithfulness.ts (bench/results/explain-faithfulness*.md): among methods whose fastest heat
 * map took under 200 ms, the one meeting energy on part ≥ 2 and a deletion interval above 0 on most conditions.
 * Demo CSN (40 test pairs per condition): integrated gradients, the only method meeting both on all six (energy
 * 2.06–4.38); the input gradient met 2 of 6 (energy 1.42–2.60), occlusion 5 of 6 at 4–10× the time. ASEN (a 2-epoch
 * run, 20 pairs): its attention map put 0.41–1.40× the uniform share on the parts; integrated gradients met all six
 * but took 122–354 ms even at best, so gradient × input (4 of 6, energy 1.83–2.50). The unconditional baseline is
 * the CSN network without masks and is assumed to behave like it (not measured).
 */
export const DEFAULT_HEATMAP_METHOD: Record<ModelKind, HeatmapMethod> = {
  csn: 'integrated-gradients',
  unconditional: 'integrated-gradients',
  asen: 'gradient-input',
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

/** What the API says about a model's heat maps: the default method, its legend, and every method offered. */
export function heatmapInfo(kind: ModelKind): {
  method: HeatmapMethod;
  legend: string;
  methods: HeatmapMethod[];
} {
  const method = DEFAULT_HEATMAP_METHOD[kind];
  return { method, legend: HEATMAP_LEGEND[method], methods: methodsFor(kind) };
}
