/**
 * The core's end of a hypercall port (see protocol.ts). One PortServer per TypeScript domain; the
 * caller domid is the server's, never taken from a message. Every request is validated: an
 * unknown op, wrong argument types or a throwing handler give `{ err }`, never a crash of the core.
 */
import type { MessagePort } from "node:worker_threads";
import { PAGE_SIZE } from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import type { DomctlCreateDomainConfig } from "../../control.js";
import type { Hypervisor } from "../../hypervisor.js";
import { err } from "../../public/errno.js";
import type { PoolParamsUpdate, SchedParamsUpdate } from "../../sched/types.js";
import { legacyVcpuInfo, takePendingPorts } from "../../shared_info.js";
import { ioTrace, ioTraceOn } from "../../trace/io_trace.js";
import { ioreqComplete, ioreqFetch } from "./ioreq_relay.js";
import { type PublishAt, type SendWhen, unmapPublishSend } from "./unmap_publish.js";

/** Entries of one batched grant map or unmap over the port. */
const MAP_BATCH_MAX = 256;

import {
  MAX_COPY_SEGMENTS,
  PORT_OPS,
  type PortDown,
  type PortFrame,
  type PortOp,
  type PortRequest,
  type PortView,
} from "./protocol.js";

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
    if (ioTraceOn) ioTrace("core.upcall.port", this.domid);
    const d = this.hv.domains.get(this.domid);
    if (d === undefined) return;
    const v = legacyVcpuInfo(d.sharedInfo);
    if (this.threadMode) {
      // The client waits on the word itself (Atomics.waitAsync) and scans the bitmap: no message.
      Atomics.notify(v.i32, (v.off >>> 2) as number);
      return;
    }
    // Stream mode: the pending ports go with the message (what evtchnTakePending would answer
    // now), so the client need not ask; a later event raises the upcall, and this, again.
    this.pendingScratch.length = 0;
    this.sink.send({ ev: "upcall", ports: [...takePendingPorts(d.sharedInfo, v, this.pendingScratch)] });
  }

  handle(req: unknown): void {
    if (req === null || typeof req !== "object") return; // nothing to answer: no id
    const { id, op, args } = req as Partial<PortRequest>;
    if (!isInt(id)) return;
    if (typeof op !== "string" || !OPS.has(op) || !Array.isArray(args)) {
      this.sink.send({ id, err: `bad request: unknown op or args ${String(op)}` });
      return;
    }
    if (ioTraceOn) ioTrace(`core.op.${op}`, id);
    try {
      const r = this.call(op as PortOp, args);
      // Answers holding shared frames (views) go by structured clone, never through msgpackr.
      const views =
        r !== null &&
        typeof r === "object" &&
        ("buffer" in r || (Array.isArray(r) && r.some((x) => x !== null && typeof x === "object" && "buffer" in x)));
      if (views) this.sink.send({ id, ok: r }, true);
      else this.sink.send({ id, ok: r });
    } catch (e) {
      this.sink.send({ id, err: `op ${op} failed: ${(e as Error).message}` });
    }
    if (ioTraceOn) ioTrace("core.opdone", id);
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
      case "mapForeignView": {
        if (!this.threadMode)
          return { status: err("EOPNOTSUPP"), handle: 0, buffer: null, byteOffset: 0 } satisfies PortView;
        const r = s.mapForeignView(c, n(0), n(1), a[2] === true);
        if (typeof r === "number") return { status: r, handle: 0, buffer: null, byteOffset: 0 } satisfies PortView;
        return {
          status: 0,
          handle: r.handle,
          buffer: r.view.buffer as SharedArrayBuffer,
          byteOffset: r.view.byteOffset,
        } satisfies PortView;
      }
      case "unmapForeignView":
        return s.unmapForeignView(c, n(0));
      case "foreignCopyFromSegs":
        return segments(a[1], false).map(([gfn, off, len]) => s.foreignCopy(c, n(0), gfn, off, len as number, null));
      case "foreignCopyToSegs":
        return segments(a[1], true).map(([gfn, off, b]) => {
          const bytes = b as Uint8Array;
          return s.foreignCopy(c, n(0), gfn, off, bytes.length, bytes);
        });
      case "gnttabMapGrantRefViews": {
        // One GNTTABOP_map_grant_ref with several entries: each gets its own status, as in Xen.
        const refs = a[1];
        const ro = a[2];
        if (!Array.isArray(refs) || !Array.isArray(ro) || refs.length !== ro.length || refs.length > MAP_BATCH_MAX)
          throw new TypeError("gnttabMapGrantRefViews takes two arrays of equal length (at most 256)");
        return refs.map((ref: unknown, i: number): PortView => {
          if (!this.threadMode) return { status: -1, handle: 0, buffer: null, byteOffset: 0 };
          const r = s.gnttabMapGrantRefView(c, n(0), Number(ref), ro[i] === true);
          return {
            status: r.status,
            handle: r.handle,
            buffer: r.view === null ? null : (r.view.buffer as SharedArrayBuffer),
            byteOffset: r.view === null ? 0 : r.view.byteOffset,
          };
        });
      }
      case "gnttabUnmapGrantRefs": {
        const hs = a[0];
        if (!Array.isArray(hs) || hs.length > MAP_BATCH_MAX)
          throw new TypeError("gnttabUnmapGrantRefs takes an array (at most 256)");
        return hs.map((h: unknown) => s.gnttabUnmapGrantRef(c, { hostAddr: 0, devBusAddr: 0, handle: Number(h) }));
      }
      case "gnttabUnmapGrantRef":
        return s.gnttabUnmapGrantRef(c, { hostAddr: 0, devBusAddr: 0, handle: n(0) });
      case "gnttabUnmapPublishSend": {
        const hs = a[0];
        const at = a[1];
        if (!Array.isArray(hs) || hs.length > MAP_BATCH_MAX || !hs.every(isInt))
          throw new TypeError("gnttabUnmapPublishSend takes a list of handles (at most 256)");
        const when = a[3] ?? null;
        if (at !== null && !(Array.isArray(at) && at.length === 3 && at.every(isInt)))
          throw new TypeError("gnttabUnmapPublishSend: publish is null or [handle, offset, value]");
        if (when !== null && !(Array.isArray(when) && when.length === 3 && when.every(isInt)))
          throw new TypeError("gnttabUnmapPublishSend: when is null or [handle, offset, old]");
        return unmapPublishSend(this.hv, c, hs, at as PublishAt | null, n(2), when as SendWhen | null);
      }
      case "gnttabCopyFrom":
        return this.copy(n(0), n(1), n(2), n(3), null);
      case "gnttabCopyTo": {
        const b = a[3];
        if (!(b instanceof Uint8Array)) throw new TypeError("gnttabCopyTo takes bytes");
        return this.copy(n(0), n(1), n(2), b.length, b);
      }
      case "gnttabCopyFromSegs": {
        const segs = segments(a[1], false);
        return segs.map(([ref, off, len]) => this.copy(n(0), ref, off, len as number, null));
      }
      case "gnttabCopyToSegs": {
        const segs = segments(a[1], true);
        return segs.map(([ref, off, b]) => this.copy(n(0), ref, off, (b as Uint8Array).length, b as Uint8Array));
      }
      case "dmopCreateIoreqServer":
        return s.dmopCreateIoreqServer(c, n(0), n(1));
      case "dmopGetIoreqServerInfo":
        return s.dmopGetIoreqServerInfo(c, n(0), n(1));
      case "dmopMapIoRangeToIoreqServer":
        return s.dmopMapIoRangeToIoreqServer(c, n(0), n(1), n(2), n(3), n(4));
      case "dmopUnmapIoRangeFromIoreqServer":
        return s.dmopUnmapIoRangeFromIoreqServer(c, n(0), n(1), n(2), n(3), n(4));
      case "dmopSetIoreqServerState":
        return s.dmopSetIoreqServerState(c, n(0), n(1), a[2] === true);
      case "dmopDestroyIoreqServer":
        return s.dmopDestroyIoreqServer(c, n(0), n(1));
      case "dmopNrVcpus":
        return s.dmopNrVcpus(c, n(0));
      case "acquireIoreqServerPage": {
        // Process mode has no shared memory: its device models cannot take the pages (-EOPNOTSUPP).
        if (!this.threadMode) return { status: -95, buffer: null, byteOffset: 0 } satisfies PortFrame;
        const mfn = s.acquireIoreqServerFrame(c, n(0), n(1), n(2));
        if (mfn < 0) return { status: mfn, buffer: null, byteOffset: 0 } satisfies PortFrame;
        return {
          status: 0,
          buffer: this.hv.memory.chunk(mfn).buffer as SharedArrayBuffer,
          byteOffset: this.hv.memory.frameOffset(mfn),
        } satisfies PortFrame;
      }
      case "ioreqFetch":
        return ioreqFetch(this.hv, c, n(0), n(1));
      case "ioreqComplete":
        return ioreqComplete(this.hv, c, n(0), n(1), n(2), n(3) >>> 0, n(4));
      case "schedShutdown":
        return s.schedShutdown(c, n(0));
      case "domctlCreateDomain":
        return s.domctlCreateDomain(c, createConfig(a[0]));
      case "domctlDestroyDomain":
        return s.domctlDestroyDomain(c, n(0));
      case "domctlPauseDomain":
        return s.domctlPauseDomain(c, n(0));
      case "domctlUnpauseDomain":
        return s.domctlUnpauseDomain(c, n(0));
      case "domctlGetDomainInfo":
        return s.domctlGetDomainInfo(c, n(0));
      case "domctlMaxMem":
        return s.domctlMaxMem(c, n(0), n(1));
      case "domctlMaxVcpus":
        return s.domctlMaxVcpus(c, n(0), n(1));
      case "domctlGetVcpuInfo":
        return s.domctlGetVcpuInfo(c, n(0), n(1));
      case "domctlSetVirqHandler":
        return s.domctlSetVirqHandler(c, n(0), n(1));
      case "domctlSetTarget":
        return s.domctlSetTarget(c, n(0), n(1), a[2] !== false);
      case "domctlGetVcpuAffinity":
        return s.domctlGetVcpuAffinity(c, n(0), n(1));
      case "domctlSetVcpuAffinity":
        return s.domctlSetVcpuAffinity(c, n(0), n(1), cpuList(a[2]), cpuList(a[3]));
      case "domctlSchedGetInfo":
        return s.domctlSchedGetInfo(c, n(0), n(1));
      case "domctlSchedPutInfo":
        return s.domctlSchedPutInfo(c, n(0), n(1), plain<SchedParamsUpdate>(a[2]));
      case "domctlSchedGetVcpuInfo":
        return s.domctlSchedGetVcpuInfo(c, n(0), n(1), n(2));
      case "domctlSchedPutVcpuInfo":
        return s.domctlSchedPutVcpuInfo(c, n(0), n(1), n(2), plain<SchedParamsUpdate>(a[3]));
      case "sysctlPhysinfo":
        return s.sysctlPhysinfo(c);
      case "sysctlSchedId":
        return s.sysctlSchedId(c);
      case "sysctlGetDomainInfoList":
        return s.sysctlGetDomainInfoList(c, n(0), n(1));
      case "sysctlCpupoolCreate":
        return s.sysctlCpupoolCreate(c, n(0), n(1));
      case "sysctlCpupoolDestroy":
        return s.sysctlCpupoolDestroy(c, n(0));
      case "sysctlCpupoolInfo":
        return s.sysctlCpupoolInfo(c, n(0));
      case "sysctlCpupoolAddCpu":
        return s.sysctlCpupoolAddCpu(c, n(0), n(1));
      case "sysctlCpupoolRemoveCpu":
        return s.sysctlCpupoolRemoveCpu(c, n(0), n(1));
      case "sysctlCpupoolMoveDomain":
        return s.sysctlCpupoolMoveDomain(c, n(0), n(1));
      case "sysctlCpupoolFreeInfo":
        return s.sysctlCpupoolFreeInfo(c);
      case "sysctlSchedGetPoolParams":
        return s.sysctlSchedGetPoolParams(c, n(0), n(1));
      case "sysctlSchedPutPoolParams":
        return s.sysctlSchedPutPoolParams(c, n(0), n(1), plain<PoolParamsUpdate>(a[2]));
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

/**
 * A list of [ref|gfn, offset, len] (copy from) or [ref|gfn, offset, bytes] (copy to) segments,
 * checked.
 */
function segments(v: unknown, bytes: boolean): Array<[number, number, number | Uint8Array]> {
  if (!Array.isArray(v) || v.length > MAX_COPY_SEGMENTS)
    throw new TypeError(`segments must be a list of at most ${MAX_COPY_SEGMENTS}`);
  return v.map((s) => {
    if (!Array.isArray(s) || s.length !== 3 || !isInt(s[0]) || !isInt(s[1]))
      throw new TypeError("a segment is [ref, offset, len | bytes]");
    if (bytes ? !(s[2] instanceof Uint8Array) : !isInt(s[2]))
      throw new TypeError("a segment is [ref, offset, len | bytes]");
    return s as [number, number, number | Uint8Array];
  });
}

/** A plain object argument (a parameter update); its fields are checked by the semantics layer. */
function plain<T>(v: unknown): T {
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new TypeError("argument must be an object");
  return v as T;
}

/** An affinity argument: null (unchanged) or a list of pCPU ids. */
function cpuList(v: unknown): number[] | null {
  if (v === null || v === undefined) return null;
  if (!Array.isArray(v) || !v.every(isInt)) throw new TypeError("affinity must be null or a list of pCPU ids");
  return v as number[];
}

/** XEN_DOMCTL_createdomain's config: integers where Xen has them, an optional name. */
function createConfig(v: unknown): DomctlCreateDomainConfig {
  const o = plain<Record<string, unknown>>(v);
  for (const k of [
    "flags",
    "maxVcpus",
    "maxEvtchnPort",
    "maxGrantFrames",
    "maxMaptrackFrames",
    "grantOpts",
    "cpupoolId",
  ]) {
    if (!isInt(o[k])) throw new TypeError(`createdomain: ${k} must be an integer`);
  }
  if (o.domid !== undefined && !isInt(o.domid)) throw new TypeError("createdomain: domid must be an integer");
  if (o.name !== undefined && typeof o.name !== "string") throw new TypeError("createdomain: name must be a string");
  return o as unknown as DomctlCreateDomainConfig;
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

const upcallWatchers = new WeakMap<Hypervisor, Map<number, Set<() => void>>>();

/**
 * Calls `fn` each time an upcall becomes pending for `domid` (a TS domain's port forwards it).
 * One hook per hypervisor, however many ports come and go: a driver domain restarted a hundred
 * times must not leave a chain of a hundred wrappers. Returns the unwatch.
 */
export function watchUpcalls(hv: Hypervisor, domid: number, fn: () => void): () => void {
  let byDomid = upcallWatchers.get(hv);
  if (byDomid === undefined) {
    const m = new Map<number, Set<() => void>>();
    byDomid = m;
    upcallWatchers.set(hv, m);
    const prev = hv.hooks.upcall;
    hv.hooks.upcall = (d, v) => {
      prev?.(d, v);
      const fns = m.get(d);
      if (fns !== undefined) for (const f of fns) f();
    };
  }
  const m = byDomid;
  let fns = m.get(domid);
  if (fns === undefined) {
    fns = new Set();
    m.set(domid, fns);
  }
  const mine = fns;
  mine.add(fn);
  return () => {
    mine.delete(fn);
    if (mine.size === 0 && m.get(domid) === mine) m.delete(domid);
  };
}

/** Serves `port` for `domid` until it closes. Returns the server (for notifyUpcall). */
export function servePort(hv: Hypervisor, domid: number, port: MessagePort): PortServer {
  const server = new PortServer(hv, domid, messagePortSink(port), true);
  const unwatch = watchUpcalls(hv, domid, () => server.notifyUpcall());
  port.once("close", unwatch);
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
