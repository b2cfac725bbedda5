/**
 * A XenStore client for TypeScript domains (libxenstore's part): requests matched to replies by
 * req_id, XS_ERROR replies as rejections carrying the error name, watches with their events, and
 * transactions redone on EAGAIN. It speaks the same bytes as a guest on its ring; what carries
 * them is an `XsClientLink` (a MessagePort the XenStore domain serves as one domain's connection,
 * or a relay over a child process's stream).
 *
 * Invariants: req_ids are never 0 (0 marks watch events) and never reused while a reply is
 * outstanding; a reply with an unknown req_id, an oversize header or bytes after the link closed
 * are a broken connection: every pending request is rejected and the client is closed.
 */
import { XsParser } from "./parser.js";
import {
  encodeMessage,
  splitPayload,
  textBytes,
  XENSTORE_PAYLOAD_MAX,
  XS_ERRORS,
  XS_TYPES,
  XsError,
  type XsErrorName,
  type XsMessage,
  xsTypeName,
} from "./wire.js";

/** What carries a client's bytes: whole requests out, replies and events in any chunking. */
export interface XsClientLink {
  send(bytes: Uint8Array): void;
  onReceive(fn: (bytes: Uint8Array) => void): void;
  /** The peer is gone (released, daemon stopped). */
  onClose(fn: (reason: string) => void): void;
  close(): void;
}

/** The connection is unusable (closed, or the daemon broke the protocol). */
export class XsConnectionError extends Error {
  constructor(reason: string) {
    super(`xenstore connection: ${reason}`);
    this.name = "XsConnectionError";
  }
}

export type XsWatchHandler = (path: string, token: string) => void;

interface Pending {
  readonly type: number;
  readonly what: string;
  resolve(payload: Uint8Array): void;
  reject(e: Error): void;
}

/** How many times transaction() redoes its body on EAGAIN before giving up. */
const TRANSACTION_TRIES = 8;

export class XsClient {
  private readonly parser = new XsParser();
  private readonly pending = new Map<number, Pending>();
  private readonly watches = new Map<string, XsWatchHandler>();
  private nextReqId = 1;
  private closedReason: string | null = null;

  constructor(private readonly link: XsClientLink) {
    link.onReceive((bytes) => this.receive(bytes));
    link.onClose((reason) => this.fail(reason));
  }

  /** Why the connection ended, or null while it is up. */
  get closed(): string | null {
    return this.closedReason;
  }

  /**
   * One request; resolves with the reply payload. XS_ERROR rejects with XsError (its `code` is
   * the daemon's error name); a closed or broken connection rejects with XsConnectionError.
   */
  request(type: number, payload: Uint8Array, txId = 0): Promise<Uint8Array> {
    const what = `${nameOf(type)} ${firstString(payload)}`;
    if (this.closedReason !== null) return Promise.reject(new XsConnectionError(this.closedReason));
    // libxenstore refuses these before sending; the daemon would kill the connection.
    if (payload.length > XENSTORE_PAYLOAD_MAX)
      return Promise.reject(new XsError("E2BIG", `${what}: payload of ${payload.length} bytes`));
    const reqId = this.takeReqId();
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { type, what, resolve, reject });
      this.link.send(encodeMessage(type, reqId, txId, payload));
    });
  }

  async read(path: string, txId = 0): Promise<string> {
    return latin1(await this.request(XS_TYPES.READ, nul(path), txId));
  }

  /** READ that gives null for ENOENT (a node that is simply not there). */
  async tryRead(path: string, txId = 0): Promise<string | null> {
    try {
      return await this.read(path, txId);
    } catch (e) {
      if (e instanceof XsError && e.code === "ENOENT") return null;
      throw e;
    }
  }

  async write(path: string, value: string, txId = 0): Promise<void> {
    await this.request(XS_TYPES.WRITE, textBytes(`${path}\0${value}`), txId);
  }

  async mkdir(path: string, txId = 0): Promise<void> {
    await this.request(XS_TYPES.MKDIR, nul(path), txId);
  }

  async rm(path: string, txId = 0): Promise<void> {
    await this.request(XS_TYPES.RM, nul(path), txId);
  }

  async directory(path: string, txId = 0): Promise<string[]> {
    return splitPayload(await this.request(XS_TYPES.DIRECTORY, nul(path), txId)).strings;
  }

  /** Permission strings, owner first (`n0`, `r5`, ...). */
  async getPerms(path: string, txId = 0): Promise<string[]> {
    return splitPayload(await this.request(XS_TYPES.GET_PERMS, nul(path), txId)).strings;
  }

  async setPerms(path: string, perms: readonly string[], txId = 0): Promise<void> {
    await this.request(XS_TYPES.SET_PERMS, textBytes([path, ...perms].map((s) => `${s}\0`).join("")), txId);
  }

  async getDomainPath(domid: number): Promise<string> {
    return splitPayload(await this.request(XS_TYPES.GET_DOMAIN_PATH, nul(String(domid)))).strings[0] ?? "";
  }

  /**
   * Registers a watch; `fn` gets every event for `token` (the first one at once, as the daemon
   * sends it on registration). Tokens are unique per client.
   */
  async watch(path: string, token: string, fn: XsWatchHandler): Promise<void> {
    if (this.watches.has(token)) throw new XsError("EEXIST", `watch token '${token}' in use`);
    this.watches.set(token, fn);
    try {
      await this.request(XS_TYPES.WATCH, textBytes(`${path}\0${token}\0`));
    } catch (e) {
      this.watches.delete(token);
      throw e;
    }
  }

  async unwatch(path: string, token: string): Promise<void> {
    await this.request(XS_TYPES.UNWATCH, textBytes(`${path}\0${token}\0`));
    this.watches.delete(token);
  }

  /**
   * Runs `body` inside a transaction and commits; a commit refused with EAGAIN (something the
   * body read or wrote changed meanwhile) runs the whole body again, as libxenstore's callers
   * do. A body that throws aborts the transaction.
   */
  async transaction<T>(body: (txId: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const txId = Number(latin1(await this.request(XS_TYPES.TRANSACTION_START, nul(""))).replace(/\0$/, ""));
      let result: T;
      try {
        result = await body(txId);
      } catch (e) {
        await this.request(XS_TYPES.TRANSACTION_END, nul("F"), txId).catch(() => {});
        throw e;
      }
      try {
        await this.request(XS_TYPES.TRANSACTION_END, nul("T"), txId);
        return result;
      } catch (e) {
        if (!(e instanceof XsError && e.code === "EAGAIN") || attempt >= TRANSACTION_TRIES) throw e;
      }
    }
  }

  /** Ends the connection; pending requests are rejected. */
  close(): void {
    if (this.closedReason !== null) return;
    this.fail("closed by the client");
    this.link.close();
  }

  private takeReqId(): number {
    // Skip 0 (watch events carry it) and ids still waiting for a reply after wrapping.
    for (;;) {
      const id = this.nextReqId;
      this.nextReqId = (this.nextReqId + 1) >>> 0;
      if (id !== 0 && !this.pending.has(id)) return id;
    }
  }

  private receive(bytes: Uint8Array): void {
    if (this.closedReason !== null) return;
    let messages: XsMessage[];
    try {
      messages = this.parser.feed(bytes);
    } catch (e) {
      this.fail(`bad reply stream: ${(e as Error).message}`);
      this.link.close();
      return;
    }
    for (const m of messages) {
      if (this.closedReason !== null) return;
      this.dispatch(m);
    }
  }

  private dispatch(m: XsMessage): void {
    if (m.type === XS_TYPES.WATCH_EVENT) {
      const [path, token] = splitPayload(m.payload).strings;
      if (path === undefined || token === undefined) return; // malformed event: nothing to deliver
      this.watches.get(token)?.(path, token);
      return;
    }
    const p = this.pending.get(m.reqId);
    if (p === undefined) {
      this.fail(`reply to unknown request ${m.reqId}`);
      this.link.close();
      return;
    }
    this.pending.delete(m.reqId);
    if (m.type === XS_TYPES.ERROR) {
      const name = splitPayload(m.payload).strings[0] ?? "";
      const code: XsErrorName = (XS_ERRORS as readonly string[]).includes(name) ? (name as XsErrorName) : "EIO";
      p.reject(new XsError(code, p.what));
    } else if (m.type !== p.type) p.reject(new XsConnectionError(`${p.what}: reply of type ${m.type}`));
    else p.resolve(m.payload);
  }

  private fail(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    const waiting = [...this.pending.values()];
    this.pending.clear();
    this.watches.clear();
    for (const p of waiting) p.reject(new XsConnectionError(`${p.what}: ${reason}`));
  }
}

function nul(s: string): Uint8Array {
  return textBytes(`${s}\0`);
}

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString("latin1");
}

function firstString(payload: Uint8Array): string {
  const end = payload.indexOf(0);
  return latin1(payload.subarray(0, end < 0 ? Math.min(payload.length, 64) : Math.min(end, 64)));
}

function nameOf(type: number): string {
  return xsTypeName(type) ?? `type ${type}`;
}
