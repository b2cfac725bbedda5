/**
 * Cpupools (Xen's sched/cpupool.c) and the host-wide entry point of the scheduling layer.
 *
 * Each pool has its own scheduler instance and its own pCPUs; a pCPU is in at most one pool
 * (or free, running nothing); a domain is in exactly one pool, and all its vCPUs are units of
 * that pool's scheduler. Pool 0 exists from the start and is never destroyed. Caller mistakes
 * return negative Xen errnos, as XEN_SYSCTL_cpupool_op does.
 *
 * The driver talks to this object only: doSchedule(pcpu) dispatches to the pCPU's pool,
 * wake/block/yield to the domain's pool; takeTickles/nextTimerNs/onTimer span all pools.
 */
import { Errno } from "../public/errno.js";
import { CpuMask } from "./cpumask.js";
import { type Credit2Options, Credit2Scheduler } from "./credit2.js";
import { type NullOptions, NullScheduler } from "./null.js";
import { RtdsScheduler } from "./rtds.js";
import {
  type Pcpu,
  type PcpuId,
  type SchedDecision,
  type SchedName,
  type SchedParams,
  type SchedParamsUpdate,
  SchedUnit,
  type Scheduler,
  type UnitState,
  validPcpu,
} from "./types.js";

/** XEN_SYSCTL_CPUPOOL_PAR_ANY: let create pick the id. */
export const CPUPOOL_PAR_ANY = 0xffffffff;

export interface SchedOptions {
  readonly credit2?: Credit2Options;
  readonly null?: NullOptions;
}

export function createScheduler(name: SchedName, opts: SchedOptions = {}): Scheduler {
  switch (name) {
    case "credit2":
      return new Credit2Scheduler(opts.credit2);
    case "rtds":
      return new RtdsScheduler();
    case "null":
      return new NullScheduler(opts.null);
  }
}

const SCHED_NAMES: readonly string[] = ["credit2", "rtds", "null"];

export class Cpupool {
  readonly domains = new Set<number>();
  constructor(
    readonly id: number,
    readonly name: string,
    readonly sched: Scheduler,
  ) {}

  get pcpus(): readonly PcpuId[] {
    return this.sched.pcpuIds();
  }
}

export interface CpupoolInfo {
  readonly id: number;
  readonly name: string;
  readonly sched: SchedName;
  readonly schedId: number;
  readonly pcpus: readonly PcpuId[];
  readonly domains: readonly number[];
}

export interface CpupoolsOptions {
  /** Every pCPU of the host. */
  readonly pcpus: readonly Pcpu[];
  /** Pool 0's scheduler, by name or as an instance (default credit2, Xen's default). */
  readonly sched?: SchedName | Scheduler;
  readonly schedOptions?: SchedOptions;
  /** pCPUs that start in pool 0 (default: all); the rest start free. Must include the boot pCPU. */
  readonly pool0Pcpus?: readonly PcpuId[];
  readonly pool0Name?: string;
  /** The pCPU that never leaves pool 0 (default: the lowest id, like Xen's cpu 0). */
  readonly bootPcpu?: PcpuId;
  readonly now?: number;
}

export class Cpupools {
  private readonly host = new Map<PcpuId, Pcpu>();
  private readonly pools = new Map<number, Cpupool>();
  private readonly pcpuPool = new Map<PcpuId, Cpupool>();
  private readonly domPool = new Map<number, Cpupool>();
  private readonly domUnits = new Map<number, SchedUnit[]>();
  /** The boot pCPU (lowest id unless told): like Xen's cpu 0, it never leaves pool 0. */
  readonly bootPcpu: PcpuId;

  constructor(opts: CpupoolsOptions) {
    if (opts.pcpus.length === 0) throw new RangeError("cpupools: a host needs at least one pCPU");
    for (const p of opts.pcpus) {
      if (!validPcpu(p) || this.host.has(p.id)) throw new RangeError(`cpupools: bad or duplicate pCPU ${p.id}`);
      this.host.set(p.id, p);
    }
    this.bootPcpu = opts.bootPcpu ?? Math.min(...this.host.keys());
    if (!this.host.has(this.bootPcpu)) throw new RangeError(`cpupools: unknown boot pCPU ${this.bootPcpu}`);
    const now = opts.now ?? 0;
    const s0 = opts.sched ?? "credit2";
    const pool0 = new Cpupool(
      0,
      opts.pool0Name ?? "Pool-0",
      typeof s0 === "string" ? createScheduler(s0, opts.schedOptions) : s0,
    );
    this.pools.set(0, pool0);
    const initial = opts.pool0Pcpus ?? [...this.host.keys()];
    if (!initial.includes(this.bootPcpu)) throw new RangeError("cpupools: pool 0 must hold the boot pCPU");
    for (const id of [...initial].sort((a, b) => a - b)) {
      const p = this.host.get(id);
      if (!p) throw new RangeError(`cpupools: unknown pCPU ${id}`);
      pool0.sched.addPcpu(p, now);
      this.pcpuPool.set(id, pool0);
    }
  }

  // ---- pools (XEN_SYSCTL_CPUPOOL_OP_*) ----
  /** Returns the new pool's id, or -EEXIST (id or name in use), -ENOENT (unknown scheduler), -ENOSPC, -EINVAL. */
  create(id: number, name: string, sched: SchedName | Scheduler, opts?: SchedOptions): number {
    if (typeof sched === "string" && !SCHED_NAMES.includes(sched)) return -Errno.ENOENT;
    if (!Number.isInteger(id) || id < 0 || id > CPUPOOL_PAR_ANY) return -Errno.EINVAL;
    // Xen allows at most twice as many pools as pCPUs.
    if (this.pools.size >= 2 * this.host.size) return -Errno.ENOSPC;
    let poolId = id;
    if (id === CPUPOOL_PAR_ANY) {
      poolId = 0;
      while (this.pools.has(poolId)) poolId++;
    } else if (this.pools.has(id)) {
      return -Errno.EEXIST;
    }
    for (const p of this.pools.values()) if (p.name === name) return -Errno.EEXIST;
    const scheduler = typeof sched === "string" ? createScheduler(sched, opts) : sched;
    if (scheduler.pcpuIds().length > 0 || scheduler.domainIds().length > 0) return -Errno.EINVAL;
    this.pools.set(poolId, new Cpupool(poolId, name, scheduler));
    return poolId;
  }

  /** -ENOENT no such pool; -EBUSY for pool 0, or while it still has domains or pCPUs. */
  destroy(id: number): number {
    const pool = this.pools.get(id);
    if (!pool) return -Errno.ENOENT;
    const hasPcpus = [...this.pcpuPool.values()].includes(pool); // draining ones too
    if (id === 0 || pool.domains.size > 0 || hasPcpus) return -Errno.EBUSY;
    this.pools.delete(id);
    return 0;
  }

  /** -ENOENT no such pool; -EINVAL no such pCPU; -ENODEV the pCPU is in a pool already. */
  addPcpu(poolId: number, cpu: PcpuId, now: number): number {
    const pool = this.pools.get(poolId);
    if (!pool) return -Errno.ENOENT;
    const p = this.host.get(cpu);
    if (!p) return -Errno.EINVAL;
    if (this.pcpuPool.has(cpu)) return -Errno.ENODEV;
    const rc = pool.sched.addPcpu(p, now);
    if (rc < 0) return rc;
    this.pcpuPool.set(cpu, pool);
    return 0;
  }

  /**
   * -ENOENT no such pool; -EINVAL no such pCPU, or the boot pCPU out of pool 0;
   * -EADDRNOTAVAIL the pCPU is not in this pool; -EBUSY it is the last pCPU and domains remain;
   * -EAGAIN it was running a vCPU: it takes no new work and is tickled; retry once it has
   * rescheduled (it then runs nothing, and its vCPU has moved to another pCPU of the pool).
   */
  removePcpu(poolId: number, cpu: PcpuId, now: number): number {
    const pool = this.pools.get(poolId);
    if (!pool) return -Errno.ENOENT;
    if (!this.host.has(cpu)) return -Errno.EINVAL;
    if (poolId === 0 && cpu === this.bootPcpu) return -Errno.EINVAL;
    if (this.pcpuPool.get(cpu) !== pool) return -Errno.EADDRNOTAVAIL;
    const rc = pool.sched.removePcpu(cpu, now);
    if (rc < 0) return rc;
    this.pcpuPool.delete(cpu);
    return 0;
  }

  // ---- domains ----
  /**
   * Create the units of a domain in a pool. Units start blocked (a new domain is paused) unless
   * `state` says otherwise. -ESRCH no such pool; -ENODEV the pool has no pCPU; -EEXIST; -EINVAL.
   */
  addDomain(domid: number, nrVcpus: number, poolId: number, now: number, state: UnitState = "blocked"): number {
    const pool = this.pools.get(poolId);
    if (!pool) return -Errno.ESRCH;
    if (pool.sched.pcpuIds().length === 0) return -Errno.ENODEV;
    if (this.domPool.has(domid)) return -Errno.EEXIST;
    if (!Number.isInteger(nrVcpus) || nrVcpus < 1 || nrVcpus > 128) return -Errno.EINVAL;
    const rc = pool.sched.addDomain(domid, now);
    if (rc < 0) return rc;
    const units: SchedUnit[] = [];
    for (let v = 0; v < nrVcpus; v++) {
      const u = new SchedUnit(domid, v, state);
      const r = pool.sched.insertUnit(u, now);
      if (r < 0) throw new Error(`cpupools: inserting ${u.name} failed (${r})`);
      units.push(u);
    }
    this.domUnits.set(domid, units);
    this.domPool.set(domid, pool);
    pool.domains.add(domid);
    return 0;
  }

  removeDomain(domid: number, now: number): number {
    const pool = this.domPool.get(domid);
    if (!pool) return -Errno.ESRCH;
    for (const u of this.domUnits.get(domid)!) pool.sched.removeUnit(u, now);
    pool.sched.removeDomain(domid, now);
    pool.domains.delete(domid);
    this.domPool.delete(domid);
    this.domUnits.delete(domid);
    return 0;
  }

  /**
   * XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN. As in Xen, the units' affinities are reset and the new
   * scheduler starts the domain with default parameters; unit states are kept. -ESRCH no such
   * domain; -ENOENT the target pool does not exist or has no pCPU; -EAGAIN a vCPU of the domain
   * is still on a pCPU: pause (block) the domain, let those pCPUs reschedule, then retry (Xen
   * pauses synchronously here), so that a vCPU never runs in two pools at once.
   */
  moveDomain(domid: number, poolId: number, now: number): number {
    const from = this.domPool.get(domid);
    if (!from) return -Errno.ESRCH;
    if (from.id === poolId) return 0;
    const to = this.pools.get(poolId);
    if (!to || to.sched.pcpuIds().length === 0) return -Errno.ENOENT;
    const units = this.domUnits.get(domid)!;
    if (units.some((u) => u.running)) return -Errno.EAGAIN;
    for (const u of units) from.sched.removeUnit(u, now);
    from.sched.removeDomain(domid, now);
    from.domains.delete(domid);
    const rc = to.sched.addDomain(domid, now);
    if (rc < 0) throw new Error(`cpupools: moving d${domid} failed (${rc})`);
    for (const u of units) {
      u.hard = CpuMask.ALL;
      u.soft = CpuMask.ALL;
      u.affinityBroken = false;
      const r = to.sched.insertUnit(u, now);
      if (r < 0) throw new Error(`cpupools: inserting ${u.name} failed (${r})`);
    }
    to.domains.add(domid);
    this.domPool.set(domid, to);
    return 0;
  }

  // ---- queries ----
  poolIds(): number[] {
    return [...this.pools.keys()].sort((a, b) => a - b);
  }

  pool(id: number): Cpupool | undefined {
    return this.pools.get(id);
  }

  info(id: number): CpupoolInfo | undefined {
    const p = this.pools.get(id);
    if (!p) return undefined;
    return {
      id: p.id,
      name: p.name,
      sched: p.sched.name,
      schedId: p.sched.schedId,
      pcpus: [...p.sched.pcpuIds()],
      domains: [...p.domains].sort((a, b) => a - b),
    };
  }

  hostPcpus(): Pcpu[] {
    return [...this.host.values()].sort((a, b) => a.id - b.id);
  }

  /** pCPUs in no pool (XEN_SYSCTL_CPUPOOL_OP_FREEINFO). */
  freePcpus(): PcpuId[] {
    return [...this.host.keys()].filter((c) => !this.pcpuPool.has(c)).sort((a, b) => a - b);
  }

  poolOfPcpu(cpu: PcpuId): Cpupool | undefined {
    return this.pcpuPool.get(cpu);
  }

  poolOfDomain(domid: number): Cpupool | undefined {
    return this.domPool.get(domid);
  }

  domainIds(): number[] {
    return [...this.domPool.keys()].sort((a, b) => a - b);
  }

  units(domid: number): readonly SchedUnit[] {
    return this.domUnits.get(domid) ?? [];
  }

  unit(domid: number, vcpuId: number): SchedUnit | undefined {
    return this.domUnits.get(domid)?.[vcpuId];
  }

  // ---- driver entry points ----
  doSchedule(cpu: PcpuId, now: number, ranNs?: number): SchedDecision {
    const pool = this.pcpuPool.get(cpu);
    if (pool) return pool.sched.doSchedule(cpu, now, ranNs);
    if (!this.host.has(cpu)) throw new RangeError(`cpupools: unknown pCPU ${cpu}`);
    return { pcpu: cpu, now, prev: null, next: null, sliceNs: null, migrated: false };
  }

  wake(domid: number, vcpuId: number, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.wake(u, now));
  }

  block(domid: number, vcpuId: number, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.block(u, now));
  }

  offline(domid: number, vcpuId: number, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.offline(u, now));
  }

  yield(domid: number, vcpuId: number, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.yield(u, now));
  }

  adjustAffinity(domid: number, vcpuId: number, hard: CpuMask, soft: CpuMask, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.adjustAffinity(u, hard, soft, now));
  }

  setDomainParams(domid: number, p: SchedParamsUpdate, now: number): number {
    const pool = this.domPool.get(domid);
    return pool ? pool.sched.setDomainParams(domid, p, now) : -Errno.ESRCH;
  }

  getDomainParams(domid: number): SchedParams | number {
    const pool = this.domPool.get(domid);
    return pool ? pool.sched.getDomainParams(domid) : -Errno.ESRCH;
  }

  setVcpuParams(domid: number, vcpuId: number, p: SchedParamsUpdate, now: number): number {
    return this.onUnit(domid, vcpuId, (s, u) => s.setVcpuParams(u, p, now));
  }

  getVcpuParams(domid: number, vcpuId: number): SchedParams | number {
    const pool = this.domPool.get(domid);
    const u = this.unit(domid, vcpuId);
    if (!pool) return -Errno.ESRCH;
    return u ? pool.sched.getVcpuParams(u) : -Errno.ENOENT;
  }

  /** pCPUs to interrupt, over all pools (sorted, each once). */
  takeTickles(): PcpuId[] {
    const all = new Set<PcpuId>();
    for (const id of this.poolIds()) for (const c of this.pools.get(id)!.sched.takeTickles()) all.add(c);
    return [...all].sort((a, b) => a - b);
  }

  /** takeTickles for the driver's hot path: no list built (a pCPU is in one pool, so each comes once). */
  forEachTickle(fn: (cpu: PcpuId) => void): void {
    for (const p of this.pools.values()) for (const c of p.sched.takeTickles()) fn(c);
  }

  nextTimerNs(): number | null {
    let t: number | null = null;
    for (const p of this.pools.values()) {
      const n = p.sched.nextTimerNs();
      if (n !== null && (t === null || n < t)) t = n;
    }
    return t;
  }

  onTimer(now: number): void {
    for (const id of this.poolIds()) {
      const s = this.pools.get(id)!.sched;
      const t = s.nextTimerNs();
      if (t !== null && t <= now) s.onTimer(now);
    }
  }

  private onUnit(domid: number, vcpuId: number, f: (s: Scheduler, u: SchedUnit) => number): number {
    const pool = this.domPool.get(domid);
    if (!pool) return -Errno.ESRCH;
    const u = this.unit(domid, vcpuId);
    if (!u) return -Errno.ENOENT;
    return f(pool.sched, u);
  }
}
