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
  RHDR_SIZE,
  recName,
  XEN_MAJOR,
  XEN_MINOR,
} from "./stream_format.js";

/** Where a stream writer puts its bytes (a file, a socket, an array of chunks). */
export type StreamSink = (chunk: Uint8Array) => void;

/** Bytes needed to pad `n` to a multiple of 8. */
export function pad8(n: number): number {
  return (8 - (n % 8)) % 8;
}

/** The 24-byte image header (big-endian) and the 16-byte domain header, in one chunk. */
export function encodeHeaders(littleEndian = true): Uint8Array {
  const out = new Uint8Array(IHDR_SIZE + DHDR_SIZE);
  const v = new DataView(out.buffer);
  v.setUint32(0, IHDR_MARKER_HI);
  v.setUint32(4, IHDR_MARKER_HI);
  v.setUint32(8, IHDR_ID);
  v.setUint32(12, IHDR_VERSION);
  v.setUint16(16, littleEndian ? 0 : IHDR_OPT_BIG_ENDIAN);
  v.setUint32(IHDR_SIZE, DHDR_TYPE_XENON_RV32, littleEndian);
  v.setUint16(IHDR_SIZE + 4, PAGE_SHIFT, littleEndian);
  v.setUint32(IHDR_SIZE + 8, XEN_MAJOR, littleEndian);
  v.setUint32(IHDR_SIZE + 12, XEN_MINOR, littleEndian);
  return out;
}

/** One framed record: header, body, zero padding to 8 bytes. */
export function encodeRecord(type: number, body: Uint8Array, littleEndian = true): Uint8Array {
  if (body.length > REC_LENGTH_MAX) throw new RangeError(`${recName(type)} body of ${body.length} bytes is too long`);
  const out = new Uint8Array(RHDR_SIZE + body.length + pad8(body.length));
  const v = new DataView(out.buffer);
  v.setUint32(0, type >>> 0, littleEndian);
  v.setUint32(4, body.length, littleEndian);
  out.set(body, RHDR_SIZE);
  return out;
}

/** Writes a stream to a sink: headers first, then records; counts what it sent. */
export class StreamWriter {
  bytes = 0;
  records = 0;

  constructor(
    private readonly sink: StreamSink,
    readonly littleEndian = true,
  ) {}

  headers(): void {
    this.put(encodeHeaders(this.littleEndian));
  }

  record(type: number, body: Uint8Array = new Uint8Array(0)): void {
    this.put(encodeRecord(type, body, this.littleEndian));
    this.records++;
  }

  private put(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    this.sink(chunk);
  }
}
