/**
 * The null scheduler (Xen's sched/null.c): each pCPU is assigned at most one unit, statically,
 * and runs it with no time slice. Units beyond the pCPU count wait in a FIFO waitqueue and get
 * a pCPU when one is freed.
 *
 * Freed means: the assigned unit went offline, was removed, or lost the pCPU from its hard
 * affinity, or (with `releaseOnBlock`, the default) blocked while a waiter could use the pCPU.
 * Xen's null scheduler keeps a blocked unit's pCPU; `releaseOnBlock: false` gives that
 * behaviour. Invariants: assignments are one-to-one; an assigned unit's pCPU is in its hard
 * affinity; the waitqueue holds only runnable, unassigned units.
 */
import { Errno } from "../public/errno.js";
import { type PcpuSlot, type PickResult, SchedulerBase } from "./base.js";
import type { PcpuId, PoolParams, PoolParamsUpdate, SchedParams, SchedParamsUpdate, SchedUnit } from "./types.js";
import { XEN_SCHEDULER } from "./types.js";

export interface NullOptions {
  /** Hand a blocked unit's pCPU to a waiter (default true); false = Xen's strict behaviour. */
  readonly releaseOnBlock?: boolean;
}

export class NullScheduler extends SchedulerBase {
  readonly name = "null" as const;
  readonly schedId = XEN_SCHEDULER.null;

  private readonly assigned = new Map<PcpuId, SchedUnit>();
  private readonly assignedTo = new Map<SchedUnit, PcpuId>();
  private waitq: SchedUnit[] = [];
  private readonly releaseOnBlock: boolean;

  constructor(opts: NullOptions = {}) {
    super();
    this.releaseOnBlock = opts.releaseOnBlock ?? true;
  }

  // ---- introspection ----
  assignment(u: SchedUnit): PcpuId | null {
    return this.assignedTo.get(u) ?? null;
  }

  waiting(): readonly SchedUnit[] {
    return [...this.waitq];
  }

  // ---- hooks ----
  protected onAddDomain(_domid: number, _now: number): void {}
  protected onRemoveDomain(_domid: number, _now: number): void {}

  protected onInsert(u: SchedUnit, _now: number): void {
    // Like Xen, a new unit takes a free pCPU even before it first runs; only online ones.
    if (u.state === "offline") return;
    const q = this.freeCpu(u, false);
    if (q !== null) this.assign(u, q);
  }

  protected onRemove(u: SchedUnit, _now: number): void {
    this.waitqRemove(u);
    const q = this.assignedTo.get(u);
    if (q !== undefined) {
      this.deassign(u);
      this.fill(q);
    }
  }

  protected onWake(u: SchedUnit, _now: number): void {
    const q = this.assignedTo.get(u);
    if (q !== undefined) {
      this.tickle(q);
      return;
    }
    this.place(u);
  }

  protected requeue(u: SchedUnit, _now: number): void {
    // Only reached when u lost its pCPU (affinity change, pCPU removed): find it another.
    const q = this.assignedTo.get(u);
    if (q !== undefined) {
      if (this.slot(q)?.curr !== u) this.tickle(q);
      return;
    }
    this.place(u);
  }

  protected onSleep(u: SchedUnit, _now: number): void {
    this.waitqRemove(u);
    const q = this.assignedTo.get(u);
    if (q === undefined) return;
    const release = u.state === "offline" || (this.releaseOnBlock && this.waiterFor(q) !== null);
    if (!release) return;
    this.deassign(u);
    this.fill(q);
  }

  protected onYield(_u: SchedUnit, _now: number): void {}

  protected onAffinity(u: SchedUnit, _now: number): void {
    const q = this.assignedTo.get(u);
    if (q !== undefined) {
      if (u.hard.has(q)) return; // static: soft affinity changes do not move an assigned unit
      this.deassign(u);
      this.fill(q);
      // A running unit is re-placed when its pCPU deschedules it (requeue).
      if (u.state === "runnable" && !u.running) this.place(u);
      return;
    }
    if (this.waitq.includes(u)) {
      this.waitqRemove(u);
      this.place(u);
    }
  }

  protected onPcpuAdded(id: PcpuId, _now: number): void {
    this.fill(id);
  }

  protected onPcpuRemoved(id: PcpuId, _now: number): void {
    const u = this.assigned.get(id);
    if (!u) return;
    this.assigned.delete(id);
    this.assignedTo.delete(u);
    // A unit still running there is requeued by the generic layer when the pCPU lets it go.
    if (u.running) return;
    u.processor = null;
    if (u.state === "runnable") this.place(u);
  }

  protected account(_u: SchedUnit, _slot: PcpuSlot, _ranNs: number, _now: number): void {}

  protected pick(slot: PcpuSlot, _prev: SchedUnit | null, _now: number): PickResult {
    const p = slot.info.id;
    if (!this.assigned.has(p)) this.fill(p);
    const a = this.assigned.get(p);
    const next = a && a.state === "runnable" && a.hard.has(p) ? a : null;
    return { next, sliceNs: null };
  }

  nextTimerNs(): number | null {
    return null;
  }

  onTimer(_now: number): void {}

  setDomainParams(domid: number, p: SchedParamsUpdate, _now: number): number {
    if (!this.hasDomain(domid)) return -Errno.ESRCH;
    return p.kind === "null" ? 0 : -Errno.EINVAL;
  }

  getDomainParams(domid: number): SchedParams | number {
    return this.hasDomain(domid) ? { kind: "null" } : -Errno.ESRCH;
  }

  setVcpuParams(u: SchedUnit, p: SchedParamsUpdate, _now: number): number {
    if (!this.hasUnit(u)) return -Errno.ENOENT;
    return p.kind === "null" ? 0 : -Errno.EINVAL;
  }

  getVcpuParams(u: SchedUnit): SchedParams | number {
    return this.hasUnit(u) ? { kind: "null" } : -Errno.ENOENT;
  }

  setPoolParams(p: PoolParamsUpdate, _now: number): number {
    return p.kind === "null" ? 0 : -Errno.EINVAL;
  }

  getPoolParams(): PoolParams {
    return { kind: "null" };
  }

  // ---- internals ----
  /**
   * A pCPU u may take: a free one (its previous pCPU first, soft affinity before hard), or, when
   * `takeBlocked`, one whose assigned unit is not runnable.
   */
  private freeCpu(u: SchedUnit, takeBlocked: boolean): PcpuId | null {
    const hard = this.hardCpus(u);
    const soft = this.softCpus(u);
    const masks = soft ? [soft, hard] : [hard];
    const tests: ((q: PcpuId) => boolean)[] = [(q) => !this.assigned.has(q)];
    if (takeBlocked) tests.push((q) => this.assigned.get(q)!.state !== "runnable");
    for (const test of tests) {
      for (const mask of masks) {
        const ok = mask.filter(test);
        if (ok.length === 0) continue;
        const p = u.processor;
        return p !== null && ok.includes(p) ? p : ok[0]!;
      }
    }
    return null;
  }

  /** Give runnable, unassigned u a pCPU, or queue it. Idempotent. */
  private place(u: SchedUnit): void {
    if (this.assignedTo.has(u) || this.waitq.includes(u)) return;
    const q = this.freeCpu(u, this.releaseOnBlock);
    if (q === null) {
      this.waitq.push(u);
      if (!u.running) u.processor = null;
      return;
    }
    const displaced = this.assigned.get(q);
    if (displaced) this.deassign(displaced); // blocked: it will look for a pCPU when it wakes
    this.assign(u, q);
  }

  private assign(u: SchedUnit, q: PcpuId): void {
    this.assigned.set(q, u);
    this.assignedTo.set(u, q);
    u.processor = q;
    if (u.state === "runnable" && this.slot(q)?.curr !== u) this.tickle(q);
  }

  private deassign(u: SchedUnit): void {
    const q = this.assignedTo.get(u);
    if (q === undefined) return;
    this.assigned.delete(q);
    this.assignedTo.delete(u);
    // processor names the assigned pCPU; a running unit keeps it until its pCPU lets go.
    if (this.slot(q)?.curr === u) this.tickle(q);
    else if (!u.running) u.processor = null;
  }

  /** The first waiter that may run on q: soft affinity match first, then hard (Xen's two passes). */
  private waiterFor(q: PcpuId): SchedUnit | null {
    const soft = this.waitq.find((w) => w.hard.has(q) && this.softCpus(w)?.includes(q));
    return soft ?? this.waitq.find((w) => w.hard.has(q)) ?? null;
  }

  /** q has no assigned unit: hand it to a waiter. */
  private fill(q: PcpuId): void {
    if (this.assigned.has(q) || !this.inPool(q)) return;
    const w = this.waiterFor(q);
    if (!w) return;
    this.waitqRemove(w);
    this.assign(w, q);
  }

  private waitqRemove(u: SchedUnit): void {
    const i = this.waitq.indexOf(u);
    if (i >= 0) this.waitq.splice(i, 1);
  }
}
