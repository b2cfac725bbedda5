/**
 * The pool link's messages (PROTOCOL.md, "The pool link"): host-to-host WebSocket binary
 * messages, each exactly one msgpack map with a string `t` naming its kind. The WebSocket layer
 * frames; this layer checks every field of every kind and throws ProtocolError on anything else,
 * so a peer (or a stranger) can never make a host act on a half-understood message.
 *
 * Authentication is a challenge–response over HMAC-SHA256 keyed with the pool secret; the secret
 * itself never crosses the wire. Both sides prove knowledge of it, each over the other's fresh
 * nonce, so neither proof can be replayed to another connection.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { Packr, Unpackr } from "msgpackr";
import { type ErrorBody, ProtocolError } from "../mgmt/protocol.js";

export const LINK_VERSION = 1;
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;
/** Largest link message (a migration data chunk plus its header stays well under it). */
export const MAX_LINK_FRAME_BYTES = 4 << 20;

export interface MemberAddr {
  readonly host: string;
  readonly url: string;
}

export type LinkMsg =
  /** Acceptor -> connector, first: prove you know the secret over this nonce. */
  | { readonly t: "challenge"; readonly v: number; readonly host: string; readonly nonce: Uint8Array }
  /** Connector -> acceptor: who it is, its proof, and its own nonce for the acceptor's proof. */
  | {
      readonly t: "auth";
      readonly host: string;
      readonly url: string;
      readonly nonce: Uint8Array;
      readonly mac: Uint8Array;
    }
  /** Acceptor -> connector: accepted; the acceptor's proof and the pool's other members. */
  | {
      readonly t: "welcome";
      readonly host: string;
      readonly url: string;
      readonly mac: Uint8Array;
      readonly members: readonly MemberAddr[];
    }
  /** Either side, then it closes: why the link is refused. */
  | { readonly t: "refused"; readonly reason: string }
  /** Liveness: sent every heartbeat interval by both sides. */
  | { readonly t: "hb"; readonly seq: number }
  | { readonly t: "req"; readonly id: number; readonly op: string; readonly args: Readonly<Record<string, unknown>> }
  | { readonly t: "res"; readonly id: number; readonly ok: true; readonly result: unknown }
  | { readonly t: "res"; readonly id: number; readonly ok: false; readonly error: ErrorBody }
  /** Migration stream bytes of migration `mig` (opened by a mig.begin request), in order. */
  | { readonly t: "data"; readonly mig: number; readonly data: Uint8Array }
  /** An Ethernet frame on the pool's L2 network (the hosts' switches joined over the links). */
  | { readonly t: "frame"; readonly data: Uint8Array };

/** A pool frame is one Ethernet frame: a header at least, at most a jumbo frame's size. */
export const FRAME_MIN_BYTES = 14;
export const FRAME_MAX_BYTES = 14 + 9000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export function encodeLinkMsg(msg: LinkMsg): Uint8Array {
  return packr.pack(msg);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}
function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}
function onlyKeys(v: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(v))
    if (!keys.includes(k)) throw new ProtocolError(`link message '${String(v.t)}' has an unknown field '${k}'`);
}
function str(v: Record<string, unknown>, k: string, max = 1024): string {
  const s = v[k];
  if (typeof s !== "string" || s.length === 0 || s.length > max)
    throw new ProtocolError(`link message '${String(v.t)}' needs a string '${k}'`);
  return s;
}
function bytes(v: Record<string, unknown>, k: string, len: number): Uint8Array {
  const b = v[k];
  if (!(b instanceof Uint8Array) || b.length !== len)
    throw new ProtocolError(`link message '${String(v.t)}' needs '${k}' as ${len} bytes`);
  return plain(b);
}

/** msgpackr gives Buffers: the same bytes as a plain Uint8Array view (no copy). */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.length);
}

/** One link message, checked. Throws ProtocolError on anything malformed. */
export function decodeLinkMsg(frame: Uint8Array): LinkMsg {
  if (frame.length > MAX_LINK_FRAME_BYTES)
    throw new ProtocolError(`link frame of ${frame.length} bytes is over the limit`);
  const v = decodeOne(frame);
  if (!isMap(v)) throw new ProtocolError("a link message must be a map");
  switch (v.t) {
    case "challenge": {
      onlyKeys(v, ["t", "v", "host", "nonce"]);
      if (v.v !== LINK_VERSION) throw new ProtocolError(`link version ${String(v.v)} is not ${LINK_VERSION}`);
      return { t: "challenge", v: LINK_VERSION, host: str(v, "host"), nonce: bytes(v, "nonce", NONCE_BYTES) };
    }
    case "auth":
      onlyKeys(v, ["t", "host", "url", "nonce", "mac"]);
      return {
        t: "auth",
        host: str(v, "host"),
        url: str(v, "url"),
        nonce: bytes(v, "nonce", NONCE_BYTES),
        mac: bytes(v, "mac", MAC_BYTES),
      };
    case "welcome": {
      onlyKeys(v, ["t", "host", "url", "mac", "members"]);
      const m = v.members;
      if (!Array.isArray(m) || m.length > 1024) throw new ProtocolError("link message 'welcome' needs a members list");
      const members = m.map((e) => {
        if (!isMap(e)) throw new ProtocolError("a member must be a map");
        onlyKeys(e, ["host", "url"]);
        return { host: str(e, "host"), url: str(e, "url") };
      });
      return { t: "welcome", host: str(v, "host"), url: str(v, "url"), mac: bytes(v, "mac", MAC_BYTES), members };
    }
    case "refused":
      onlyKeys(v, ["t", "reason"]);
      return { t: "refused", reason: str(v, "reason") };
    case "hb":
      onlyKeys(v, ["t", "seq"]);
      if (!isU32(v.seq)) throw new ProtocolError("link message 'hb' needs a u32 seq");
      return { t: "hb", seq: v.seq };
    case "req": {
      onlyKeys(v, ["t", "id", "op", "args"]);
      if (!isU32(v.id)) throw new ProtocolError("link message 'req' needs a u32 id");
      const args = v.args ?? {};
      if (!isMap(args)) throw new ProtocolError("link message 'req' needs args as a map");
      return { t: "req", id: v.id, op: str(v, "op", 64), args };
    }
    case "res": {
      if (!isU32(v.id)) throw new ProtocolError("link message 'res' needs a u32 id");
      if (v.ok === true) {
        onlyKeys(v, ["t", "id", "ok", "result"]);
        return { t: "res", id: v.id, ok: true, result: v.result ?? null };
      }
      if (v.ok === false) {
        onlyKeys(v, ["t", "id", "ok", "error"]);
        const e = v.error;
        if (!isMap(e) || typeof e.code !== "string" || typeof e.message !== "string")
          throw new ProtocolError("link message 'res' error needs a code and a message");
        return { t: "res", id: v.id, ok: false, error: { code: e.code, message: e.message } };
      }
      throw new ProtocolError("link message 'res' needs ok true or false");
    }
    case "data":
      onlyKeys(v, ["t", "mig", "data"]);
      if (!isU32(v.mig)) throw new ProtocolError("link message 'data' needs a u32 mig");
      if (!(v.data instanceof Uint8Array)) throw new ProtocolError("link message 'data' needs bin data");
      return { t: "data", mig: v.mig, data: plain(v.data) };
    case "frame":
      onlyKeys(v, ["t", "data"]);
      if (!(v.data instanceof Uint8Array) || v.data.length < FRAME_MIN_BYTES || v.data.length > FRAME_MAX_BYTES)
        throw new ProtocolError(`link message 'frame' needs bin data of ${FRAME_MIN_BYTES}..${FRAME_MAX_BYTES} bytes`);
      return { t: "frame", data: plain(v.data) };
    default:
      throw new ProtocolError(`unknown link message kind ${JSON.stringify(v.t ?? null)}`);
  }
}

/** Exactly one msgpack value filling the frame (the management endpoint's rule, a larger limit). */
function decodeOne(frame: Uint8Array): unknown {
  if (frame.length === 0) throw new ProtocolError("empty frame");
  let values: unknown[];
  try {
    values = unpackr.unpackMultiple(Buffer.from(frame.buffer, frame.byteOffset, frame.length)) as unknown[];
  } catch (e) {
    throw new ProtocolError(`undecodable frame (${(e as Error).message})`);
  }
  if (values.length !== 1) throw new ProtocolError(`frame holds ${values.length} values, not one`);
  return values[0];
}

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/**
 * The proof of one side: HMAC-SHA256(secret, "xenon-pool/1 <role>" NUL theirNonce ourNonce host).
 * `role` is "auth" for the connector's proof and "welcome" for the acceptor's, so one side's
 * proof is never valid as the other's.
 */
export function linkMac(
  secret: Uint8Array,
  role: "auth" | "welcome",
  theirNonce: Uint8Array,
  ourNonce: Uint8Array,
  host: string,
): Uint8Array {
  const h = createHmac("sha256", secret);
  h.update(`xenon-pool/${LINK_VERSION} ${role}\0`);
  h.update(theirNonce);
  h.update(ourNonce);
  h.update(host);
  return new Uint8Array(h.digest());
}

export function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
