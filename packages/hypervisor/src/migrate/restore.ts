/**
 * The receiving side (libxc's xg_sr_restore for our domain type): a state machine fed the items
 * of a StreamReader. RV32_DOMAIN_INFO then STATIC_DATA_END create the domain (paused); PAGE_DATA
 * populates and fills its RAM (a later copy of a page overwrites an earlier one, as live rounds
 * need); the end-of-checkpoint records rebuild shared_info, the physmap, HVM params, the grant
 * table, event channels and vCPUs; END hands back the domain and its vCPU register blocks for the
 * scheduling layer. Any inconsistency throws MigrationStreamError; abort() then destroys what was
 * built, so a failed restore leaves nothing behind.
 */
import { VCPU_STATE_WORDS, VcpuSlot } from "@xenon/hw";
import type { Domain, DomainFlags, ShutdownActions } from "../domain.js";
import { Ecs } from "../event_channel/port_table.js";
import type { Hypervisor } from "../hypervisor.js";
import { P2mType } from "../p2m/types.js";
import { GRANT_ENTRIES_PER_FRAME, GRANT_ENTRY_V1_SIZE, GTF_reading, GTF_writing } from "../public/grant_table.js";
import { VcpuInfo } from "../public/layout.js";
import { HVM_NR_PARAMS, NR_VIRQS } from "../public/xen.js";
import { vcpuInfoInFrame } from "../shared_info.js";
import {
  type DomainInfoRec,
  decodeDomainInfo,
  decodeEvtchn,
  decodeGrantTable,
  decodeHvmParams,
  decodePageData,
  decodePhysmap,
  decodeVcpu,
  PAGE_DATA_MAX_BODY,
  pageTypeHasData,
  VCPU_REC_SIZE,
  VCPU_SAVED_SLOTS,
} from "./records.js";
import {
  DOMAIN_INFO_SIZE,
  DomainInfoFlag,
  NO_GFN,
  PAGE_BYTES,
  PageType,
  PHYSMAP_REC_SIZE,
  REC_LENGTH_MAX,
  REC_TYPE_OPTIONAL,
  RecType,
  recName,
  VcpuRecFlag,
} from "./stream_format.js";
import { MigrationStreamError, type StreamHeader, type StreamItem, StreamReader } from "./stream_reader.js";

const fail = (msg: string): never => {
  throw new MigrationStreamError(msg);
};

/** Body limits per record type, for StreamReader (refused before buffering). */
export function restoreBodyLimit(type: number): number {
  switch (type) {
    case RecType.PAGE_DATA:
      return PAGE_DATA_MAX_BODY;
    case RecType.SHARED_INFO:
      return PAGE_BYTES;
    case RecType.RV32_DOMAIN_INFO:
      return DOMAIN_INFO_SIZE;
    case RecType.RV32_VCPU:
      return VCPU_REC_SIZE;
    case RecType.RV32_PHYSMAP:
      return PHYSMAP_REC_SIZE;
    case RecType.END:
    case RecType.STATIC_DATA_END:
      return 0;
    default:
      return REC_LENGTH_MAX;
  }
}

export interface RestoreOptions {
  readonly name: string;
  /** Ask for this domid; otherwise the next free one. */
  readonly domid?: number;
  readonly actions?: Partial<ShutdownActions>;
  readonly flags?: Partial<DomainFlags>;
}

export interface RestoredDomain {
  readonly domain: Domain;
  /** Per vCPU: its register block (VCPU_STATE_WORDS), to hand to Machine.addRestoredDomain. */
  readonly vcpuStates: Int32Array[];
  readonly pages: number;
  /** Optional records of types this restorer does not know, skipped. */
  readonly skipped: number;
}

type Phase = "header" | "static" | "memory" | "done";

export class DomainRestorer {
  private phase: Phase = "header";
  private header: StreamHeader | null = null;
  private info: DomainInfoRec | null = null;
  private d: Domain | null = null;
  private states: Int32Array[] = [];
  private readonly seen = new Set<number>();
  private readonly vcpusSeen = new Set<number>();
  private pagesWritten = 0;
  private skipped = 0;
  private result: RestoredDomain | null = null;

  constructor(
    private readonly hv: Hypervisor,
    private readonly opts: RestoreOptions,
  ) {}

  /** The domain being built (null before STATIC_DATA_END). */
  get domain(): Domain | null {
    return this.d;
  }

  /** Feeds one item; returns the restored domain once END has been applied. */
  push(item: StreamItem): RestoredDomain | null {
    if (this.phase === "done") fail("item after END");
    if (item.kind === "header") {
      if (this.phase !== "header") fail("a second stream header");
      this.header = item.header;
      this.phase = "static";
      return null;
    }
    if (this.header === null) fail("record before the stream header");
    const le = this.header!.littleEndian;
    const { type, body } = item;
    const at = `${recName(type)} at offset ${item.offset}`;
    try {
      this.apply(type, body, le);
    } catch (e) {
      if (e instanceof MigrationStreamError) throw new MigrationStreamError(`${at}: ${e.message}`);
      throw e;
    }
    return this.result;
  }

  /** Destroys the partly built domain (after an error, or when the sender gave up). */
  abort(): void {
    if (this.d !== null && this.result === null) this.hv.domains.destroy(this.d.domid);
    this.d = null;
    this.phase = "done";
  }

  private apply(type: number, body: Uint8Array, le: boolean): void {
    switch (type) {
      case RecType.RV32_DOMAIN_INFO:
        if (this.phase !== "static" || this.info !== null)
          fail("RV32_DOMAIN_INFO must come once, before STATIC_DATA_END");
        this.info = decodeDomainInfo(body, le);
        return;
      case RecType.STATIC_DATA_END:
        if (this.phase !== "static") fail("a second STATIC_DATA_END");
        if (this.info === null) fail("no RV32_DOMAIN_INFO before STATIC_DATA_END");
        this.create(this.info!);
        this.phase = "memory";
        return;
      case RecType.END:
        this.needMemoryPhase("END");
        this.finish();
        return;
      default:
        break;
    }
    switch (type) {
      case RecType.PAGE_DATA:
        this.needMemoryPhase("PAGE_DATA");
        this.pageData(body, le);
        return;
      case RecType.SHARED_INFO:
        this.needMemoryPhase("SHARED_INFO");
        this.once(type);
        if (body.length !== PAGE_BYTES) fail(`SHARED_INFO must be one page, not ${body.length} bytes`);
        this.writeFrame(this.d!.sharedInfoMfn, body);
        return;
      case RecType.RV32_PHYSMAP:
        this.needMemoryPhase("RV32_PHYSMAP");
        this.once(type);
        this.physmap(decodePhysmap(body, le));
        return;
      case RecType.HVM_PARAMS:
        this.needMemoryPhase("HVM_PARAMS");
        this.once(type);
        for (const [i, v] of decodeHvmParams(body, le, HVM_NR_PARAMS)) this.d!.hvmParams[i] = v;
        return;
      case RecType.RV32_GRANT_TABLE:
        this.needMemoryPhase("RV32_GRANT_TABLE");
        this.once(type);
        this.grantTable(body, le);
        return;
      case RecType.RV32_EVTCHN:
        this.needMemoryPhase("RV32_EVTCHN");
        this.once(type);
        this.evtchn(body, le);
        return;
      case RecType.RV32_VCPU:
        this.needMemoryPhase("RV32_VCPU");
        this.vcpu(body, le);
        return;
      default:
        if ((type & REC_TYPE_OPTIONAL) !== 0) {
          this.skipped++;
          return;
        }
        fail(`unknown mandatory record type ${recName(type)}`);
    }
  }

  private needMemoryPhase(what: string): void {
    if (this.phase !== "memory") fail(`${what} before STATIC_DATA_END`);
  }

  private once(type: number): void {
    if (this.seen.has(type)) fail(`a second ${recName(type)} record`);
    this.seen.add(type);
  }

  private create(info: DomainInfoRec): void {
    const d = this.hv.domains.create({
      ...(this.opts.domid === undefined ? {} : { domid: this.opts.domid }),
      name: this.opts.name,
      maxVcpus: info.maxVcpus,
      maxPages: info.maxPages,
      p2mPoolPages: info.p2mPoolPages,
      maxEvtchnPort: info.maxEvtchnPort,
      maxGrantFrames: info.maxGrantFrames,
      maxMaptrackFrames: info.maxMaptrackFrames,
      flags: { ...this.opts.flags, isConsole: (info.flags & DomainInfoFlag.IS_CONSOLE) !== 0 },
      ...(this.opts.actions === undefined ? {} : { actions: this.opts.actions }),
    });
    if (typeof d === "number")
      fail(
        `cannot create the domain (error ${d}): max_vcpus ${info.maxVcpus}, max_pages ${info.maxPages}, p2m pool ${info.p2mPoolPages}, max port ${info.maxEvtchnPort}, grant frames ${info.maxGrantFrames}`,
      );
    this.d = d as Domain;
    this.states = this.d.vcpus.map(() => {
      const s = new Int32Array(VCPU_STATE_WORDS);
      s[VcpuSlot.PRIV] = 1;
      s[VcpuSlot.UPCALL_LINE_OFF] = -1;
      return s;
    });
  }

  private writeFrame(mfn: number, page: Uint8Array): void {
    this.hv.memory.chunk(mfn).u8.set(page, this.hv.memory.frameOffset(mfn));
  }

  private pageData(body: Uint8Array, le: boolean): void {
    const d = this.d!;
    const batch = decodePageData(body, le);
    let di = 0;
    batch.pfns.forEach((gfn, i) => {
      const t = batch.types[i]!;
      const e = d.p2m.get(gfn);
      if (e !== null && !(e.type === P2mType.ram_rw && d.pages.ownsLive(e.mfn)))
        fail(`pfn 0x${gfn.toString(16)} is not RAM in the domain being restored`);
      if (t === PageType.XTAB) {
        if (e !== null) {
          d.p2m.clear(gfn);
          d.pages.release(e.mfn);
        }
        return;
      }
      let mfn = e?.mfn ?? -1;
      if (mfn < 0) {
        if (d.pages.totPages >= d.pages.maxPages) fail(`more pages than max_pages (${d.pages.maxPages})`);
        mfn = d.pages.alloc();
        if (mfn < 0) fail("host out of memory");
        if (d.p2m.set(gfn, mfn, P2mType.ram_rw) < 0) {
          d.pages.release(mfn);
          fail(`P2M pool exhausted at pfn 0x${gfn.toString(16)}`);
        }
        if (!pageTypeHasData(t)) this.hv.memory.scrub(mfn);
      }
      if (pageTypeHasData(t)) {
        this.writeFrame(mfn, batch.data.subarray(di * PAGE_BYTES, (di + 1) * PAGE_BYTES));
        di++;
        this.pagesWritten++;
      }
    });
  }

  /** Maps a xenheap frame (shared_info, grant frame) at gfn, which must be free. */
  private mapXenheap(gfn: number, mfn: number, what: string): void {
    const d = this.d!;
    if (d.p2m.get(gfn) !== null) fail(`${what} gfn 0x${gfn.toString(16)} is already mapped`);
    if (d.p2m.set(gfn, mfn, P2mType.ram_rw) < 0) fail(`cannot map ${what} at gfn 0x${gfn.toString(16)}`);
  }

  private physmap(gfn: number): void {
    if (gfn < 0) return;
    this.mapXenheap(gfn, this.d!.sharedInfoMfn, "shared_info");
    this.d!.sharedInfoGfn = gfn;
  }

  private grantTable(body: Uint8Array, le: boolean): void {
    const d = this.d!;
    const rec = decodeGrantTable(body, le, d.grantTable.maxFrames);
    if (d.grantTable.grow(rec.gfns.length) < 0) fail(`cannot grow the grant table to ${rec.gfns.length} frames`);
    rec.gfns.forEach((gfn, i) => {
      const mfn = d.grantTable.frames[i]!;
      const page = rec.frames.slice(i * PAGE_BYTES, (i + 1) * PAGE_BYTES);
      // No one maps these grants on this host: entries lose their in-use flags.
      const v = new DataView(page.buffer);
      for (let e = 0; e < GRANT_ENTRIES_PER_FRAME; e++) {
        const off = e * GRANT_ENTRY_V1_SIZE;
        v.setUint16(off, v.getUint16(off, true) & ~(GTF_reading | GTF_writing), true);
      }
      this.writeFrame(mfn, page);
      if (gfn !== NO_GFN) {
        this.mapXenheap(gfn, mfn, `grant frame ${i}`);
        d.grantTable.frameGfn[i] = gfn;
      }
    });
  }

  private evtchn(body: Uint8Array, le: boolean): void {
    const d = this.d!;
    for (const p of decodeEvtchn(body, le)) {
      if (p.port < 1 || p.port > d.evtchn.maxPort) fail(`port ${p.port} outside 1..${d.evtchn.maxPort}`);
      if (d.evtchn.state(p.port) !== Ecs.free) fail(`port ${p.port} appears twice`);
      if (p.vcpu >= d.maxVcpus) fail(`port ${p.port} notifies vCPU ${p.vcpu} of ${d.maxVcpus}`);
      switch (p.state) {
        case Ecs.unbound:
        case Ecs.interdomain:
          // The peer is not here (or not the same domain any more): the channel waits, unbound, for
          // the remote domain to bind it again (MIGRATION.md, "what survives").
          d.evtchn.bind(p.port, Ecs.unbound, p.vcpu, p.u1 & 0xffff, 0);
          break;
        case Ecs.virq: {
          if (p.u1 >= NR_VIRQS) fail(`port ${p.port}: VIRQ ${p.u1} beyond ${NR_VIRQS - 1}`);
          const v = d.vcpus[p.vcpu]!;
          if (v.virqPorts[p.u1] !== 0) fail(`VIRQ ${p.u1} bound twice on vCPU ${p.vcpu}`);
          d.evtchn.bind(p.port, Ecs.virq, p.vcpu, p.u1, 0);
          v.virqPorts[p.u1] = p.port;
          break;
        }
        case Ecs.ipi:
          d.evtchn.bind(p.port, Ecs.ipi, p.vcpu, 0, 0);
          break;
        default:
          fail(`port ${p.port}: state ${p.state} cannot be restored`);
      }
    }
  }

  private vcpu(body: Uint8Array, le: boolean): void {
    const d = this.d!;
    const r = decodeVcpu(body, le);
    if (r.vcpuId >= d.maxVcpus) fail(`vCPU ${r.vcpuId} of a domain with ${d.maxVcpus}`);
    if (this.vcpusSeen.has(r.vcpuId)) fail(`vCPU ${r.vcpuId} appears twice`);
    this.vcpusSeen.add(r.vcpuId);
    const v = d.vcpus[r.vcpuId]!;
    v.online = (r.flags & VcpuRecFlag.ONLINE) !== 0;
    v.initialised = (r.flags & VcpuRecFlag.INITIALISED) !== 0;
    if (v.online && !v.initialised) fail(`vCPU ${r.vcpuId} is online but not initialised`);
    if ((r.flags & VcpuRecFlag.START_CONTEXT) !== 0) {
      if (!v.initialised) fail(`vCPU ${r.vcpuId} has a start context but is not initialised`);
      const regs = new Int32Array(32);
      VCPU_SAVED_SLOTS.forEach((slot, i) => {
        if (slot < 32) regs[slot] = r.regs[i]!;
      });
      v.startContext = { pc: r.regs[VCPU_SAVED_SLOTS.indexOf(VcpuSlot.PC)]!, regs };
    } else {
      const s = this.states[r.vcpuId]!;
      VCPU_SAVED_SLOTS.forEach((slot, i) => {
        s[slot] = r.regs[i]!;
      });
      const priv = s[VcpuSlot.PRIV]!;
      if (priv !== 0 && priv !== 1) fail(`vCPU ${r.vcpuId}: privilege ${priv} is neither U nor S`);
    }
    if ((r.flags & VcpuRecFlag.VCPU_INFO) !== 0) {
      const off = r.vcpuInfoOffset;
      if (off % 8 !== 0 || off + VcpuInfo.size > PAGE_BYTES)
        fail(`vCPU ${r.vcpuId}: vcpu_info offset ${off} is invalid`);
      const e = d.p2m.get(r.vcpuInfoGfn);
      if (e === null || e.type !== P2mType.ram_rw || !d.pages.get(e.mfn))
        fail(`vCPU ${r.vcpuId}: vcpu_info gfn 0x${r.vcpuInfoGfn.toString(16)} is not RAM of the domain`);
      v.vcpuInfo = vcpuInfoInFrame(this.hv.memory, e!.mfn, off);
      v.placement = { gfn: r.vcpuInfoGfn, mfn: e!.mfn, offset: off };
    }
    if (r.timerNs >= 0) {
      v.singleshotDeadlineNs = this.hv.now() + r.timerNs;
      v.timerGeneration++;
    }
  }

  private finish(): void {
    const d = this.d!;
    if (!this.vcpusSeen.has(0)) fail("no RV32_VCPU record for vCPU 0");
    for (const t of [RecType.SHARED_INFO, RecType.RV32_EVTCHN, RecType.RV32_GRANT_TABLE])
      if (!this.seen.has(t)) fail(`no ${recName(t)} record`);
    this.phase = "done";
    this.result = { domain: d, vcpuStates: this.states, pages: this.pagesWritten, skipped: this.skipped };
  }
}

/**
 * Bytes in, domain out: a StreamReader (with this restorer's body limits) feeding a
 * DomainRestorer. push() any split of the stream; finish() returns the domain or throws. On any
 * error the partly built domain is destroyed before the error propagates.
 */
export class StreamRestore {
  private readonly reader: StreamReader;
  private readonly restorer: DomainRestorer;
  private result: RestoredDomain | null = null;

  /** `embedded`: the stream sits inside an outer one; bytes after END are kept (takeTrailing). */
  constructor(hv: Hypervisor, opts: RestoreOptions, embedded = false) {
    this.restorer = new DomainRestorer(hv, opts);
    this.reader = new StreamReader(restoreBodyLimit, embedded);
  }

  /** True once END has been applied. */
  get done(): boolean {
    return this.result !== null;
  }

  takeTrailing(): Uint8Array {
    return this.reader.takeTrailing();
  }

  /** Bytes taken so far. */
  get offset(): number {
    return this.reader.offset;
  }

  push(chunk: Uint8Array): RestoredDomain | null {
    try {
      for (const item of this.reader.push(chunk)) {
        const r = this.restorer.push(item);
        if (r !== null) this.result = r;
      }
      return this.result;
    } catch (e) {
      this.restorer.abort();
      throw e;
    }
  }

  finish(): RestoredDomain {
    try {
      this.reader.finish();
    } catch (e) {
      this.restorer.abort();
      throw e;
    }
    return this.result!;
  }

  abort(): void {
    this.restorer.abort();
  }
}
