/**
 * Types shared by the scheduling policy layer (Xen's xen/common/sched/): pCPUs, schedule units,
 * decisions and the interface every scheduler implements. Pure data, no threads, no clocks: every
 * time is an integer count of nanoseconds (`now`) handed in by the caller.
 */
import { CpuMask } from "./cpumask.js";

export type PcpuId = number;

/** A pCPU class, e.g. "big" or "LITTLE"; free-form so boards can name their own. */
export type PcpuClass = string;

/**
 * Capacity of the reference pCPU. A pCPU of speed s running for t ns does t*s/REF_SPEED
 * "normalised" ns of work; credit2 credits and caps and RTDS budgets are all kept in normalised
 * work, so that weights, caps and budgets mean the same thing on every class.
 */
export const REF_SPEED = 1024;

export interface Pcpu {
  readonly id: PcpuId;
  readonly cls: PcpuClass;
  /** Relative capacity, REF_SPEED = reference (e.g. big 1024, LITTLE 512). Integer in 1..65536. */
  readonly speed: number;
}

export function validPcpu(p: Pcpu): boolean {
  return Number.isInteger(p.id) && p.id >= 0 && Number.isInteger(p.speed) && p.speed >= 1 && p.speed <= 65536;
}

/**
 * runnable: wants a pCPU (it may be running or queued).
 * blocked:  waiting for an event or paused; consumes nothing.
 * offline:  vCPU down (VCPUOP_down / not yet brought up); like blocked, but the null scheduler
 *           releases its pCPU.
 */
export type UnitState = "runnable" | "blocked" | "offline";

/**
 * One schedulable entity: a vCPU (Xen's sched_unit at granularity "cpu"). The object is shared
 * by the driver and the scheduler that holds it; the scheduler owns `state`, `running`,
 * `processor` and the statistics, the driver only reads them and changes state through the
 * scheduler's wake/block/offline calls.
 */
export class SchedUnit {
  state: UnitState;
  /** pCPUs the unit may run on; never violated. */
  hard: CpuMask = CpuMask.ALL;
  /** pCPUs the unit prefers; ALL means no preference. */
  soft: CpuMask = CpuMask.ALL;
  /** Where the scheduler placed the unit (Xen's unit->res): running, queued for, or last ran on. */
  processor: PcpuId | null = null;
  /** The pCPU the unit last actually ran on (drives SchedDecision.migrated). */
  lastPcpu: PcpuId | null = null;
  /** True from the decision that picks it until the decision that replaces it. */
  running = false;
  /** Wall ns spent running (sum of the ran times accounted by doSchedule). */
  runNs = 0;
  /** Normalised ns of work done (runNs weighted by the speeds of the pCPUs it ran on). */
  workNs = 0;
  /** Hard affinity was reset to ALL because its last pCPU left the pool (Xen: "breaking affinity"). */
  affinityBroken = false;

  constructor(
    readonly domid: number,
    readonly vcpuId: number,
    state: UnitState = "blocked",
  ) {
    this.state = state;
  }

  get name(): string {
    return `d${this.domid}v${this.vcpuId}`;
  }
}

/** The answer to "what should pCPU `pcpu` run now, and for how long". */
export interface SchedDecision {
  readonly pcpu: PcpuId;
  readonly now: number;
  /** What the pCPU ran before this decision (null = idle). */
  readonly prev: SchedUnit | null;
  /** What it runs now (null = idle). Invariant: next.hard.has(pcpu) and next.state === "runnable". */
  readonly next: SchedUnit | null;
  /**
   * Wall ns until the pCPU must call doSchedule again, or null for "until tickled" (idle, or the
   * null scheduler's no-time-slice). A tickle may cut any slice short.
   */
  readonly sliceNs: number | null;
  /** next last ran on another pCPU: the driver moves its state and counts a migration. */
  readonly migrated: boolean;
}

/** XEN_SCHEDULER_* ids (public/domctl.h). */
export const XEN_SCHEDULER = { credit: 5, credit2: 6, arinc653: 7, rtds: 8, null: 9 } as const;

export type SchedName = "credit2" | "rtds" | "null";

export interface Credit2DomainParams {
  readonly kind: "credit2";
  /** 1..65535, default 256. */
  readonly weight: number;
  /** Percent of one reference pCPU, 0 = uncapped, at most 100 * nr_vcpus. */
  readonly cap: number;
}
export interface RtdsVcpuParams {
  readonly kind: "rtds";
  readonly periodUs: number;
  /** Normalised µs of work per period (µs of a REF_SPEED pCPU). */
  readonly budgetUs: number;
  /** May run beyond its budget, behind every unit that still has budget. */
  readonly extratime: boolean;
}
export interface NullParams {
  readonly kind: "null";
}
export type SchedParams = Credit2DomainParams | RtdsVcpuParams | NullParams;

/** A put: omitted fields (and, as in Xen, credit2 weight 0) leave the value unchanged. */
export type SchedParamsUpdate =
  | { readonly kind: "credit2"; readonly weight?: number; readonly cap?: number }
  | { readonly kind: "rtds"; readonly periodUs?: number; readonly budgetUs?: number; readonly extratime?: boolean }
  | { readonly kind: "null" };

/** Scheduler-wide (per-cpupool) tunables, Xen's XEN_SYSCTL_scheduler_op. */
export type PoolParams =
  | { readonly kind: "credit2"; readonly ratelimitUs: number }
  | { readonly kind: "rtds" | "null" };
export type PoolParamsUpdate =
  | { readonly kind: "credit2"; readonly ratelimitUs?: number }
  | { readonly kind: "rtds" | "null" };

/**
 * The interface every scheduler implements. Mutating calls return 0 or a negative Xen errno for
 * caller mistakes; they never throw for those. Calls that make some pCPU need to reschedule
 * (a wake that should preempt, a block of a running unit, a replenishment...) record that pCPU;
 * the driver collects them with takeTickles() after each call and interrupts those pCPUs (sets
 * the running vCPU's PREEMPT flag, or wakes an idle worker), which then call doSchedule.
 */
export interface Scheduler {
  readonly name: SchedName;
  readonly schedId: number;

  // pCPUs (cpupool membership).
  pcpuIds(): readonly PcpuId[];
  pcpu(id: PcpuId): Pcpu | undefined;
  addPcpu(p: Pcpu, now: number): number;
  /** -EBUSY if it is the last pCPU and units remain; running unit is requeued elsewhere. */
  removePcpu(id: PcpuId, now: number): number;

  // Domains and units.
  addDomain(domid: number, now: number): number;
  removeDomain(domid: number, now: number): number;
  domainIds(): readonly number[];
  insertUnit(u: SchedUnit, now: number): number;
  /** Callers should block the unit and let its pCPU reschedule first; if it is still running, its pCPU is tickled. */
  removeUnit(u: SchedUnit, now: number): number;
  units(domid?: number): readonly SchedUnit[];

  // State changes (Xen's vcpu_wake / vcpu_sleep / yield).
  wake(u: SchedUnit, now: number): number;
  block(u: SchedUnit, now: number): number;
  offline(u: SchedUnit, now: number): number;
  yield(u: SchedUnit, now: number): number;
  /** Hard affinity must intersect the pool's pCPUs (-EINVAL otherwise). */
  adjustAffinity(u: SchedUnit, hard: CpuMask, soft: CpuMask, now: number): number;

  // The scheduling decision (Xen's do_schedule on one pCPU).
  /**
   * `ranNs`: wall ns the previous unit actually ran since the last decision on this pCPU (e.g.
   * retired instructions × ns per instruction); defaults to now minus the last decision's time.
   */
  doSchedule(pcpu: PcpuId, now: number, ranNs?: number): SchedDecision;
  current(pcpu: PcpuId): SchedUnit | null;
  takeTickles(): PcpuId[];

  // Scheduler-internal timers (credit2 cap replenishment, RTDS period replenishment).
  /** Earliest time at which onTimer must be called, or null if none is armed. */
  nextTimerNs(): number | null;
  onTimer(now: number): void;

  // Parameters (XEN_DOMCTL_scheduler_op / XEN_SYSCTL_scheduler_op).
  setDomainParams(domid: number, p: SchedParamsUpdate, now: number): number;
  /** The domain's parameters, or a negative errno. RTDS reports its vCPU 0. */
  getDomainParams(domid: number): SchedParams | number;
  setVcpuParams(u: SchedUnit, p: SchedParamsUpdate, now: number): number;
  getVcpuParams(u: SchedUnit): SchedParams | number;
  setPoolParams(p: PoolParamsUpdate, now: number): number;
  getPoolParams(): PoolParams;
}
