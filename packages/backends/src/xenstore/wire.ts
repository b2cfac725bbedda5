/**
 * XenStore wire format (xs_wire.h, Xen 4.17): the 16-byte `xsd_sockmsg` header, the message
 * type table, the error-name table and the size limits. Everything here is plain data; the
 * daemon and the decoder take their numbers from this file only.
 */

/** Header: type u32, req_id u32, tx_id u32, len u32, little-endian. */
export const XS_HEADER_SIZE = 16;
/** Largest payload either way; a bigger `len` kills the connection. */
export const XENSTORE_PAYLOAD_MAX = 4096;
export const XENSTORE_ABS_PATH_MAX = 3072;
export const XENSTORE_REL_PATH_MAX = 2048;

/** Message types in 4.17 enum order (20, XS_RESTRICT, was removed; 23 is XS_TYPE_COUNT). */
export const XS_TYPES = {
  CONTROL: 0,
  DIRECTORY: 1,
  READ: 2,
  GET_PERMS: 3,
  WATCH: 4,
  UNWATCH: 5,
  TRANSACTION_START: 6,
  TRANSACTION_END: 7,
  INTRODUCE: 8,
  RELEASE: 9,
  GET_DOMAIN_PATH: 10,
  WRITE: 11,
  MKDIR: 12,
  RM: 13,
  SET_PERMS: 14,
  WATCH_EVENT: 15,
  ERROR: 16,
  IS_DOMAIN_INTRODUCED: 17,
  RESUME: 18,
  SET_TARGET: 19,
  RESET_WATCHES: 21,
  DIRECTORY_PART: 22,
} as const;
export type XsTypeName = keyof typeof XS_TYPES;
export type XsType = (typeof XS_TYPES)[XsTypeName];
export const XS_TYPE_COUNT = 23;
export const XS_INVALID = 0xffff;

const typeNames = new Map<number, XsTypeName>(
  (Object.entries(XS_TYPES) as [XsTypeName, number][]).map(([name, n]) => [n, name]),
);
/** The name of a type number, or undefined for numbers 4.17 does not know (20, ≥ 23). */
export function xsTypeName(type: number): XsTypeName | undefined {
  return typeNames.get(type);
}

/** Error names in `xsd_errors[]` order; the wire carries the name followed by NUL, never the number. */
export const XS_ERRORS = [
  "EINVAL",
  "EACCES",
  "EEXIST",
  "EISDIR",
  "ENOENT",
  "ENOMEM",
  "ENOSPC",
  "EIO",
  "ENOTEMPTY",
  "ENOSYS",
  "EROFS",
  "EBUSY",
  "EAGAIN",
  "EISCONN",
  "E2BIG",
  "EPERM",
] as const;
export type XsErrorName = (typeof XS_ERRORS)[number];

/** A request failure that becomes an XS_ERROR reply carrying `code`. */
export class XsError extends Error {
  constructor(
    readonly code: XsErrorName,
    detail?: string,
  ) {
    super(detail === undefined ? code : `${code}: ${detail}`);
    this.name = "XsError";
  }
}

export interface XsHeader {
  type: number;
  reqId: number;
  txId: number;
  len: number;
}

export interface XsMessage {
  type: number;
  reqId: number;
  txId: number;
  payload: Uint8Array;
}

/** Encodes one message; the caller keeps payloads within XENSTORE_PAYLOAD_MAX. */
export function encodeMessage(type: number, reqId: number, txId: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(XS_HEADER_SIZE + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, type >>> 0, true);
  dv.setUint32(4, reqId >>> 0, true);
  dv.setUint32(8, txId >>> 0, true);
  dv.setUint32(12, payload.length, true);
  out.set(payload, XS_HEADER_SIZE);
  return out;
}

export function decodeHeader(bytes: Uint8Array, offset = 0): XsHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, XS_HEADER_SIZE);
  return {
    type: dv.getUint32(0, true),
    reqId: dv.getUint32(4, true),
    txId: dv.getUint32(8, true),
    len: dv.getUint32(12, true),
  };
}

const utf8 = new TextEncoder();

/** Strings joined with a NUL after each one (`a\0b\0`), the usual payload shape. */
export function nulStrings(...parts: string[]): Uint8Array {
  return utf8.encode(parts.map((p) => `${p}\0`).join(""));
}

export function textBytes(s: string): Uint8Array {
  return utf8.encode(s);
}

/**
 * Splits a payload at NULs into the complete (NUL-terminated) strings and what follows the
 * last NUL (`rest`, empty when the payload ends with NUL). Paths are ASCII, so latin1 is exact.
 */
export function splitPayload(payload: Uint8Array): { strings: string[]; rest: Uint8Array } {
  const strings: string[] = [];
  let start = 0;
  for (let i = 0; i < payload.length; i++) {
    if (payload[i] === 0) {
      strings.push(Buffer.from(payload.buffer, payload.byteOffset + start, i - start).toString("latin1"));
      start = i + 1;
    }
  }
  return { strings, rest: payload.subarray(start) };
}
