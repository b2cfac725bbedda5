import {
  DHDR_SIZE,
  DHDR_TYPE_XENON_RV32,
  IHDR_ID,
  IHDR_MARKER_HI,
  IHDR_OPT_BIG_ENDIAN,
  IHDR_SIZE,
  IHDR_VERSION,
  PAGE_SHIFT,
  REC_LENGTH_MAX,
  RecType,
  RHDR_SIZE,
  recName,
} from "./stream_format.js";
import { pad8 } from "./stream_writer.js";

/** A stream that cannot be restored from: the message says what and where. */
export class MigrationStreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "MigrationStreamError";
  }
}

export interface StreamHeader {
  readonly littleEndian: boolean;
  readonly version: number;
  readonly domainType: number;
  readonly xenMajor: number;
  readonly xenMinor: number;
}

export interface StreamRecord {
  readonly type: number;
  /** Byte offset of the record header in the stream (for messages). */
  readonly offset: number;
  readonly body: Uint8Array;
}

export type StreamItem =
  | { readonly kind: "header"; readonly header: StreamHeader }
  | ({ readonly kind: "record" } & StreamRecord);

/**
 * Incremental framing parser: feed it bytes in any split with push(), take the headers and
 * records as they complete; finish() refuses a stream that stopped early. Framing is checked
 * here (headers, lengths against REC_LENGTH_MAX and `maxBody` before anything is buffered, zero
 * padding, nothing after END); record bodies are the restorer's to check.
 */
export class StreamReader {
  /**
   * Bytes pushed and not yet consumed, as the chunks they came in (no copying while a large record
   * arrives in pieces: it is assembled once, when complete). A record body that lies within one
   * chunk is handed out as a view of it, so callers must not reuse a chunk's buffer once pushed.
   */
  private chunks: Uint8Array[] = [];
  /** Offset into chunks[0] of the first unconsumed byte. */
  private head = 0;
  private buffered = 0;
  private consumed = 0;
  private header: StreamHeader | null = null;
  private ended = false;

  private trailing: Uint8Array = new Uint8Array(0);

  constructor(
    /** Per-type body limit (a record longer than this is refused before it is buffered). */
    private readonly maxBody: (type: number) => number = () => REC_LENGTH_MAX,
    /**
     * Bytes after END are an error, unless the stream is embedded in an outer one (libxl's
     * LIBXC_CONTEXT): then they are kept for takeTrailing().
     */
    private readonly embedded = false,
  ) {}

  /** Embedded streams: the bytes that followed END (returned once). */
  takeTrailing(): Uint8Array {
    const t = this.trailing;
    this.trailing = new Uint8Array(0);
    return t;
  }

  get done(): boolean {
    return this.ended;
  }

  /** Total bytes consumed into complete items. */
  get offset(): number {
    return this.consumed;
  }

  /** The next n buffered bytes (n <= buffered): a view when they are in one chunk, else a copy. */
  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) return first.subarray(this.head, this.head + n);
    const out = new Uint8Array(n);
    let got = 0;
    let off = this.head;
    for (const c of this.chunks) {
      const part = c.subarray(off, Math.min(c.length, off + n - got));
      out.set(part, got);
      got += part.length;
      off = 0;
      if (got === n) break;
    }
    return out;
  }

  /** Drops the next n buffered bytes. */
  private skip(n: number): void {
    this.buffered -= n;
    while (n > 0) {
      const left = this.chunks[0]!.length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.chunks.shift();
      this.head = 0;
    }
    if (this.chunks.length > 0 && this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }

  /** Everything buffered, as one array (consumed). */
  private drain(): Uint8Array {
    const all = this.buffered === 0 ? new Uint8Array(0) : this.peek(this.buffered).slice();
    this.skip(this.buffered);
    return all;
  }

  push(chunk: Uint8Array): StreamItem[] {
    if (chunk.length === 0) return [];
    if (this.ended) {
      if (!this.embedded) throw new MigrationStreamError(`${chunk.length} bytes after the END record`);
      this.trailing = concat(this.trailing, chunk);
      return [];
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const items: StreamItem[] = [];
    for (;;) {
      if (this.ended) {
        if (this.buffered > 0 && !this.embedded)
          throw new MigrationStreamError(`${this.buffered} bytes after the END record`);
        this.trailing = concat(this.trailing, this.drain());
        break;
      }
      if (this.header === null) {
        if (this.buffered < IHDR_SIZE + DHDR_SIZE) break;
        this.header = parseHeaders(this.peek(IHDR_SIZE + DHDR_SIZE));
        items.push({ kind: "header", header: this.header });
        this.skip(IHDR_SIZE + DHDR_SIZE);
        this.consumed += IHDR_SIZE + DHDR_SIZE;
        continue;
      }
      if (this.buffered < RHDR_SIZE) break;
      const rh = this.peek(RHDR_SIZE);
      const v = new DataView(rh.buffer, rh.byteOffset, RHDR_SIZE);
      const le = this.header.littleEndian;
      const type = v.getUint32(0, le);
      const len = v.getUint32(4, le);
      const limit = Math.min(REC_LENGTH_MAX, this.maxBody(type));
      if (len > limit)
        throw new MigrationStreamError(
          `record ${recName(type)} at offset ${this.consumed}: body of ${len} bytes exceeds the limit of ${limit}`,
        );
      const total = RHDR_SIZE + len + pad8(len);
      if (this.buffered < total) break;
      const rec = this.peek(total);
      for (let i = RHDR_SIZE + len; i < total; i++)
        if (rec[i] !== 0)
          throw new MigrationStreamError(`record ${recName(type)} at offset ${this.consumed}: non-zero padding`);
      if (type === RecType.END && len !== 0)
        throw new MigrationStreamError(`END record at offset ${this.consumed} has a ${len}-byte body`);
      items.push({ kind: "record", type, offset: this.consumed, body: rec.subarray(RHDR_SIZE, RHDR_SIZE + len) });
      this.skip(total);
      this.consumed += total;
      if (type === RecType.END) this.ended = true;
    }
    return items;
  }

  /** Throws unless the stream ended with its END record and nothing was left over. */
  finish(): void {
    if (this.ended) return;
    const where =
      this.header === null
        ? "inside the stream headers"
        : this.buffered === 0
          ? "before the END record"
          : "inside a record";
    throw new MigrationStreamError(`stream truncated at offset ${this.consumed + this.buffered}: it ends ${where}`);
  }
}

function parseHeaders(b: Uint8Array): StreamHeader {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  if (v.getUint32(0) !== IHDR_MARKER_HI || v.getUint32(4) !== IHDR_MARKER_HI)
    throw new MigrationStreamError(
      "not a migration stream v2/v3: the image header marker is not all ones (legacy image?)",
    );
  const id = v.getUint32(8);
  if (id !== IHDR_ID)
    throw new MigrationStreamError(`image header id 0x${id.toString(16)} is not "XENF" (0x${IHDR_ID.toString(16)})`);
  const version = v.getUint32(12);
  if (version !== IHDR_VERSION)
    throw new MigrationStreamError(
      `stream version ${version} not supported (XENON_RV32 streams are version ${IHDR_VERSION})`,
    );
  const options = v.getUint16(16);
  if ((options & ~IHDR_OPT_BIG_ENDIAN) !== 0)
    throw new MigrationStreamError(`image header options 0x${options.toString(16)} set reserved bits`);
  for (let i = 18; i < IHDR_SIZE; i++)
    if (b[i] !== 0) throw new MigrationStreamError("image header reserved bytes are not zero");
  const le = (options & IHDR_OPT_BIG_ENDIAN) === 0;
  const domainType = v.getUint32(IHDR_SIZE, le);
  if (domainType !== DHDR_TYPE_XENON_RV32)
    throw new MigrationStreamError(
      `domain type 0x${domainType.toString(16)} is not XENON_RV32 (0x${DHDR_TYPE_XENON_RV32.toString(16)}); x86 PV/HVM images cannot be restored here`,
    );
  const pageShift = v.getUint16(IHDR_SIZE + 4, le);
  if (pageShift !== PAGE_SHIFT) throw new MigrationStreamError(`page_shift ${pageShift} is not ${PAGE_SHIFT}`);
  return {
    littleEndian: le,
    version,
    domainType,
    xenMajor: v.getUint32(IHDR_SIZE + 8, le),
    xenMinor: v.getUint32(IHDR_SIZE + 12, le),
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
