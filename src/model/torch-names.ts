/**
 * Our weights under PyTorch state-dict names and layouts, both ways (pure: tensors in, tensors out).
 *
 * The resnet18 backbone's paths are `backbone/<torchvision module>/<role>` (resnet.ts), so names map by rule:
 * - `backbone/M/kernel` [kh, kw, in, out] (tfjs HWIO) ↔ `M.weight` [out, in, kh, kw] (OIHW);
 * - `backbone/M/gamma|beta|running_mean|running_var` ↔ `M.weight|bias|running_mean|running_var`;
 * - `embedding/kernel` [in, D] ↔ `fc_embed.weight` [D, in]; `embedding/bias` ↔ `fc_embed.bias`;
 * - `masks` [C, D] ↔ `masks.weight` (nn.Embedding).
 * In a CSN trained by the official code (Tripletnet → ConditionalSimNet → ResNet) the network's names carry
 * the prefix `embeddingnet.embeddingnet.` and the masks `embeddingnet.`. BatchNorm's integer
 * `num_batches_tracked` counters have no counterpart here: they are skipped on the way in and left out on the
 * way out (PyTorch's BatchNorm fills them in when a state dict lacks them).
 */
import { ModelInputError } from './common.ts';
import type { ModelSnapshot, NamedWeight } from './types.ts';

/** A tensor under a PyTorch name, in PyTorch layout (what a safetensors file holds). */
export interface TorchTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Prefixes of the official CSN code's state dict. */
export const CSN_NETWORK_PREFIX = 'embeddingnet.embeddingnet.';
export const CSN_MASKS_NAME = 'embeddingnet.masks.weight';

const BN_ROLES: Record<string, string> = {
  gamma: 'weight',
  beta: 'bias',
  running_mean: 'running_mean',
  running_var: 'running_var',
};

/** The state-dict name (within the network, without prefix) of one of our paths, or undefined. */
export function torchName(path: string): string | undefined {
  if (path === 'embedding/kernel') return 'fc_embed.weight';
  if (path === 'embedding/bias') return 'fc_embed.bias';
  if (path === 'masks') return 'masks.weight';
  const match = /^backbone\/([^/]+)\/([a-z_]+)$/.exec(path);
  if (!match) return undefined;
  const [, module, role] = match;
  if (role === 'kernel') return `${module}.weight`;
  return role in BN_ROLES ? `${module}.${BN_ROLES[role]}` : undefined;
}

/** Reorder the axes of a row-major array: out shape = perm.map(i => shape[i]). */
export function permute(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const outShape = perm.map((axis) => shape[axis]);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const outStrides = perm.map((axis) => strides[axis]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let source = 0;
    for (let d = 0; d < index.length; d++) source += index[d] * outStrides[d];
    out[o] = data[source];
    for (let d = index.length - 1; d >= 0; d--) {
      if (++index[d] < outShape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Axis order from ours to PyTorch's: HWIO → OIHW for conv kernels, [in, out] → [out, in] for linear ones. */
function toTorchPerm(path: string, rank: number): number[] | undefined {
  if (rank === 4) return [3, 2, 0, 1];
  if (rank === 2 && path.endsWith('/kernel')) return [1, 0];
  return undefined;
}
function fromTorchPerm(path: string, rank: number): number[] | undefined {
  if (rank === 4) return [2, 3, 1, 0];
  if (rank === 2 && path.endsWith('/kernel')) return [1, 0];
  return undefined;
}

/** One of our weights in PyTorch layout. */
export function toTorchLayout(weight: NamedWeight): { shape: number[]; data: Float32Array } {
  const perm = toTorchPerm(weight.name, weight.shape.length);
  if (!perm) return { shape: [...weight.shape], data: Float32Array.from(weight.data) };
  return { shape: perm.map((a) => weight.shape[a]), data: permute(weight.data, weight.shape, perm) };
}

function fromTorchLayout(path: string, tensor: TorchTensor): NamedWeight {
  const perm = fromTorchPerm(path, tensor.shape.length);
  if (!perm) return { name: path, shape: [...tensor.shape], data: Float32Array.from(tensor.data) };
  return {
    name: path,
    shape: perm.map((a) => tensor.shape[a]),
    data: permute(tensor.data, tensor.shape, perm),
  };
}

export interface TorchLoadReport {
  /** Weights loaded, under their state-dict names. */
  loaded: string[];
  /** Our weights (state-dict names) the file did not have: they keep their initial values. */
  missing: string[];
  /** File tensors with no counterpart here (not counting the ignored ones). */
  unexpected: string[];
  /** File tensors deliberately skipped (layer4, fc, num_batches_tracked). */
  ignored: string[];
}

export interface TorchMapping {
  /** Our weights to fill: path and shape (the model's snapshot). */
  targets: readonly { name: string; shape: number[] }[];
  /** State-dict name of one of our paths (undefined: not loaded from the file). */
  nameOf: (path: string) => string | undefined;
  /** File tensors skipped on purpose. */
  ignore: (name: string) => boolean;
}

/**
 * Our weights from PyTorch tensors: layouts converted, every shape checked (a mismatch throws naming the
 * tensor), with the names loaded, missing, unexpected and ignored.
 */
export function fromTorchTensors(
  tensors: readonly TorchTensor[],
  mapping: TorchMapping,
): { weights: NamedWeight[]; report: TorchLoadReport } {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const report: TorchLoadReport = { loaded: [], missing: [], unexpected: [], ignored: [] };
  const weights: NamedWeight[] = [];
  const used = new Set<string>();
  for (const target of mapping.targets) {
    const name = mapping.nameOf(target.name);
    if (name === undefined) continue;
    const tensor = byName.get(name);
    if (!tensor) {
      report.missing.push(name);
      continue;
    }
    used.add(name);
    const weight = fromTorchLayout(target.name, tensor);
    if (weight.shape.join('x') !== target.shape.join('x')) {
      const perm = toTorchPerm(target.name, target.shape.length);
      const expected = perm ? perm.map((a) => target.shape[a]) : target.shape;
      throw new ModelInputError(
        `tensor ${name} has shape [${tensor.shape.join(', ')}], the model expects [${expected.join(', ')}]`,
      );
    }
    weights.push(weight);
    report.loaded.push(name);
  }
  for (const tensor of tensors) {
    if (used.has(tensor.name)) continue;
    (mapping.ignore(tensor.name) ? report.ignored : report.unexpected).push(tensor.name);
  }
  return { weights, report };
}

/** torchvision resnet18 names for a backbone-only warm start: layer4, fc and counters are skipped. */
export function torchvisionMapping(targets: readonly { name: string; shape: number[] }[]): TorchMapping {
  return {
    targets,
    nameOf: (path) => (path.startsWith('backbone/') ? torchName(path) : undefined),
    ignore: (name) => /^(layer4\.|fc\.)/.test(name) || name.endsWith('.num_batches_tracked'),
  };
}

/** The official CSN code's names for a whole model: network, fc_embed and (for CSN) the masks. */
export function upstreamCsnName(path: string): string | undefined {
  if (path === 'masks') return CSN_MASKS_NAME;
  const name = torchName(path);
  return name === undefined ? undefined : `${CSN_NETWORK_PREFIX}${name}`;
}

export function upstreamCsnMapping(targets: readonly { name: string; shape: number[] }[]): TorchMapping {
  return { targets, nameOf: upstreamCsnName, ignore: (name) => name.endsWith('.num_batches_tracked') };
}

/** Whether a model has upstream's architecture, so that its weights can carry upstream's names. */
export function hasUpstreamNames(snapshot: ModelSnapshot): boolean {
  return snapshot.config.backbone === 'resnet18' && snapshot.config.kind !== 'asen';
}

/**
 * A snapshot as PyTorch tensors: upstream CSN names and layouts when the architecture is upstream's, our own
 * paths (and tfjs layouts) otherwise.
 */
export function toTorchTensors(
  snapshot: ModelSnapshot,
): { name: string; shape: number[]; data: Float32Array }[] {
  const upstream = hasUpstreamNames(snapshot);
  return snapshot.weights.map((weight) => {
    const name = upstream ? upstreamCsnName(weight.name) : undefined;
    if (name === undefined)
      return { name: weight.name, shape: [...weight.shape], data: Float32Array.from(weight.data) };
    return { name, ...toTorchLayout(weight) };
  });
}
