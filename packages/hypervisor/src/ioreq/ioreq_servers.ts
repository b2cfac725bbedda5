/**
 * The core's IOREQ servers (Xen's xen/common/ioreq.c + the dm_op handlers of dm.c): device
 * models register for a guest's MMIO ranges; an access there leaves the vCPU as an MMIO exit,
 * becomes an ioreq in the server's shared page, and the vCPU waits until the device model answers
 * (IORESP_READY + a send on its port). Writes to posted ranges go to the buffered ring instead
 * and the vCPU runs on.
 *
 * When a device model's domain dies, the ranges its servers claimed stay *parked* for the target
 * until the target dies: an access no live server claims reads all-ones and writes go nowhere
 * (Xen's null handler for an HVM access no ioreq server claims), so a guest whose backend is
 * being restarted sees a dead device rather than a fault.
 *
 * Who may be a device model for whom: a privileged domain for anyone; otherwise only a domain the
 * toolstack named with setDmTarget (Xen's XEN_DOMCTL_set_target, here a set per emulator so one
 * driver domain can serve several guests).
 */
import type { Domain } from "../domain.js";
import { evtchnAllocXenConsumer, evtchnClose, notifyViaXenEventChannel } from "../event_channel/event_channel.js";
import type { Hypervisor } from "../hypervisor.js";
import { err } from "../public/errno.js";
import {
  HVM_IOREQSRV_BUFIOREQ_ATOMIC,
  HVM_IOREQSRV_BUFIOREQ_OFF,
  IOREQS_PER_PAGE,
  IoreqState,
  MAX_NR_IOREQ_SERVERS,
  XEN_DMOP_IO_RANGE_MEMORY,
  XENMEM_resource_ioreq_server_frame_bufioreq,
  XENMEM_resource_ioreq_server_frame_ioreq,
  XENON_DMOP_IO_RANGE_MEMORY_POSTED,
} from "../public/ioreq.js";
import { IoreqServer } from "./ioreq_server.js";

/**
 * What the MMIO exit path should do with the vCPU: "dropped" is an access to a parked window (its
 * device model died): a read completes with all-ones, a write is discarded, the vCPU runs on.
 */
export type IoreqSendResult = "wait" | "posted" | "unclaimed" | "dropped";

export interface IoreqServerInfo {
  readonly bufioreqPort: number;
  /** Ports in the target the emulator binds to, one per target vCPU (also in each slot's vp_eport). */
  readonly vcpuPorts: readonly number[];
}

/** Posted ranges must lie in one 1 MiB-aligned region (buf_ioreq carries addr:20). */
const POSTED_REGION = 1 << 20;

export class IoreqServers {
  /** target domid -> its servers by id (ioservid_t, 0..MAX_NR_IOREQ_SERVERS-1). */
  private readonly byTarget = new Map<number, Array<IoreqServer | undefined>>();
  private readonly dmTargets = new Map<number, Set<number>>();
  /** vcpuKey-like "domid:vcpu" -> the server a waiting vCPU's request is with. */
  private readonly waiting = new Map<string, IoreqServer>();
  /** target domid -> windows of dead device models (inclusive bounds). */
  private readonly parked = new Map<number, Array<{ start: number; end: number }>>();
  /** Bumped whenever a domain's served ranges change (the machine re-attaches its vCPUs). */
  private readonly generations = new Map<number, number>();

  constructor(private readonly hv: Hypervisor) {}

  /** XEN_DOMCTL_set_target: `emulator` may run device models for `target` (or no longer). */
  setDmTarget(emulator: number, target: number, allowed: boolean): void {
    let s = this.dmTargets.get(emulator);
    if (s === undefined) {
      s = new Set();
      this.dmTargets.set(emulator, s);
    }
    if (allowed) s.add(target);
    else s.delete(target);
  }

  /** XSM_DM_PRIV: privileged, or named by setDmTarget; never oneself. */
  mayServe(c: Domain, target: Domain): boolean {
    if (c.domid === target.domid) return false;
    return c.flags.privileged || (this.dmTargets.get(c.domid)?.has(target.domid) ?? false);
  }

  /** XEN_DMOP_create_ioreq_server: the new server's id, or -errno. */
  create(c: Domain, target: Domain, handleBufioreq: number): number {
    if (!this.mayServe(c, target)) return err("EPERM");
    if (handleBufioreq !== HVM_IOREQSRV_BUFIOREQ_OFF && handleBufioreq !== HVM_IOREQSRV_BUFIOREQ_ATOMIC)
      return err("EINVAL");
    if (target.vcpus.length > IOREQS_PER_PAGE) return err("EINVAL");
    let list = this.byTarget.get(target.domid);
    if (list === undefined) {
      list = [];
      this.byTarget.set(target.domid, list);
    }
    let id = 0;
    while (id < MAX_NR_IOREQ_SERVERS && list[id] !== undefined) id++;
    if (id === MAX_NR_IOREQ_SERVERS) return err("ENOSPC");
    const { memory, allocator } = this.hv;
    const ioreqMfn = allocator.alloc();
    if (ioreqMfn < 0) return err("ENOMEM");
    let bufMfn = -1;
    if (handleBufioreq !== HVM_IOREQSRV_BUFIOREQ_OFF) {
      bufMfn = allocator.alloc();
      if (bufMfn < 0) {
        allocator.free(ioreqMfn);
        return err("ENOMEM");
      }
      memory.scrub(bufMfn);
    }
    memory.scrub(ioreqMfn);
    const ports: number[] = [];
    const undo = (rc: number): number => {
      for (const p of ports) evtchnClose(this.hv, target, p, true);
      allocator.free(ioreqMfn);
      if (bufMfn >= 0) allocator.free(bufMfn);
      return rc;
    };
    for (const v of target.vcpus) {
      const p = evtchnAllocXenConsumer(target, v.id, c.domid);
      if (p < 0) return undo(p);
      ports.push(p);
    }
    let bufPort = 0;
    if (bufMfn >= 0) {
      bufPort = evtchnAllocXenConsumer(target, 0, c.domid);
      if (bufPort < 0) return undo(bufPort);
    }
    list[id] = new IoreqServer(memory, id, c.domid, target.domid, ioreqMfn, bufMfn, ports, bufPort);
    return id;
  }

  /** The server `id` of `target`, if `c` is its emulator. */
  private own(c: Domain, target: Domain, id: number): IoreqServer | number {
    const s = Number.isInteger(id) ? this.byTarget.get(target.domid)?.[id] : undefined;
    if (s === undefined) return err("ENOENT");
    return s.emulator === c.domid ? s : err("EPERM");
  }

  /** XEN_DMOP_get_ioreq_server_info (the no_gfns flavour: pages come from acquireResource). */
  info(c: Domain, target: Domain, id: number): IoreqServerInfo | number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    return { bufioreqPort: s.bufPort, vcpuPorts: [...s.vcpuPorts] };
  }

  /** XENMEM_acquire_resource(XENMEM_resource_ioreq_server, id, frame): the frame's mfn, or -errno. */
  acquireFrame(c: Domain, target: Domain, id: number, frame: number): number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    if (frame === XENMEM_resource_ioreq_server_frame_bufioreq) return s.bufMfn >= 0 ? s.bufMfn : err("EINVAL");
    if (frame === XENMEM_resource_ioreq_server_frame_ioreq(0)) return s.ioreqMfn;
    return err("EINVAL");
  }

  /** XEN_DMOP_map_io_range_to_ioreq_server (MEMORY, or Xenon's MEMORY_POSTED); inclusive bounds. */
  mapRange(c: Domain, target: Domain, id: number, type: number, start: number, end: number): number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    if (type !== XEN_DMOP_IO_RANGE_MEMORY && type !== XENON_DMOP_IO_RANGE_MEMORY_POSTED) return err("EINVAL");
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > 0xffff_ffff)
      return err("EINVAL");
    const posted = type === XENON_DMOP_IO_RANGE_MEMORY_POSTED;
    if (posted && (s.bufMfn < 0 || Math.floor(start / POSTED_REGION) !== Math.floor(end / POSTED_REGION)))
      return err("EINVAL");
    // Ranges of one kind never overlap, within a server or across the target's servers (Xen's rangeset -EEXIST).
    for (const other of this.byTarget.get(target.domid) ?? [])
      for (const r of other?.ranges ?? [])
        if (r.posted === posted && start <= r.end && r.start <= end) return err("EEXIST");
    s.ranges.push({ start, end, posted });
    this.bump(target.domid);
    return 0;
  }

  /** XEN_DMOP_unmap_io_range_from_ioreq_server: the exact range that was mapped. */
  unmapRange(c: Domain, target: Domain, id: number, type: number, start: number, end: number): number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    const posted = type === XENON_DMOP_IO_RANGE_MEMORY_POSTED;
    const i = s.ranges.findIndex((r) => r.start === start && r.end === end && r.posted === posted);
    if (i < 0) return err("ENOENT");
    s.ranges.splice(i, 1);
    this.bump(target.domid);
    return 0;
  }

  /** XEN_DMOP_set_ioreq_server_state: no request reaches a server until it is enabled. */
  setState(c: Domain, target: Domain, id: number, enabled: boolean): number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    if (s.enabled === enabled) return 0;
    s.enabled = enabled;
    if (!enabled) this.abandon(s);
    this.bump(target.domid);
    return 0;
  }

  /** XEN_DMOP_destroy_ioreq_server. */
  destroy(c: Domain, target: Domain, id: number): number {
    const s = this.own(c, target, id);
    if (typeof s === "number") return s;
    this.teardown(s);
    return 0;
  }

  /** Guest-physical [start, end) ranges enabled servers serve for `domid` (pCPU attach's mmioRanges). */
  mmioRanges(domid: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const s of this.byTarget.get(domid) ?? [])
      if (s?.enabled) for (const r of s.ranges) out.push([r.start, r.end + 1]);
    for (const r of this.parked.get(domid) ?? []) out.push([r.start, r.end + 1]);
    // Passed-through devices' registers exit to the core too (the core hands them to the device).
    out.push(...this.hv.passthrough.windows(domid));
    return out;
  }

  /** A device was assigned to `domid` or taken back: its exit ranges changed. */
  passthroughChanged(domid: number): void {
    this.bump(domid);
  }

  /** Changes whenever mmioRanges(domid) may have changed. */
  generation(domid: number): number {
    return this.generations.get(domid) ?? 0;
  }

  /** True while vCPU (domid, vcpu) waits for a device model's answer. */
  isWaiting(domid: number, vcpu: number): boolean {
    return this.waiting.has(`${domid}:${vcpu}`);
  }

  /**
   * An MMIO exit of vCPU `vcpu` of d: hands it to the server that claims it. "wait": the vCPU
   * must not run until hooks.ioreqDone; "posted": a buffered write, the vCPU runs on;
   * "unclaimed": no enabled server takes it (or its slot is not free: a broken device model).
   */
  send(d: Domain, vcpu: number, addr: number, size: number, write: boolean, value: number): IoreqSendResult {
    for (const s of this.byTarget.get(d.domid) ?? []) {
      if (s === undefined || !s.enabled) continue;
      const r = s.claim(addr, size, write);
      if (r === null) continue;
      if (write && r.posted && s.postBuffered(addr, size, value)) {
        notifyViaXenEventChannel(this.hv, d, s.bufPort);
        return "posted";
      }
      if (vcpu >= s.vcpuPorts.length || s.slotState(vcpu) !== IoreqState.NONE) return "unclaimed";
      s.post(vcpu, addr, size, write, value);
      this.waiting.set(`${d.domid}:${vcpu}`, s);
      notifyViaXenEventChannel(this.hv, d, s.vcpuPorts[vcpu]!);
      return "wait";
    }
    for (const r of this.parked.get(d.domid) ?? []) if (addr >= r.start && addr + size - 1 <= r.end) return "dropped";
    return "unclaimed";
  }

  /**
   * A device model sent on its port bound to d's hypervisor-consumed `port`: if that vCPU's slot
   * holds an answer, take it and let the vCPU resume (hooks.ioreqDone). Anything else is spurious.
   */
  consumerNotify(d: Domain, port: number): void {
    for (const s of this.byTarget.get(d.domid) ?? []) {
      if (s === undefined) continue;
      const vcpu = s.vcpuPorts.indexOf(port);
      if (vcpu < 0) continue;
      const key = `${d.domid}:${vcpu}`;
      if (this.waiting.get(key) !== s || s.slotState(vcpu) !== IoreqState.IORESP_READY) return;
      const value = s.takeResponse(vcpu);
      this.waiting.delete(key);
      this.hv.hooks.ioreqDone?.(d.domid, vcpu, value);
      return;
    }
  }

  /** Domain destruction: every server it emulates or is emulated by goes away. */
  domainDestroyed(domid: number): void {
    this.parked.delete(domid);
    for (const list of this.byTarget.values())
      for (const s of list) {
        if (s === undefined || s.emulator !== domid || s.target === domid) continue;
        const target = this.hv.domains.get(s.target);
        if (target === undefined || target.dying) continue;
        let p = this.parked.get(s.target);
        if (p === undefined) {
          p = [];
          this.parked.set(s.target, p);
        }
        for (const r of s.ranges)
          if (!p.some((q) => q.start <= r.start && r.end <= q.end)) p.push({ start: r.start, end: r.end });
      }
    for (const list of this.byTarget.values())
      for (const s of list) if (s !== undefined && (s.emulator === domid || s.target === domid)) this.teardown(s);
    this.byTarget.delete(domid);
    this.dmTargets.delete(domid);
    for (const set of this.dmTargets.values()) set.delete(domid);
    this.generations.delete(domid);
  }

  private teardown(s: IoreqServer): void {
    this.abandon(s);
    const list = this.byTarget.get(s.target);
    if (list !== undefined) list[s.id] = undefined;
    const target = this.hv.domains.get(s.target);
    if (target !== undefined && !target.dying) {
      for (const p of s.vcpuPorts) evtchnClose(this.hv, target, p, true);
      if (s.bufPort !== 0) evtchnClose(this.hv, target, s.bufPort, true);
    }
    this.hv.memory.scrub(s.ioreqMfn);
    this.hv.allocator.free(s.ioreqMfn);
    if (s.bufMfn >= 0) {
      this.hv.memory.scrub(s.bufMfn);
      this.hv.allocator.free(s.bufMfn);
    }
    this.bump(s.target);
  }

  /** vCPUs waiting on a server that stops serving resume as if the bus read all-ones (writes are dropped). */
  private abandon(s: IoreqServer): void {
    for (const [key, w] of this.waiting) {
      if (w !== s) continue;
      this.waiting.delete(key);
      const vcpu = Number(key.slice(key.indexOf(":") + 1));
      s.clearSlot(vcpu);
      this.hv.hooks.ioreqDone?.(s.target, vcpu, 0xffff_ffff);
    }
  }

  private bump(domid: number): void {
    this.generations.set(domid, this.generation(domid) + 1);
  }
}
