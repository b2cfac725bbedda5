/**
 * The hypercall port over a byte stream (a TypeScript domain in a child process, e.g. a
 * process-mode driver domain; backends' driver_domain/PROTOCOL.md): the child's stdin carries
 * host -> domain frames, its stdout domain -> host frames. A frame is
 *
 *   u32 LE  length of what follows (1 + payload bytes)
 *   u8      channel: 0 hypercall port, 1 control
 *   ...     one msgpack value (the hypercall port's own encoding, or a control message)
 *
 * The parser takes chunks as the pipe delivers them (any split) and returns whole frames; a
 * length over MAX_STREAM_FRAME or an unknown channel is a StreamError (the peer is broken: the
 * host kills it), never a crash.
 */
import { pack, unpack } from "msgpackr";

export const STREAM_CHANNEL_HYPERCALL = 0;
export const STREAM_CHANNEL_CONTROL = 1;
/** Largest frame accepted: a 4 KiB grant copy plus its envelope fits many times over. */
export const MAX_STREAM_FRAME = 1 << 20;

export class StreamError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StreamError";
  }
}

export interface StreamFrame {
  readonly channel: number;
  /** The msgpack bytes (a view into the parser's buffer; decode before the next feed). */
  readonly payload: Uint8Array;
}

/** A frame around msgpack bytes already packed (the hypercall port packs its own messages). */
export function encodeStreamFrame(channel: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(0, 1 + payload.length, true);
  out[4] = channel;
  out.set(payload, 5);
  return out;
}

/** A frame around a value, packed here. */
export function encodeStreamValue(channel: number, value: unknown): Uint8Array {
  return encodeStreamFrame(channel, pack(value));
}

export function decodeStreamValue(f: StreamFrame): unknown {
  try {
    return unpack(f.payload);
  } catch (e) {
    throw new StreamError(`undecodable frame on channel ${f.channel} (${(e as Error).message})`);
  }
}

export class StreamParser {
  private buf = new Uint8Array(0);
  private failed: StreamError | null = null;

  /** Appends a chunk; returns every frame it completes, in order. */
  feed(chunk: Uint8Array): StreamFrame[] {
    if (this.failed !== null) throw this.failed;
    const b = new Uint8Array(this.buf.length + chunk.length);
    b.set(this.buf);
    b.set(chunk, this.buf.length);
    const out: StreamFrame[] = [];
    let at = 0;
    const dv = new DataView(b.buffer);
    while (b.length - at >= 4) {
      const len = dv.getUint32(at, true);
      if (len < 1 || len > MAX_STREAM_FRAME)
        return this.fail(`frame length ${len} out of range 1..${MAX_STREAM_FRAME}`);
      if (b.length - at >= 5) {
        const channel = b[at + 4]!;
        if (channel !== STREAM_CHANNEL_HYPERCALL && channel !== STREAM_CHANNEL_CONTROL)
          return this.fail(`unknown channel ${channel}`);
      }
      if (b.length - at < 4 + len) break;
      out.push({ channel: b[at + 4]!, payload: b.subarray(at + 5, at + 4 + len) });
      at += 4 + len;
    }
    this.buf = b.slice(at);
    return out;
  }

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.buf.length;
  }

  private fail(why: string): never {
    this.failed = new StreamError(why);
    throw this.failed;
  }
}
