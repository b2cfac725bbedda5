/**
 * The generic half of a scheduler (Xen's sched/core.c): the pCPU and unit tables, unit state
 * transitions, time accounting, tickle collection and the invariant checks on every decision.
 * Each policy (credit2, RTDS, null) extends it and fills in the hooks (Xen's sched ops).
 */
import { Errno } from "../public/errno.js";
import { CpuMask } from "./cpumask.js";
import {
  type Pcpu,
  type PcpuId,
  type PoolParams,
  type PoolParamsUpdate,
  REF_SPEED,
  type SchedDecision,
  type SchedName,
  type SchedParams,
  type SchedParamsUpdate,
  type SchedUnit,
  type Scheduler,
  validPcpu,
} from "./types.js";

/** Per-pCPU state kept by the generic layer (Xen's sched_resource). */
export interface PcpuSlot {
  readonly info: Pcpu;
  /** The unit the last decision handed to this pCPU (null = idle). */
  curr: SchedUnit | null;
  /** Time of the last decision on this pCPU: the start of the current stint. */
  stintStart: number;
  /** Wall ns of the current stint already charged by accountRunning (mid-stint accounting). */
  accountedNs: number;
  /** When curr started running without interruption (Xen's state_entry_time; ratelimit reads it). */
  runningSince: number;
  /** A reschedule was requested and this pCPU has not run doSchedule since (Xen's rqd->tickled). */
  tickled: boolean;
  /** Left the pool while running a unit: its next decision is idle, then it can go. */
  draining: boolean;
}

export interface PickResult {
  readonly next: SchedUnit | null;
  readonly sliceNs: number | null;
}

const validDomid = (d: number): boolean => Number.isInteger(d) && d >= 0 && d <= 0xffff;

/**
 * Work is kept in integer "work units": 1 wall ns on a pCPU of speed s is s units, so 1 normalised
 * ns (a ns on the REF_SPEED pCPU) is REF_SPEED units. Integers keep every decision exact.
 */
export function workUnits(wallNs: number, speed: number): number {
  return wallNs * speed;
}

/** Wall ns a pCPU of `speed` needs to do `units` work units, rounded up so the work gets done. */
export function wallForUnits(units: number, speed: number): number {
  return units <= 0 ? 0 : mulDivCeil(units, 1, speed);
}

export abstract class SchedulerBase implements Scheduler {
  abstract readonly name: SchedName;
  abstract readonly schedId: number;

  protected readonly slots = new Map<PcpuId, PcpuSlot>();
  /** The pool's pCPUs, sorted: every policy iterates in this order, which keeps runs reproducible. */
  protected pcpuList: PcpuId[] = [];
  private readonly domUnitLists = new Map<number, SchedUnit[]>();
  private readonly unitSet = new Set<SchedUnit>();
  private readonly pendingTickles = new Set<PcpuId>();
  /** Number of decisions taken, for statistics. */
  decisions = 0;

  // ---- hooks (Xen's struct scheduler ops) ----
  protected abstract onAddDomain(domid: number, now: number): void;
  protected abstract onRemoveDomain(domid: number, now: number): void;
  /** u is new to this scheduler and not running. */
  protected abstract onInsert(u: SchedUnit, now: number): void;
  /** u is leaving; it is not running (the generic layer took it off its pCPU). */
  protected abstract onRemove(u: SchedUnit, now: number): void;
  /** u just became runnable and is neither running nor queued. */
  protected abstract onWake(u: SchedUnit, now: number): void;
  /** u was runnable (or blocked, going offline) and is not any more. If it is running its pCPU is already tickled. */
  protected abstract onSleep(u: SchedUnit, now: number): void;
  /** u (running) asked to yield; its pCPU is tickled afterwards. */
  protected abstract onYield(u: SchedUnit, now: number): void;
  /** u's affinity changed (already valid against the pool). */
  protected abstract onAffinity(u: SchedUnit, now: number): void;
  protected abstract onPcpuAdded(id: PcpuId, now: number): void;
  /** The slot is gone; its former unit (if any) is descheduled and will be requeued after this hook. */
  protected abstract onPcpuRemoved(id: PcpuId, now: number): void;
  /** Charge ranNs wall ns of running on slot to u. */
  protected abstract account(u: SchedUnit, slot: PcpuSlot, ranNs: number, now: number): void;
  /** Choose what slot runs next. prev (slot.curr) is already accounted. Must not requeue prev. */
  protected abstract pick(slot: PcpuSlot, prev: SchedUnit | null, now: number): PickResult;
  /** u stopped running on slot (replaced, removed, or its pCPU left). */
  protected descheduled(_u: SchedUnit, _slot: PcpuSlot, _now: number): void {}
  /** u was descheduled while still runnable: put it back where it can be picked (and tickle). */
  protected abstract requeue(u: SchedUnit, now: number): void;

  abstract nextTimerNs(): number | null;
  abstract onTimer(now: number): void;
  abstract setDomainParams(domid: number, p: SchedParamsUpdate, now: number): number;
  abstract getDomainParams(domid: number): SchedParams | number;
  abstract setVcpuParams(u: SchedUnit, p: SchedParamsUpdate, now: number): number;
  abstract getVcpuParams(u: SchedUnit): SchedParams | number;
  abstract setPoolParams(p: PoolParamsUpdate, now: number): number;
  abstract getPoolParams(): PoolParams;

  // ---- pCPUs ----
  pcpuIds(): readonly PcpuId[] {
    return this.pcpuList;
  }

  pcpu(id: PcpuId): Pcpu | undefined {
    return this.slots.get(id)?.info;
  }

  addPcpu(p: Pcpu, now: number): number {
    if (!validPcpu(p)) return -Errno.EINVAL;
    if (this.slots.has(p.id)) return -Errno.EEXIST;
    this.slots.set(p.id, {
      info: p,
      curr: null,
      stintStart: now,
      accountedNs: 0,
      runningSince: now,
      tickled: false,
      draining: false,
    });
    this.pcpuList = [...this.pcpuList, p.id].sort((a, b) => a - b);
    this.onPcpuAdded(p.id, now);
    // A pCPU joining a pool goes and looks for work at once (Xen raises SCHEDULE_SOFTIRQ).
    this.tickle(p.id);
    return 0;
  }

  /**
   * Take a pCPU out of the pool. An idle pCPU goes at once (0). A busy one stops being a
   * target at once but keeps its unit until it reschedules: it is tickled, its next decision
   * is idle (the unit is requeued elsewhere only then, so it never runs twice), and the caller
   * retries after that (-EAGAIN, as Xen's RMCPU).
   */
  removePcpu(id: PcpuId, now: number): number {
    const slot = this.slots.get(id);
    if (!slot) return -Errno.EINVAL;
    if (!slot.draining) {
      if (this.pcpuList.length === 1 && this.unitSet.size > 0) return -Errno.EBUSY;
      this.pcpuList = this.pcpuList.filter((c) => c !== id);
      // A unit whose hard affinity no longer meets the pool loses it (Xen: "Breaking affinity").
      // Done first, so the policy hook below can re-place every unit somewhere valid.
      for (const u of this.units()) {
        if (!u.hard.intersects(this.pcpuList)) {
          u.hard = CpuMask.ALL;
          u.affinityBroken = true;
          this.onAffinity(u, now);
        }
      }
      this.onPcpuRemoved(id, now);
    }
    if (slot.curr) {
      slot.draining = true;
      this.tickle(id);
      return -Errno.EAGAIN;
    }
    this.slots.delete(id);
    this.pendingTickles.delete(id);
    return 0;
  }

  /** The pCPU is in the pool (draining pCPUs are not). */
  protected inPool(id: PcpuId): boolean {
    return this.slots.has(id) && !this.slots.get(id)!.draining;
  }

  /** u's processor is unset, outside the pool or outside its hard affinity: place it again. */
  protected misplaced(u: SchedUnit): boolean {
    return u.processor === null || !this.inPool(u.processor) || !u.hard.has(u.processor);
  }

  // ---- domains and units ----
  addDomain(domid: number, now: number): number {
    if (!validDomid(domid)) return -Errno.EINVAL;
    if (this.domUnitLists.has(domid)) return -Errno.EEXIST;
    this.domUnitLists.set(domid, []);
    this.onAddDomain(domid, now);
    return 0;
  }

  removeDomain(domid: number, now: number): number {
    const list = this.domUnitLists.get(domid);
    if (!list) return -Errno.ESRCH;
    if (list.length > 0) return -Errno.EBUSY;
    this.onRemoveDomain(domid, now);
    this.domUnitLists.delete(domid);
    return 0;
  }

  domainIds(): readonly number[] {
    return [...this.domUnitLists.keys()].sort((a, b) => a - b);
  }

  hasDomain(domid: number): boolean {
    return this.domUnitLists.has(domid);
  }

  insertUnit(u: SchedUnit, now: number): number {
    const list = this.domUnitLists.get(u.domid);
    if (!list) return -Errno.ESRCH;
    if (this.unitSet.has(u) || list.some((o) => o.vcpuId === u.vcpuId)) return -Errno.EEXIST;
    if (!Number.isInteger(u.vcpuId) || u.vcpuId < 0) return -Errno.EINVAL;
    if (this.pcpuList.length === 0) return -Errno.ENODEV;
    if (u.running) return -Errno.EBUSY;
    if (!u.hard.intersects(this.pcpuList)) {
      u.hard = CpuMask.ALL;
      u.affinityBroken = true;
    }
    // processor names a pCPU of this pool or nothing.
    if (u.processor !== null && !this.inPool(u.processor)) u.processor = null;
    list.push(u);
    list.sort((a, b) => a.vcpuId - b.vcpuId);
    this.unitSet.add(u);
    this.onInsert(u, now);
    if (u.state === "runnable") this.onWake(u, now);
    return 0;
  }

  removeUnit(u: SchedUnit, now: number): number {
    if (!this.unitSet.has(u)) return -Errno.ENOENT;
    if (u.running && u.processor !== null) {
      const slot = this.slots.get(u.processor)!;
      this.accountRunning(slot, now);
      slot.curr = null;
      u.running = false;
      this.descheduled(u, slot, now);
      this.tickle(slot.info.id);
    }
    this.onRemove(u, now);
    this.unitSet.delete(u);
    const list = this.domUnitLists.get(u.domid)!;
    list.splice(list.indexOf(u), 1);
    u.processor = null;
    return 0;
  }

  units(domid?: number): readonly SchedUnit[] {
    if (domid !== undefined) return [...(this.domUnitLists.get(domid) ?? [])];
    const out: SchedUnit[] = [];
    for (const d of this.domainIds()) out.push(...this.domUnitLists.get(d)!);
    return out;
  }

  hasUnit(u: SchedUnit): boolean {
    return this.unitSet.has(u);
  }

  // ---- state changes ----
  wake(u: SchedUnit, now: number): number {
    if (!this.unitSet.has(u)) return -Errno.ENOENT;
    if (u.state === "runnable") return 0;
    u.state = "runnable";
    // Blocked and woken again before its pCPU rescheduled: it simply keeps running.
    if (u.running) return 0;
    this.onWake(u, now);
    return 0;
  }

  block(u: SchedUnit, now: number): number {
    return this.sleep(u, "blocked", now);
  }

  offline(u: SchedUnit, now: number): number {
    return this.sleep(u, "offline", now);
  }

  private sleep(u: SchedUnit, to: "blocked" | "offline", now: number): number {
    if (!this.unitSet.has(u)) return -Errno.ENOENT;
    if (u.state === to) return 0;
    u.state = to;
    if (u.running && u.processor !== null) this.tickle(u.processor);
    this.onSleep(u, now);
    return 0;
  }

  yield(u: SchedUnit, now: number): number {
    if (!this.unitSet.has(u)) return -Errno.ENOENT;
    if (!u.running || u.processor === null) return 0;
    this.onYield(u, now);
    this.tickle(u.processor);
    return 0;
  }

  adjustAffinity(u: SchedUnit, hard: CpuMask, soft: CpuMask, now: number): number {
    if (!this.unitSet.has(u)) return -Errno.ENOENT;
    if (!hard.intersects(this.pcpuList)) return -Errno.EINVAL;
    u.hard = hard;
    u.soft = soft;
    u.affinityBroken = false;
    // Running outside the new hard affinity: its pCPU must let go at once.
    if (u.running && u.processor !== null && !hard.has(u.processor)) this.tickle(u.processor);
    this.onAffinity(u, now);
    return 0;
  }

  // ---- decisions ----
  doSchedule(pcpu: PcpuId, now: number, ranNs?: number): SchedDecision {
    const slot = this.slots.get(pcpu);
    if (!slot) throw new RangeError(`${this.name}: pCPU ${pcpu} is not in this scheduler`);
    slot.tickled = false;
    this.pendingTickles.delete(pcpu);
    const prev = slot.curr;
    if (prev) {
      const total = ranNs ?? now - slot.stintStart;
      const ran = Math.max(0, total - slot.accountedNs);
      if (ran > 0) this.charge(prev, slot, ran, now);
    }
    const { next, sliceNs } = slot.draining ? { next: null, sliceNs: null } : this.pick(slot, prev, now);
    // This pCPU is deciding right now: a tickle of itself raised while picking is moot.
    slot.tickled = false;
    this.pendingTickles.delete(pcpu);
    if (next) {
      // Invariants every policy must keep; a violation is a scheduler bug, not a caller mistake.
      if (!this.unitSet.has(next)) throw new Error(`${this.name}: picked ${next.name}, not in this scheduler`);
      if (!next.hard.has(pcpu))
        throw new Error(`${this.name}: picked ${next.name} outside its hard affinity on ${pcpu}`);
      if (next.state !== "runnable") throw new Error(`${this.name}: picked ${next.name} which is ${next.state}`);
      if (next !== prev && next.running) throw new Error(`${this.name}: picked ${next.name}, already running`);
    }
    slot.curr = next;
    slot.stintStart = now;
    slot.accountedNs = 0;
    let migrated = false;
    if (next) {
      if (next !== prev) {
        slot.runningSince = now;
        migrated = next.lastPcpu !== null && next.lastPcpu !== pcpu;
      }
      next.running = true;
      next.processor = pcpu;
      next.lastPcpu = pcpu;
    }
    if (prev && prev !== next) {
      prev.running = false;
      this.descheduled(prev, slot, now);
      if (prev.state === "runnable") this.requeue(prev, now);
    }
    this.decisions++;
    return { pcpu, now, prev, next, sliceNs, migrated };
  }

  current(pcpu: PcpuId): SchedUnit | null {
    return this.slots.get(pcpu)?.curr ?? null;
  }

  takeTickles(): PcpuId[] {
    const out = [...this.pendingTickles].sort((a, b) => a - b);
    this.pendingTickles.clear();
    return out;
  }

  // ---- helpers for policies ----
  /** Ask pCPU id to reschedule (Xen: raise SCHEDULE_SOFTIRQ). */
  protected tickle(id: PcpuId): void {
    const slot = this.slots.get(id);
    if (!slot) return;
    slot.tickled = true;
    this.pendingTickles.add(id);
  }

  /** Charge the running unit of slot for the time up to now, mid-stint (Xen's burn_credits from a timer). */
  protected accountRunning(slot: PcpuSlot, now: number): void {
    const u = slot.curr;
    if (!u) return;
    const ran = now - slot.stintStart - slot.accountedNs;
    if (ran <= 0) return;
    slot.accountedNs += ran;
    this.charge(u, slot, ran, now);
  }

  private charge(u: SchedUnit, slot: PcpuSlot, ran: number, now: number): void {
    u.runNs += ran;
    u.workNs += (ran * slot.info.speed) / REF_SPEED;
    this.account(u, slot, ran, now);
  }

  protected slot(id: PcpuId): PcpuSlot | undefined {
    return this.slots.get(id);
  }

  /** Idle and not already asked to reschedule: a good target for a woken unit. */
  protected idleUntickled(id: PcpuId): boolean {
    const s = this.slots.get(id);
    return s !== undefined && s.curr === null && !s.tickled;
  }

  /** The pool's pCPUs in u's hard affinity, sorted. Never empty for an inserted unit. */
  protected hardCpus(u: SchedUnit): PcpuId[] {
    return u.hard.within(this.pcpuList);
  }

  /**
   * The pool's pCPUs in u's soft ∩ hard affinity, or null when soft affinity says nothing
   * (covers all of hard, or misses it entirely), as Xen's has_soft_affinity.
   */
  protected softCpus(u: SchedUnit): PcpuId[] | null {
    if (u.soft.isAll) return null;
    const hard = this.hardCpus(u);
    const soft = u.soft.within(hard);
    if (soft.length === 0 || soft.length === hard.length) return null;
    return soft;
  }

  /** A pCPU of the pool for u to be queued on: its current one if allowed, else soft, else hard. */
  protected placement(u: SchedUnit): PcpuId {
    if (!this.misplaced(u)) return u.processor!;
    const soft = this.softCpus(u);
    return (soft ?? this.hardCpus(u))[0]!;
  }
}

/**
 * floor(a*b/c) and its remainder, exact for non-negative safe integers (falls back to BigInt when
 * a*b would lose precision). Decisions must not depend on float rounding, or runs stop being
 * reproducible across code changes.
 */
export function mulDiv(a: number, b: number, c: number): { q: number; r: number } {
  const ab = a * b;
  if (Number.isSafeInteger(ab)) {
    const r = ab % c;
    return { q: (ab - r) / c, r };
  }
  const big = BigInt(a) * BigInt(b);
  const bc = BigInt(c);
  return { q: Number(big / bc), r: Number(big % bc) };
}

/** ceil(a*b/c) for non-negative safe integers, exactly. */
export function mulDivCeil(a: number, b: number, c: number): number {
  const { q, r } = mulDiv(a, b, c);
  return r === 0 ? q : q + 1;
}
