/**
 * The management endpoint's messages (PROTOCOL.md): each WebSocket binary message carries exactly
 * one msgpack value, a map with string keys. The WebSocket layer frames; this layer decodes and
 * checks shapes, and never throws on bad input — a bad frame is answered with an EPROTO error.
 */
import { Packr, Unpackr } from "msgpackr";

export const PROTOCOL_VERSION = 1;

export interface Request {
  readonly id: number;
  readonly op: string;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
}

/** Host -> client. */
export type Reply =
  | { readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly id: number | null; readonly ok: false; readonly error: ErrorBody }
  /** Output of a stream opened by request `id` (console). */
  | { readonly id: number; readonly data: Uint8Array }
  /** A stream's end (the domain is gone, or the host shuts down). */
  | { readonly id: number; readonly end: string }
  /** One event of an events.subscribe stream. */
  | { readonly id: number; readonly event: Readonly<Record<string, unknown>> };

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Largest frame either side accepts (a domain config is small; console chunks are capped). */
export const MAX_FRAME_BYTES = 1 << 20;

export function encodeFrame(msg: Request | Reply): Uint8Array {
  return packr.pack(msg);
}

export class ProtocolError extends Error {
  constructor(
    message: string,
    /** The request id, when the frame got far enough to have one. */
    readonly id: number | null = null,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Exactly one msgpack value filling the whole frame. */
export function decodeValue(bytes: Uint8Array): unknown {
  if (bytes.length === 0) throw new ProtocolError("empty frame");
  if (bytes.length > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${bytes.length} bytes is over the limit`);
  let values: unknown[];
  try {
    values = unpackr.unpackMultiple(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length)) as unknown[];
  } catch (e) {
    throw new ProtocolError(`undecodable frame (${(e as Error).message})`);
  }
  if (values.length !== 1) throw new ProtocolError(`frame holds ${values.length} values, not one`);
  return values[0];
}

function isId(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** A client's request frame, checked. Throws ProtocolError (with the id if it was readable). */
export function decodeRequest(bytes: Uint8Array): Request {
  const v = decodeValue(bytes);
  if (!isPlainMap(v)) throw new ProtocolError("a request must be a map");
  const id = isId(v.id) ? v.id : null;
  if (id === null) throw new ProtocolError("request without a valid id (u32)");
  if (typeof v.op !== "string" || v.op === "") throw new ProtocolError("request without an op", id);
  const args = v.args ?? {};
  if (!isPlainMap(args)) throw new ProtocolError("args must be a map", id);
  for (const k of Object.keys(v))
    if (k !== "id" && k !== "op" && k !== "args") throw new ProtocolError(`unknown request field '${k}'`, id);
  return { id, op: v.op, args };
}

/** A host's reply frame, checked (the client side). */
export function decodeReply(bytes: Uint8Array): Reply {
  const v = decodeValue(bytes);
  if (!isPlainMap(v)) throw new ProtocolError("a reply must be a map");
  const id = v.id === null ? null : isId(v.id) ? v.id : undefined;
  if (id === undefined) throw new ProtocolError("reply without a valid id");
  if (v.ok === true && id !== null) return { id, ok: true, result: v.result };
  if (v.ok === false) {
    const e = v.error;
    if (!isPlainMap(e) || typeof e.code !== "string" || typeof e.message !== "string")
      throw new ProtocolError("error reply without code and message");
    return { id, ok: false, error: { code: e.code, message: e.message } };
  }
  if (id === null) throw new ProtocolError("only error replies may have a nil id");
  if (v.data instanceof Uint8Array) return { id, data: v.data };
  if (typeof v.end === "string") return { id, end: v.end };
  if (isPlainMap(v.event)) return { id, event: v.event };
  throw new ProtocolError("reply of unknown kind");
}

/** Close code for a management connection on "/" without the host's token (`/?token=…`). */
export const MGMT_CLOSE_NO_TOKEN = 4001;
