/**
 * The control plane's way down to the scheduling layer (XEN_DOMCTL_* / XEN_SYSCTL_* ops that act
 * on vCPUs, pCPUs and cpupools). The core owns domains and memory; the scheduling layer owns
 * vCPUs and pools at run time, so domctl/sysctl never call a scheduler directly: they go through
 * the `ControlHooks` installed on `Hypervisor.control`. Without hooks those ops are -ENOSYS.
 *
 * Every method is called on the core thread, after the caller's privilege and the target domain
 * have been checked, with plain values. Mistakes are returned as negative Xen errnos (never
 * thrown). `control_cpupools.ts` is a reference implementation over `Cpupools`.
 */
import type { PoolParams, PoolParamsUpdate, SchedParams, SchedParamsUpdate } from "./sched/types.js";
import type { VcpuStartContext } from "./vcpu.js";

/** A domain's or vCPU's scheduling parameters, with the id of the scheduler that holds them. */
export interface SchedParamsInfo {
  /** XEN_SCHEDULER_* of the domain's cpupool. */
  readonly schedId: number;
  readonly params: SchedParams;
}

export interface PoolParamsInfo {
  readonly schedId: number;
  readonly params: PoolParams;
}

/** XEN_SYSCTL_CPUPOOL_OP_INFO's answer. */
export interface CpupoolInfoResult {
  readonly poolId: number;
  readonly schedId: number;
  /** pCPU ids in the pool, sorted. */
  readonly pcpus: readonly number[];
  readonly nDom: number;
}

/** Affinity masks as sorted pCPU id lists (every pCPU of the host for "all"). */
export interface AffinityMasks {
  readonly hard: readonly number[];
  readonly soft: readonly number[];
}

/** The host's CPU facts for XEN_SYSCTL_physinfo. */
export interface HostCpuInfo {
  readonly nrCpus: number;
  /** Highest pCPU id; bitmaps of pCPUs have maxCpuId + 1 bits (Xen's nr_cpu_ids). */
  readonly maxCpuId: number;
  readonly cpuKhz: number;
}

export interface ControlHooks {
  /**
   * A domain was created (paused) by XEN_DOMCTL_createdomain: put its vCPUs into `poolId`
   * (the createdomain cpupool_id). A negative errno undoes the creation.
   */
  domainCreated(domid: number, nrVcpus: number, poolId: number): number;
  /**
   * Optional: XEN_DOMCTL_destroydomain is about to free the domain's memory. The layer stops its
   * vCPUs for good; while one is still executing it returns -EAGAIN and the toolstack retries
   * (as libxc's xc_domain_destroy does). 0 = nothing of the domain runs any more.
   */
  domainDestroying?(domid: number): number;
  /** The core destroyed the domain: drop its vCPUs. */
  domainDestroyed(domid: number): void;

  /** The domain's pause count went 0 -> 1: its vCPUs must stop running. */
  pauseDomain(domid: number): number;
  /** The pause count went back to 0: the vCPUs that were runnable may run again. */
  unpauseDomain(domid: number): number;

  /** The domain's pool: id and XEN_SCHEDULER_* id; -ESRCH if the layer does not know it. */
  domainPool(domid: number): { readonly poolId: number; readonly schedId: number } | number;
  /** Optional: ns of pCPU time the domain's vCPUs have used (getdomaininfo.cpu_time). */
  domainCpuTimeNs?(domid: number): number;
  /**
   * Optional: what getdomaininfo reports as Xen does: `online` vCPUs (not down), `running` = one
   * is on a pCPU now, `blocked` = every online vCPU waits for an event (a pause alone is not that).
   */
  domainRunState?(domid: number): { readonly online: number; readonly running: boolean; readonly blocked: boolean };

  /**
   * Optional: XEN_DOMCTL_setvcpucontext — load pc and x1..x31 into a vCPU of a paused domain.
   * -EAGAIN while the vCPU is still executing (the pause has not taken effect yet).
   */
  setVcpuContext?(domid: number, vcpu: number, ctx: VcpuStartContext): number;
  /** Optional: XEN_DOMCTL_getvcpucontext — the vCPU's pc and registers (domain paused). */
  getVcpuContext?(domid: number, vcpu: number): VcpuStartContext | number;

  /** Optional: one vCPU's state for XEN_DOMCTL_getvcpuinfo (-ENOSYS without it). */
  vcpuInfo?(domid: number, vcpu: number): DomctlVcpuInfo | number;

  /** Plain hard/soft masks as set (Xen's getvcpuaffinity), or -errno. */
  getAffinity(domid: number, vcpu: number): AffinityMasks | number;
  /**
   * Sets hard and/or soft affinity (null = keep). Returns the effective masks: hard ∩ the pool's
   * pCPUs, soft ∩ pool ∩ hard (Xen's setvcpuaffinity), or -errno (nothing changed).
   */
  setAffinity(
    domid: number,
    vcpu: number,
    hard: readonly number[] | null,
    soft: readonly number[] | null,
  ): AffinityMasks | number;

  getSchedParams(domid: number): SchedParamsInfo | number;
  setSchedParams(domid: number, p: SchedParamsUpdate): number;
  getVcpuSchedParams(domid: number, vcpu: number): SchedParamsInfo | number;
  setVcpuSchedParams(domid: number, vcpu: number, p: SchedParamsUpdate): number;

  /** XEN_SYSCTL_sched_id: the default scheduler (pool 0's). */
  schedId(): number;
  hostCpus(): HostCpuInfo;

  /** Returns the new pool id; `poolId` may be XEN_SYSCTL_CPUPOOL_PAR_ANY. */
  cpupoolCreate(poolId: number, schedId: number): number;
  cpupoolDestroy(poolId: number): number;
  /** The pool with the lowest id >= poolId, or -ENOENT. */
  cpupoolInfo(poolId: number): CpupoolInfoResult | number;
  /** `cpu` may be XEN_SYSCTL_CPUPOOL_PAR_ANY (the first free pCPU). */
  cpupoolAddCpu(poolId: number, cpu: number): number;
  /** `cpu` may be XEN_SYSCTL_CPUPOOL_PAR_ANY (the pool's last pCPU). */
  cpupoolRemoveCpu(poolId: number, cpu: number): number;
  cpupoolMoveDomain(poolId: number, domid: number): number;
  /** pCPUs in no pool, sorted. */
  cpupoolFreeCpus(): readonly number[];

  getPoolParams(poolId: number): PoolParamsInfo | number;
  setPoolParams(poolId: number, p: PoolParamsUpdate): number;
}

/** XEN_DOMCTL_createdomain's parameters (xen_domctl_createdomain + domctl.domain), for TS callers. */
export interface DomctlCreateDomainConfig {
  /** Requested domid; omitted, 0 or >= DOMID_FIRST_RESERVED = the next free one (Xen's rule). */
  readonly domid?: number;
  /** XEN_DOMCTL_CDF_*: hvm and hap required; iommu, vpmu and xs_domain optional; others -EINVAL. */
  readonly flags: number;
  readonly maxVcpus: number;
  /** Clamped to 4095 (the 2-level ABI's last port). */
  readonly maxEvtchnPort: number;
  /** Negative = the default (64). */
  readonly maxGrantFrames: number;
  /** Negative = the default (1024). */
  readonly maxMaptrackFrames: number;
  /** Low 4 bits: the highest grant version, which must be 1; no other bit may be set. */
  readonly grantOpts: number;
  readonly cpupoolId: number;
  readonly name?: string;
}

/** XEN_DOMCTL_getdomaininfo's answer (also one element of XEN_SYSCTL_getdomaininfolist). */
export interface DomctlDomainInfo {
  readonly domid: number;
  /** XEN_DOMINF_* bits, shutdown reason in bits 16..23. */
  readonly flags: number;
  readonly totPages: number;
  readonly maxPages: number;
  /** The machine frame of shared_info. */
  readonly sharedInfoFrame: number;
  readonly cpuTimeNs: number;
  readonly nrOnlineVcpus: number;
  readonly maxVcpuId: number;
  /** The domain's cpupool; CPUPOOLID_NONE (0xFFFFFFFF) if the scheduling layer does not know it. */
  readonly cpupool: number;
  readonly gpaddrBits: number;
}

/** XEN_SYSCTL_physinfo's answer. */
export interface PhysInfo extends HostCpuInfo {
  /** XEN_SYSCTL_PHYSCAP_*. */
  readonly capabilities: number;
  readonly totalPages: number;
  readonly freePages: number;
  readonly maxMfn: number;
}

/** Xen's CPUPOOLID_NONE. */
export const CPUPOOLID_NONE = 0xffffffff;

/** XEN_DOMCTL_getvcpuinfo's answer. */
export interface DomctlVcpuInfo {
  /** Not down (VCPUOP_down / never brought up). */
  readonly online: boolean;
  /** Waiting for an event (a pause alone is not that). */
  readonly blocked: boolean;
  /** On a pCPU now. */
  readonly running: boolean;
  readonly cpuTimeNs: number;
  /** The pCPU it runs on, is queued for, or last ran on. */
  readonly cpu: number;
}
