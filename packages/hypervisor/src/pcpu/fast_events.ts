/**
 * Event-channel hypercalls served on the pCPU worker that took the ECALL, as Xen serves them on
 * the pCPU that made them: EVTCHNOP_send on an interdomain port, EVTCHNOP_unmask, and
 * SCHEDOP_poll when one of its ports is pending already (the common case of a poll loop; a poll
 * that must sleep goes to the core, which blocks the vCPU). Everything
 * it needs is shared memory the core handed over (DomainShare): port tables, shared_info frames,
 * the vCPUs' upcall lines. The bit work is event_2l.ts's set2lBits / unmask2lBits, the same code
 * the core runs.
 *
 * Rule: serve only what is plainly safe and would have the same outcome on the core; for
 * anything else (unknown domain, not live, port invalid / not interdomain / a hypervisor
 * consumer, peer not pointing back, vCPU without a reachable vcpu_info, table being written,
 * unreadable argument) return false and let the ECALL exit to the core, which decides. Nothing
 * here throws on guest input, and a guest reaches another domain only through a channel both
 * port tables agree it holds.
 */
import { type MachineMemory, VcpuSlot } from "@xenon/hw";
import { Set2l, set2lBits, unmask2lBits } from "../event_channel/event_2l.js";
import { Ecs, EvtchnPortView } from "../event_channel/port_table.js";
import type { P2mReader } from "../p2m/p2m.js";
import { p2mIsRam } from "../p2m/types.js";
import { EvtchnOp } from "../public/event_channel.js";
import { VcpuInfo } from "../public/layout.js";
import { Hypercall, SCHED_POLL_MAX_PORTS, SchedOp } from "../public/xen.js";
import { evtchnMask, evtchnPending, type SharedRegion, sharedInfoRegion, vcpuInfoInFrame } from "../shared_info.js";
import { DomainCtlSlot, type DomainShare, onPcpuSlot, ringBell } from "./contract.js";

/** RISC-V argument registers in the vCPU state block (x10 = a0, x11 = a1, x17 = a7). */
const A0 = 10;
const A1 = 11;
const A7 = 17;

interface VcpuView {
  readonly state: Int32Array;
  /** vcpu_info region cached for (mfn, off) of the line it was built from. */
  infoMfn: number;
  infoOff: number;
  info: SharedRegion | null;
}

interface DomainView {
  readonly domid: number;
  readonly ports: EvtchnPortView;
  readonly sharedInfoMfn: number;
  readonly ctl: Int32Array;
  readonly vcpus: VcpuView[];
  /** shared_info, resolved on first use (may fetch the chunk: never inside a pinned section). */
  shared: SharedRegion | null;
}

export class FastEvents {
  private readonly doms = new Map<number, DomainView>();
  /** Counters for tests and diagnostics. */
  served = 0;
  declined = 0;

  constructor(
    private readonly memory: MachineMemory,
    /** Called when an upcall edge reached a vCPU not on a pCPU (the worker posts a WakeMsg). */
    private readonly wake: (domid: number, vcpu: number) => void,
  ) {}

  addDomain(share: DomainShare): void {
    this.doms.set(share.domid, {
      domid: share.domid,
      ports: new EvtchnPortView(share.ports, share.maxPort),
      sharedInfoMfn: share.sharedInfoMfn,
      ctl: new Int32Array(share.ctl),
      vcpus: share.vcpuStates.map((b) => ({ state: new Int32Array(b), infoMfn: -1, infoOff: -1, info: null })),
      shared: null,
    });
  }

  removeDomain(domid: number): void {
    this.doms.delete(domid);
  }

  /** The domain's control block, if this worker knows the domain. */
  ctl(domid: number): Int32Array | undefined {
    return this.doms.get(domid)?.ctl;
  }

  /**
   * Serves the ECALL in `state` (vCPU `vcpuId` of `domid`) if it is a fast event op and plainly
   * safe: a0 then holds the result and the vCPU continues. False: leave it to the core.
   */
  hypercall(domid: number, vcpuId: number, state: Int32Array, p2m: P2mReader): boolean {
    if (state[A7]! >>> 0 === Hypercall.sched_op && state[A0]! >>> 0 === SchedOp.poll)
      return this.pollPending(domid, state, p2m);
    if (state[A7]! >>> 0 !== Hypercall.event_channel_op) return false;
    const cmd = state[A0]! >>> 0;
    if (cmd !== EvtchnOp.send && cmd !== EvtchnOp.unmask) return false;
    const d = this.doms.get(domid);
    if (d === undefined || Atomics.load(d.ctl, DomainCtlSlot.LIVE) !== 1 || vcpuId >= d.vcpus.length) return false;
    // struct evtchn_send / evtchn_unmask: { evtchn_port_t port; } (u32 at offset 0).
    const port = this.readGuestU32(p2m, state[A1]! >>> 0);
    if (port < 0) return false;
    const ok = cmd === EvtchnOp.send ? this.send(d, port) : this.unmask(d, port);
    if (!ok) {
      this.declined++;
      return false;
    }
    this.served++;
    state[A0] = 0;
    return true;
  }

  /**
   * SCHEDOP_poll (semantics.ts schedPoll) when a listed port is pending: returns 0 at once, as the
   * core would. Unreadable arguments, more than SCHED_POLL_MAX_PORTS ports, an invalid port, or
   * nothing pending: false (the core answers -EFAULT/-EINVAL or blocks the vCPU).
   */
  private pollPending(domid: number, state: Int32Array, p2m: P2mReader): boolean {
    const d = this.doms.get(domid);
    if (d === undefined || Atomics.load(d.ctl, DomainCtlSlot.LIVE) !== 1) return false;
    // struct sched_poll: ports handle u64 @0, nr_ports u32 @8, timeout u64 @16.
    const arg = state[A1]! >>> 0;
    const list = this.readGuestU32(p2m, arg);
    const listHi = this.readGuestU32(p2m, arg + 4);
    const n = this.readGuestU32(p2m, arg + 8);
    if (list < 0 || listHi !== 0 || n < 0 || n > SCHED_POLL_MAX_PORTS) return false;
    const s = d.ports.seq();
    if ((s & 1) !== 0) return false;
    d.shared ??= sharedInfoRegion(this.memory, d.sharedInfoMfn);
    let pending = false;
    for (let i = 0; i < n; i++) {
      const port = this.readGuestU32(p2m, list + 4 * i);
      if (port < 0 || !d.ports.isValid(port)) return false;
      if (evtchnPending.test(d.shared, port)) pending = true;
    }
    if (!pending || d.ports.seq() !== s) return false;
    this.served++;
    state[A0] = 0;
    return true;
  }

  /** Interdomain EVTCHNOP_send (event_channel.ts evtchnSend's interdomain case). */
  send(d: DomainView, port: number): boolean {
    const lt = d.ports;
    if (!lt.isValid(port)) return false;
    const ls = lt.seq();
    if ((ls & 1) !== 0) return false;
    if (lt.isXenConsumer(port) || lt.state(port) !== Ecs.interdomain) return false;
    const rdomid = lt.u1(port);
    const rport = lt.u2(port);
    if (lt.seq() !== ls) return false;
    const rd = this.doms.get(rdomid);
    if (rd === undefined || Atomics.load(rd.ctl, DomainCtlSlot.LIVE) !== 1) return false;
    const rt = rd.ports;
    if (!rt.isValid(rport)) return false;
    const rs = rt.seq();
    if ((rs & 1) !== 0) return false;
    // The peer must point back at exactly this port: a channel both tables agree on.
    if (
      rt.state(rport) !== Ecs.interdomain ||
      rt.isXenConsumer(rport) ||
      rt.u1(rport) !== d.domid ||
      rt.u2(rport) !== port
    ) {
      return false;
    }
    // A masked target raises no upcall; only the core can tell a vCPU polling on it (portPending).
    rd.shared ??= sharedInfoRegion(this.memory, rd.sharedInfoMfn);
    if (evtchnMask.test(rd.shared, rport)) return false;
    return this.deliver(rd, rs, rport, (shared, info) => set2lBits(shared, info, rport) === Set2l.upcall);
  }

  /** EVTCHNOP_unmask (event_channel.ts evtchnUnmask): any valid port of the caller's domain. */
  unmask(d: DomainView, port: number): boolean {
    if (!d.ports.isValid(port)) return false;
    const s = d.ports.seq();
    if ((s & 1) !== 0) return false;
    return this.deliver(d, s, port, (shared, info) => unmask2lBits(shared, info, port));
  }

  /**
   * Runs `bits` on d's shared_info and the vcpu_info of `port`'s notify vCPU (Domain.vcpu(id) ??
   * vCPU 0, as the core picks it), pinned on d's port table at snapshot `s`. On an upcall edge it
   * rings the vCPU's bell if the vCPU is on a pCPU, else has the core wake it.
   */
  private deliver(
    d: DomainView,
    s: number,
    port: number,
    bits: (shared: SharedRegion, info: SharedRegion) => boolean,
  ): boolean {
    let vid = d.ports.notifyVcpu(port);
    if (!(vid >= 0 && vid < d.vcpus.length)) vid = 0;
    const v = d.vcpus[vid];
    if (v === undefined) return false;
    // Resolve every frame first: a chunk fetch waits for the core, which may be waiting for us.
    const info = this.vcpuInfo(v);
    if (info === null) return false;
    d.shared ??= sharedInfoRegion(this.memory, d.sharedInfoMfn);
    if (!d.ports.pin(s)) return false;
    let edge: boolean;
    try {
      edge = bits(d.shared, info);
    } finally {
      d.ports.unpin();
    }
    if (edge) {
      // On a pCPU: its worker sees the line, maybe asleep in WFI on the bell. Else the core wakes it.
      if (Atomics.load(d.ctl, onPcpuSlot(vid)) !== 0) ringBell(d.ctl, vid);
      else this.wake(d.domid, vid);
    }
    return true;
  }

  /** The vcpu_info the vCPU's upcall line points at, or null (no line: the core's dummy). */
  private vcpuInfo(v: VcpuView): SharedRegion | null {
    const off = Atomics.load(v.state, VcpuSlot.UPCALL_LINE_OFF);
    if (off < 0 || off > 4096 - VcpuInfo.size || (off & 7) !== 0) return null;
    const mfn = Atomics.load(v.state, VcpuSlot.UPCALL_LINE_MFN) >>> 0;
    if (v.info === null || v.infoMfn !== mfn || v.infoOff !== off) {
      if (mfn >= this.memory.totalFrames) return null;
      v.info = vcpuInfoInFrame(this.memory, mfn, off);
      v.infoMfn = mfn;
      v.infoOff = off;
    }
    return v.info;
  }

  /** A u32 hypercall argument from guest RAM (as GuestMemory.readU32 would allow), or -1. */
  private readGuestU32(p2m: P2mReader, gpa: number): number {
    const off = gpa & 0xfff;
    if (off > 4096 - 4) return -1;
    const raw = p2m.rawEntry(Math.floor(gpa / 4096));
    if (raw < 0) return -1;
    const type = raw % 16;
    if (!p2mIsRam(type)) return -1;
    const mfn = (raw - type) / 16;
    const c = this.memory.chunk(mfn);
    const b = this.memory.frameOffset(mfn) + off;
    return (c.u8[b]! | (c.u8[b + 1]! << 8) | (c.u8[b + 2]! << 16) | (c.u8[b + 3]! << 24)) >>> 0;
  }
}
