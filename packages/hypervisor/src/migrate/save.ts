/**
 * The sending side (libxc's xg_sr_save for our domain type): static data, memory in PAGE_DATA
 * batches, then the end-of-checkpoint state (physmap, shared_info, HVM params, grant table, event
 * channels, vCPUs) and END. The caller decides when memory is sent (all at once for a save to a
 * file, in log-dirty rounds for a live migration) and must have the domain paused and off every
 * pCPU before writeDomainState().
 */
import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { P2M_TYPE_NAMES, P2mType } from "../p2m/types.js";
import { err } from "../public/errno.js";
import {
  type EvtchnRec,
  encodeDomainInfo,
  encodeEvtchn,
  encodeGrantTable,
  encodeHvmParams,
  encodePageData,
  encodePhysmap,
  encodeVcpu,
  VCPU_SAVED_SLOTS,
} from "./records.js";
import { DomainInfoFlag, MAX_BATCH_SIZE, NO_GFN, PAGE_BYTES, PageType, RecType, VcpuRecFlag } from "./stream_format.js";
import type { StreamWriter } from "./stream_writer.js";

/** The domain is in a state this stream cannot carry; nothing was written for it to be used. */
export class SaveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SaveError";
  }
}

/** What the saver needs of the running host beyond the domain. */
export interface SaveHost {
  /** vCPU v's register block (hw VcpuSlot layout), as the scheduling layer holds it. */
  vcpuState(vcpu: number): Int32Array | undefined;
  /** System time in ns (the single-shot timers are sent as time left). */
  now(): number;
}

/** How the domain's device models travel. */
export interface SaveOptions {
  /**
   * The toolstack moves the domain's device models itself (their state in libxl's
   * EMULATOR_CONTEXT records): the ports of their IOREQ servers are left out of the stream (the
   * destination's device models make their own), and a vCPU waiting for one is the caller's to
   * wait out once the domain is paused. Without it, a domain with an IOREQ server cannot be
   * saved.
   */
  readonly deviceModelsMove?: boolean;
}

/**
 * Refuses what the stream does not carry (see MIGRATION.md, "what survives"): mappings of other
 * domains' memory, read-only or device RAM, hypervisor-consumed ports (IOREQ), a vCPU waiting
 * for a device model.
 */
export function checkSaveable(hv: Hypervisor, d: Domain, opts: SaveOptions = {}): void {
  if (d.dying) throw new SaveError(`domain ${d.domid} is dying`);
  if (d.flags.directMap)
    throw new SaveError(`domain ${d.domid} is direct-mapped (gfn == mfn): its frames cannot move to another host`);
  if (hv.passthrough.hasDevices(d.domid))
    throw new SaveError(`domain ${d.domid} has a device passed through to it: it cannot leave this host`);
  if (d.maptrack.count > 0)
    throw new SaveError(
      `domain ${d.domid} holds ${d.maptrack.count} grant mapping(s) of other domains: unmap them first`,
    );
  d.p2m.forEach((gfn, _mfn, type) => {
    if (type !== P2mType.ram_rw)
      throw new SaveError(
        `domain ${d.domid}: gfn 0x${gfn.toString(16)} is ${P2M_TYPE_NAMES[type]}; only read/write RAM can be saved`,
      );
  });
  for (const port of d.evtchn.boundPorts())
    if (d.evtchn.isXenConsumer(port) && !opts.deviceModelsMove)
      throw new SaveError(`domain ${d.domid}: port ${port} belongs to an IOREQ server; destroy it before saving`);
  // A running guest waits on its device models all the time; when they move too, the caller
  // waits them out after the pause (toolstack awaitDeviceModels).
  for (const v of d.vcpus)
    if (!opts.deviceModelsMove && hv.ioreq.isWaiting(d.domid, v.id))
      throw new SaveError(`domain ${d.domid}: vCPU ${v.id} waits for a device model`);
}

/** Image and domain headers, RV32_DOMAIN_INFO, STATIC_DATA_END. */
export function writeStaticData(w: StreamWriter, d: Domain): void {
  w.headers();
  w.record(
    RecType.RV32_DOMAIN_INFO,
    encodeDomainInfo(
      {
        maxVcpus: d.maxVcpus,
        maxPages: d.pages.maxPages,
        p2mPoolPages: d.p2mPool.totalPages,
        maxEvtchnPort: d.evtchn.maxPort,
        maxGrantFrames: d.grantTable.maxFrames,
        maxMaptrackFrames: Math.floor(d.maptrack.limit / 256),
        flags: d.flags.isConsole ? DomainInfoFlag.IS_CONSOLE : 0,
      },
      w.littleEndian,
    ),
  );
  w.record(RecType.STATIC_DATA_END);
}

/** The gfns of the domain's own RAM (not its shared_info or grant frames), ascending. */
export function ramGfns(d: Domain): number[] {
  const out: number[] = [];
  d.p2m.forEach((gfn, mfn, type) => {
    if (type === P2mType.ram_rw && d.pages.ownsLive(mfn)) out.push(gfn);
  });
  return out;
}

/**
 * Sends `gfns` as PAGE_DATA records of at most MAX_BATCH_SIZE pages. A gfn that is no longer
 * the domain's RAM (given back during a live round) goes as XTAB, so the receiver drops it too.
 * Returns how many pages carried data.
 */
export function writePages(w: StreamWriter, hv: Hypervisor, d: Domain, gfns: readonly number[]): number {
  let sent = 0;
  for (let i = 0; i < gfns.length; i += MAX_BATCH_SIZE) {
    const batch = gfns.slice(i, i + MAX_BATCH_SIZE);
    const types: number[] = [];
    const mfns: number[] = [];
    for (const gfn of batch) {
      const e = d.p2m.get(gfn);
      if (e !== null && e.type === P2mType.ram_rw && d.pages.ownsLive(e.mfn)) {
        types.push(PageType.NOTAB);
        mfns.push(e.mfn);
      } else {
        types.push(PageType.XTAB);
      }
    }
    const data = new Uint8Array(mfns.length * PAGE_BYTES);
    mfns.forEach((mfn, j) => {
      const off = hv.memory.frameOffset(mfn);
      data.set(hv.memory.chunk(mfn).u8.subarray(off, off + PAGE_BYTES), j * PAGE_BYTES);
    });
    w.record(RecType.PAGE_DATA, encodePageData(batch, types, data, w.littleEndian));
    sent += mfns.length;
  }
  return sent;
}

/**
 * Everything but memory, then END. The domain must be paused with its vCPUs off the pCPUs (their
 * register blocks are read as they are).
 */
export function writeDomainState(
  w: StreamWriter,
  hv: Hypervisor,
  d: Domain,
  host: SaveHost,
  opts: SaveOptions = {},
): void {
  const le = w.littleEndian;
  w.record(RecType.RV32_PHYSMAP, encodePhysmap(d.sharedInfoGfn, le));
  const si = hv.memory.frameOffset(d.sharedInfoMfn);
  w.record(RecType.SHARED_INFO, hv.memory.chunk(d.sharedInfoMfn).u8.slice(si, si + PAGE_BYTES));
  const params: Array<[number, number]> = [];
  d.hvmParams.forEach((v, i) => {
    if (v !== 0) params.push([i, v]);
  });
  w.record(RecType.HVM_PARAMS, encodeHvmParams(params, le));

  const gt = d.grantTable;
  const frames = new Uint8Array(gt.nrFrames * PAGE_BYTES);
  gt.frames.forEach((mfn, i) => {
    const off = hv.memory.frameOffset(mfn);
    frames.set(hv.memory.chunk(mfn).u8.subarray(off, off + PAGE_BYTES), i * PAGE_BYTES);
  });
  w.record(
    RecType.RV32_GRANT_TABLE,
    encodeGrantTable({ version: gt.version, gfns: gt.frameGfn.map((g) => (g < 0 ? NO_GFN : g)), frames }, le),
  );

  const kept = d.evtchn.boundPorts().filter((port) => !(opts.deviceModelsMove && d.evtchn.isXenConsumer(port)));
  const ports: EvtchnRec[] = kept.map((port) => ({
    port,
    state: d.evtchn.state(port),
    vcpu: d.evtchn.notifyVcpu(port),
    u1: d.evtchn.u1(port),
    u2: d.evtchn.u2(port),
  }));
  w.record(RecType.RV32_EVTCHN, encodeEvtchn(ports, le));

  const now = host.now();
  for (const v of d.vcpus) {
    let flags = 0;
    if (v.online) flags |= VcpuRecFlag.ONLINE;
    if (v.initialised) flags |= VcpuRecFlag.INITIALISED;
    if (v.placement !== null) flags |= VcpuRecFlag.VCPU_INFO;
    const regs = new Int32Array(VCPU_SAVED_SLOTS.length);
    if (v.startContext !== null) {
      // Initialised but never brought up: the context waits for VCPUOP_up.
      flags |= VcpuRecFlag.START_CONTEXT;
      VCPU_SAVED_SLOTS.forEach((slot, i) => {
        regs[i] = slot < 32 ? v.startContext!.regs[slot]! : slot === 32 ? v.startContext!.pc : 0;
      });
    } else {
      const state = host.vcpuState(v.id);
      if (state === undefined) throw new SaveError(`domain ${d.domid}: vCPU ${v.id} has no register block`);
      VCPU_SAVED_SLOTS.forEach((slot, i) => {
        regs[i] = state[slot]!;
      });
    }
    const timerNs = v.singleshotDeadlineNs === null ? -1 : Math.max(0, v.singleshotDeadlineNs - now);
    w.record(
      RecType.RV32_VCPU,
      encodeVcpu(
        {
          vcpuId: v.id,
          flags,
          vcpuInfoGfn: v.placement?.gfn ?? NO_GFN,
          vcpuInfoOffset: v.placement?.offset ?? 0,
          timerNs,
          regs,
        },
        le,
      ),
    );
  }
  w.record(RecType.END);
}

/**
 * The toolstack's pause (XEN_DOMCTL_pausedomain without a caller): counted on the domain, the
 * scheduling layer's gate on the first one.
 */
export function pauseDomain(hv: Hypervisor, d: Domain): number {
  const first = !d.paused;
  const rc = d.pause();
  if (rc < 0 || !first) return rc;
  const r = hv.control?.pauseDomain(d.domid) ?? err("ENOSYS");
  if (r < 0) d.unpause();
  return Math.min(r, 0);
}

/** Undoes one pauseDomain (or the creation pause of a restored domain). */
export function unpauseDomain(hv: Hypervisor, d: Domain): number {
  const rc = d.unpause();
  if (rc < 0 || d.paused) return rc;
  const r = hv.control?.unpauseDomain(d.domid) ?? err("ENOSYS");
  if (r < 0) d.pause();
  return Math.min(r, 0);
}

/**
 * Non-live save of a paused domain whose vCPUs are off the pCPUs (xl save, after the pause):
 * the whole stream, every RAM page once. Returns bytes and pages sent.
 */
export function saveDomain(
  w: StreamWriter,
  hv: Hypervisor,
  d: Domain,
  host: SaveHost,
  opts: SaveOptions = {},
): { readonly bytes: number; readonly pages: number } {
  checkSaveable(hv, d, opts);
  writeStaticData(w, d);
  const pages = writePages(w, hv, d, ramGfns(d));
  writeDomainState(w, hv, d, host, opts);
  return { bytes: w.bytes, pages };
}
