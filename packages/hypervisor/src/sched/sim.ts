/**
 * A deterministic discrete-event simulator of the driver layer, for tests and experiments.
 *
 * It plays the part the pCPU workers will play: each pCPU runs what doSchedule told it until its
 * slice ends, the unit blocks, or a tickle preempts it, and then asks again. vCPU behaviour comes
 * from workloads (always busy, or run some work then sleep). Virtual time only; every iteration
 * is in a fixed order, so the same scenario always yields the same decision trace.
 *
 * It also checks, on every decision, the invariants the driver relies on: a unit runs only inside
 * its hard affinity, only when runnable, and on one pCPU at a time.
 */
import type { Cpupools } from "./cpupool.js";
import { type Pcpu, type PcpuClass, type PcpuId, REF_SPEED, type SchedDecision, type SchedUnit } from "./types.js";

export type Workload =
  /** Always runnable. */
  | { readonly kind: "busy" }
  /** Runs `runNs` normalised ns of work, then blocks for `sleepNs` wall ns, and again. */
  | { readonly kind: "periodic"; readonly runNs: number; readonly sleepNs: number };

export interface UnitStats {
  readonly unit: SchedUnit;
  /** Wall ns run. */
  runNs: number;
  /** Work done, in work units (REF_SPEED per normalised ns). */
  workUnits: number;
  /** Wall ns run on each pCPU. */
  readonly perPcpu: Map<PcpuId, number>;
  blocks: number;
  wakes: number;
}

export interface Interval {
  readonly unit: SchedUnit;
  readonly pcpu: PcpuId;
  readonly start: number;
  end: number;
}

interface CpuState {
  readonly info: Pcpu;
  unit: SchedUnit | null;
  since: number;
  sliceEnd: number | null;
  idleNs: number;
  open: Interval | null;
}

interface LoadState {
  readonly unit: SchedUnit;
  readonly w: Workload;
  /** Work left in the current burst (work units), periodic only. */
  remaining: number;
  wakeAt: number | null;
}

export interface SimOptions {
  /** Keep the decision trace (default true). */
  readonly trace?: boolean;
  /** Called after every decision, e.g. for extra assertions. */
  readonly onDecision?: (d: SchedDecision, sim: SchedSim) => void;
}

/** n pCPUs of one class: ids first..first+n-1. */
export function pcpus(n: number, cls: PcpuClass = "big", speed = REF_SPEED, first = 0): Pcpu[] {
  return Array.from({ length: n }, (_, i) => ({ id: first + i, cls, speed }));
}

const MAX_DECISIONS_PER_INSTANT = 10_000;

export class SchedSim {
  now = 0;
  decisions = 0;
  readonly trace: string[] = [];
  readonly intervals: Interval[] = [];
  private readonly cpus = new Map<PcpuId, CpuState>();
  private readonly loads = new Map<SchedUnit, LoadState>();
  private readonly stats = new Map<SchedUnit, UnitStats>();
  private readonly pending = new Set<PcpuId>();
  private actions: { at: number; seq: number; fn: (sim: SchedSim) => void }[] = [];
  private actionSeq = 0;
  private started = false;

  constructor(
    readonly pools: Cpupools,
    private readonly opts: SimOptions = {},
  ) {
    for (const p of pools.hostPcpus()) {
      this.cpus.set(p.id, { info: p, unit: null, since: 0, sliceEnd: null, idleNs: 0, open: null });
    }
  }

  /** Give a vCPU a workload; it is woken at `startNs` (default: now). */
  setWorkload(domid: number, vcpuId: number, w: Workload, startNs = this.now): void {
    const unit = this.pools.unit(domid, vcpuId);
    if (!unit) throw new RangeError(`sim: no vCPU d${domid}v${vcpuId}`);
    if (w.kind === "periodic" && !(w.runNs > 0 && w.sleepNs >= 0)) throw new RangeError("sim: bad periodic workload");
    this.loads.set(unit, { unit, w, remaining: 0, wakeAt: startNs });
  }

  /** Give every vCPU of a domain the same workload. */
  setDomainWorkload(domid: number, w: Workload, startNs = this.now): void {
    for (const u of this.pools.units(domid)) this.setWorkload(domid, u.vcpuId, w, startNs);
  }

  /** Run fn at virtual time t (before wakes, timers and slice ends due at t). */
  at(t: number, fn: (sim: SchedSim) => void): void {
    this.actions.push({ at: t, seq: this.actionSeq++, fn });
    this.actions.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Advance virtual time to `until`; events due exactly at `until` wait for the next run. */
  run(until: number): void {
    if (!this.started) {
      this.started = true;
      for (const id of this.cpus.keys()) this.pending.add(id);
    }
    let stuck = 0;
    for (;;) {
      this.settle();
      const t = this.nextEvent(until);
      stuck = t === this.now ? stuck + 1 : 0;
      if (stuck > MAX_DECISIONS_PER_INSTANT) throw new Error(`sim: no progress at ${this.now} ns`);
      this.advance(t);
      if (t >= until) break;
      this.fire();
    }
  }

  // ---- results ----
  unitStats(domid: number, vcpuId: number): UnitStats {
    const u = this.pools.unit(domid, vcpuId);
    if (!u) throw new RangeError(`sim: no vCPU d${domid}v${vcpuId}`);
    return this.statsOf(u);
  }

  /** Normalised ns of work a vCPU did. */
  work(domid: number, vcpuId: number): number {
    return this.unitStats(domid, vcpuId).workUnits / REF_SPEED;
  }

  /** Normalised ns of work all vCPUs of a domain did. */
  domainWork(domid: number): number {
    let w = 0;
    for (const u of this.pools.units(domid)) w += this.statsOf(u).workUnits;
    return w / REF_SPEED;
  }

  /** Wall ns all vCPUs of a domain ran. */
  domainRun(domid: number): number {
    let r = 0;
    for (const u of this.pools.units(domid)) r += this.statsOf(u).runNs;
    return r;
  }

  idleNs(pcpu: PcpuId): number {
    return this.cpus.get(pcpu)?.idleNs ?? 0;
  }

  /** Normalised ns of work `u` did within [from, to). */
  workIn(u: SchedUnit, from: number, to: number): number {
    let units = 0;
    for (const iv of this.intervals) {
      if (iv.unit !== u) continue;
      const end = iv === this.cpus.get(iv.pcpu)?.open ? this.now : iv.end;
      const a = Math.max(from, iv.start);
      const b = Math.min(to, end);
      if (b > a) units += (b - a) * this.cpus.get(iv.pcpu)!.info.speed;
    }
    return units / REF_SPEED;
  }

  // ---- event loop ----
  private statsOf(u: SchedUnit): UnitStats {
    let s = this.stats.get(u);
    if (!s) {
      s = { unit: u, runNs: 0, workUnits: 0, perPcpu: new Map(), blocks: 0, wakes: 0 };
      this.stats.set(u, s);
    }
    return s;
  }

  private sortedLoads(): LoadState[] {
    return [...this.loads.values()].sort((a, b) => a.unit.domid - b.unit.domid || a.unit.vcpuId - b.unit.vcpuId);
  }

  /** Reschedule every pCPU that was tickled or whose slice ended, until none is left. */
  private settle(): void {
    let n = 0;
    for (;;) {
      for (const c of this.pools.takeTickles()) this.pending.add(c);
      if (this.pending.size === 0) return;
      const c = Math.min(...this.pending);
      this.pending.delete(c);
      this.reschedule(c);
      if (++n > MAX_DECISIONS_PER_INSTANT) throw new Error(`sim: livelock at ${this.now} ns`);
    }
  }

  private reschedule(c: PcpuId): void {
    const st = this.cpus.get(c)!;
    const d = this.pools.doSchedule(c, this.now, st.unit ? this.now - st.since : undefined);
    const next = d.next;
    if (next) {
      if (!next.hard.has(c))
        throw new Error(`sim: ${next.name} scheduled on pCPU ${c} outside hard affinity ${next.hard}`);
      if (next.state !== "runnable") throw new Error(`sim: ${next.name} scheduled while ${next.state}`);
      for (const [o, os] of this.cpus) {
        if (o !== c && os.unit === next) throw new Error(`sim: ${next.name} on pCPUs ${o} and ${c} at once`);
      }
    }
    if (d.sliceNs !== null && !(Number.isInteger(d.sliceNs) && d.sliceNs > 0)) {
      throw new Error(`sim: bad slice ${d.sliceNs} on pCPU ${c}`);
    }
    if (st.unit !== next) {
      if (st.open) {
        st.open.end = this.now;
        st.open = null;
      }
      if (next) {
        st.open = { unit: next, pcpu: c, start: this.now, end: this.now };
        this.intervals.push(st.open);
      }
    }
    st.unit = next;
    st.since = this.now;
    st.sliceEnd = d.sliceNs === null ? null : this.now + d.sliceNs;
    this.decisions++;
    if (this.opts.trace !== false) {
      this.trace.push(`${this.now} p${c} ${next ? next.name : "idle"} ${d.sliceNs ?? "-"}${d.migrated ? " m" : ""}`);
    }
    this.opts.onDecision?.(d, this);
  }

  private nextEvent(until: number): number {
    let t = until;
    const consider = (x: number | null): void => {
      if (x !== null && x < t) t = Math.max(x, this.now);
    };
    consider(this.actions[0]?.at ?? null);
    for (const l of this.loads.values()) consider(l.wakeAt);
    consider(this.pools.nextTimerNs());
    for (const st of this.cpus.values()) {
      consider(st.sliceEnd);
      const l = st.unit ? this.loads.get(st.unit) : undefined;
      if (l && l.w.kind === "periodic") consider(this.now + Math.ceil(l.remaining / st.info.speed));
    }
    return t;
  }

  private advance(t: number): void {
    const dt = t - this.now;
    if (dt > 0) {
      for (const [c, st] of this.cpus) {
        if (!st.unit) {
          st.idleNs += dt;
          continue;
        }
        const s = this.statsOf(st.unit);
        s.runNs += dt;
        s.workUnits += dt * st.info.speed;
        s.perPcpu.set(c, (s.perPcpu.get(c) ?? 0) + dt);
        const l = this.loads.get(st.unit);
        if (l && l.w.kind === "periodic") l.remaining -= dt * st.info.speed;
      }
    }
    this.now = t;
  }

  /** Everything due at `now`, in a fixed order: actions, wakes, timers, blocks, slice ends. */
  private fire(): void {
    while (this.actions.length > 0 && this.actions[0]!.at <= this.now) this.actions.shift()!.fn(this);
    for (const l of this.sortedLoads()) {
      if (l.wakeAt === null || l.wakeAt > this.now) continue;
      l.wakeAt = null;
      if (l.w.kind === "periodic") l.remaining = l.w.runNs * REF_SPEED;
      this.statsOf(l.unit).wakes++;
      this.pools.wake(l.unit.domid, l.unit.vcpuId, this.now);
    }
    const tt = this.pools.nextTimerNs();
    if (tt !== null && tt <= this.now) this.pools.onTimer(this.now);
    for (const [c, st] of this.cpus) {
      const l = st.unit ? this.loads.get(st.unit) : undefined;
      if (l && l.w.kind === "periodic" && l.remaining <= 0) {
        this.pools.block(l.unit.domid, l.unit.vcpuId, this.now);
        this.statsOf(l.unit).blocks++;
        l.wakeAt = this.now + l.w.sleepNs;
        this.pending.add(c);
      }
      if (st.sliceEnd !== null && st.sliceEnd <= this.now) this.pending.add(c);
    }
  }
}
