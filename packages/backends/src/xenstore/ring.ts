/**
 * The ring transport: a domain's XenStore connection over its shared page
 * (`struct xenstore_domain_interface`, layout in @xenon/hypervisor's `layout`) and event channel.
 * The guest produces requests into `req` and consumes replies and watch events from `rsp`; this
 * side does the opposite and notifies the guest through `notify` after moving either index.
 *
 * Trust: everything on the page is the guest's to scribble on. The daemon keeps its own copies
 * of the indices it owns (`req_cons`, `rsp_prod`) and only writes them out; it reads the guest's
 * (`req_prod`, `rsp_cons`) once per pass and checks them: a producer more than a ring ahead of
 * the consumer is a bad index (`error = XENSTORE_ERROR_RINGIDX`), a header announcing more than
 * XENSTORE_PAYLOAD_MAX bytes is a protocol error (`XENSTORE_ERROR_PROTO`). Either way the
 * connection is dropped (the daemon forgets its watches and transactions) and the ring is
 * ignored from then on; the host never throws on ring contents.
 *
 * Flow control: requests are taken off the ring only while the daemon has no backlog for this
 * connection, so a guest that floods requests without reading replies just fills its own ring;
 * each pass reads at most one ring's worth, so other domains' rings get their turn in between.
 * At most one reply is held here when `rsp` is full; the daemon queues the rest.
 */
import { layout } from "@xenon/hypervisor";
import type { ConnectionIdentity, XsConnector, XsPort, XsTransport } from "./domain_conn.js";
import { XS_STREAM_ERRORS } from "./parser.js";

const L = layout.XenstoreDomainInterface.fields;
const RING = layout.XENSTORE_RING_SIZE;
const MASK = RING - 1;
/** Index of each u32 field in an Int32Array over the page. */
const W = {
  reqCons: L.req_cons.offset / 4,
  reqProd: L.req_prod.offset / 4,
  rspCons: L.rsp_cons.offset / 4,
  rspProd: L.rsp_prod.offset / 4,
  features: L.server_features.offset / 4,
  connection: L.connection.offset / 4,
  error: L.error.offset / 4,
} as const;

/** Why a ring was given up (the value written to the page's `error` field, or none). */
export type RingFailure = "ringidx" | "proto" | "released";

export interface XenstoreRingOptions {
  /** Called when this side moved an index and the guest should look (the event channel). */
  notify(): void;
  /** Called once when the connection ends (bad ring, protocol error, release). */
  onClosed?(reason: string, failure: RingFailure): void;
}

export class XenstoreRing implements XsTransport {
  private currentPort: XsPort;
  private readonly connectPort: (transport: XsTransport) => XsPort;
  private readonly bytes: Uint8Array;
  private readonly words: Int32Array;
  /** Our own indices: the page's copies are outputs only. */
  private reqCons: number;
  private rspProd: number;
  /** The tail of a reply that did not fit in `rsp` yet. */
  private held: Uint8Array | null = null;
  private notifyQueued = false;
  private isClosed = false;
  /** Bytes moved, for statistics and tests. */
  requestBytes = 0;
  responseBytes = 0;

  constructor(
    daemon: XsConnector,
    who: ConnectionIdentity,
    /** The 4 KiB page (a grant mapping in the XenStore domain). */
    page: Uint8Array,
    private readonly opts: XenstoreRingOptions,
    /** Connects through this instead of `daemon.connect` (e.g. Xenstored.connectDomain). */
    connect?: (transport: XsTransport) => XsPort,
  ) {
    this.connectPort = connect ?? ((t) => daemon.connect(t, who));
    if (page.byteLength < layout.XenstoreDomainInterface.size || page.byteOffset % 4 !== 0)
      throw new RangeError("XenStore ring: page too small or misaligned");
    this.bytes = page;
    this.words = new Int32Array(page.buffer, page.byteOffset, layout.XenstoreDomainInterface.size / 4);
    // Start from where the guest's side of the page says; a guest that boots before us may
    // already have requests queued (indices need not start at 0).
    this.reqCons = Atomics.load(this.words, W.reqCons) >>> 0;
    this.rspProd = Atomics.load(this.words, W.rspProd) >>> 0;
    Atomics.store(
      this.words,
      W.features,
      layout.XENSTORE_SERVER_FEATURE_RECONNECTION | layout.XENSTORE_SERVER_FEATURE_ERROR,
    );
    this.currentPort = this.connectPort(this);
  }

  /** The daemon side of the current connection (a reconnection makes a new one). */
  get port(): XsPort {
    return this.currentPort;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** The guest notified us (or we start): take its requests, push out held output. */
  kick(): void {
    if (this.isClosed) return;
    if (Atomics.load(this.words, W.connection) === layout.XENSTORE_RECONNECT) this.reconnect();
    // Output first: the guest may have made room, and the daemon may then un-stall.
    if (!this.pushHeld()) return;
    this.currentPort.writable();
    if (this.isClosed) return;
    if (this.currentPort.backlog === 0) this.readRequests();
    this.flushNotify();
  }

  deliver(message: Uint8Array): boolean {
    if (this.isClosed) return true; // nobody to give it to; the daemon forgets the connection anyway
    if (this.held !== null) return false;
    this.held = message;
    this.pushHeld();
    return true;
  }

  close(reason: string): void {
    this.fail(reason.startsWith(XS_STREAM_ERRORS.payloadTooLarge) ? "proto" : "released", reason, false);
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * The guest asked for a fresh start (connection = XENSTORE_RECONNECT, e.g. after kexec): the
   * old connection's watches, transactions, partial input and queued output are dropped, both
   * rings are emptied (our indices catch up with the guest's), and a new connection begins.
   * Only the guest sets RECONNECT; only we set CONNECTED, last, then notify.
   */
  private reconnect(): void {
    this.currentPort.closed();
    this.held = null;
    this.reqCons = Atomics.load(this.words, W.reqProd) >>> 0;
    Atomics.store(this.words, W.reqCons, this.reqCons | 0);
    this.rspProd = Atomics.load(this.words, W.rspCons) >>> 0;
    Atomics.store(this.words, W.rspProd, this.rspProd | 0);
    this.currentPort = this.connectPort(this);
    Atomics.store(this.words, W.connection, layout.XENSTORE_CONNECTED);
    this.queueNotify();
  }

  /** Copies as much of the held message as fits into `rsp`. False if the ring is broken. */
  private pushHeld(): boolean {
    const msg = this.held;
    if (msg === null) return true;
    const cons = Atomics.load(this.words, W.rspCons) >>> 0;
    const used = (this.rspProd - cons) >>> 0;
    if (used > RING) {
      this.fail("ringidx", `rsp_cons ${cons} is more than a ring behind rsp_prod ${this.rspProd}`, true);
      return false;
    }
    let free = RING - used;
    let off = 0;
    while (free > 0 && off < msg.length) {
      const at = this.rspProd & MASK;
      const n = Math.min(free, msg.length - off, RING - at);
      this.bytes.set(msg.subarray(off, off + n), L.rsp.offset + at);
      off += n;
      free -= n;
      this.rspProd = (this.rspProd + n) >>> 0;
    }
    if (off === 0) return true;
    this.responseBytes += off;
    // Atomics.store is sequentially consistent: the bytes above are visible before the index.
    Atomics.store(this.words, W.rspProd, this.rspProd | 0);
    this.held = off === msg.length ? null : msg.subarray(off);
    this.queueNotify();
    return true;
  }

  /** Takes at most one ring's worth of request bytes and hands them to the daemon. */
  private readRequests(): void {
    const prod = Atomics.load(this.words, W.reqProd) >>> 0;
    const avail = (prod - this.reqCons) >>> 0;
    if (avail === 0) return;
    if (avail > RING) {
      this.fail("ringidx", `req_prod ${prod} is more than a ring ahead of req_cons ${this.reqCons}`, true);
      return;
    }
    const chunk = new Uint8Array(avail);
    let got = 0;
    while (got < avail) {
      const at = (this.reqCons + got) & MASK;
      const n = Math.min(avail - got, RING - at);
      chunk.set(this.bytes.subarray(L.req.offset + at, L.req.offset + at + n), got);
      got += n;
    }
    this.reqCons = (this.reqCons + avail) >>> 0;
    Atomics.store(this.words, W.reqCons, this.reqCons | 0);
    this.requestBytes += avail;
    this.queueNotify();
    this.currentPort.receive(chunk);
  }

  private fail(failure: RingFailure, reason: string, tellDaemon: boolean): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.held = null;
    if (failure !== "released") {
      const code = failure === "ringidx" ? layout.XENSTORE_ERROR_RINGIDX : layout.XENSTORE_ERROR_PROTO;
      Atomics.store(this.words, W.error, code);
      this.notifyQueued = true;
    }
    if (tellDaemon) this.currentPort.closed();
    this.flushNotify();
    this.opts.onClosed?.(reason, failure);
  }

  /** Notifications are coalesced: one event per pass, however many indices moved. */
  private queueNotify(): void {
    if (this.notifyQueued) return;
    this.notifyQueued = true;
    queueMicrotask(() => this.flushNotify());
  }

  private flushNotify(): void {
    if (!this.notifyQueued) return;
    this.notifyQueued = false;
    this.opts.notify();
  }
}
