/**
 * The core's end of a hypercall port (see protocol.ts). One PortServer per TypeScript domain; the
 * caller domid is the server's, never taken from a message. Every request is validated: an
 * unknown op, wrong argument types or a throwing handler give `{ err }`, never a crash of the core.
 */
import type { MessagePort } from "node:worker_threads";
import { PAGE_SIZE } from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import type { Hypervisor } from "../../hypervisor.js";
import { legacyVcpuInfo, takePendingPorts } from "../../shared_info.js";
import { PORT_OPS, type PortDown, type PortOp, type PortRequest, type PortView } from "./protocol.js";

/** Where replies go: a MessagePort (thread mode) or a byte sink (process mode). */
export interface PortSink {
  send(msg: PortDown, structured?: boolean): void;
}

const OPS = new Set<string>(PORT_OPS);
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);

export class PortServer {
  private readonly pendingScratch: number[] = [];

  constructor(
    private readonly hv: Hypervisor,
    readonly domid: number,
    private readonly sink: PortSink,
    /** Thread mode hands out shared_info and grant views; process mode never does. */
    readonly threadMode: boolean,
  ) {
    const d = hv.domains.get(domid);
    if (d === undefined) throw new Error(`no domain ${domid}`);
    const chunk = hv.memory.chunk(d.sharedInfoMfn);
    sink.send(
      {
        hello: {
          domid,
          sharedInfo: threadMode
            ? { buffer: chunk.buffer as SharedArrayBuffer, offset: hv.memory.frameOffset(d.sharedInfoMfn) }
            : null,
        },
      },
      true,
    );
  }

  /** The core calls this when this domain's upcall goes 0 -> 1. */
  notifyUpcall(): void {
    if (this.threadMode) {
      const d = this.hv.domains.get(this.domid);
      if (d === undefined) return;
      const v = legacyVcpuInfo(d.sharedInfo);
      Atomics.notify(v.i32, (v.off >>> 2) as number);
    }
    this.sink.send({ ev: "upcall" });
  }

  handle(req: unknown): void {
    if (req === null || typeof req !== "object") return; // nothing to answer: no id
    const { id, op, args } = req as Partial<PortRequest>;
    if (!isInt(id)) return;
    if (typeof op !== "string" || !OPS.has(op) || !Array.isArray(args)) {
      this.sink.send({ id, err: `bad request: unknown op or args ${String(op)}` });
      return;
    }
    try {
      const r = this.call(op as PortOp, args);
      if (r !== null && typeof r === "object" && "buffer" in r) this.sink.send({ id, ok: r }, true);
      else this.sink.send({ id, ok: r });
    } catch (e) {
      this.sink.send({ id, err: `op ${op} failed: ${(e as Error).message}` });
    }
  }

  private call(op: PortOp, a: readonly unknown[]): unknown {
    const s = this.hv.hypercalls;
    const c = this.domid;
    const n = (i: number): number => {
      const v = a[i];
      if (!isInt(v)) throw new TypeError(`argument ${i} must be an integer`);
      return v;
    };
    switch (op) {
      case "currentReservation":
        return s.currentReservation(c, n(0));
      case "maximumReservation":
        return s.maximumReservation(c, n(0));
      case "xenVersion":
        return s.xenVersion();
      case "xenExtraversion":
        return s.xenExtraversion();
      case "consoleWrite": {
        const b = a[0];
        if (!(b instanceof Uint8Array)) throw new TypeError("consoleWrite takes bytes");
        return s.consoleWrite(c, b);
      }
      case "evtchnAllocUnbound":
        return s.evtchnAllocUnbound(c, n(0), n(1));
      case "evtchnBindInterdomain":
        return s.evtchnBindInterdomain(c, n(0), n(1));
      case "evtchnBindVirq":
        return s.evtchnBindVirq(c, n(0), n(1));
      case "evtchnClose":
        return s.evtchnClose(c, n(0));
      case "evtchnSend":
        return s.evtchnSend(c, n(0));
      case "evtchnStatus":
        return s.evtchnStatus(c, n(0), n(1));
      case "evtchnUnmask":
        return s.evtchnUnmask(c, n(0));
      case "evtchnTakePending": {
        const d = this.hv.domains.get(c);
        if (d === undefined) return [];
        this.pendingScratch.length = 0;
        return [...takePendingPorts(d.sharedInfo, legacyVcpuInfo(d.sharedInfo), this.pendingScratch)];
      }
      case "gnttabMapGrantRefView": {
        if (!this.threadMode) return { status: -1, handle: 0, buffer: null, byteOffset: 0 } satisfies PortView;
        const r = s.gnttabMapGrantRefView(c, n(0), n(1), a[2] === true);
        return {
          status: r.status,
          handle: r.handle,
          buffer: r.view === null ? null : (r.view.buffer as SharedArrayBuffer),
          byteOffset: r.view === null ? 0 : r.view.byteOffset,
        } satisfies PortView;
      }
      case "gnttabUnmapGrantRef":
        return s.gnttabUnmapGrantRef(c, { hostAddr: 0, devBusAddr: 0, handle: n(0) });
      case "gnttabCopyFrom":
        return this.copy(n(0), n(1), n(2), n(3), null);
      case "gnttabCopyTo": {
        const b = a[3];
        if (!(b instanceof Uint8Array)) throw new TypeError("gnttabCopyTo takes bytes");
        return this.copy(n(0), n(1), n(2), b.length, b);
      }
      case "schedShutdown":
        return s.schedShutdown(c, n(0));
    }
  }

  /**
   * Grant copy for a domain without a physmap: the bytes travel in the message. Done as a short
   * map, copy, unmap in the core, so the GTF_reading/GTF_writing protocol is honoured exactly.
   * Returns the bytes (copy from) or 0 (copy to), or a negative GNTST code.
   */
  private copy(dom: number, ref: number, offset: number, len: number, data: Uint8Array | null): Uint8Array | number {
    if (offset < 0 || len < 0 || offset + len > PAGE_SIZE) return -1; // GNTST_general_error
    const s = this.hv.hypercalls;
    const r = s.gnttabMapGrantRefView(this.domid, dom, ref, data === null);
    if (r.status !== 0 || r.view === null) return r.status;
    try {
      if (data === null) return r.view.slice(offset, offset + len);
      r.view.set(data, offset);
      return 0;
    } finally {
      s.gnttabUnmapGrantRef(this.domid, { hostAddr: 0, devBusAddr: 0, handle: r.handle });
    }
  }
}

/** A PortSink over a MessagePort: msgpackr bytes, or structured clone for SharedArrayBuffers. */
export function messagePortSink(port: MessagePort): PortSink {
  return {
    send(msg, structured) {
      if (structured) port.postMessage(msg);
      else port.postMessage(pack(msg));
    },
  };
}

/** Serves `port` for `domid` until it closes. Returns the server (for notifyUpcall). */
export function servePort(hv: Hypervisor, domid: number, port: MessagePort): PortServer {
  const server = new PortServer(hv, domid, messagePortSink(port), true);
  const prev = hv.hooks.upcall;
  hv.hooks.upcall = (d, v) => {
    prev?.(d, v);
    if (d === domid) server.notifyUpcall();
  };
  port.on("message", (raw: unknown) => {
    let req: unknown;
    try {
      req = raw instanceof Uint8Array ? unpack(raw) : raw;
    } catch {
      return; // undecodable bytes: nothing to answer
    }
    server.handle(req);
  });
  return server;
}
