/**
 * The device model's end of an IOREQ server (what QEMU's xen-hvm / libxendevicemodel do): create
 * the server for a guest, map its MMIO ranges (doorbells as posted ranges), take its ioreq and
 * buffered pages, bind one port per guest vCPU plus the buffered port, enable it, and answer each
 * request with the handler's value. Layouts and states: hypervisor ABI.md §5.11.
 *
 * Order: the buffered ring is drained before every synchronous request, so a posted doorbell is
 * never overtaken by a later register access of the same vCPU.
 *
 * Two ways to reach the pages: "shared" (thread mode: the pages are views, worked on with
 * Atomics) and "relayed" (process mode, no shared memory: HypercallClient.ioreqFetch drains and
 * takes in one call, ioreqComplete answers and notifies in one; fetches are serialised so posted
 * writes keep their order).
 */
import { type HypercallClient, ioTrace, ioTraceOn } from "@xenon/hypervisor";

// From Xen's ioreq.h / dm_op.h (hypervisor ABI.md §5.11).
const STATE_READY = 1;
const STATE_INPROCESS = 2;
const STATE_IORESP_READY = 3;
const IOREQ_SIZE = 32;
const BUF_SLOTS = 511;
const BUF_BASE = 8;
const HANDLE_BUFIOREQ_ATOMIC = 2;
const RANGE_MEMORY = 1;
const RANGE_MEMORY_POSTED = 0x81;

export interface IoreqRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
  readonly posted?: boolean;
}

/** Answers one access: the value for a read (ignored for a write). Must not throw. */
export type IoreqHandler = (addr: number, size: number, write: boolean, value: number) => number;

export class IoreqClient {
  private readonly state: Int32Array;
  private readonly page: DataView;
  private readonly buf: Int32Array;
  private readonly bufView: DataView;
  private fetching = false;
  private fetchAgain = false;
  /** Process mode: requests come by ioreqFetch, not from shared pages. */
  private relayed = false;
  /** Local port per guest vCPU. */
  private readonly ports: number[] = [];
  /** 1 MiB region base of the posted ranges (buf_ioreq carries only addr:20). */
  private readonly postedBase: number;
  served = 0;
  posted = 0;

  private constructor(
    private readonly client: HypercallClient,
    readonly guest: number,
    readonly id: number,
    page: Uint8Array,
    buf: Uint8Array,
    ranges: readonly IoreqRange[],
    private readonly handler: IoreqHandler,
  ) {
    this.state = new Int32Array(page.buffer, page.byteOffset, 1024);
    this.page = new DataView(page.buffer, page.byteOffset, 4096);
    this.buf = new Int32Array(buf.buffer, buf.byteOffset, 1024);
    this.bufView = new DataView(buf.buffer, buf.byteOffset, 4096);
    const p = ranges.find((r) => r.posted);
    this.postedBase = p === undefined ? 0 : p.start - (p.start % 0x10_0000);
  }

  /** Registers for `ranges` of guest `guest` and starts serving (the client's event loop must run). */
  static async create(
    client: HypercallClient,
    guest: number,
    ranges: readonly IoreqRange[],
    handler: IoreqHandler,
    pages: "shared" | "relayed" = "shared",
  ): Promise<IoreqClient> {
    const check = (what: string, rc: number): number => {
      if (rc < 0) throw new Error(`ioreq server for d${guest}: ${what} failed (${rc})`);
      return rc;
    };
    const id = check("create", await client.createIoreqServer(guest, HANDLE_BUFIOREQ_ATOMIC));
    for (const r of ranges)
      check(
        `map 0x${r.start.toString(16)}`,
        await client.mapIoRangeToIoreqServer(guest, id, r.posted ? RANGE_MEMORY_POSTED : RANGE_MEMORY, r.start, r.end),
      );
    const relayed = pages === "relayed";
    let page: Uint8Array = new Uint8Array(4096);
    let buf: Uint8Array = new Uint8Array(4096);
    if (!relayed) {
      const p = await client.acquireIoreqServerPage(guest, id, 1);
      const b = await client.acquireIoreqServerPage(guest, id, 0);
      if (typeof p === "number" || typeof b === "number")
        throw new Error(`ioreq server for d${guest}: no pages (${String(p)}, ${String(b)})`);
      page = p;
      buf = b;
    }
    const info = await client.getIoreqServerInfo(guest, id);
    if (typeof info === "number") throw new Error(`ioreq server for d${guest}: info failed (${info})`);
    const s = new IoreqClient(client, guest, id, page, buf, ranges, handler);
    s.relayed = relayed;
    for (const [vcpu, remote] of info.vcpuPorts.entries()) {
      const local = check(`bind vCPU ${vcpu}`, await client.evtchnBindInterdomain(guest, remote));
      s.ports.push(local);
      client.bind(local, relayed ? () => s.fetch() : () => s.serveVcpu(vcpu));
    }
    const bufPort = check("bind buffered", await client.evtchnBindInterdomain(guest, info.bufioreqPort));
    client.bind(bufPort, relayed ? () => s.fetch() : () => s.drainBuffered());
    check("enable", await client.setIoreqServerState(guest, id, true));
    return s;
  }

  /** Stops serving: disables and destroys the server (waiting vCPUs read all-ones). */
  async destroy(): Promise<void> {
    await this.client.destroyIoreqServer(this.guest, this.id);
  }

  /** Serves the posted writes (doorbells) still queued: nothing the guest wrote is left behind. */
  async drain(): Promise<void> {
    if (!this.relayed) {
      this.drainBuffered();
      return;
    }
    this.fetch();
    while (this.fetching) await new Promise((r) => setImmediate(r));
  }

  /** Relayed: one fetch at a time; an event during it makes one more. */
  private fetch(): void {
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = true;
    void (async () => {
      try {
        do {
          this.fetchAgain = false;
          const b = await this.client.ioreqFetch(this.guest, this.id);
          if (typeof b === "number") return;
          const p = b.posted;
          for (let i = 0; i + 2 < p.length; i += 3) {
            this.posted++;
            this.answer(this.postedBase + p[i]!, p[i + 1]!, true, p[i + 2]!);
          }
          const r = b.reqs;
          for (let i = 0; i + 4 < r.length; i += 5) {
            const vcpu = r[i]!;
            const out = this.answer(r[i + 1]!, r[i + 2]!, r[i + 3] === 1, r[i + 4]!);
            this.served++;
            const port = this.ports[vcpu];
            if (port !== undefined)
              void this.client.ioreqComplete(this.guest, this.id, vcpu, out, port).catch(() => {});
          }
        } while (this.fetchAgain);
      } catch {
        // The port closed: the domain is going away.
      } finally {
        this.fetching = false;
      }
    })();
  }

  private answer(addr: number, size: number, write: boolean, value: number): number {
    if (ioTraceOn) ioTrace(write ? "dd.ioreq.write" : "dd.ioreq.read", addr & 0xfff);
    try {
      return this.handler(addr, size, write, value) >>> 0;
    } catch {
      return 0xffff_ffff;
    }
  }

  private drainBuffered(): void {
    const b = this.buf;
    for (;;) {
      const rp = Atomics.load(b, 0) >>> 0;
      const wp = Atomics.load(b, 1) >>> 0;
      if (rp === wp) return;
      const o = BUF_BASE + (rp % BUF_SLOTS) * 8;
      const word = this.bufView.getUint32(o, true);
      const data = this.bufView.getUint32(o + 4, true);
      const size = 1 << ((word >>> 10) & 3);
      const write = ((word >>> 9) & 1) === 0;
      Atomics.store(b, 0, (rp + 1) | 0);
      this.posted++;
      if (ioTraceOn) ioTrace("dd.ioreq.posted", (word >>> 12) & 0xfff);
      if (write) this.handler(this.postedBase + (word >>> 12), size, true, data);
    }
  }

  private serveVcpu(vcpu: number): void {
    this.drainBuffered();
    const w = (vcpu * IOREQ_SIZE + 28) >>> 2;
    const word = Atomics.load(this.state, w);
    if (((word >>> 16) & 0xf) !== STATE_READY) return; // spurious, or already answered
    Atomics.store(this.state, w, (word & ~(0xf << 16)) | (STATE_INPROCESS << 16));
    const b = vcpu * IOREQ_SIZE;
    const addr = this.page.getUint32(b, true);
    const size = this.page.getUint32(b + 20, true);
    const write = ((word >>> 21) & 1) === 0;
    const value = this.page.getUint32(b + 8, true);
    if (ioTraceOn) ioTrace(write ? "dd.ioreq.write" : "dd.ioreq.read", addr & 0xfff);
    let out = 0;
    try {
      out = this.handler(addr, size, write, value) >>> 0;
    } catch {
      out = 0xffff_ffff;
    }
    if (!write) {
      this.page.setUint32(b + 8, out, true);
      this.page.setUint32(b + 12, 0, true);
    }
    this.served++;
    Atomics.store(this.state, w, (word & ~(0xf << 16)) | (STATE_IORESP_READY << 16));
    void this.client.evtchnSend(this.ports[vcpu]!).catch(() => {});
  }
}
