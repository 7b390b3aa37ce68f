/**
 * Checkpoint files (`.dmck`): one self-describing binary file per checkpoint.
 *
 * Layout (all integers little-endian):
 *   0  magic "DMCK"                      4 bytes
 *   4  format version (uint32)            4 bytes
 *   8  header JSON length in bytes        4 bytes (uint32)
 *  12  reserved, zero                     4 bytes
 *  16  blob length in bytes (uint64)      8 bytes
 *  24  SHA-256 of header JSON + blob     32 bytes
 *  56  header JSON (UTF-8), padded with spaces to a multiple of 4 bytes
 *  ..  float32 blob: weights, then optimiser slots, at the offsets the header names
 *
 * The checksum catches torn or bit-flipped files that still have plausible lengths.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ModelConfig, ModelSnapshot, NamedWeight, SimilarityModel } from '../model/index.ts';
import { preprocessOf } from '../model/defaults.ts';
import { writeFileAtomic } from '../util/atomic.ts';
import {
  CheckpointError,
  type Checkpoint,
  type MetricsSummary,
  type OptimizerState,
  type TrainingState,
} from './types.ts';

const CHECKPOINT_MAGIC = 'DMCK';
const CHECKPOINT_VERSION = 1;
const PREAMBLE_BYTES = 56;
/** Header JSON larger than this is certainly not ours (protects against allocating garbage lengths). */
const MAX_HEADER_BYTES = 64 * 1024 * 1024;

interface TensorEntry {
  name: string;
  shape: number[];
  /** Offset and length in float32 elements from the start of the blob. */
  offset: number;
  length: number;
}

interface HeaderJson {
  format: 'dressmatch-checkpoint';
  version: number;
  createdAt: string;
  modelId: string;
  config: ModelConfig;
  weights: TensorEntry[];
  optimizer?: Omit<OptimizerState, 'slots'> & { slots: TensorEntry[] };
  training?: TrainingState;
  args?: Record<string, unknown>;
  metrics?: MetricsSummary;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, side) => product * side, 1);
}

/**
 * Stable identity of a model: SHA-256 over its config and every weight (name, shape, float32 bytes), hex.
 * Two files holding the same model get the same id whatever else they store (optimiser state, metrics).
 */
export function modelId(snapshot: ModelSnapshot): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(canonicalConfig(snapshot.config)));
  for (const weight of snapshot.weights) {
    hash.update(`\u0000${weight.name}\u0000${weight.shape.join('x')}\u0000`);
    hash.update(new Uint8Array(weight.data.buffer, weight.data.byteOffset, weight.data.byteLength));
  }
  return hash.digest('hex');
}

/** Config with keys in a fixed order, so the id does not depend on how the object was built. */
function canonicalConfig(config: ModelConfig): unknown[] {
  return [
    config.kind,
    config.backbone,
    config.imageSize,
    config.embedDim,
    config.conditions,
    config.maskMode,
    config.seed,
    config.width ?? null,
    // Added later: present only when they differ from what configs without them mean, so older ids stay.
    ...(preprocessOf(config) !== 'fit-pad' ? [preprocessOf(config)] : []),
    ...(config.kind === 'asen' && config.attentionTanh ? ['attentionTanh'] : []),
  ];
}

function layout(tensors: readonly NamedWeight[], start: number): { entries: TensorEntry[]; end: number } {
  let offset = start;
  const entries = tensors.map((tensor) => {
    const length = tensor.data.length;
    if (length !== elementCount(tensor.shape)) {
      throw new RangeError(
        `tensor ${tensor.name}: ${length} values do not match shape [${tensor.shape.join(', ')}]`,
      );
    }
    const entry = { name: tensor.name, shape: [...tensor.shape], offset, length };
    offset += length;
    return entry;
  });
  return { entries, end: offset };
}

/** Serialise a checkpoint to the bytes of a `.dmck` file. */
export function encodeCheckpoint(checkpoint: Checkpoint): Uint8Array {
  const weights = layout(checkpoint.model.weights, 0);
  const slots = layout(checkpoint.optimizer?.slots ?? [], weights.end);
  const header: HeaderJson = {
    format: 'dressmatch-checkpoint',
    version: CHECKPOINT_VERSION,
    createdAt: checkpoint.createdAt ?? new Date().toISOString(),
    modelId: modelId(checkpoint.model),
    config: checkpoint.model.config,
    weights: weights.entries,
    ...(checkpoint.optimizer ? { optimizer: { ...checkpoint.optimizer, slots: slots.entries } } : {}),
    ...(checkpoint.training ? { training: checkpoint.training } : {}),
    ...(checkpoint.args ? { args: checkpoint.args } : {}),
    ...(checkpoint.metrics ? { metrics: checkpoint.metrics } : {}),
  };
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad so the blob starts 4-byte aligned and can be viewed as Float32Array without copying.
  const padding = (4 - ((PREAMBLE_BYTES + json.length) % 4)) % 4;
  if (padding > 0) json = Buffer.concat([json, Buffer.alloc(padding, 0x20)]);

  const blobBytes = slots.end * 4;
  const out = new Uint8Array(PREAMBLE_BYTES + json.length + blobBytes);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(CHECKPOINT_MAGIC, 'ascii'), 0);
  view.setUint32(4, CHECKPOINT_VERSION, true);
  view.setUint32(8, json.length, true);
  view.setUint32(12, 0, true);
  view.setBigUint64(16, BigInt(blobBytes), true);
  out.set(json, PREAMBLE_BYTES);
  const blob = new Float32Array(out.buffer, PREAMBLE_BYTES + json.length, slots.end);
  const all = [...checkpoint.model.weights, ...(checkpoint.optimizer?.slots ?? [])];
  const entries = [...weights.entries, ...slots.entries];
  all.forEach((tensor, i) => blob.set(tensor.data, entries[i].offset));
  const digest = createHash('sha256').update(out.subarray(PREAMBLE_BYTES)).digest();
  out.set(digest, 24);
  return out;
}

function checkEntries(file: string, entries: unknown, blobLength: number, what: string): TensorEntry[] {
  if (!Array.isArray(entries)) throw new CheckpointError(file, `header has no ${what} table`);
  return entries.map((entry: TensorEntry, i) => {
    const ok =
      entry &&
      typeof entry.name === 'string' &&
      Array.isArray(entry.shape) &&
      entry.shape.every((side) => Number.isInteger(side) && side >= 0) &&
      Number.isInteger(entry.offset) &&
      Number.isInteger(entry.length) &&
      entry.offset >= 0 &&
      entry.length === elementCount(entry.shape) &&
      entry.offset + entry.length <= blobLength;
    if (!ok)
      throw new CheckpointError(
        file,
        `${what} entry ${i} (${entry?.name ?? '?'}) is out of bounds or malformed`,
      );
    return entry;
  });
}

/** Parse and validate the bytes of a `.dmck` file; `file` is only used in error messages. */
export function decodeCheckpoint(bytes: Uint8Array, file = '<buffer>'): Checkpoint {
  if (bytes.length < PREAMBLE_BYTES) {
    throw new CheckpointError(
      file,
      `file is ${bytes.length} bytes, too short to be a checkpoint (truncated?)`,
    );
  }
  const magic = Buffer.from(bytes.subarray(0, 4)).toString('latin1');
  if (magic !== CHECKPOINT_MAGIC) {
    throw new CheckpointError(
      file,
      `not a dressmatch checkpoint (magic "${magic}" instead of "${CHECKPOINT_MAGIC}")`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(4, true);
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointError(
      file,
      `format version ${version} is not supported (this build reads version ${CHECKPOINT_VERSION})`,
    );
  }
  const jsonLength = view.getUint32(8, true);
  const blobBytes = view.getBigUint64(16, true);
  const expected = BigInt(PREAMBLE_BYTES) + BigInt(jsonLength) + blobBytes;
  if (jsonLength > MAX_HEADER_BYTES || blobBytes % 4n !== 0n || expected !== BigInt(bytes.length)) {
    throw new CheckpointError(
      file,
      `file is ${bytes.length} bytes but its header announces ${expected} (truncated or corrupt)`,
    );
  }
  const digest = createHash('sha256').update(bytes.subarray(PREAMBLE_BYTES)).digest();
  if (!digest.equals(bytes.subarray(24, 56))) {
    throw new CheckpointError(file, 'checksum mismatch: the file is corrupt');
  }
  let header: HeaderJson;
  try {
    header = JSON.parse(
      Buffer.from(bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + jsonLength)).toString('utf8'),
    );
  } catch (error) {
    throw new CheckpointError(file, `header is not valid JSON (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (
    header?.format !== 'dressmatch-checkpoint' ||
    typeof header.config !== 'object' ||
    header.config === null
  ) {
    throw new CheckpointError(file, 'header does not describe a dressmatch checkpoint');
  }
  const blobLength = Number(blobBytes / 4n);
  // Copy the blob into its own aligned buffer: callers keep the weights, not the whole file.
  const blob = new Float32Array(blobLength);
  new Uint8Array(blob.buffer).set(bytes.subarray(PREAMBLE_BYTES + jsonLength));
  const take = (entries: TensorEntry[]): NamedWeight[] =>
    entries.map((entry) => ({
      name: entry.name,
      shape: entry.shape,
      data: blob.subarray(entry.offset, entry.offset + entry.length),
    }));

  const checkpoint: Checkpoint = {
    model: { config: header.config, weights: take(checkEntries(file, header.weights, blobLength, 'weight')) },
    createdAt: header.createdAt,
    modelId: header.modelId,
  };
  if (header.optimizer) {
    const { slots, ...rest } = header.optimizer;
    checkpoint.optimizer = { ...rest, slots: take(checkEntries(file, slots, blobLength, 'optimizer slot')) };
  }
  if (header.training) checkpoint.training = header.training;
  if (header.args) checkpoint.args = header.args;
  if (header.metrics) checkpoint.metrics = header.metrics;
  return checkpoint;
}

/** Write a checkpoint so that `path` always holds either the previous file or the complete new one. */
export async function writeCheckpoint(path: string, checkpoint: Checkpoint): Promise<void> {
  await writeFileAtomic(path, encodeCheckpoint(checkpoint));
}

/** Read and validate a checkpoint file; every problem is a CheckpointError naming the file. */
export async function readCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    throw new CheckpointError(path, reason, { cause: error });
  }
  return decodeCheckpoint(bytes, path);
}

/**
 * Load the model a checkpoint holds (for the eval, index and serve stages). The tfjs backend must already be selected
 * (model `selectBackend`), since the weights become variables of the current backend.
 */
export async function loadModelFromCheckpoint(path: string): Promise<SimilarityModel> {
  return restoreCheckpointModel(await readCheckpoint(path), path);
}

/**
 * The model of a checkpoint already read (readCheckpoint), for a job that reads the file before it starts a
 * backend; `path` names the file in errors.
 */
export async function restoreCheckpointModel(checkpoint: Checkpoint, path: string): Promise<SimilarityModel> {
  const { restoreModel } = await import('../model/index.ts');
  try {
    return restoreModel(checkpoint.model);
  } catch (error) {
    throw new CheckpointError(path, `cannot restore the model (${(error as Error).message})`, {
      cause: error,
    });
  }
}
