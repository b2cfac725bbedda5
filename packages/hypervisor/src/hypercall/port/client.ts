/**
 * The client end of a hypercall port: the hypervisor's client API for TypeScript domains
 * (driver domains, xenstored, a TS control domain). Methods mirror the hypercalls; results are
 * Xen's (negative errno / GNTST codes), never exceptions, except for a broken port.
 *
 * Events: `bind(port, fn)` then the client's loop waits for the domain's upcall — in thread mode
 * with Atomics.waitAsync on evtchn_upcall_pending in the shared_info frame, scanning the pending
 * bitmap itself as a guest would; otherwise on the core's "upcall" messages, which carry the ports
 * taken pending (evtchnTakePending only before the first one).
 */
import { pack, unpack } from "msgpackr";
import type { IoreqServerInfo } from "../../ioreq/ioreq_servers.js";
import { legacyVcpuInfo, type SharedRegion, takePendingPorts, upcallWordIndex } from "../../shared_info.js";
import { ioTrace, ioTraceOn } from "../../trace/io_trace.js";
import type { IoreqBatch } from "./ioreq_relay.js";
import type { PortDown, PortFrame, PortHello, PortOp, PortReply, PortView } from "./protocol.js";
import type { UnmapPublishResult } from "./unmap_publish.js";

export class PortClosedError extends Error {
  constructor() {
    super("hypercall port closed");
    this.name = "PortClosedError";
  }
}

/**
 * What the client needs of its transport: a MessagePort (thread mode) or anything shaped like one
 * (process mode: the framed stream over the child's pipes).
 */
export interface PortEndpoint {
  on(event: "message", fn: (raw: unknown) => void): unknown;
  on(event: "close", fn: () => void): unknown;
  off(event: "message", fn: (raw: unknown) => void): unknown;
  postMessage(value: unknown): void;
  close(): void;
}

export interface GrantView {
  readonly status: number;
  readonly handle: number;
  /** The granted frame (4 KiB), thread mode only. */
  readonly view: Uint8Array | null;
}

export class HypercallClient {
  readonly domid: number;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  private readonly handlers = new Map<number, (port: number) => void>();
  private readonly shared: SharedRegion | null;
  private readonly vcpu: SharedRegion | null;
  private upcallSeen: (() => void) | null = null;
  /**
   * An upcall message that came while nobody waited (a stream can deliver it in the same chunk as
   * the takePending reply, before the loop parks): the next wait returns at once.
   */
  private upcallEarly = false;
  private closed = false;
  private readonly scratch: number[] = [];
  /** Stream mode: ports the core handed over with its upcall messages, not yet dispatched. */
  private readonly delivered: number[] = [];
  /** Stream mode: the core hands pending ports over with each upcall (no evtchnTakePending). */
  private portsWithUpcalls = false;

  private constructor(
    private readonly port: PortEndpoint,
    hello: PortHello["hello"],
  ) {
    this.domid = hello.domid;
    if (hello.sharedInfo !== null) {
      const b = hello.sharedInfo.buffer;
      this.shared = { u8: new Uint8Array(b), i32: new Int32Array(b), off: hello.sharedInfo.offset };
      this.vcpu = legacyVcpuInfo(this.shared);
    } else {
      this.shared = null;
      this.vcpu = null;
    }
    port.on("message", (raw: unknown) => this.onMessage(raw));
    port.on("close", () => this.fail());
  }

  /** Waits for the core's hello on `port` and returns a connected client. */
  static connect(port: PortEndpoint): Promise<HypercallClient> {
    return new Promise((resolve, reject) => {
      const first = (raw: unknown) => {
        const msg = decode(raw);
        if (msg !== null && "hello" in msg) {
          port.off("message", first);
          resolve(new HypercallClient(port, msg.hello));
        } else reject(new Error("hypercall port: expected hello"));
      };
      port.on("message", first);
    });
  }

  call<T = number>(op: PortOp, ...args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new PortClosedError());
    const id = this.nextId++;
    if (ioTraceOn) ioTrace(`dd.call.${op}`, id);
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.port.postMessage(pack({ id, op, args }));
    });
  }

  // ---- event channels ----
  evtchnAllocUnbound(remoteDom: number): Promise<number> {
    return this.call("evtchnAllocUnbound", 0x7ff0, remoteDom);
  }
  evtchnBindInterdomain(remoteDom: number, remotePort: number): Promise<number> {
    return this.call("evtchnBindInterdomain", remoteDom, remotePort);
  }
  evtchnSend(port: number): Promise<number> {
    return this.call("evtchnSend", port);
  }
  evtchnUnmask(port: number): Promise<number> {
    return this.call("evtchnUnmask", port);
  }
  evtchnClose(port: number): Promise<number> {
    return this.call("evtchnClose", port);
  }

  // ---- grants ----
  async mapGrant(dom: number, ref: number, readonly: boolean): Promise<GrantView> {
    const r = await this.call<PortView>("gnttabMapGrantRefView", dom, ref, readonly);
    const view = r.buffer === null ? null : new Uint8Array(r.buffer, r.byteOffset, 4096);
    return { status: r.status, handle: r.handle, view };
  }
  /**
   * Several map_grant_ref entries in one call (GNTTABOP_map_grant_ref with a count): refs[i] of
   * `dom`, read-only where readonly[i]. Each result has its own status. At most 256 entries.
   */
  async mapGrants(dom: number, refs: readonly number[], readonly: readonly boolean[]): Promise<GrantView[]> {
    const rs = await this.call<PortView[]>("gnttabMapGrantRefViews", dom, refs, readonly);
    return rs.map((r) => ({
      status: r.status,
      handle: r.handle,
      view: r.buffer === null ? null : new Uint8Array(r.buffer, r.byteOffset, 4096),
    }));
  }
  /** Several unmap_grant_ref entries in one call: a status per handle. */
  unmapGrants(handles: readonly number[]): Promise<number[]> {
    return this.call("gnttabUnmapGrantRefs", handles);
  }
  /**
   * The end of a request on views in one call: unmaps `handles`, then stores the 16-bit `at[2]`
   * at offset `at[1]` of the frame mapped writable under handle `at[0]` (a used ring's index),
   * then sends on `port` (none when negative) — if `when` is given, only when the driver's
   * used_event / flags word it names, read after the store, asks for it. See unmap_publish.ts.
   */
  unmapPublishSend(
    handles: readonly number[],
    at: readonly [number, number, number] | null,
    port: number,
    when: readonly [number, number, number] | null = null,
  ): Promise<UnmapPublishResult> {
    return this.call("gnttabUnmapPublishSend", handles, at, port, when);
  }
  unmapGrant(handle: number): Promise<number> {
    return this.call("gnttabUnmapGrantRef", handle);
  }
  /** Bytes [offset, offset+len) of a granted frame, or a negative GNTST code. */
  copyFromGrant(dom: number, ref: number, offset: number, len: number): Promise<Uint8Array | number> {
    return this.call("gnttabCopyFrom", dom, ref, offset, len);
  }
  copyToGrant(dom: number, ref: number, offset: number, bytes: Uint8Array): Promise<number> {
    return this.call("gnttabCopyTo", dom, ref, offset, bytes);
  }
  /** Several copies from `dom`'s grants in one call: per segment the bytes or a negative GNTST code. */
  copyFromGrants(
    dom: number,
    segs: ReadonlyArray<readonly [number, number, number]>,
  ): Promise<Array<Uint8Array | number>> {
    return this.call("gnttabCopyFromSegs", dom, segs);
  }
  /** Several copies to `dom`'s grants in one call: per segment 0 or a negative GNTST code. */
  copyToGrants(dom: number, segs: ReadonlyArray<readonly [number, number, Uint8Array]>): Promise<number[]> {
    return this.call("gnttabCopyToSegs", dom, segs);
  }

  // ---- foreign views (privileged domains only) ----
  /**
   * Maps guest-physical page `gfn` of domain `dom` as a view (thread mode): status 0 with a handle
   * and the frame, or a negative errno (-EPERM: this domain is not privileged).
   */
  async mapForeignView(dom: number, gfn: number, writable: boolean): Promise<GrantView> {
    const r = await this.call<PortView>("mapForeignView", dom, gfn, writable);
    const view = r.buffer === null ? null : new Uint8Array(r.buffer, r.byteOffset, 4096);
    return { status: r.status, handle: r.handle, view };
  }
  unmapForeignView(handle: number): Promise<number> {
    return this.call("unmapForeignView", handle);
  }
  /**
   * Copies from guest-physical pages of `dom`, [gfn, offset, len] per segment (at most
   * MAX_COPY_SEGMENTS), in one call: per segment the bytes or a negative errno (-EPERM: not
   * privileged). Works without shared memory (process mode).
   */
  copyFromForeign(
    dom: number,
    segs: ReadonlyArray<readonly [number, number, number]>,
  ): Promise<Array<Uint8Array | number>> {
    return this.call("foreignCopyFromSegs", dom, segs);
  }
  /** Copies to guest-physical pages of `dom`, [gfn, offset, bytes] per segment: per segment 0 or a negative errno. */
  copyToForeign(dom: number, segs: ReadonlyArray<readonly [number, number, Uint8Array]>): Promise<number[]> {
    return this.call("foreignCopyToSegs", dom, segs);
  }

  // ---- dm_op: IOREQ servers ----
  /** XEN_DMOP_create_ioreq_server for `domid`: the server id or -errno. */
  createIoreqServer(domid: number, handleBufioreq: number): Promise<number> {
    return this.call("dmopCreateIoreqServer", domid, handleBufioreq);
  }
  getIoreqServerInfo(domid: number, id: number): Promise<IoreqServerInfo | number> {
    return this.call("dmopGetIoreqServerInfo", domid, id);
  }
  mapIoRangeToIoreqServer(domid: number, id: number, type: number, start: number, end: number): Promise<number> {
    return this.call("dmopMapIoRangeToIoreqServer", domid, id, type, start, end);
  }
  unmapIoRangeFromIoreqServer(domid: number, id: number, type: number, start: number, end: number): Promise<number> {
    return this.call("dmopUnmapIoRangeFromIoreqServer", domid, id, type, start, end);
  }
  setIoreqServerState(domid: number, id: number, enabled: boolean): Promise<number> {
    return this.call("dmopSetIoreqServerState", domid, id, enabled);
  }
  destroyIoreqServer(domid: number, id: number): Promise<number> {
    return this.call("dmopDestroyIoreqServer", domid, id);
  }
  /** XENMEM_acquire_resource of an ioreq server page (0 buffered, 1 ioreq): a 4 KiB view, or -errno. */
  async acquireIoreqServerPage(domid: number, id: number, frame: number): Promise<Uint8Array | number> {
    const r = await this.call<PortFrame>("acquireIoreqServerPage", domid, id, frame);
    return r.buffer === null ? r.status : new Uint8Array(r.buffer, r.byteOffset, 4096);
  }

  /**
   * Process mode (no shared pages): drains server `id`'s buffered ring and takes its READY
   * requests in one call (ioreq_relay.ts), or -errno.
   */
  ioreqFetch(domid: number, id: number): Promise<IoreqBatch | number> {
    return this.call("ioreqFetch", domid, id);
  }
  /** Process mode: answers vCPU `vcpu`'s request and sends on `port` (our end of its channel). */
  ioreqComplete(domid: number, id: number, vcpu: number, value: number, port: number): Promise<number> {
    return this.call("ioreqComplete", domid, id, vcpu, value, port);
  }

  consoleWrite(text: string): Promise<number> {
    return this.call("consoleWrite", new TextEncoder().encode(text));
  }

  /** Calls fn(port) whenever `port` fires. */
  bind(port: number, fn: (port: number) => void): void {
    this.handlers.set(port, fn);
  }

  /**
   * Delivers pending events to their handlers until close(). Thread mode never makes a
   * hypercall to learn what is pending.
   */
  async eventLoop(): Promise<void> {
    while (!this.closed) {
      const ports = await this.takePending();
      for (const p of ports) this.handlers.get(p)?.(p);
      if (ports.length > 0) continue;
      await this.waitUpcall();
      if (ioTraceOn) ioTrace("dd.woke", this.domid);
    }
  }

  close(): void {
    this.fail();
    this.port.close();
  }

  private async takePending(): Promise<number[]> {
    if (this.shared !== null && this.vcpu !== null) {
      this.scratch.length = 0;
      return takePendingPorts(this.shared, this.vcpu, this.scratch);
    }
    if (this.delivered.length > 0) return this.delivered.splice(0);
    if (this.portsWithUpcalls) return [];
    return this.call<number[]>("evtchnTakePending");
  }

  private async waitUpcall(): Promise<void> {
    if (this.vcpu !== null) {
      const idx = upcallWordIndex(this.vcpu);
      const byteShift = ((this.vcpu.off & 3) * 8) as number;
      const cur = Atomics.load(this.vcpu.i32, idx);
      if (((cur >>> byteShift) & 0xff) !== 0) return;
      const w = Atomics.waitAsync(this.vcpu.i32, idx, cur, 1000);
      if (w.async) await w.value;
      return;
    }
    if (this.upcallEarly) {
      this.upcallEarly = false;
      return;
    }
    await new Promise<void>((resolve) => {
      this.upcallSeen = resolve;
    });
  }

  private onMessage(raw: unknown): void {
    const msg = decode(raw);
    if (msg === null) return;
    if ("ev" in msg) {
      const ps = msg.ports;
      if (Array.isArray(ps)) {
        this.portsWithUpcalls = true;
        for (const p of ps) if (Number.isInteger(p)) this.delivered.push(p);
      }
      const r = this.upcallSeen;
      this.upcallSeen = null;
      if (r === null) this.upcallEarly = true;
      else r();
      return;
    }
    if (!("id" in msg)) return;
    const reply = msg as PortReply;
    const w = this.waiting.get(reply.id);
    if (w === undefined) return;
    this.waiting.delete(reply.id);
    if (ioTraceOn) ioTrace("dd.reply", reply.id);
    if (reply.err !== undefined) w.reject(new Error(reply.err));
    else w.resolve(reply.ok);
  }

  private fail(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(new PortClosedError());
    this.waiting.clear();
    this.upcallSeen?.();
    // Wake an eventLoop() parked in Atomics.waitAsync: a pending waitAsync does not keep Node alive.
    if (this.vcpu !== null) Atomics.notify(this.vcpu.i32, upcallWordIndex(this.vcpu));
  }
}

function decode(raw: unknown): PortDown | null {
  try {
    const v = raw instanceof Uint8Array ? unpack(raw) : raw;
    return v !== null && typeof v === "object" ? (v as PortDown) : null;
  } catch {
    return null;
  }
}
