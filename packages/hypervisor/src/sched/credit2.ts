/**
 * Credit2 (Xen's sched/credit2.c), single runqueue per cpupool.
 *
 * Every unit holds credit, in normalised ns. Running burns credit at a rate inversely
 * proportional to the domain's weight (the heaviest domain burns 1:1), so, between two credit
 * resets, a unit of weight w gets w/max_weight of the reference time that the heaviest one gets:
 * CPU shares converge to weight ratios. The runqueue is sorted by credit; a pCPU runs the
 * eligible unit with the most credit. When the unit about to run has no credit left (<= 0),
 * every unit of the runqueue gets CREDIT_INIT more (clipped to CREDIT_INIT + CARRYOVER_MAX).
 *
 * Caps: a capped domain owns a budget of cap% of one reference pCPU per 10 ms period, in work
 * units. A unit grabs a quota of it when it is picked and returns the rest when it stops; a unit
 * that cannot grab any is parked (not queued) until the next replenishment.
 *
 * Units (all credits and budgets are normalised, so weights and caps hold across pCPU classes):
 *   credit: normalised ns, as in Xen (CREDIT_INIT = 10 ms of reference-pCPU work at max weight).
 *   budget: work units (REF_SPEED per normalised ns), exact integers.
 */
import { Errno } from "../public/errno.js";
import { mulDiv, mulDivCeil, type PcpuSlot, type PickResult, SchedulerBase, wallForUnits } from "./base.js";
import {
  type Credit2DomainParams,
  type PcpuId,
  type PoolParams,
  type PoolParamsUpdate,
  REF_SPEED,
  type SchedParams,
  type SchedParamsUpdate,
  type SchedUnit,
  XEN_SCHEDULER,
} from "./types.js";

const US = 1_000;
const MS = 1_000_000;

export const CSCHED2_DEFAULT_WEIGHT = 256;
export const CSCHED2_MIN_TIMER = 500 * US;
export const CSCHED2_CREDIT_INIT = 10 * MS;
export const CSCHED2_CARRYOVER_MAX = CSCHED2_MIN_TIMER;
export const CSCHED2_MIGRATE_RESIST = 500 * US;
export const CSCHED2_CREDIT_RESET = 0;
export const CSCHED2_MAX_TIMER = CSCHED2_CREDIT_INIT;
export const CSCHED2_BDGT_REPL_PERIOD = 10 * MS;
/** Lower than any credit a real unit can reach: idle is the last choice. */
const CSCHED2_IDLE_CREDIT = -(2 ** 30);
export const CSCHED2_DEFAULT_RATELIMIT_US = 1000;
const RATELIMIT_MIN_US = 100;
const RATELIMIT_MAX_US = 500_000;

export interface Credit2Options {
  /** Minimum run time before a unit can be preempted (µs, 0 = off); Xen's sched_ratelimit_us. */
  readonly ratelimitUs?: number;
}

interface C2Unit {
  readonly u: SchedUnit;
  readonly dom: C2Dom;
  credit: number;
  /** Remainder of the credit-burn division, carried so no work is ever lost to rounding. */
  residual: number;
  /** Budget grabbed from the domain (work units); 0 unless capped and picked. May go negative on overrun. */
  budget: number;
  onRunq: boolean;
  parked: boolean;
  /** The pCPU this unit was tickled for; other pCPUs leave it alone until that one reschedules. */
  tickledCpu: PcpuId | null;
  yielding: boolean;
}

interface C2Dom {
  readonly domid: number;
  weight: number;
  /** Percent of one reference pCPU, 0 = uncapped. */
  cap: number;
  nrUnits: number;
  /** cap% of a period, in work units. */
  totBudget: number;
  /** What is left for this period; negative = debt carried from an overrun. */
  budget: number;
  /** Largest grab by a single unit, so that all vCPUs of a domain get to run. */
  quota: number;
  nextRepl: number;
  parked: C2Unit[];
}

export class Credit2Scheduler extends SchedulerBase {
  readonly name = "credit2" as const;
  readonly schedId = XEN_SCHEDULER.credit2;

  private readonly data = new Map<SchedUnit, C2Unit>();
  private readonly doms = new Map<number, C2Dom>();
  /** Runnable, not running, not parked units, sorted by credit (highest first), FIFO among equals. */
  private runq: C2Unit[] = [];
  private maxWeight = CSCHED2_DEFAULT_WEIGHT;
  private ratelimitNs: number;

  constructor(opts: Credit2Options = {}) {
    super();
    const rl = opts.ratelimitUs ?? CSCHED2_DEFAULT_RATELIMIT_US;
    if (!validRatelimit(rl)) throw new RangeError(`credit2: ratelimit ${rl} µs out of range`);
    this.ratelimitNs = rl * US;
  }

  // ---- introspection (tests, xl sched-credit2) ----
  credit(u: SchedUnit): number | undefined {
    return this.data.get(u)?.credit;
  }

  isParked(u: SchedUnit): boolean {
    return this.data.get(u)?.parked ?? false;
  }

  runqueue(): readonly SchedUnit[] {
    return this.runq.map((d) => d.u);
  }

  // ---- hooks ----
  protected onAddDomain(domid: number, _now: number): void {
    this.doms.set(domid, {
      domid,
      weight: CSCHED2_DEFAULT_WEIGHT,
      cap: 0,
      nrUnits: 0,
      totBudget: 0,
      budget: 0,
      quota: 0,
      nextRepl: 0,
      parked: [],
    });
  }

  protected onRemoveDomain(domid: number, _now: number): void {
    this.doms.delete(domid);
    this.updateMaxWeight();
  }

  protected onInsert(u: SchedUnit, _now: number): void {
    const dom = this.doms.get(u.domid)!;
    this.data.set(u, {
      u,
      dom,
      credit: CSCHED2_CREDIT_INIT,
      residual: 0,
      budget: 0,
      onRunq: false,
      parked: false,
      tickledCpu: null,
      yielding: false,
    });
    dom.nrUnits++;
    this.updateQuota(dom);
    this.updateMaxWeight();
  }

  protected onRemove(u: SchedUnit, now: number): void {
    const d = this.c2(u);
    this.runqRemove(d);
    this.unparkOne(d);
    this.returnBudget(d, now);
    this.data.delete(u);
    d.dom.nrUnits--;
    this.updateQuota(d.dom);
    this.updateMaxWeight();
  }

  protected onWake(u: SchedUnit, now: number): void {
    const d = this.c2(u);
    // Xen's res_pick: keep the unit where it was if allowed, preferring soft affinity.
    u.processor = this.placement(u);
    this.runqInsert(d);
    this.runqTickle(d, now);
  }

  protected requeue(u: SchedUnit, now: number): void {
    const d = this.c2(u);
    if (d.parked) return;
    if (this.misplaced(u)) {
      u.processor = this.placement(u);
    }
    this.runqInsert(d);
    this.runqTickle(d, now);
  }

  protected onSleep(u: SchedUnit, _now: number): void {
    if (u.running) return; // its pCPU was tickled; doSchedule will not requeue it
    const d = this.c2(u);
    this.runqRemove(d);
    this.unparkOne(d);
  }

  protected onYield(u: SchedUnit, _now: number): void {
    this.c2(u).yielding = true;
  }

  protected onAffinity(u: SchedUnit, now: number): void {
    const d = this.c2(u);
    if (u.running) {
      // Running outside a (new) soft affinity: let the pCPU reconsider; it may hand the unit over.
      const soft = this.softCpus(u);
      if (soft && u.processor !== null && !soft.includes(u.processor)) this.tickle(u.processor);
      return;
    }
    if (!d.onRunq) return;
    if (this.misplaced(u)) {
      u.processor = this.placement(u);
    }
    d.tickledCpu = null;
    this.runqTickle(d, now);
  }

  protected onPcpuAdded(_id: PcpuId, _now: number): void {}

  protected onPcpuRemoved(id: PcpuId, now: number): void {
    for (const d of this.allUnits()) {
      if (d.u.running) continue;
      if (d.u.processor === id) d.u.processor = this.placement(d.u);
      if (d.tickledCpu === id) {
        d.tickledCpu = null;
        if (d.onRunq) this.runqTickle(d, now);
      }
    }
  }

  protected account(u: SchedUnit, slot: PcpuSlot, ranNs: number, _now: number): void {
    const d = this.c2(u);
    const units = ranNs * slot.info.speed;
    // credit -= ran * speed/REF * max_weight/weight, exactly, carrying the remainder (Xen's t2c_update).
    const den = REF_SPEED * d.dom.weight;
    const { q, r } = mulDiv(units, this.maxWeight, den);
    const rem = r + d.residual; // < 2 * den
    const carry = rem >= den ? 1 : 0;
    d.credit -= q + carry;
    d.residual = rem - carry * den;
    if (d.dom.cap > 0) d.budget -= units;
  }

  protected override descheduled(u: SchedUnit, _slot: PcpuSlot, now: number): void {
    const d = this.c2(u);
    d.yielding = false;
    this.returnBudget(d, now);
  }

  protected pick(slot: PcpuSlot, prev: SchedUnit | null, now: number): PickResult {
    const p = slot.info.id;
    let scurr: C2Unit | null = null;
    let yielding = false;
    if (prev) {
      const pd = this.c2(prev);
      yielding = pd.yielding;
      pd.yielding = false;
      if (prev.state === "runnable" && prev.hard.has(p)) {
        if (this.grabBudget(pd)) scurr = pd;
        else this.park(pd); // out of budget: sits out until replenishment
      }
    }
    let snext: C2Unit | null;
    if (scurr && !yielding && this.ratelimitNs > 0 && now - slot.runningSince < this.ratelimitNs) {
      // Ratelimit: a unit that has just started is not preempted (yielding units are exempt).
      snext = scurr;
    } else {
      snext = this.candidate(p, scurr, yielding);
    }
    if (!snext) return { next: null, sliceNs: null };
    if (snext.credit <= CSCHED2_CREDIT_RESET) this.resetCredit(snext, p, now);
    if (snext !== scurr) this.runqRemove(snext);
    snext.tickledCpu = null;
    return { next: snext.u, sliceNs: this.runtime(snext, slot, snext === scurr, now) };
  }

  // ---- timers: cap replenishment ----
  nextTimerNs(): number | null {
    let t: number | null = null;
    for (const dom of this.doms.values()) {
      if (dom.cap > 0 && (t === null || dom.nextRepl < t)) t = dom.nextRepl;
    }
    return t;
  }

  onTimer(now: number): void {
    for (const domid of this.domainIds()) {
      const dom = this.doms.get(domid)!;
      if (dom.cap === 0 || dom.nextRepl > now) continue;
      // Catch up on every missed period; debt from overruns is paid back from the new budget.
      do {
        dom.budget += dom.totBudget;
        dom.nextRepl += CSCHED2_BDGT_REPL_PERIOD;
      } while (dom.nextRepl <= now);
      if (dom.budget <= 0) continue;
      dom.budget = Math.min(dom.budget, dom.totBudget);
      this.unparkAll(dom, now);
    }
  }

  // ---- parameters ----
  setDomainParams(domid: number, p: SchedParamsUpdate, now: number): number {
    if (p.kind !== "credit2") return -Errno.EINVAL;
    const dom = this.doms.get(domid);
    if (!dom) return -Errno.ESRCH;
    const weight = p.weight === undefined || p.weight === 0 ? dom.weight : p.weight;
    if (!Number.isInteger(weight) || weight < 1 || weight > 65535) return -Errno.EINVAL;
    const cap = p.cap ?? dom.cap;
    if (!Number.isInteger(cap) || cap < 0 || cap > 100 * dom.nrUnits) return -Errno.EINVAL;
    dom.weight = weight;
    this.updateMaxWeight();
    if (cap !== dom.cap) this.setCap(dom, cap, now);
    return 0;
  }

  getDomainParams(domid: number): SchedParams | number {
    const dom = this.doms.get(domid);
    if (!dom) return -Errno.ESRCH;
    const out: Credit2DomainParams = { kind: "credit2", weight: dom.weight, cap: dom.cap };
    return out;
  }

  /** Credit2 has no per-vCPU parameters (Xen: weight and cap are per domain). */
  setVcpuParams(_u: SchedUnit, _p: SchedParamsUpdate, _now: number): number {
    return -Errno.EINVAL;
  }

  getVcpuParams(u: SchedUnit): SchedParams | number {
    return this.data.has(u) ? this.getDomainParams(u.domid) : -Errno.ENOENT;
  }

  setPoolParams(p: PoolParamsUpdate, _now: number): number {
    if (p.kind !== "credit2") return -Errno.EINVAL;
    if (p.ratelimitUs === undefined) return 0;
    if (!validRatelimit(p.ratelimitUs)) return -Errno.EINVAL;
    this.ratelimitNs = p.ratelimitUs * US;
    return 0;
  }

  getPoolParams(): PoolParams {
    return { kind: "credit2", ratelimitUs: this.ratelimitNs / US };
  }

  // ---- internals ----
  private c2(u: SchedUnit): C2Unit {
    const d = this.data.get(u);
    if (!d) throw new Error(`credit2: ${u.name} is not in this scheduler`);
    return d;
  }

  /** All unit data in (domid, vcpuId) order: the order every sweep uses. */
  private allUnits(): C2Unit[] {
    return this.units().map((u) => this.c2(u));
  }

  private updateMaxWeight(): void {
    let max = 0;
    for (const dom of this.doms.values()) if (dom.nrUnits > 0 && dom.weight > max) max = dom.weight;
    this.maxWeight = max > 0 ? max : CSCHED2_DEFAULT_WEIGHT;
  }

  private updateQuota(dom: C2Dom): void {
    if (dom.cap === 0 || dom.nrUnits === 0) {
      dom.quota = 0;
      return;
    }
    dom.quota = Math.max(Math.floor(dom.totBudget / dom.nrUnits), CSCHED2_MIN_TIMER * REF_SPEED);
  }

  private setCap(dom: C2Dom, cap: number, now: number): void {
    const wasCapped = dom.cap > 0;
    dom.cap = cap;
    if (cap === 0) {
      dom.totBudget = 0;
      dom.budget = 0;
      for (const d of this.allUnits()) if (d.dom === dom) d.budget = 0;
      this.unparkAll(dom, now);
      this.updateQuota(dom);
      return;
    }
    dom.totBudget = (CSCHED2_BDGT_REPL_PERIOD * REF_SPEED * cap) / 100; // integer: the period is a multiple of 100
    if (!wasCapped) {
      dom.budget = dom.totBudget;
      dom.nextRepl = now + CSCHED2_BDGT_REPL_PERIOD;
      // Running units of the domain hold no budget yet: make their pCPUs re-pick, which grabs it.
      for (const d of this.allUnits()) {
        if (d.dom === dom && d.u.running && d.u.processor !== null) this.tickle(d.u.processor);
      }
    }
    this.updateQuota(dom);
  }

  /** Make sure d holds budget; true if it may run. Uncapped units always may. */
  private grabBudget(d: C2Unit): boolean {
    const dom = d.dom;
    if (dom.cap === 0) return true;
    if (d.budget > 0) return true;
    // An overrun (budget < 0) is paid for out of the domain's budget.
    dom.budget += d.budget;
    d.budget = 0;
    if (dom.budget <= 0) return false;
    const grab = Math.min(dom.budget, dom.quota);
    d.budget = grab;
    dom.budget -= grab;
    return true;
  }

  private returnBudget(d: C2Unit, now: number): void {
    const dom = d.dom;
    if (dom.cap === 0 || d.budget === 0) return;
    dom.budget += d.budget;
    d.budget = 0;
    // Budget given back may let parked siblings run again in this period.
    if (dom.budget > 0 && dom.parked.length > 0) this.unparkAll(dom, now);
  }

  private park(d: C2Unit): void {
    this.runqRemove(d);
    if (d.parked) return;
    d.parked = true;
    d.dom.parked.push(d);
  }

  private unparkOne(d: C2Unit): void {
    if (!d.parked) return;
    d.parked = false;
    const list = d.dom.parked;
    list.splice(list.indexOf(d), 1);
  }

  private unparkAll(dom: C2Dom, now: number): void {
    const list = dom.parked;
    dom.parked = [];
    for (const d of list) {
      d.parked = false;
      if (d.u.state === "runnable" && !d.u.running) {
        if (this.misplaced(d.u)) {
          d.u.processor = this.placement(d.u);
        }
        this.runqInsert(d);
        this.runqTickle(d, now);
      }
    }
  }

  private runqInsert(d: C2Unit): void {
    if (d.onRunq) return;
    let i = 0;
    while (i < this.runq.length && this.runq[i]!.credit >= d.credit) i++;
    this.runq.splice(i, 0, d);
    d.onRunq = true;
  }

  private runqRemove(d: C2Unit): void {
    if (!d.onRunq) return;
    this.runq.splice(this.runq.indexOf(d), 1);
    d.onRunq = false;
  }

  /**
   * Xen's runq_candidate: the best unit pCPU p may run instead of scurr (null = idle).
   * Skips units outside hard affinity, units tickled for another pCPU that has not rescheduled
   * yet, and units placed elsewhere that do not beat scurr by MIGRATE_RESIST.
   */
  private candidate(p: PcpuId, scurr: C2Unit | null, yielding: boolean): C2Unit | null {
    let snext = scurr;
    if (scurr) {
      // Running outside its soft affinity while a pCPU inside it sits idle: let it go there.
      const soft = this.softCpus(scurr.u);
      if (soft && !soft.includes(p) && soft.some((q) => this.idleUntickled(q))) snext = null;
    }
    for (const svc of [...this.runq]) {
      const best = snext ? snext.credit : CSCHED2_IDLE_CREDIT;
      if (!svc.u.hard.has(p)) continue;
      if (svc.tickledCpu !== null && svc.tickledCpu !== p && this.slot(svc.tickledCpu)?.tickled) continue;
      if (svc.u.processor !== p && best + CSCHED2_MIGRATE_RESIST > svc.credit) continue;
      if (!yielding && svc.credit <= best) break;
      if (this.grabBudget(svc)) return svc;
      this.park(svc);
    }
    return snext;
  }

  /**
   * Xen's csched2_runtime: run until snext's credit would drop to that of the best waiter (or to
   * 0), no longer than its cap budget, clamped to [max(MIN_TIMER, ratelimit), MAX_TIMER]. The
   * minimum is applied last, so a capped unit may overrun its budget a little; the debt is
   * carried into the next period, so the cap still holds on average.
   */
  private runtime(sn: C2Unit, slot: PcpuSlot, continuing: boolean, now: number): number {
    let minTime = CSCHED2_MIN_TIMER;
    if (this.ratelimitNs > 0) {
      const rl = continuing ? slot.runningSince + this.ratelimitNs - now : this.ratelimitNs;
      if (rl > minTime) minTime = rl;
    }
    let rtCredit = sn.credit;
    const swait = this.runq[0];
    if (swait && swait.credit > 0) rtCredit = sn.credit - swait.credit;
    const speed = slot.info.speed;
    // credit -> wall ns on this pCPU: credit * weight/max_weight normalised ns, * REF/speed.
    let time = rtCredit > 0 ? mulDivCeil(rtCredit, sn.dom.weight * REF_SPEED, this.maxWeight * speed) : 0;
    if (sn.dom.cap > 0) time = Math.min(time, wallForUnits(sn.budget, speed));
    if (time < minTime) time = minTime;
    else if (time > CSCHED2_MAX_TIMER) time = CSCHED2_MAX_TIMER;
    return time;
  }

  /** Xen's reset_credit: everyone gets CREDIT_INIT more (times m if snext is deep in debt). */
  private resetCredit(snext: C2Unit, p: PcpuId, now: number): void {
    let m = 1;
    if (snext.credit < -CSCHED2_CREDIT_INIT) m += Math.floor(-snext.credit / CSCHED2_CREDIT_INIT);
    for (const d of this.allUnits()) {
      const q = d.u.processor;
      if (d.u.running && q !== null && q !== p) {
        // Bring units running elsewhere up to date before their credit moves.
        const s = this.slot(q)!;
        this.accountRunning(s, now);
        if (d.dom.cap > 0 && d.budget <= 0) this.tickle(q);
      }
      d.credit = Math.min(d.credit + m * CSCHED2_CREDIT_INIT, CSCHED2_CREDIT_INIT + CSCHED2_CARRYOVER_MAX);
    }
    // Clipping can reorder equal-credit runs; keep the runqueue sorted (stable: FIFO kept).
    this.runq.sort((a, b) => b.credit - a.credit);
  }

  /**
   * Xen's runq_tickle: pick the pCPU that should run d now. First an idle, untickled pCPU (in
   * soft affinity if any, its current pCPU first); otherwise the busy pCPU whose unit d beats by
   * the most credit (less MIGRATE_RESIST if d would move, plus soft-affinity bonuses).
   */
  private runqTickle(d: C2Unit, now: number): void {
    const u = d.u;
    if (u.running || !d.onRunq) return;
    const hard = this.hardCpus(u).filter((q) => !this.slot(q)!.tickled);
    const soft = this.softCpus(u);
    const masks = soft ? [hard.filter((q) => soft.includes(q)), hard] : [hard];
    for (const mask of masks) {
      const idle = mask.filter((q) => this.slot(q)!.curr === null);
      if (idle.length > 0) {
        const ipid = u.processor !== null && idle.includes(u.processor) ? u.processor : idle[0]!;
        d.tickledCpu = ipid;
        this.tickle(ipid);
        return;
      }
    }
    let best: PcpuId | null = null;
    let bestScore = 0;
    const order =
      u.processor !== null && hard.includes(u.processor)
        ? [u.processor, ...hard.filter((q) => q !== u.processor)]
        : hard;
    for (const q of order) {
      const score = this.tickleScore(d, q, soft, now);
      if (score > bestScore) {
        bestScore = score;
        best = q;
      }
    }
    if (best !== null) {
      d.tickledCpu = best;
      this.tickle(best);
    }
  }

  private tickleScore(d: C2Unit, q: PcpuId, soft: PcpuId[] | null, now: number): number {
    const s = this.slot(q)!;
    const cur = s.curr;
    if (!cur) return -1;
    this.accountRunning(s, now);
    const cd = this.c2(cur);
    let score = d.credit - cd.credit;
    if (d.u.processor !== q) score -= CSCHED2_MIGRATE_RESIST;
    if (score > 0) {
      if (soft?.includes(q)) score += CSCHED2_CREDIT_INIT;
      const curSoft = this.softCpus(cur);
      if (curSoft && !curSoft.includes(q)) score += CSCHED2_CREDIT_INIT;
    }
    return score;
  }
}

function validRatelimit(us: number): boolean {
  return Number.isInteger(us) && (us === 0 || (us >= RATELIMIT_MIN_US && us <= RATELIMIT_MAX_US));
}
