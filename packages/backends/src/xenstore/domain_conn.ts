/**
 * The boundary between the protocol engine and whatever carries its bytes. A transport hands
 * received bytes to its port and offers outgoing messages one at a time; a transport that cannot
 * take a message now (full ring, client not reading) refuses it and later calls `writable()`.
 * Implementations here: an in-process client (for tests and in-process callers) and a Unix
 * socket. A later ring transport (shared page + event channel) plugs in the same way.
 */
import type { Socket } from "node:net";
import { decodeHeader, encodeMessage, splitPayload, XS_HEADER_SIZE, XS_TYPES, type XsErrorName } from "./wire.js";

/** The daemon side of one connection, as its transport drives it. */
export interface XsPort {
  /** Bytes from the client, in any chunking. */
  receive(bytes: Uint8Array): void;
  /** The transport can take output again. */
  writable(): void;
  /** The peer is gone; the daemon forgets the connection's watches and transactions. */
  closed(): void;
  /**
   * Requests received but not handled yet (the connection is stalled on undelivered replies).
   * A transport that can hold input back (a ring) stops reading while this is non-zero.
   */
  readonly backlog: number;
}

/** What the daemon needs from a transport. */
export interface XsTransport {
  /** Offers one whole message; false means "not now", and the daemon keeps it queued. */
  deliver(message: Uint8Array): boolean;
  /** The daemon drops the connection (protocol error, domain released). */
  close(reason: string): void;
}

/** Who is on the other end of a new connection. */
export interface ConnectionIdentity {
  readonly domid: number;
  readonly privileged: boolean;
}

/** Anything that can accept connections (the daemon); kept minimal so transports do not import it. */
export interface XsConnector {
  connect(transport: XsTransport, who: ConnectionIdentity): XsPort;
}

export interface XsReply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  readonly payload: Uint8Array;
  /** Set for XS_ERROR replies: the error name without its NUL. */
  readonly error?: XsErrorName;
}

/**
 * A client living in the same process. Replies and watch events land in an inbox; `paused`
 * models a client that stops reading (its replies stay queued in the daemon and count as
 * outstanding).
 */
export class InProcessConnection implements XsTransport {
  readonly port: XsPort;
  private readonly inbox: XsReply[] = [];
  private nextReqId = 1;
  private isPaused = false;
  closedReason: string | undefined;

  constructor(daemon: XsConnector, who: ConnectionIdentity) {
    this.port = daemon.connect(this, who);
  }

  deliver(message: Uint8Array): boolean {
    if (this.isPaused || this.closedReason !== undefined) return false;
    const h = decodeHeader(message);
    const payload = message.slice(XS_HEADER_SIZE, XS_HEADER_SIZE + h.len);
    const reply: XsReply = { type: h.type, reqId: h.reqId, txId: h.txId, payload };
    if (h.type === XS_TYPES.ERROR) {
      const [name] = splitPayload(payload).strings;
      this.inbox.push({ ...reply, error: name as XsErrorName });
    } else this.inbox.push(reply);
    return true;
  }

  close(reason: string): void {
    this.closedReason = reason;
  }

  get paused(): boolean {
    return this.isPaused;
  }

  /** Stops taking output (true) or resumes and lets the daemon flush (false). */
  set paused(p: boolean) {
    this.isPaused = p;
    if (!p) this.port.writable();
  }

  /** Sends raw bytes, as a misbehaving client might. */
  sendRaw(bytes: Uint8Array): void {
    this.port.receive(bytes);
  }

  /** Sends one request; returns its req_id. */
  send(type: number, payload: Uint8Array, txId = 0): number {
    const reqId = this.nextReqId++;
    this.port.receive(encodeMessage(type, reqId, txId, payload));
    return reqId;
  }

  /** Takes the reply to `reqId` from the inbox, or undefined if it has not arrived. */
  takeReply(reqId: number): XsReply | undefined {
    const i = this.inbox.findIndex((m) => m.reqId === reqId && m.type !== XS_TYPES.WATCH_EVENT);
    return i < 0 ? undefined : this.inbox.splice(i, 1)[0];
  }

  /** Sends a request and returns its reply; the daemon answers synchronously unless this client is stalled. */
  request(type: number, payload: Uint8Array, txId = 0): XsReply {
    const reqId = this.send(type, payload, txId);
    const r = this.takeReply(reqId);
    if (!r) throw new Error(`no reply to request ${reqId} (connection stalled or closed)`);
    return r;
  }

  /** Removes and returns the watch events received so far, as [path, token]. */
  takeEvents(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.inbox.length; ) {
      const m = this.inbox[i]!;
      if (m.type === XS_TYPES.WATCH_EVENT) {
        const [path, token] = splitPayload(m.payload).strings;
        out.push([path ?? "", token ?? ""]);
        this.inbox.splice(i, 1);
      } else i++;
    }
    return out;
  }

  /** Tells the daemon this client went away. */
  disconnect(): void {
    this.closedReason ??= "disconnected";
    this.port.closed();
  }
}

/**
 * A Unix-socket client. Node buffers what the kernel cannot take yet, so delivery never refuses;
 * when that buffer fills, reading from the socket pauses until it drains, so a client that
 * writes but never reads cannot grow the daemon's memory without bound.
 */
export class SocketTransport implements XsTransport {
  readonly port: XsPort;

  constructor(
    daemon: XsConnector,
    private readonly socket: Socket,
    who: ConnectionIdentity = { domid: 0, privileged: true },
  ) {
    this.port = daemon.connect(this, who);
    socket.on("data", (chunk: Buffer) => this.port.receive(chunk));
    socket.on("drain", () => socket.resume());
    socket.on("close", () => this.port.closed());
    socket.on("error", () => {
      /* 'close' follows; nothing else to do */
    });
  }

  deliver(message: Uint8Array): boolean {
    if (this.socket.destroyed) return true;
    if (!this.socket.write(message)) this.socket.pause();
    return true;
  }

  close(_reason: string): void {
    this.socket.destroy();
  }
}
