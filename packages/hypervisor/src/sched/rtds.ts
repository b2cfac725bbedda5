/**
 * RTDS (Xen's sched/rt.c): global EDF over vCPUs, each a deferrable server with (budget, period).
 *
 * A vCPU's periods are aligned to multiples of its period from time 0; at each period boundary
 * its deadline moves to the end of the new period and its budget is refilled (unused budget is
 * not carried over). A runnable vCPU with budget left competes by deadline (earliest first);
 * one that has spent its budget is depleted (parked on the depleted queue) until its next
 * boundary, unless it has `extratime`, in which case it gets a fresh budget at a lower priority
 * level and runs only behind every vCPU still within its budget.
 *
 * Budget is normalised work (work units, REF_SPEED per ns of a reference pCPU), so a vCPU gets
 * the same amount of computation per period on a LITTLE pCPU as on a big one (in more wall time).
 *
 * Deadline miss: a period ends while the vCPU has been runnable since the period began and it
 * still had budget left (it wanted the CPU and did not get its reservation). Admission control is
 * not done; utilisation() reports the demand against the pool's capacity.
 */
import { Errno } from "../public/errno.js";
import { type PcpuSlot, type PickResult, SchedulerBase, wallForUnits } from "./base.js";
import {
  type PcpuId,
  type PoolParams,
  type PoolParamsUpdate,
  REF_SPEED,
  type RtdsVcpuParams,
  type SchedParams,
  type SchedParamsUpdate,
  type SchedUnit,
  XEN_SCHEDULER,
} from "./types.js";

const US = 1_000;
export const RTDS_DEFAULT_PERIOD_US = 10_000;
export const RTDS_DEFAULT_BUDGET_US = 4_000;
export const RTDS_MIN_PERIOD_US = 10;
export const RTDS_MIN_BUDGET_US = 10;

interface RtUnit {
  readonly u: SchedUnit;
  periodNs: number;
  /** Budget per period in work units. */
  budget: number;
  extratime: boolean;
  /** End of the current period; 0 before the first one. */
  curDeadline: number;
  /** Budget left in the current period (work units). */
  curBudget: number;
  /** 0 while within budget; each extratime refill adds 1 (lower priority). */
  priorityLevel: number;
  where: "runq" | "depletedq" | null;
  /** In the replenishment queue: runnable, so its period boundaries matter. */
  inReplq: boolean;
  /** Since when it has wanted the CPU without interruption. */
  runnableSince: number;
  misses: number;
  /** Insertion sequence: FIFO among equal priorities, so ties break the same way every run. */
  seq: number;
}

export interface RtdsUtilisation {
  /** Σ budget/period over the vCPUs that are not offline. */
  readonly total: number;
  /** Σ speed/REF_SPEED over the pool's pCPUs. */
  readonly capacity: number;
  readonly overloaded: boolean;
}

/** a has strictly higher priority than b: lower level, then earlier deadline. */
function higher(a: RtUnit, b: RtUnit): boolean {
  if (a.priorityLevel !== b.priorityLevel) return a.priorityLevel < b.priorityLevel;
  return a.curDeadline < b.curDeadline;
}

export class RtdsScheduler extends SchedulerBase {
  readonly name = "rtds" as const;
  readonly schedId = XEN_SCHEDULER.rtds;

  private readonly data = new Map<SchedUnit, RtUnit>();
  /** Runnable, not running, with budget (or extratime): sorted by priority, then seq. */
  private runq: RtUnit[] = [];
  /** Runnable, not running, out of budget, waiting for their period boundary. */
  private depletedq: RtUnit[] = [];
  private seq = 0;
  /** Deadline misses over all vCPUs, ever. */
  totalDeadlineMisses = 0;

  // ---- introspection ----
  deadlineMisses(u: SchedUnit): number {
    return this.data.get(u)?.misses ?? 0;
  }

  deadline(u: SchedUnit): number | undefined {
    return this.data.get(u)?.curDeadline;
  }

  utilisation(): RtdsUtilisation {
    let total = 0;
    for (const u of this.units()) {
      if (u.state === "offline") continue;
      const d = this.rt(u);
      total += d.budget / REF_SPEED / d.periodNs;
    }
    let capacity = 0;
    for (const id of this.pcpuList) capacity += this.slot(id)!.info.speed / REF_SPEED;
    return { total, capacity, overloaded: total > capacity };
  }

  // ---- hooks ----
  protected onAddDomain(_domid: number, _now: number): void {}
  protected onRemoveDomain(_domid: number, _now: number): void {}

  protected onInsert(u: SchedUnit, now: number): void {
    const d: RtUnit = {
      u,
      periodNs: RTDS_DEFAULT_PERIOD_US * US,
      budget: RTDS_DEFAULT_BUDGET_US * US * REF_SPEED,
      extratime: false,
      curDeadline: 0,
      curBudget: 0,
      priorityLevel: 0,
      where: null,
      inReplq: false,
      runnableSince: now,
      misses: 0,
      seq: this.seq++,
    };
    this.data.set(u, d);
    this.updateDeadline(d, now);
  }

  protected onRemove(u: SchedUnit, _now: number): void {
    const d = this.rt(u);
    this.qRemove(d);
    d.inReplq = false;
    this.data.delete(u);
  }

  protected onWake(u: SchedUnit, now: number): void {
    const d = this.rt(u);
    d.runnableSince = now;
    if (now >= d.curDeadline) this.updateDeadline(d, now);
    u.processor = this.placement(u);
    this.enqueue(d, now);
  }

  protected requeue(u: SchedUnit, now: number): void {
    const d = this.rt(u);
    if (now >= d.curDeadline) this.updateDeadline(d, now);
    if (this.misplaced(u)) {
      u.processor = this.placement(u);
    }
    this.enqueue(d, now);
  }

  protected onSleep(u: SchedUnit, _now: number): void {
    if (u.running) return;
    const d = this.rt(u);
    this.qRemove(d);
    d.inReplq = false;
  }

  /** RTDS has no yield bias: the pCPU reschedules and EDF decides again. */
  protected onYield(_u: SchedUnit, _now: number): void {}

  protected onAffinity(u: SchedUnit, now: number): void {
    const d = this.rt(u);
    if (d.where === "runq") this.runqTickle(d, now);
  }

  protected onPcpuAdded(_id: PcpuId, _now: number): void {}

  protected onPcpuRemoved(id: PcpuId, now: number): void {
    for (const u of this.units()) if (!u.running && u.processor === id) u.processor = this.placement(u);
    for (const d of [...this.runq]) this.runqTickle(d, now);
  }

  protected account(u: SchedUnit, slot: PcpuSlot, ranNs: number, _now: number): void {
    const d = this.rt(u);
    d.curBudget -= ranNs * slot.info.speed;
    if (d.curBudget > 0) return;
    if (d.extratime) {
      d.priorityLevel++;
      d.curBudget = d.budget;
    } else {
      d.curBudget = 0;
    }
  }

  protected override descheduled(u: SchedUnit, _slot: PcpuSlot, _now: number): void {
    // A blocked vCPU has no period boundaries to track; it gets a new period when it wakes.
    if (u.state !== "runnable") this.rt(u).inReplq = false;
  }

  protected pick(slot: PcpuSlot, prev: SchedUnit | null, _now: number): PickResult {
    const p = slot.info.id;
    const head = this.runq.find((d) => d.u.hard.has(p)) ?? null;
    let next: RtUnit | null = head;
    if (prev && prev.state === "runnable" && prev.hard.has(p)) {
      const pd = this.rt(prev);
      // Keep the current vCPU unless someone strictly more urgent is waiting (ties: no switch).
      if (pd.curBudget > 0 && (!head || !higher(head, pd))) next = pd;
    }
    if (!next) return { next: null, sliceNs: null };
    if (next === head) this.qRemove(head);
    // Run until the budget is gone; a period boundary in between comes through onTimer.
    return { next: next.u, sliceNs: wallForUnits(next.curBudget, slot.info.speed) };
  }

  // ---- timers: period boundaries (Xen's repl_timer) ----
  nextTimerNs(): number | null {
    let t: number | null = null;
    for (const d of this.data.values()) if (d.inReplq && (t === null || d.curDeadline < t)) t = d.curDeadline;
    return t;
  }

  onTimer(now: number): void {
    // Budgets must be current before deciding whether a period ended with budget unused.
    for (const id of this.pcpuList) this.accountRunning(this.slot(id)!, now);
    const due = this.units()
      .map((u) => this.rt(u))
      .filter((d) => d.inReplq && d.curDeadline <= now)
      .sort((a, b) => a.curDeadline - b.curDeadline || a.seq - b.seq);
    for (const d of due) {
      this.updateDeadline(d, now);
      if (d.where !== null) {
        // Re-sort: it leaves the depleted queue or its deadline moved.
        this.qRemove(d);
        this.qInsert(d);
      }
    }
    for (const d of due) {
      if (d.u.running) {
        // Its new deadline may be later than a waiter's: that waiter may now preempt someone.
        const head = this.runq[0];
        if (head && higher(head, d)) this.runqTickle(head, now);
      } else if (d.where === "runq") {
        this.runqTickle(d, now);
      }
    }
  }

  // ---- parameters ----
  setDomainParams(domid: number, p: SchedParamsUpdate, now: number): number {
    if (p.kind !== "rtds") return -Errno.EINVAL;
    if (!this.hasDomain(domid)) return -Errno.ESRCH;
    const units = this.units(domid);
    // Validate against every vCPU before changing any.
    for (const u of units) if (!this.validUpdate(this.rt(u), p)) return -Errno.EINVAL;
    if (units.length === 0 && !this.validUpdate(null, p)) return -Errno.EINVAL;
    for (const u of units) this.apply(this.rt(u), p, now);
    return 0;
  }

  getDomainParams(domid: number): SchedParams | number {
    if (!this.hasDomain(domid)) return -Errno.ESRCH;
    const u0 = this.units(domid)[0];
    if (!u0) {
      return { kind: "rtds", periodUs: RTDS_DEFAULT_PERIOD_US, budgetUs: RTDS_DEFAULT_BUDGET_US, extratime: false };
    }
    return this.getVcpuParams(u0);
  }

  setVcpuParams(u: SchedUnit, p: SchedParamsUpdate, now: number): number {
    if (p.kind !== "rtds") return -Errno.EINVAL;
    const d = this.data.get(u);
    if (!d) return -Errno.ENOENT;
    if (!this.validUpdate(d, p)) return -Errno.EINVAL;
    this.apply(d, p, now);
    return 0;
  }

  getVcpuParams(u: SchedUnit): SchedParams | number {
    const d = this.data.get(u);
    if (!d) return -Errno.ENOENT;
    const out: RtdsVcpuParams = {
      kind: "rtds",
      periodUs: d.periodNs / US,
      budgetUs: d.budget / REF_SPEED / US,
      extratime: d.extratime,
    };
    return out;
  }

  setPoolParams(p: PoolParamsUpdate, _now: number): number {
    return p.kind === "rtds" ? 0 : -Errno.EINVAL;
  }

  getPoolParams(): PoolParams {
    return { kind: "rtds" };
  }

  // ---- internals ----
  private rt(u: SchedUnit): RtUnit {
    const d = this.data.get(u);
    if (!d) throw new Error(`rtds: ${u.name} is not in this scheduler`);
    return d;
  }

  private validUpdate(d: RtUnit | null, p: { readonly periodUs?: number; readonly budgetUs?: number }): boolean {
    const period = p.periodUs ?? (d ? d.periodNs / US : RTDS_DEFAULT_PERIOD_US);
    const budget = p.budgetUs ?? (d ? d.budget / REF_SPEED / US : RTDS_DEFAULT_BUDGET_US);
    return (
      Number.isInteger(period) &&
      Number.isInteger(budget) &&
      period >= RTDS_MIN_PERIOD_US &&
      budget >= RTDS_MIN_BUDGET_US &&
      budget <= period
    );
  }

  private apply(
    d: RtUnit,
    p: { readonly periodUs?: number; readonly budgetUs?: number; readonly extratime?: boolean },
    now: number,
  ): void {
    if (p.periodUs !== undefined) d.periodNs = p.periodUs * US;
    if (p.budgetUs !== undefined) d.budget = p.budgetUs * US * REF_SPEED;
    if (p.extratime !== undefined) d.extratime = p.extratime;
    // The new reservation starts with a fresh period, aligned like every other one.
    d.curDeadline = 0;
    d.priorityLevel = 0;
    d.runnableSince = Math.max(d.runnableSince, now);
    this.updateDeadline(d, now);
    if (d.where !== null) {
      this.qRemove(d);
      this.qInsert(d);
      this.runqTickle(d, now);
    }
    if (d.u.running && d.u.processor !== null) this.tickle(d.u.processor);
  }

  /**
   * Move d to the period containing now: deadline = next multiple of period after now, full
   * budget, priority level 0. First count a miss if the period that is ending was one the vCPU
   * wanted the CPU for throughout and it still had budget left.
   */
  private updateDeadline(d: RtUnit, now: number): void {
    if (now < d.curDeadline) return;
    const periods = Math.floor((now - d.curDeadline) / d.periodNs) + 1;
    if (
      d.curDeadline > 0 &&
      d.u.state === "runnable" &&
      d.runnableSince <= d.curDeadline - d.periodNs &&
      d.priorityLevel === 0 &&
      d.curBudget > 0
    ) {
      // Also the whole periods skipped since, if it stayed runnable through them.
      d.misses += periods;
      this.totalDeadlineMisses += periods;
    }
    d.curDeadline =
      d.curDeadline === 0 ? (Math.floor(now / d.periodNs) + 1) * d.periodNs : d.curDeadline + periods * d.periodNs;
    d.curBudget = d.budget;
    d.priorityLevel = 0;
  }

  private enqueue(d: RtUnit, now: number): void {
    this.qInsert(d);
    d.inReplq = true;
    if (d.where === "runq") this.runqTickle(d, now);
  }

  private qInsert(d: RtUnit): void {
    if (d.where !== null) return;
    if (d.curBudget > 0) {
      let i = 0;
      while (i < this.runq.length && !higher(d, this.runq[i]!)) i++;
      this.runq.splice(i, 0, d);
      d.where = "runq";
    } else {
      this.depletedq.push(d);
      d.where = "depletedq";
    }
  }

  private qRemove(d: RtUnit): void {
    if (d.where === "runq") this.runq.splice(this.runq.indexOf(d), 1);
    else if (d.where === "depletedq") this.depletedq.splice(this.depletedq.indexOf(d), 1);
    d.where = null;
  }

  /**
   * Xen's runq_tickle: an idle pCPU in d's affinity (its own first, soft affinity preferred), or
   * else the pCPU running the lowest-priority vCPU, if d beats it.
   */
  private runqTickle(d: RtUnit, _now: number): void {
    if (d.u.running || d.where !== "runq") return;
    const cands = this.hardCpus(d.u).filter((q) => !this.slot(q)!.tickled);
    if (cands.length === 0) return;
    const soft = this.softCpus(d.u);
    const masks = soft ? [cands.filter((q) => soft.includes(q)), cands] : [cands];
    for (const mask of masks) {
      const idle = mask.filter((q) => this.slot(q)!.curr === null);
      if (idle.length > 0) {
        const p = d.u.processor;
        this.tickle(p !== null && idle.includes(p) ? p : idle[0]!);
        return;
      }
    }
    let latest: { q: PcpuId; d: RtUnit } | null = null;
    for (const q of cands) {
      const cur = this.slot(q)!.curr;
      if (!cur) continue;
      const cd = this.rt(cur);
      if (!latest || higher(latest.d, cd)) latest = { q, d: cd };
    }
    if (latest && higher(d, latest.d)) this.tickle(latest.q);
  }
}
