/**
 * The running host's `ControlHooks`: CpupoolControl's bookkeeping (pause gate, affinity,
 * parameters, pools) plus what each change means for the pCPU workers — tickles delivered,
 * timers re-armed, vCPU records made and dropped, worker threads started and stopped as pCPUs
 * join and leave pools. Machine installs one on `Hypervisor.control`, so domctl/sysctl from a
 * control domain (guest or TypeScript) act on the running host.
 *
 * Every hook runs on the core thread and returns at once. Two of them can't finish while a vCPU
 * concerned is still executing on a worker and return -EAGAIN for the caller to retry, as
 * Xen's toolstack does for its restartable ops: removing a busy pCPU from a pool and moving a
 * domain whose vCPU is on a pCPU (pause it first). XEN_DOMCTL_destroydomain does the same while
 * a vCPU of the victim is still mid-slice (libxc's xc_domain_destroy retries on EAGAIN).
 */
import { CpupoolControl, type CpupoolControlOptions } from "./control_cpupools.js";
import type { Cpupools } from "./sched/cpupool.js";
import type { PoolParamsUpdate, SchedParamsUpdate } from "./sched/types.js";
import type { VcpuStartContext } from "./vcpu.js";

/** What the machine does when the scheduling layer changed under it. */
export interface MachineRuntime {
  /** Deliver the schedulers' tickles (preempt / wake pCPUs) and re-arm the timers. */
  settle(): void;
  /** Deliver the tickles only: the hot path (wake, block, yield) leaves the timers as they were. */
  settleTickles(): void;
  /** The domain's vCPUs got units: make their state blocks and share the domain with the workers. */
  domainAttached(domid: number): number;
  /** Stop the domain's vCPUs for good: -EAGAIN while one still executes, then 0. */
  halt(domid: number): number;
  /** The domain's units are gone: drop its vCPU records and timers. */
  domainDetached(domid: number): void;
  /** XEN_DOMCTL_setvcpucontext / getvcpucontext on the vCPU's state block (-EAGAIN while it runs). */
  setVcpuContext(domid: number, vcpu: number, ctx: VcpuStartContext): number;
  getVcpuContext(domid: number, vcpu: number): VcpuStartContext | number;
  poolCreated(poolId: number): void;
  poolDestroyed(poolId: number): void;
  /**
   * pCPUs joined or left pools: start each one's worker in its new pool, stop the worker of one
   * that left (it runs nothing by then).
   */
  pcpusMoved(): void;
}

export class MachineControl extends CpupoolControl {
  constructor(
    pools: Cpupools,
    opts: CpupoolControlOptions,
    private readonly rt: MachineRuntime,
  ) {
    super(pools, opts);
  }

  /** Runs a scheduler change, then lets the machine act on its tickles. */
  private settled<T>(rc: T): T {
    this.rt.settle();
    return rc;
  }

  /** Hot-path changes: only tickles to deliver. */
  private ticked<T>(rc: T): T {
    this.rt.settleTickles();
    return rc;
  }

  override wake(domid: number, vcpu: number): number {
    return this.ticked(super.wake(domid, vcpu));
  }

  override block(domid: number, vcpu: number): number {
    return this.ticked(super.block(domid, vcpu));
  }

  override offline(domid: number, vcpu: number): number {
    return this.settled(super.offline(domid, vcpu));
  }

  override yield(domid: number, vcpu: number): number {
    return this.ticked(super.yield(domid, vcpu));
  }

  override domainCreated(domid: number, nrVcpus: number, poolId: number): number {
    const rc = super.domainCreated(domid, nrVcpus, poolId);
    if (rc < 0) return rc;
    const r = this.rt.domainAttached(domid);
    if (r < 0) super.domainDestroyed(domid);
    return this.settled(r);
  }

  domainDestroying(domid: number): number {
    if (this.pools.poolOfDomain(domid) === undefined) return 0;
    return this.settled(this.rt.halt(domid));
  }

  override domainDestroyed(domid: number): void {
    if (this.pools.poolOfDomain(domid) === undefined) return;
    super.domainDestroyed(domid);
    this.rt.domainDetached(domid);
    this.rt.settle();
  }

  setVcpuContext(domid: number, vcpu: number, ctx: VcpuStartContext): number {
    return this.rt.setVcpuContext(domid, vcpu, ctx);
  }

  getVcpuContext(domid: number, vcpu: number): VcpuStartContext | number {
    return this.rt.getVcpuContext(domid, vcpu);
  }

  override pauseDomain(domid: number): number {
    return this.settled(super.pauseDomain(domid));
  }

  override unpauseDomain(domid: number): number {
    return this.settled(super.unpauseDomain(domid));
  }

  override setAffinity(domid: number, vcpu: number, hard: readonly number[] | null, soft: readonly number[] | null) {
    return this.settled(super.setAffinity(domid, vcpu, hard, soft));
  }

  override setSchedParams(domid: number, p: SchedParamsUpdate): number {
    return this.settled(super.setSchedParams(domid, p));
  }

  override setVcpuSchedParams(domid: number, vcpu: number, p: SchedParamsUpdate): number {
    return this.settled(super.setVcpuSchedParams(domid, vcpu, p));
  }

  override setPoolParams(poolId: number, p: PoolParamsUpdate): number {
    return this.settled(super.setPoolParams(poolId, p));
  }

  override cpupoolCreate(poolId: number, schedId: number): number {
    const id = super.cpupoolCreate(poolId, schedId);
    if (id >= 0) this.rt.poolCreated(id);
    return id;
  }

  override cpupoolDestroy(poolId: number): number {
    const rc = super.cpupoolDestroy(poolId);
    if (rc === 0) this.rt.poolDestroyed(poolId);
    return rc;
  }

  override cpupoolAddCpu(poolId: number, cpu: number): number {
    const rc = super.cpupoolAddCpu(poolId, cpu);
    if (rc === 0) this.rt.pcpusMoved();
    return this.settled(rc);
  }

  /** -EAGAIN: the pCPU is draining (its next decision is idle); retry with the same pCPU. */
  override cpupoolRemoveCpu(poolId: number, cpu: number): number {
    const rc = super.cpupoolRemoveCpu(poolId, cpu);
    if (rc === 0) this.rt.pcpusMoved();
    return this.settled(rc);
  }

  override cpupoolMoveDomain(poolId: number, domid: number): number {
    return this.settled(super.cpupoolMoveDomain(poolId, domid));
  }
}
