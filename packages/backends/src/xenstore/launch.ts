/**
 * Starting the XenStore domain in its own worker thread, and the toolstack's privileged
 * connection to it. The caller (the toolstack) creates the domain in the core and serves its
 * hypercall port; this module only moves the other end of that port into the worker.
 *
 * Control port messages (structured clone; `xs` carries one whole XenStore message):
 *   toolstack -> domain  { xs } | { settle: n } | { stop: true } | { connect: { domid, privileged, port } }
 *   domain -> toolstack  { ready: { domid, virqPort } } | { failed } | { xs } | { log } | { settled: n } | { stopped }
 */
import { MessageChannel, type MessagePort, Worker } from "node:worker_threads";
import type { XsReply } from "./domain_conn.js";
import {
  decodeHeader,
  encodeMessage,
  splitPayload,
  textBytes,
  XS_HEADER_SIZE,
  XS_TYPES,
  type XsErrorName,
} from "./wire.js";

export interface XenstoreDomainWorkerData {
  readonly hypercall: MessagePort;
  readonly control: MessagePort;
  readonly socketPath?: string;
}

export type XsControlDown =
  | { xs: Uint8Array }
  | { settle: number }
  | { stop: true }
  /** Serve `port` as domain `domid`'s own connection (port_link.ts); the toolstack vouches for the domid. */
  | { connect: { domid: number; privileged: boolean; port: MessagePort } };
export type XsControlUp =
  | { ready: { domid: number; virqPort: number } }
  | { failed: string }
  | { xs: Uint8Array }
  | { log: string }
  | { settled: number }
  | { stopped: true };

export interface LaunchOptions {
  /** The worker's end of the XenStore domain's hypercall port (transferred to the worker). */
  readonly hypercallPort: MessagePort;
  /** Also serve Debian's xenstore-* tools on this Unix socket. */
  readonly socketPath?: string;
  /** Daemon log lines. */
  readonly log?: (line: string) => void;
  /** Called with each watch event [path, token] on the toolstack's connection. */
  readonly onWatchEvent?: (path: string, token: string) => void;
}

/** The running XenStore domain, seen from the toolstack. */
export class XenstoreDomainHandle {
  private nextReqId = 1;
  private readonly waiting = new Map<number, (r: XsReply) => void>();
  private nextSettle = 1;
  private readonly settles = new Map<number, () => void>();
  private stopped: Promise<void> | null = null;
  private stopDone: (() => void) | null = null;

  private constructor(
    private readonly worker: Worker,
    private readonly control: MessagePort,
    readonly domid: number,
    /** Our port for VIRQ_DOM_EXC (negative: not bound). */
    readonly virqPort: number,
    private readonly opts: LaunchOptions,
  ) {
    control.on("message", (m: XsControlUp) => this.onMessage(m));
  }

  static launch(opts: LaunchOptions): Promise<XenstoreDomainHandle> {
    const { port1, port2 } = new MessageChannel();
    const data: XenstoreDomainWorkerData = {
      hypercall: opts.hypercallPort,
      control: port2,
      ...(opts.socketPath !== undefined ? { socketPath: opts.socketPath } : {}),
    };
    const worker = new Worker(new URL("./domain_main.js", import.meta.url), {
      workerData: data,
      transferList: [opts.hypercallPort, port2],
    });
    return new Promise((resolve, reject) => {
      const early = (m: XsControlUp) => {
        if ("log" in m) opts.log?.(m.log);
        else if ("failed" in m) {
          port1.off("message", early);
          void worker.terminate();
          reject(new Error(`XenStore domain: ${m.failed}`));
        } else if ("ready" in m) {
          port1.off("message", early);
          resolve(new XenstoreDomainHandle(worker, port1, m.ready.domid, m.ready.virqPort, opts));
        }
      };
      port1.on("message", early);
      worker.once("error", (e) => reject(e));
    });
  }

  /** One request on the toolstack's (privileged dom0) connection. `payload` strings are sent as given. */
  request(type: number, payload: Uint8Array | string, txId = 0): Promise<XsReply> {
    const reqId = this.nextReqId++;
    const bytes = typeof payload === "string" ? textBytes(payload) : payload;
    return new Promise((resolve, reject) => {
      if (this.stopped !== null) {
        reject(new Error("XenStore domain stopped"));
        return;
      }
      this.waiting.set(reqId, resolve);
      this.control.postMessage({ xs: encodeMessage(type, reqId, txId, bytes) } satisfies XsControlDown);
    });
  }

  /** Like request, but an XS_ERROR reply becomes a rejection naming the request. */
  async ok(type: number, payload: string, txId = 0): Promise<XsReply> {
    const r = await this.request(type, payload, txId);
    if (r.error !== undefined) throw new Error(`xenstore ${type} ${payload.split("\0")[0]}: ${r.error}`);
    return r;
  }

  /**
   * A connection for domain `domid` that is not a ring (a driver domain's kernel, which has no
   * XenStore page): the XenStore domain serves the other end of the returned port as that
   * domain's own connection, unprivileged unless `privileged`, as XS_INTRODUCE binds a ring. Hand
   * the port to the domain; whatever it sends is checked against `domid`'s permissions. A later
   * connection for the same domid replaces this one; RELEASE (or the domain's death) closes it.
   */
  connectDomain(domid: number, privileged = false): MessagePort {
    if (this.stopped !== null) throw new Error("XenStore domain stopped");
    const { port1, port2 } = new MessageChannel();
    this.control.postMessage({ connect: { domid, privileged, port: port2 } } satisfies XsControlDown, [port2]);
    return port1;
  }

  /** Resolves once every introduced domain's ring is connected (or failed to). */
  settled(): Promise<void> {
    const n = this.nextSettle++;
    return new Promise((resolve) => {
      this.settles.set(n, resolve);
      this.control.postMessage({ settle: n } satisfies XsControlDown);
    });
  }

  /** Stops the daemon (closing its socket) and ends the worker. */
  close(): Promise<void> {
    this.stopped ??= (async () => {
      const done = new Promise<void>((resolve) => {
        this.stopDone = resolve;
      });
      this.control.postMessage({ stop: true } satisfies XsControlDown);
      const timeout = new Promise<void>((resolve) => setTimeout(resolve, 2000).unref());
      await Promise.race([done, timeout]);
      this.control.close();
      await this.worker.terminate();
    })();
    return this.stopped;
  }

  private onMessage(m: XsControlUp): void {
    if ("xs" in m) {
      const h = decodeHeader(m.xs);
      const payload = m.xs.slice(XS_HEADER_SIZE, XS_HEADER_SIZE + h.len);
      if (h.type === XS_TYPES.WATCH_EVENT) {
        const [path, token] = splitPayload(payload).strings;
        this.opts.onWatchEvent?.(path ?? "", token ?? "");
        return;
      }
      const w = this.waiting.get(h.reqId);
      if (w === undefined) return;
      this.waiting.delete(h.reqId);
      const reply: XsReply = { type: h.type, reqId: h.reqId, txId: h.txId, payload };
      if (h.type === XS_TYPES.ERROR) w({ ...reply, error: splitPayload(payload).strings[0] as XsErrorName });
      else w(reply);
    } else if ("log" in m) this.opts.log?.(m.log);
    else if ("settled" in m) {
      this.settles.get(m.settled)?.();
      this.settles.delete(m.settled);
    } else if ("stopped" in m) this.stopDone?.();
  }
}
