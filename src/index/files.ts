/** On-disk layout of a bundle: paths, durable writes, checksums, and strict parsing of manifest and version files. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  BundleError,
  MANIFEST_FILE,
  VERSIONS_DIR,
  type FileRecord,
  type Manifest,
  type VersionInfo,
} from './types.ts';

if (endianness() !== 'LE') {
  // The .f32 files are raw little-endian float32, read straight into Float32Arrays.
  throw new Error('the index bundle format assumes a little-endian machine');
}

export function manifestPath(bundleDir: string): string {
  return join(bundleDir, MANIFEST_FILE);
}

export function versionsPath(bundleDir: string): string {
  return join(bundleDir, VERSIONS_DIR);
}

export function versionPath(bundleDir: string, version: string): string {
  return join(bundleDir, VERSIONS_DIR, version);
}

/** A file-name-safe form of a condition name (names are free text in upstream layouts). */
export function conditionFileStem(condition: string, index: number): string {
  return /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/.test(condition) ? condition : `condition-${index}`;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function floatBytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/** Write a new file and fsync it (the version directory is fsynced once all its files are written). */
export async function writeDurable(path: string, data: string | Uint8Array): Promise<FileRecord> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  return { bytes: bytes.byteLength, sha256: sha256(bytes) };
}

/** fsync a file something else wrote (hnswlib's writeIndex), then hash it. */
export async function syncAndHash(path: string): Promise<FileRecord> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes: (await stat(path)).size, sha256: await sha256File(path) };
}

/** Read a whole file, check its size and SHA-256 against the record, and return its bytes. */
export async function readVerified(
  path: string,
  record: FileRecord | undefined,
  verify: boolean,
): Promise<Buffer> {
  if (!record) throw new BundleError('corrupt', path, 'file is not listed in version.json');
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new BundleError('corrupt', path, `cannot read file (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (bytes.byteLength !== record.bytes) {
    throw new BundleError(
      'corrupt',
      path,
      `file has ${bytes.byteLength} bytes, version.json records ${record.bytes}`,
    );
  }
  if (verify && sha256(bytes) !== record.sha256) {
    throw new BundleError(
      'checksum',
      path,
      'SHA-256 does not match version.json: the file was changed or damaged',
    );
  }
  return bytes;
}

/** Check a file on disk (size and hash) without keeping it in memory: used before hnswlib reads an index file. */
export async function verifyFile(
  path: string,
  record: FileRecord | undefined,
  verify: boolean,
): Promise<void> {
  if (!record) throw new BundleError('corrupt', path, 'file is not listed in version.json');
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    throw new BundleError('corrupt', path, `cannot read file (${(error as Error).message})`, {
      cause: error,
    });
  }
  if (size !== record.bytes) {
    throw new BundleError('corrupt', path, `file has ${size} bytes, version.json records ${record.bytes}`);
  }
  if (verify && (await sha256File(path)) !== record.sha256) {
    throw new BundleError(
      'checksum',
      path,
      'SHA-256 does not match version.json: the file was changed or damaged',
    );
  }
}

/** Float32 view of file bytes, copied when the buffer is not 4-byte aligned. */
export function toFloat32(bytes: Buffer): Float32Array {
  if (bytes.byteOffset % 4 === 0)
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  return new Float32Array(Uint8Array.from(bytes).buffer);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkFormat(path: string, value: Record<string, unknown>): void {
  if (value.format !== BUNDLE_FORMAT) {
    throw new BundleError(
      'corrupt',
      path,
      `not a dressmatch index file (format ${JSON.stringify(value.format)})`,
    );
  }
  if (value.formatVersion !== BUNDLE_FORMAT_VERSION) {
    throw new BundleError(
      'unsupported',
      path,
      `format version ${String(value.formatVersion)} is not supported (this build reads ${BUNDLE_FORMAT_VERSION}); re-run the index job`,
    );
  }
}

export function parseJson(path: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BundleError('corrupt', path, `invalid JSON (${(error as Error).message})`, { cause: error });
  }
}

/** The manifest, or null when the bundle has never been published. Anything else unreadable is an error. */
export async function readManifest(bundleDir: string): Promise<Manifest | null> {
  const path = manifestPath(bundleDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new BundleError('corrupt', path, `cannot read manifest (${(error as Error).message})`, {
      cause: error,
    });
  }
  const value = parseJson(path, text);
  if (!isRecord(value)) throw new BundleError('corrupt', path, 'manifest is not a JSON object');
  checkFormat(path, value);
  const valid =
    typeof value.current === 'string' &&
    /^[A-Za-z0-9_-]+$/.test(value.current) &&
    typeof value.versionSha256 === 'string' &&
    typeof value.modelId === 'string' &&
    Array.isArray(value.history) &&
    value.history.every((v) => typeof v === 'string');
  if (!valid)
    throw new BundleError('corrupt', path, 'manifest lacks current, versionSha256, modelId or history');
  return value as unknown as Manifest;
}

/** Parse and sanity-check a version.json whose bytes were already verified against the manifest. */
export function parseVersionInfo(path: string, bytes: Uint8Array, expectedVersion: string): VersionInfo {
  const value = parseJson(path, Buffer.from(bytes).toString('utf8'));
  if (!isRecord(value)) throw new BundleError('corrupt', path, 'version.json is not a JSON object');
  checkFormat(path, value);
  const info = value as unknown as VersionInfo;
  if (info.version !== expectedVersion) {
    throw new BundleError(
      'corrupt',
      path,
      `describes version ${info.version}, found in directory ${expectedVersion}`,
    );
  }
  const shapeOk =
    Array.isArray(info.conditions) &&
    Array.isArray(info.spaces) &&
    info.spaces.length === info.conditions.length &&
    Number.isInteger(info.slots) &&
    isRecord(info.files) &&
    isRecord(info.model) &&
    isRecord(info.params);
  if (!shapeOk)
    throw new BundleError('corrupt', path, 'version.json lacks conditions, spaces, slots, files or model');
  info.spaces.forEach((space, c) => {
    if (space.condition !== info.conditions[c] || space.dims.length !== space.weights.length) {
      throw new BundleError('corrupt', path, `space ${c} does not match condition ${info.conditions[c]}`);
    }
  });
  return info;
}

export async function listVersionDirs(bundleDir: string): Promise<string[]> {
  try {
    return (await readdir(versionsPath(bundleDir), { withFileTypes: true }))
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** Version names sort by their zero-padded sequence number. */
export function versionSequence(name: string): number {
  const match = /^v(\d+)-/.exec(name);
  return match ? Number(match[1]) : -1;
}

export function formatVersionName(sequence: number, date: Date): string {
  const stamp = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  return `v${String(sequence).padStart(6, '0')}-${stamp}`;
}
