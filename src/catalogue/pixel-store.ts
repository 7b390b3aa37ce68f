/**
 * Decode once: product images as the size×size RGB bytes that decodeImageBytes produced, kept on disk beside the
 * catalogue (`<root>/.pixels/`), so that training, evaluation and the index job decode an image only once per input
 * size and preprocessing. A 128 px demo JPEG costs about 2 ms of CPU to decode to 48 px; reading its 6.9 KB row
 * back costs a few µs (bench/results/index-embed.md).
 *
 * Rows are keyed by the SHA-256 of the image file's bytes, in a folder per input size, preprocessing and decoder
 * version (sharp and libvips): a changed file, size, preprocessing or decoder misses and is decoded again, so stale
 * pixels are never served. Each job that decoded something adds one segment file (written to a temporary name and
 * renamed, never changed afterwards), so concurrent jobs cannot corrupt each other's rows; a segment that does not
 * read back whole is skipped. A read-only catalogue folder only means nothing is kept.
 *
 * Segment layout: rows (count × size×size×3 bytes), digests (count × 32 bytes), a JSON footer, its byte length
 * (uint32 LE) and the magic "DMPIXSEG".
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import type { ImageFit } from './types.ts';

const MAGIC = Buffer.from('DMPIXSEG');
const TAIL = 4 + MAGIC.length;
const DIGEST = 32;

/** The folder under a catalogue root that holds decoded pixels. */
export const PIXEL_DIR = '.pixels';

/** `DRESSMATCH_PIXEL_CACHE=off` keeps every job from reading or writing decoded pixels. */
export function pixelStoreEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.DRESSMATCH_PIXEL_CACHE !== 'off';
}

/** Where warnings go (a pino logger fits). */
export interface PixelStoreLog {
  warn(object: object, message: string): void;
}

interface Footer {
  format: 1;
  size: number;
  fit: ImageFit;
  decoder: string;
  count: number;
}

/** SHA-256 of a file's bytes, hex: the key of its decoded rows. */
export function imageDigest(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function decoderVersion(): string {
  return `sharp-${sharp.versions.sharp}-vips-${sharp.versions.vips}`;
}

interface Segment {
  handle: FileHandle;
  rows: Map<string, number>;
}

/** Decoded pixels of one catalogue at one input size and preprocessing. */
export class PixelStore {
  private writer: Writer | null = null;
  private readonly added = new Set<string>();
  /** Rows served from disk and rows added in this process. */
  readonly stats = { hits: 0, added: 0 };

  private constructor(
    readonly dir: string,
    readonly size: number,
    readonly fit: ImageFit,
    private readonly segments: Segment[],
    private readonly log?: PixelStoreLog,
  ) {}

  get rowBytes(): number {
    return this.size * this.size * 3;
  }

  /** Open the rows kept for `root` (null when DRESSMATCH_PIXEL_CACHE=off). */
  static async open(
    root: string,
    size: number,
    fit: ImageFit,
    log?: PixelStoreLog,
  ): Promise<PixelStore | null> {
    if (!pixelStoreEnabled()) return null;
    const dir = join(root, PIXEL_DIR, `${size}-${fit}-${decoderVersion()}`);
    let all: string[] = [];
    try {
      all = await readdir(dir);
    } catch {
      // No folder yet: nothing kept.
    }
    await removeAbandoned(dir, all);
    const names = all.filter((name) => name.endsWith('.seg')).sort();
    const segments: Segment[] = [];
    for (const name of names) {
      const segment = await readSegment(join(dir, name), size, fit, log);
      if (segment) segments.push(segment);
    }
    return new PixelStore(dir, size, fit, segments, log);
  }

  /** The rows of the image whose bytes hash to `digest`, or undefined if they are not kept. */
  async get(digest: string): Promise<Uint8Array | undefined> {
    for (const segment of this.segments) {
      const row = segment.rows.get(digest);
      if (row === undefined) continue;
      const bytes = new Uint8Array(this.rowBytes);
      const { bytesRead } = await segment.handle.read(bytes, 0, bytes.length, row * bytes.length);
      if (bytesRead !== bytes.length) return undefined;
      this.stats.hits++;
      return bytes;
    }
    return undefined;
  }

  /** Keep `bytes` (decodeImageBytes' output for this store's size and fit) for the image hashing to `digest`. */
  add(digest: string, bytes: Uint8Array): void {
    if (this.added.has(digest) || bytes.length !== this.rowBytes) return;
    this.added.add(digest);
    const writer = (this.writer ??= startWriter(this.dir));
    if (writer.failed) return;
    writer.digests.push(Buffer.from(digest, 'hex'));
    writer.buffered.push(Buffer.from(bytes));
    this.stats.added++;
    // Rows go to disk in runs of about 1 MiB, not one file write per image on the pool that decodes.
    if (writer.buffered.length * this.rowBytes >= 1 << 20) this.flushRows(writer);
  }

  private flushRows(writer: Writer): void {
    if (writer.buffered.length === 0) return;
    const run = Buffer.concat(writer.buffered);
    const at = (writer.digests.length - writer.buffered.length) * this.rowBytes;
    writer.buffered = [];
    writer.chain = writer.chain.then(async () => {
      await (await writer.ready).write(run, 0, run.length, at);
    });
    // Failures surface in close(); until then nobody awaits the chain.
    writer.chain.catch(() => {
      writer.failed = true;
    });
  }

  /**
   * Write the rows added since open as one new segment and close the files. Never throws: a folder that cannot be
   * written (read-only catalogue) is reported once and the rows are simply not kept.
   */
  async close(): Promise<void> {
    const writer = this.writer;
    this.writer = null;
    if (writer) await this.finish(writer);
    await Promise.all(this.segments.map((segment) => segment.handle.close().catch(() => undefined)));
    this.segments.length = 0;
  }

  private async finish(writer: Writer): Promise<void> {
    let handle: FileHandle | undefined;
    try {
      handle = await writer.ready;
      this.flushRows(writer);
      await writer.chain;
      const footer: Footer = {
        format: 1,
        size: this.size,
        fit: this.fit,
        decoder: decoderVersion(),
        count: writer.digests.length,
      };
      const json = Buffer.from(JSON.stringify(footer));
      const length = Buffer.alloc(4);
      length.writeUInt32LE(json.length);
      const tail = Buffer.concat([...writer.digests, json, length, MAGIC]);
      await handle.write(tail, 0, tail.length, writer.digests.length * this.rowBytes);
      await handle.close();
      handle = undefined;
      await rename(`${writer.path}.tmp`, writer.path);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await rm(`${writer.path}.tmp`, { force: true }).catch(() => undefined);
      this.log?.warn({ dir: this.dir, err: error }, `decoded pixels not kept in ${this.dir}`);
    }
  }
}

interface Writer {
  path: string;
  ready: Promise<FileHandle>;
  chain: Promise<void>;
  digests: Buffer[];
  /** Rows added but not yet handed to the file (the last ones of `digests`). */
  buffered: Buffer[];
  failed: boolean;
}

/** A new segment under a temporary name (renamed by close). */
function startWriter(dir: string): Writer {
  const path = join(dir, `${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}.seg`);
  const ready = mkdir(dir, { recursive: true }).then(() => open(`${path}.tmp`, 'wx'));
  const writer: Writer = { path, ready, chain: Promise.resolve(), digests: [], buffered: [], failed: false };
  ready.catch(() => {
    writer.failed = true;
  });
  return writer;
}

/** Segments a killed job left half-written (a day old: a running job finishes its segment in far less). */
async function removeAbandoned(dir: string, names: string[]): Promise<void> {
  for (const name of names.filter((n) => n.endsWith('.seg.tmp'))) {
    const path = join(dir, name);
    const age = await stat(path).then(
      (info) => Date.now() - info.mtimeMs,
      () => 0,
    );
    if (age > 24 * 3600 * 1000) await rm(path, { force: true }).catch(() => undefined);
  }
}

/** A segment's digest table, or null (with a warning) when the file is not a whole segment of this kind. */
async function readSegment(
  path: string,
  size: number,
  fit: ImageFit,
  log?: PixelStoreLog,
): Promise<Segment | null> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const { size: fileSize } = await handle.stat();
    const tail = Buffer.alloc(TAIL);
    await handle.read(tail, 0, TAIL, fileSize - TAIL);
    if (!tail.subarray(4).equals(MAGIC)) throw new Error('no segment magic at the end');
    const jsonLength = tail.readUInt32LE(0);
    const json = Buffer.alloc(jsonLength);
    await handle.read(json, 0, jsonLength, fileSize - TAIL - jsonLength);
    const footer = JSON.parse(json.toString('utf8')) as Footer;
    const rowBytes = size * size * 3;
    const expected = footer.count * (rowBytes + DIGEST) + jsonLength + TAIL;
    if (
      footer.size !== size ||
      footer.fit !== fit ||
      footer.decoder !== decoderVersion() ||
      expected !== fileSize
    )
      throw new Error(`footer ${json.toString('utf8')} does not fit ${fileSize} bytes of ${size} px ${fit}`);
    const digests = Buffer.alloc(footer.count * DIGEST);
    await handle.read(digests, 0, digests.length, footer.count * rowBytes);
    const rows = new Map<string, number>();
    for (let row = 0; row < footer.count; row++)
      rows.set(digests.toString('hex', row * DIGEST, (row + 1) * DIGEST), row);
    return { handle, rows };
  } catch (error) {
    await handle?.close().catch(() => undefined);
    log?.warn({ path, err: error }, `skipping unreadable pixel segment ${path}`);
    return null;
  }
}
