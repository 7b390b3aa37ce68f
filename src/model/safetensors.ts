/**
 * The safetensors format (what `safetensors.torch.save_file(model.state_dict(), path)` writes), parsed from and
 * written to byte buffers: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}`, then the raw
 * little-endian tensor bytes. Pure functions on buffers: the model stage does no I/O, the CLIs read and write
 * the files.
 *
 * Floating types (F32, F16, BF16, F64) and integer types (I64, I32, I16, I8, U8, BOOL) are read into float32
 * values (integer counters such as BatchNorm's num_batches_tracked are read too, then ignored by the loaders);
 * everything is written as F32.
 */

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

export interface SafeTensor {
  name: string;
  /** The file's dtype (values are converted to float32 whatever it is). */
  dtype: string;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: SafeTensor[];
  metadata: Record<string, string>;
}

const BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** IEEE half → number. */
function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function decodeValues(view: DataView, dtype: string, count: number): Float32Array {
  const out = new Float32Array(count);
  const size = BYTES[dtype];
  const scratch = new DataView(new ArrayBuffer(4));
  for (let i = 0; i < count; i++) {
    const at = i * size;
    switch (dtype) {
      case 'F32':
        out[i] = view.getFloat32(at, true);
        break;
      case 'F64':
        out[i] = view.getFloat64(at, true);
        break;
      case 'F16':
        out[i] = halfToFloat(view.getUint16(at, true));
        break;
      case 'BF16':
        scratch.setUint32(0, view.getUint16(at, true) << 16, true);
        out[i] = scratch.getFloat32(0, true);
        break;
      case 'I64':
        out[i] = Number(view.getBigInt64(at, true));
        break;
      case 'I32':
        out[i] = view.getInt32(at, true);
        break;
      case 'I16':
        out[i] = view.getInt16(at, true);
        break;
      case 'I8':
        out[i] = view.getInt8(at);
        break;
      default:
        out[i] = view.getUint8(at);
    }
  }
  return out;
}

interface HeaderEntry {
  dtype: unknown;
  shape: unknown;
  data_offsets: unknown;
}

function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) throw new SafetensorsError(`not a safetensors file: ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = Number(view.getBigUint64(0, true));
  if (length > bytes.length - 8) {
    throw new SafetensorsError(`not a safetensors file: header length ${length} exceeds the file`);
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  } catch (error) {
    throw new SafetensorsError(`not a safetensors file: header is not JSON (${(error as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('not a safetensors file: header is not an object');
  }
  return { header: header as Record<string, unknown>, dataStart: 8 + length };
}

function parseTensor(name: string, entry: HeaderEntry, data: Uint8Array): SafeTensor {
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !(dtype in BYTES)) {
    throw new SafetensorsError(`tensor ${name}: unsupported dtype ${String(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new SafetensorsError(`tensor ${name}: invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o))) {
    throw new SafetensorsError(`tensor ${name}: invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  if (begin < 0 || end > data.length || end - begin !== count * BYTES[dtype]) {
    throw new SafetensorsError(
      `tensor ${name}: data_offsets [${begin}, ${end}] do not hold ${count} ${dtype} values within ${data.length} bytes`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset + begin, end - begin);
  return { name, dtype, shape: [...(shape as number[])], data: decodeValues(view, dtype, count) };
}

/** Every tensor of a safetensors buffer, in header order, as float32. */
export function parseSafetensors(bytes: Uint8Array): SafetensorsFile {
  const { header, dataStart } = readHeader(bytes);
  const data = bytes.subarray(dataStart);
  const tensors: SafeTensor[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = (entry ?? {}) as Record<string, string>;
      continue;
    }
    if (typeof entry !== 'object' || entry === null) {
      throw new SafetensorsError(`tensor ${name}: header entry is not an object`);
    }
    tensors.push(parseTensor(name, entry as HeaderEntry, data));
  }
  return { tensors, metadata };
}

/** A safetensors buffer holding `tensors` as F32 (header padded to 8 bytes, as the reference writer does). */
export function serializeSafetensors(
  tensors: readonly { name: string; shape: number[]; data: Float32Array }[],
  metadata: Record<string, string> = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    const count = tensor.shape.reduce((a, b) => a * b, 1);
    if (count !== tensor.data.length) {
      throw new SafetensorsError(
        `tensor ${tensor.name}: ${tensor.data.length} values for shape [${tensor.shape.join(', ')}]`,
      );
    }
    if (tensor.name in header) throw new SafetensorsError(`duplicate tensor name ${tensor.name}`);
    header[tensor.name] = { dtype: 'F32', shape: tensor.shape, data_offsets: [offset, offset + count * 4] };
    offset += count * 4;
  }
  const encoded = new TextEncoder().encode(JSON.stringify(header));
  // Spaces after the JSON keep the tensor data 8-byte aligned.
  const headerBytes = new Uint8Array(Math.ceil(encoded.length / 8) * 8).fill(0x20);
  headerBytes.set(encoded);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const tensor of tensors) {
    for (let i = 0; i < tensor.data.length; i++, at += 4) view.setFloat32(at, tensor.data[i], true);
  }
  return out;
}
