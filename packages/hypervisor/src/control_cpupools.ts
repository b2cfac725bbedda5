/**
 * A reference `ControlHooks` over `Cpupools` (sched/cpupool.ts): what a driver installs on
 * `Hypervisor.control` so that domctl/sysctl reach its scheduling layer.
 *
 * - pause blocks every unit of the domain and remembers which were runnable; unpause wakes
 *   those. A new domain (paused, as every new domain is) remembers its vCPU 0, so the first
 *   unpause starts the boot vCPU and only it. While a domain is paused a driver must wake its
 *   vCPUs through `wake()` here, which defers the wake to the unpause.
 * - affinity goes to `adjustAffinity`, parameters to `set/getDomainParams` and
 *   `set/getVcpuParams`, pool ops to `Cpupools`, with Xen's errnos.
 *
 * After each call the driver collects `pools.takeTickles()` and re-arms its timer at
 * `pools.nextTimerNs()`, as after any other scheduler call. moveDomain and rmcpu return -EAGAIN
 * while a vCPU concerned is still on a pCPU; the toolstack retries once the pCPUs have
 * rescheduled (Xen pauses synchronously instead).
 */
import type {
  AffinityMasks,
  ControlHooks,
  CpupoolInfoResult,
  DomctlVcpuInfo,
  HostCpuInfo,
  PoolParamsInfo,
  SchedParamsInfo,
} from "./control.js";
import { Errno } from "./public/errno.js";
import { XEN_SYSCTL_CPUPOOL_PAR_ANY } from "./public/xen.js";
import { CpuMask } from "./sched/cpumask.js";
import type { Cpupools, SchedOptions } from "./sched/cpupool.js";
import {
  type PoolParamsUpdate,
  type SchedName,
  type SchedParamsUpdate,
  type SchedUnit,
  XEN_SCHEDULER,
} from "./sched/types.js";

export interface CpupoolControlOptions {
  /** The clock every scheduler call is made at (ns); e.g. `() => hv.now()`. */
  readonly now: () => number;
  /** Reported as physinfo.cpu_khz (default 10000 kHz: the 10 MHz guest timebase). */
  readonly cpuKhz?: number;
  /** Options for the schedulers of pools made by XEN_SYSCTL_CPUPOOL_OP_CREATE. */
  readonly schedOptions?: SchedOptions;
}

const SCHED_BY_ID: ReadonlyMap<number, SchedName> = new Map([
  [XEN_SCHEDULER.credit2, "credit2"],
  [XEN_SCHEDULER.rtds, "rtds"],
  [XEN_SCHEDULER.null, "null"],
]);

export class CpupoolControl implements ControlHooks {
  /** Per paused domain: the vCPUs to wake on unpause. */
  private readonly pausedRunnable = new Map<number, Set<number>>();
  private readonly now: () => number;
  private readonly cpuKhz: number;

  constructor(
    readonly pools: Cpupools,
    private readonly opts: CpupoolControlOptions,
  ) {
    this.now = opts.now;
    this.cpuKhz = opts.cpuKhz ?? 10_000;
  }

  // ---- driver helpers ----

  isPaused(domid: number): boolean {
    return this.pausedRunnable.has(domid);
  }

  /** Wakes a vCPU for an event; while its domain is paused the wake waits for the unpause. */
  wake(domid: number, vcpu: number): number {
    const held = this.pausedRunnable.get(domid);
    if (held === undefined) return this.pools.wake(domid, vcpu, this.now());
    if (this.pools.unit(domid, vcpu) === undefined) return -Errno.ENOENT;
    held.add(vcpu);
    return 0;
  }

  /**
   * The vCPU blocked by itself (WFI, SCHEDOP_block/poll). While its domain is paused it is
   * blocked already; it only stops being one the unpause should wake.
   */
  block(domid: number, vcpu: number): number {
    const held = this.pausedRunnable.get(domid);
    if (held === undefined) return this.pools.block(domid, vcpu, this.now());
    held.delete(vcpu);
    return 0;
  }

  /** VCPUOP_down (or the domain going away): the vCPU is not run again, nor woken by the unpause. */
  offline(domid: number, vcpu: number): number {
    this.pausedRunnable.get(domid)?.delete(vcpu);
    return this.pools.offline(domid, vcpu, this.now());
  }

  /** SCHEDOP_yield; a no-op while the domain is paused (its vCPUs are off the run queues). */
  yield(domid: number, vcpu: number): number {
    return this.pausedRunnable.has(domid) ? 0 : this.pools.yield(domid, vcpu, this.now());
  }

  // ---- domains ----

  domainCreated(domid: number, nrVcpus: number, poolId: number): number {
    const rc = this.pools.addDomain(domid, nrVcpus, poolId, this.now(), "blocked");
    // Xen: an unknown cpupool_id is -ENOENT (Cpupools says -ESRCH).
    if (rc === -Errno.ESRCH) return -Errno.ENOENT;
    if (rc < 0) return rc;
    this.pausedRunnable.set(domid, new Set([0]));
    return 0;
  }

  domainDestroyed(domid: number): void {
    this.pausedRunnable.delete(domid);
    const now = this.now();
    for (const u of this.pools.units(domid)) if (u.state === "runnable") this.pools.block(domid, u.vcpuId, now);
    this.pools.removeDomain(domid, now);
  }

  pauseDomain(domid: number): number {
    if (this.pools.poolOfDomain(domid) === undefined) return -Errno.ESRCH;
    if (this.pausedRunnable.has(domid)) return 0;
    const now = this.now();
    const held = new Set<number>();
    for (const u of this.pools.units(domid)) {
      if (u.state !== "runnable") continue;
      held.add(u.vcpuId);
      this.pools.block(domid, u.vcpuId, now);
    }
    this.pausedRunnable.set(domid, held);
    return 0;
  }

  unpauseDomain(domid: number): number {
    if (this.pools.poolOfDomain(domid) === undefined) return -Errno.ESRCH;
    const held = this.pausedRunnable.get(domid);
    if (held === undefined) return 0;
    this.pausedRunnable.delete(domid);
    const now = this.now();
    for (const v of [...held].sort((a, b) => a - b)) {
      const u = this.pools.unit(domid, v);
      // Held vCPUs were runnable or woken while paused (a VCPUOP_up may have come from offline).
      if (u !== undefined && u.state !== "runnable") this.pools.wake(domid, v, now);
    }
    return 0;
  }

  domainPool(domid: number): { readonly poolId: number; readonly schedId: number } | number {
    const p = this.pools.poolOfDomain(domid);
    return p === undefined ? -Errno.ESRCH : { poolId: p.id, schedId: p.sched.schedId };
  }

  domainCpuTimeNs(domid: number): number {
    return this.pools.units(domid).reduce((t, u) => t + u.runNs, 0);
  }

  domainRunState(domid: number): { readonly online: number; readonly running: boolean; readonly blocked: boolean } {
    const held = this.pausedRunnable.get(domid);
    const online = this.pools.units(domid).filter((u) => u.state !== "offline");
    return {
      online: online.length,
      running: online.some((u) => u.running),
      blocked: online.length > 0 && online.every((u) => u.state === "blocked" && !held?.has(u.vcpuId)),
    };
  }

  vcpuInfo(domid: number, vcpu: number): DomctlVcpuInfo | number {
    const u = this.unitOf(domid, vcpu);
    if (typeof u === "number") return u;
    return {
      online: u.state !== "offline",
      blocked: u.state === "blocked" && !this.pausedRunnable.get(domid)?.has(vcpu),
      running: u.running,
      cpuTimeNs: u.runNs,
      cpu: u.processor ?? u.lastPcpu ?? 0,
    };
  }

  // ---- affinity ----

  private hostIds(): number[] {
    return this.pools.hostPcpus().map((p) => p.id);
  }

  private toList(m: CpuMask): number[] {
    return m.within(this.hostIds());
  }

  /** A list naming every host pCPU becomes CpuMask.ALL, so pCPUs added later stay allowed. */
  private toMask(ids: readonly number[]): CpuMask {
    const host = this.hostIds();
    return host.every((id) => ids.includes(id)) ? CpuMask.ALL : CpuMask.from(ids);
  }

  private unitOf(domid: number, vcpu: number): SchedUnit | number {
    if (this.pools.poolOfDomain(domid) === undefined) return -Errno.ESRCH;
    return this.pools.unit(domid, vcpu) ?? -Errno.EINVAL;
  }

  getAffinity(domid: number, vcpu: number): AffinityMasks | number {
    const u = this.unitOf(domid, vcpu);
    if (typeof u === "number") return u;
    return { hard: this.toList(u.hard), soft: this.toList(u.soft) };
  }

  setAffinity(
    domid: number,
    vcpu: number,
    hard: readonly number[] | null,
    soft: readonly number[] | null,
  ): AffinityMasks | number {
    const u = this.unitOf(domid, vcpu);
    if (typeof u === "number") return u;
    const h = hard === null ? u.hard : this.toMask(hard);
    const s = soft === null ? u.soft : this.toMask(soft);
    const rc = this.pools.adjustAffinity(domid, vcpu, h, s, this.now());
    if (rc < 0) return rc;
    const pool = this.pools.poolOfDomain(domid)!.pcpus;
    const effHard = u.hard.within(pool);
    return { hard: effHard, soft: u.soft.within(effHard) };
  }

  // ---- scheduling parameters ----

  getSchedParams(domid: number): SchedParamsInfo | number {
    const p = this.pools.poolOfDomain(domid);
    if (p === undefined) return -Errno.ESRCH;
    const params = this.pools.getDomainParams(domid);
    return typeof params === "number" ? params : { schedId: p.sched.schedId, params };
  }

  setSchedParams(domid: number, p: SchedParamsUpdate): number {
    return this.pools.setDomainParams(domid, p, this.now());
  }

  getVcpuSchedParams(domid: number, vcpu: number): SchedParamsInfo | number {
    const p = this.pools.poolOfDomain(domid);
    if (p === undefined) return -Errno.ESRCH;
    const params = this.pools.getVcpuParams(domid, vcpu);
    return typeof params === "number" ? params : { schedId: p.sched.schedId, params };
  }

  setVcpuSchedParams(domid: number, vcpu: number, p: SchedParamsUpdate): number {
    return this.pools.setVcpuParams(domid, vcpu, p, this.now());
  }

  // ---- host and pools ----

  schedId(): number {
    return this.pools.pool(0)!.sched.schedId;
  }

  hostCpus(): HostCpuInfo {
    const ids = this.hostIds();
    return { nrCpus: ids.length, maxCpuId: Math.max(...ids), cpuKhz: this.cpuKhz };
  }

  cpupoolCreate(poolId: number, schedId: number): number {
    const sched = SCHED_BY_ID.get(schedId);
    if (sched === undefined) return -Errno.ENOENT;
    let id = poolId;
    if (poolId === XEN_SYSCTL_CPUPOOL_PAR_ANY) {
      id = 0;
      while (this.pools.pool(id) !== undefined) id++;
    }
    // Xen's pools have no names (the toolstack keeps them in XenStore); Cpupools wants unique ones.
    let name = `Pool-${id}`;
    for (let n = 1; this.pools.poolIds().some((p) => this.pools.pool(p)!.name === name); n++) name = `Pool-${id}.${n}`;
    return this.pools.create(id, name, sched, this.opts.schedOptions);
  }

  cpupoolDestroy(poolId: number): number {
    return this.pools.destroy(poolId);
  }

  cpupoolInfo(poolId: number): CpupoolInfoResult | number {
    const id = this.pools.poolIds().find((p) => p >= poolId);
    if (id === undefined) return -Errno.ENOENT;
    const i = this.pools.info(id)!;
    return { poolId: i.id, schedId: i.schedId, pcpus: i.pcpus, nDom: i.domains.length };
  }

  cpupoolAddCpu(poolId: number, cpu: number): number {
    if (this.pools.pool(poolId) === undefined) return -Errno.ENOENT;
    let c = cpu;
    if (cpu === XEN_SYSCTL_CPUPOOL_PAR_ANY) {
      const free = this.pools.freePcpus();
      if (free.length === 0) return -Errno.ENODEV;
      c = free[0]!;
    }
    return this.pools.addPcpu(poolId, c, this.now());
  }

  cpupoolRemoveCpu(poolId: number, cpu: number): number {
    const pool = this.pools.pool(poolId);
    if (pool === undefined) return -Errno.ENOENT;
    let c = cpu;
    if (cpu === XEN_SYSCTL_CPUPOOL_PAR_ANY) {
      const ids = pool.pcpus.filter((p) => !(poolId === 0 && p === this.pools.bootPcpu));
      if (ids.length === 0) return -Errno.ENODEV;
      c = ids[ids.length - 1]!;
    }
    const rc = this.pools.removePcpu(poolId, c, this.now());
    // Xen: a pCPU that is not in this pool is -ENODEV.
    return rc === -Errno.EADDRNOTAVAIL ? -Errno.ENODEV : rc;
  }

  cpupoolMoveDomain(poolId: number, domid: number): number {
    if (this.pools.poolOfDomain(domid) === undefined) return -Errno.EINVAL;
    if (this.pools.pool(poolId) === undefined) return -Errno.ENOENT;
    return this.pools.moveDomain(domid, poolId, this.now());
  }

  cpupoolFreeCpus(): readonly number[] {
    return this.pools.freePcpus();
  }

  getPoolParams(poolId: number): PoolParamsInfo | number {
    const p = this.pools.pool(poolId);
    return p === undefined ? -Errno.ESRCH : { schedId: p.sched.schedId, params: p.sched.getPoolParams() };
  }

  setPoolParams(poolId: number, p: PoolParamsUpdate): number {
    const pool = this.pools.pool(poolId);
    return pool === undefined ? -Errno.ESRCH : pool.sched.setPoolParams(p, this.now());
  }
}
