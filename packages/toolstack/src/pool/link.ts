/**
 * One authenticated host-to-host link: requests with ids matched to their results, one-way
 * migration data, heartbeats. Whatever the peer sends that does not decode closes the link (a
 * member that speaks garbage is not a member); the host itself is never harmed.
 */
import type WebSocket from "ws";
import { LibxlError } from "../libxl/errors.js";
import { ProtocolError } from "../mgmt/protocol.js";
import { decodeLinkMsg, encodeLinkMsg, type LinkMsg } from "./link_protocol.js";

export interface LinkHandlers {
  /** A request from the peer; its result (or thrown LibxlError) goes back as `res`. */
  request(link: PoolLink, op: string, args: Readonly<Record<string, unknown>>): unknown;
  /** Migration stream bytes from the peer. */
  data(link: PoolLink, mig: number, bytes: Uint8Array): void;
  /** An Ethernet frame from the peer's switch. */
  frame?(link: PoolLink, frame: Uint8Array): void;
  /** The link is gone (closed, broken, or dropped as dead). */
  closed(link: PoolLink, reason: string): void;
}

export class LinkError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "LinkError";
  }
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout | null;
}

export function wsBytes(data: WebSocket.RawData): Uint8Array {
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
}

export class PoolLink {
  lastHeard = Date.now();
  private nextId = 1;
  private hbSeq = 0;
  private readonly pending = new Map<number, Pending>();
  private closedWith: string | null = null;

  constructor(
    private readonly ws: WebSocket,
    /** The peer's host name and management URL, as it proved them. */
    readonly peer: string,
    readonly peerUrl: string,
    private readonly h: LinkHandlers,
  ) {
    ws.on("message", (data, isBinary) => {
      this.lastHeard = Date.now();
      if (!isBinary) {
        this.close("a text frame on the pool link");
        return;
      }
      let msg: LinkMsg;
      try {
        msg = decodeLinkMsg(wsBytes(data));
      } catch (e) {
        this.close(`bad message (${(e as Error).message})`);
        return;
      }
      this.onMessage(msg);
    });
    ws.on("close", (code, reason) => this.gone(`closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ""})`));
    ws.on("error", (e) => this.gone(`error (${e.message})`));
  }

  get open(): boolean {
    return this.closedWith === null && this.ws.readyState === this.ws.OPEN;
  }

  /** Bytes queued on the socket and not yet written (migration flow control). */
  get buffered(): number {
    return this.ws.bufferedAmount;
  }

  private onMessage(msg: LinkMsg): void {
    switch (msg.t) {
      case "hb":
        return;
      case "req":
        void this.serve(msg.id, msg.op, msg.args);
        return;
      case "res": {
        const p = this.pending.get(msg.id);
        if (p === undefined) return;
        this.pending.delete(msg.id);
        if (p.timer !== null) clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new LinkError(msg.error.code, msg.error.message));
        return;
      }
      case "data":
        this.h.data(this, msg.mig, msg.data);
        return;
      case "frame":
        this.h.frame?.(this, msg.data);
        return;
      default:
        // challenge/auth/welcome/refused belong to the handshake only.
        this.close(`unexpected '${msg.t}' after the handshake`);
    }
  }

  private async serve(id: number, op: string, args: Readonly<Record<string, unknown>>): Promise<void> {
    try {
      const result = await this.h.request(this, op, args);
      this.send({ t: "res", id, ok: true, result: result ?? null });
    } catch (e) {
      const error =
        e instanceof LibxlError || e instanceof LinkError
          ? { code: e.code, message: e.message }
          : e instanceof ProtocolError
            ? { code: "EPROTO", message: e.message }
            : { code: "EIO", message: (e as Error)?.message ?? String(e) };
      this.send({ t: "res", id, ok: false, error });
    }
  }

  /** Sends one message; false if the link is no longer open. */
  send(msg: LinkMsg): boolean {
    if (!this.open) return false;
    this.ws.send(encodeLinkMsg(msg));
    return true;
  }

  heartbeat(): void {
    this.send({ t: "hb", seq: this.hbSeq++ >>> 0 });
    this.hbSeq >>>= 0;
  }

  /** A request to the peer; rejects with LinkError on its error, a timeout, or the link's loss. */
  request<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.open) {
        reject(new LinkError("ECONNRESET", `the link to ${this.peer} is down`));
        return;
      }
      const id = this.nextId++;
      const timer =
        timeoutMs > 0
          ? setTimeout(() => {
              this.pending.delete(id);
              reject(new LinkError("ETIMEDOUT", `${this.peer} did not answer '${op}' within ${timeoutMs} ms`));
            }, timeoutMs)
          : null;
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.send({ t: "req", id, op, args });
    });
  }

  /** Closes the link (a reason goes to the peer when it is still reachable). */
  close(reason: string): void {
    if (this.closedWith !== null) return;
    if (this.ws.readyState === this.ws.OPEN) {
      this.ws.send(encodeLinkMsg({ t: "refused", reason }));
      this.ws.close(4000, reason.slice(0, 120));
    }
    this.gone(reason);
    // A peer that does not finish the close handshake is cut off.
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  /** Cuts the TCP connection at once, no goodbye (dead peers, test hooks). */
  terminate(reason: string): void {
    this.gone(reason);
    this.ws.terminate();
  }

  private gone(reason: string): void {
    if (this.closedWith !== null) return;
    this.closedWith = reason;
    const err = new LinkError("ECONNRESET", `the link to ${this.peer} went down: ${reason}`);
    for (const p of this.pending.values()) {
      if (p.timer !== null) clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
    this.h.closed(this, reason);
  }
}
