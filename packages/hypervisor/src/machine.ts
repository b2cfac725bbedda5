/**
 * The running host (Xen's sched/core.c plus the trap return path): cpupools, each with its own
 * scheduler and pCPU worker threads, driving the vCPUs of the core's domains.
 *
 * Per pCPU an async loop asks the pool's scheduler what to run (doSchedule), runs that vCPU's
 * slice on the pCPU's worker, and handles the exits. As in Xen, a pCPU keeps a vCPU running
 * through many exits: a hypercall that does not block returns straight into the same vCPU with
 * what is left of its slice. Blocking (WFI, SCHEDOP_block/poll), yield, budget and preemption go
 * back to the scheduler.
 *
 * The common event path never reaches this thread: workers serve EVTCHNOP_send/unmask and spin
 * briefly in WFI / SCHEDOP_block (pcpu/fast_events.ts, pcpu_worker.ts). For that the machine
 * shares each domain's port table, shared_info frame, vCPU state blocks and a control block
 * (DomainShare) with every worker, keeps each vCPU's upcall line equal to its vcpu_info, and
 * turns a worker's WakeMsg into hooks.upcall.
 *
 * Time: "host" mode uses the host's monotonic clock. "instructions" mode uses a virtual clock
 * advanced only by retired instructions (nsPerInstruction each) — with one pCPU a run is then fully
 * reproducible, which the tests use.
 */
import { completeMmioLoad, ExitReason, SIP_SEIP, VCPU_STATE_BYTES, VcpuSlot } from "@xenon/hw";
import type { Domain, ShutdownAction } from "./domain.js";
import { sendGuestVirq } from "./event_channel/event_channel.js";
import { dispatchHypercall } from "./hypercall/dispatch.js";
import type { Hypervisor } from "./hypervisor.js";
import { MachineControl, type MachineRuntime } from "./machine_control.js";
import { VCPU_SAVED_SLOTS } from "./migrate/records.js";
import { DomainCtlSlot, type DomainShare, domainCtlWords, ringBell, type TimeMode, vcpuKey } from "./pcpu/contract.js";
import { PcpuPool } from "./pcpu/pcpu_pool.js";
import { Errno } from "./public/errno.js";
import { Virq } from "./public/xen.js";
import { type CpupoolInfo, Cpupools } from "./sched/cpupool.js";
import type { Pcpu, SchedUnit, Scheduler } from "./sched/types.js";
import { ioTrace, ioTraceOn } from "./trace/io_trace.js";

export interface MachinePoolConfig {
  readonly id: number;
  readonly name: string;
  readonly scheduler: Scheduler;
  readonly pcpus: readonly Pcpu[];
}

export interface MachineOptions {
  readonly hv: Hypervisor;
  /** The cpupools at start; one must have id 0 (its lowest pCPU is the boot pCPU, never removed). */
  readonly pools: readonly MachinePoolConfig[];
  /** Host pCPUs in no pool at start (cpupool-cpu-add can give them to a pool later). */
  readonly freePcpus?: readonly Pcpu[];
  readonly timeMode: TimeMode;
  /** Virtual ns per retired instruction, also used to turn slices into instruction budgets (default 10). */
  readonly nsPerInstruction?: number;
  /**
   * A vCPU in WFI / SCHEDOP_block spin-polls on its worker for wfiSpinUs, then sleeps there on its
   * bell until wfiWaitUs in all, before it blocks through the core (µs, defaults 50 / 1000; 0 =
   * never; "instructions" mode does neither).
   */
  readonly wfiSpinUs?: number;
  readonly wfiWaitUs?: number;
  /** Longest an idle worker polls for the core's next message before it sleeps (µs, default 30). */
  readonly idleSpinUs?: number;
  /** Serve event-channel send/unmask on the workers when plainly safe (default true). */
  readonly fastEvents?: boolean;
  /** Flush predictor state on every switch between domains on a pCPU (spec-ctrl; default true). */
  readonly flushOnSwitch?: boolean;
  /** Called for every exit a pCPU handles (tests record traces with it). */
  readonly trace?: (event: TraceEvent) => void;
}

export interface SpecCtrlStats {
  readonly domainSwitches: number;
  readonly specCtrlWrites: number;
  readonly predictorFlushes: number;
}

export interface TraceEvent {
  readonly now: number;
  readonly pcpu: number;
  readonly domid: number;
  readonly vcpu: number;
  readonly reason: number;
  readonly retired: number;
}

export interface VcpuStats {
  readonly domid: number;
  readonly vcpu: number;
  readonly state: string;
  /** ns the scheduler charged to this vCPU (virtual ns in instructions mode). */
  readonly runNs: number;
  /** runNs normalised by pCPU speed. */
  readonly workNs: number;
  readonly instret: number;
  readonly pcpu: number | null;
}

/** How a domain ended, as the run reports it. */
export interface DomainEnd {
  readonly domid: number;
  readonly name: string;
  /**
   * SHUTDOWN_* reason; -1 when the core crashed it (unhandled fault, MMIO with no device);
   * -2 when a toolstack destroyed it while it ran (XEN_DOMCTL_destroydomain, `xl destroy`).
   */
  readonly reason: number;
  readonly detail?: string;
}

interface VcpuRecord {
  readonly domain: Domain;
  readonly vcpuId: number;
  readonly key: number;
  readonly stateBuf: SharedArrayBuffer;
  readonly state: Int32Array;
  /** The scheduling unit (Cpupools owns it; it follows the domain from pool to pool). */
  readonly unit: SchedUnit;
  /** Per pCPU: the hv.ioreq.generation its worker's mmioRanges for this vCPU were taken at. */
  readonly attachedGen: Map<number, number>;
  /** The Vcpu.timerGeneration this record last armed. */
  timerGen: number;
}

interface PoolRuntime {
  readonly id: number;
  readonly workers: PcpuPool;
}

interface PcpuRuntime {
  readonly id: number;
  /** The pool whose worker thread runs this pCPU; null while it is free. */
  pool: PoolRuntime | null;
  current: VcpuRecord | null;
  /** vCPU keys attached to this pCPU's current worker. */
  readonly attached: Set<number>;
  /** Resolves the idle wait of this pCPU's loop. */
  kick: (() => void) | null;
  /** Wall/virtual ns the previous unit ran since the last decision. */
  ranNs: number;
}

const MAX_BUDGET = 50_000_000;

export class Machine {
  readonly hv: Hypervisor;
  /** The scheduling layer: pools, their schedulers and pCPUs, every vCPU's unit. */
  readonly cpupools: Cpupools;
  /** domctl/sysctl's way into this host (installed on hv.control unless one was there). */
  readonly control: MachineControl;
  private readonly pools = new Map<number, PoolRuntime>();
  private readonly pcpus = new Map<number, PcpuRuntime>();
  private readonly hostPcpus: readonly Pcpu[];
  private readonly vcpus = new Map<number, VcpuRecord>();
  private readonly live = new Map<number, { name: string }>();
  /** Each added domain's control block (DomainCtlSlot), shared with every worker. */
  private readonly domainCtl = new Map<number, Int32Array>();
  /** What every pool's workers know of each domain (replayed to pools made later). */
  private readonly shares = new Map<number, DomainShare>();
  private readonly ends: DomainEnd[] = [];
  private readonly nsPerInstr: number;
  /** Virtual system time (instructions mode), shared with the pCPU workers. */
  private readonly clock = new Float64Array(new SharedArrayBuffer(8));
  /** vCPUs blocked in SCHEDOP_poll: the ports that wake them and the absolute timeout (ns) if any. */
  private readonly polls = new Map<number, { ports: ReadonlySet<number>; deadline: number | null }>();
  /** Armed VCPUOP single-shot timers: vCPU key -> deadline (system time, ns). */
  private readonly guestTimers = new Map<number, number>();
  private hostTimer: NodeJS.Timeout | null = null;
  private loops: Promise<void>[] | null = null;
  /** Why the core crashed a domain, until its shutdown is recorded. */
  private readonly crashDetail = new Map<number, string>();
  /** Shut-down domains to destroy once their vCPUs are off every pCPU. */
  private readonly toReap = new Set<number>();
  /** Worker pools of destroyed cpupools, still closing. */
  private readonly closing: Promise<void>[] = [];
  private stopped = false;
  private allDone: (() => void) | null = null;

  constructor(private readonly opts: MachineOptions) {
    this.hv = opts.hv;
    this.nsPerInstr = opts.nsPerInstruction ?? 10;
    const pool0 = opts.pools.find((p) => p.id === 0);
    if (pool0 === undefined || pool0.pcpus.length === 0) throw new Error("machine: cpupool 0 with a pCPU is required");
    const host = [...opts.pools.flatMap((p) => p.pcpus), ...(opts.freePcpus ?? [])];
    this.hostPcpus = host;
    try {
      this.cpupools = new Cpupools({
        pcpus: host,
        sched: pool0.scheduler,
        pool0Name: pool0.name,
        pool0Pcpus: pool0.pcpus.map((p) => p.id),
        bootPcpu: Math.min(...pool0.pcpus.map((p) => p.id)),
      });
    } catch (e) {
      throw new Error(`machine: ${(e as Error).message}`);
    }
    for (const cfg of opts.pools) {
      if (cfg.id === 0) continue;
      const rc = this.cpupools.create(cfg.id, cfg.name, cfg.scheduler);
      if (rc < 0) throw new Error(`cpupool ${cfg.name}: cannot create (${rc})`);
      for (const p of cfg.pcpus) {
        const r = this.cpupools.addPcpu(cfg.id, p.id, 0);
        if (r < 0) throw new Error(`cpupool ${cfg.name}: cannot add pCPU ${p.id} (${r})`);
      }
    }
    for (const p of host)
      this.pcpus.set(p.id, { id: p.id, pool: null, current: null, attached: new Set(), kick: null, ranNs: 0 });
    for (const cfg of opts.pools) {
      const pool = this.makePool(
        cfg.id,
        cfg.pcpus.map((p) => p.id),
      );
      for (const p of cfg.pcpus) this.pcpus.get(p.id)!.pool = pool;
    }
    this.control = new MachineControl(this.cpupools, { now: () => this.now() }, this.runtime());
    this.hv.control ??= this.control;
    this.hv.now = () => this.now();
    const prev = this.hv.hooks;
    this.hv.hooks = {
      ...prev,
      portPending: (domid, vcpu, port) => {
        prev.portPending?.(domid, vcpu, port);
        const key = vcpuKey(domid, vcpu);
        if (this.polls.get(key)?.ports.has(port)) this.endPoll(key);
      },
      upcall: (domid, vcpu) => {
        prev.upcall?.(domid, vcpu);
        this.raiseUpcall(domid, vcpu);
      },
      shutdown: (domid, reason, action) => {
        prev.shutdown?.(domid, reason, action);
        this.domainEnded(domid, reason, action);
      },
      ioreqDone: (domid, vcpu, value) => {
        prev.ioreqDone?.(domid, vcpu, value);
        this.ioreqDone(domid, vcpu, value);
      },
      vcpuOnline: (domid, vcpu, online) => {
        prev.vcpuOnline?.(domid, vcpu, online);
        this.vcpuOnline(domid, vcpu, online);
      },
    };
  }

  /** Domain switches on the pCPUs and what spec-ctrl did on them (pCPUs running now). */
  specCtrlStats(): SpecCtrlStats {
    const sum = { domainSwitches: 0, specCtrlWrites: 0, predictorFlushes: 0 };
    for (const p of this.pools.values()) {
      const c = p.workers.specCtrlStats();
      sum.domainSwitches += c.domainSwitches;
      sum.specCtrlWrites += c.specCtrlWrites;
      sum.predictorFlushes += c.predictorFlushes;
    }
    return sum;
  }

  private makePool(id: number, pcpus: readonly number[]): PoolRuntime {
    const workers = new PcpuPool({
      memory: this.hv.memory,
      pcpus,
      maxPcpus: this.hostPcpus.length,
      timeMode: this.opts.timeMode,
      clock: this.clock.buffer as SharedArrayBuffer,
      nsPerInstruction: this.nsPerInstr,
      wfiSpinUs: this.opts.wfiSpinUs,
      wfiWaitUs: this.opts.wfiWaitUs,
      idleSpinUs: this.opts.idleSpinUs,
      fastEvents: this.opts.fastEvents,
      flushOnSwitch: this.opts.flushOnSwitch,
      // hooks.upcall is looked up at call time: it is wrapped below and by later layers.
      onWake: (domid, vcpu) => {
        if (this.live.has(domid)) this.hv.hooks.upcall?.(domid, vcpu);
      },
      onConsole: (domid, bytes) => {
        if (this.live.has(domid)) this.hv.hypercalls.consoleWrite(domid, bytes);
      },
    });
    // Every pool: events cross cpupools.
    for (const share of this.shares.values()) workers.addDomain(share);
    const pool: PoolRuntime = { id, workers };
    this.pools.set(id, pool);
    return pool;
  }

  /** Moves each pCPU's worker to the pool Cpupools now puts it in (a draining pCPU stays). */
  private syncPcpuPools(): void {
    for (const p of this.pcpus.values()) {
      const want = this.cpupools.poolOfPcpu(p.id)?.id;
      if (want === p.pool?.id) continue;
      if (p.pool !== null) {
        // Cpupools let it go only after an idle decision: no run is pending on its worker.
        const cpu = p.id;
        p.pool.workers.removePcpu(cpu).catch((e: unknown) => this.hv.log(`pCPU ${cpu}: ${String(e)}`));
        p.pool = null;
        p.attached.clear();
      }
      const pool = want === undefined ? undefined : this.pools.get(want);
      if (pool !== undefined && !this.stopped) {
        pool.workers.addPcpu(p.id);
        p.pool = pool;
      }
      p.kick?.();
    }
  }

  /** What MachineControl asks of this machine; kept off the public surface. */
  private runtime(): MachineRuntime {
    return {
      settle: () => {
        this.applyTickles();
        this.pumpTimers();
      },
      settleTickles: () => this.applyTickles(),
      domainAttached: (domid) => this.attachDomain(domid),
      halt: (domid) => this.halt(domid),
      domainDetached: (domid) => this.detachDomain(domid),
      poolCreated: (poolId) => {
        if (!this.stopped) this.makePool(poolId, []);
      },
      poolDestroyed: (poolId) => {
        const pool = this.pools.get(poolId);
        this.pools.delete(poolId);
        if (pool !== undefined) this.closing.push(pool.workers.close());
      },
      pcpusMoved: () => this.syncPcpuPools(),
      setVcpuContext: (domid, vcpu, ctx) => {
        const rec = this.vcpus.get(vcpuKey(domid, vcpu));
        if (rec === undefined) return -Errno.EINVAL;
        if (this.onPcpu(rec)) return -Errno.EAGAIN;
        const s = rec.state;
        for (let i = 1; i < 32; i++) s[i] = ctx.regs[i]!;
        s[VcpuSlot.PC] = ctx.pc | 0;
        s[VcpuSlot.PRIV] = 1;
        return 0;
      },
      getVcpuContext: (domid, vcpu) => {
        const rec = this.vcpus.get(vcpuKey(domid, vcpu));
        if (rec === undefined) return -Errno.EINVAL;
        if (this.onPcpu(rec)) return -Errno.EAGAIN;
        const regs = new Int32Array(32);
        for (let i = 1; i < 32; i++) regs[i] = rec.state[i]!;
        return { pc: rec.state[VcpuSlot.PC]!, regs };
      },
    };
  }

  /** System time in ns: the host's monotonic clock, or the virtual clock in instructions mode. */
  now(): number {
    // Host mode counts from this thread's timeOrigin, as the workers' hostTimeSince(timeOrigin) does.
    return this.opts.timeMode === "instructions" ? this.clock[0]! : Math.round(performance.now() * 1e6);
  }

  /**
   * Puts a built domain (memory loaded) under the machine and starts it: its vCPUs get state
   * blocks and units in `poolId`'s scheduler, vCPU 0 gets `bootState` as its registers, and the
   * domain is unpaused (the toolstack's last step of a build).
   */
  addDomain(domain: Domain, poolId: number, bootState: Int32Array): void {
    if (this.cpupools.pool(poolId) === undefined) throw new Error(`no cpupool ${poolId}`);
    const rc = this.control.domainCreated(domain.domid, domain.vcpus.length, poolId);
    if (rc < 0) throw new Error(`cpupool ${poolId} refused domain ${domain.domid} (${rc})`);
    const boot = this.vcpus.get(vcpuKey(domain.domid, 0))!;
    boot.state.set(bootState);
    this.syncUpcallLine(boot);
    if (domain.paused) domain.unpause();
    if (!domain.paused) this.control.unpauseDomain(domain.domid);
  }

  /**
   * Puts a restored domain (migrate/restore.ts) under the machine, paused: each vCPU gets its
   * saved registers (VCPU_SAVED_SLOTS of `states[v]`), down vCPUs stay down, armed single-shot
   * timers are armed again. The toolstack unpauses it (unpauseDomain) when it is complete.
   */
  addRestoredDomain(domain: Domain, poolId: number, states: readonly Int32Array[]): void {
    if (this.cpupools.pool(poolId) === undefined) throw new Error(`no cpupool ${poolId}`);
    const rc = this.control.domainCreated(domain.domid, domain.vcpus.length, poolId);
    if (rc < 0) throw new Error(`cpupool ${poolId} refused domain ${domain.domid} (${rc})`);
    for (const v of domain.vcpus) {
      const rec = this.vcpus.get(vcpuKey(domain.domid, v.id))!;
      const saved = states[v.id];
      if (saved !== undefined) for (const slot of VCPU_SAVED_SLOTS) rec.state[slot] = saved[slot]!;
      this.syncUpcallLine(rec);
      // The creation pause holds vCPU 0 for the unpause; every other online vCPU joins it.
      if (v.online) this.control.wake(domain.domid, v.id);
      else this.control.offline(domain.domid, v.id);
      rec.timerGen = v.timerGeneration;
      if (v.singleshotDeadlineNs !== null) this.guestTimers.set(rec.key, v.singleshotDeadlineNs);
    }
    this.pumpTimers();
  }

  /**
   * Log-dirty on for a running domain (XEN_DOMCTL_SHADOW_OP_ENABLE_LOGDIRTY). Resolves once every
   * vCPU of it that is on a pCPU runs with a P2M view that logs (they are re-attached: a worker's
   * view made before the dirty bitmap existed cannot mark it).
   */
  async enableLogDirty(domid: number, timeoutMs = 5000): Promise<void> {
    const d = this.hv.domains.getLive(domid);
    if (d === undefined) throw new Error(`no domain ${domid}`);
    d.p2m.enableLogDirty();
    const recs = this.recordsOf(domid);
    for (const r of recs) {
      r.attachedGen.clear();
      this.preempt(r);
    }
    await this.waitPcpus(domid, (rec, p) => rec.attachedGen.has(p.id), timeoutMs, "re-attach");
  }

  /**
   * One log-dirty round of a running domain (SHADOW_OP_CLEAN): opens a new round, waits until each
   * of its vCPUs on a pCPU has flushed its soft TLB (one off the pCPUs flushes when it next enters),
   * and returns the gfns written in the round just closed.
   */
  async logDirtyRound(domid: number, timeoutMs = 5000): Promise<number[]> {
    const d = this.hv.domains.getLive(domid);
    if (d === undefined) throw new Error(`no domain ${domid}`);
    const gen = d.p2m.logDirtyNewRound();
    await this.waitPcpus(domid, (rec) => ((rec.state[VcpuSlot.TLB_GEN_SEEN]! - gen) | 0) >= 0, timeoutMs, "TLB flush");
    return d.p2m.logDirtyCollect();
  }

  /** Waits until `ok` holds for every vCPU of the domain that is on a pCPU. */
  private async waitPcpus(
    domid: number,
    ok: (rec: VcpuRecord, p: PcpuRuntime) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<void> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      let done = true;
      for (const p of this.pcpus.values()) {
        const rec = p.current;
        if (rec !== null && rec.domain.domid === domid && !ok(rec, p)) done = false;
      }
      if (done) return;
      if (performance.now() > until) throw new Error(`domain ${domid}: vCPUs did not ${what} in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 0));
    }
  }

  /** Makes the vCPU records of a domain whose units Cpupools has just made (all blocked). */
  private attachDomain(domid: number): number {
    const domain = this.hv.domains.getLive(domid);
    if (domain === undefined) return -Errno.ESRCH;
    if (this.live.has(domid)) return -Errno.EEXIST;
    for (const v of domain.vcpus) {
      const unit = this.cpupools.unit(domid, v.id);
      if (unit === undefined) return -Errno.EINVAL;
      const stateBuf = new SharedArrayBuffer(VCPU_STATE_BYTES);
      const state = new Int32Array(stateBuf);
      state[VcpuSlot.PRIV] = 1;
      state[VcpuSlot.UPCALL_LINE_OFF] = -1;
      const rec: VcpuRecord = {
        domain,
        vcpuId: v.id,
        key: vcpuKey(domid, v.id),
        stateBuf,
        state,
        unit,
        attachedGen: new Map(),
        timerGen: v.timerGeneration,
      };
      this.vcpus.set(rec.key, rec);
      this.syncUpcallLine(rec);
      // Secondary vCPUs stay down until VCPUOP_initialise + VCPUOP_up.
      if (!v.online) this.cpupools.offline(domid, v.id, this.now());
    }
    this.live.set(domid, { name: domain.name });
    const ctlBuf = new SharedArrayBuffer(domainCtlWords(domain.vcpus.length) * 4);
    const ctl = new Int32Array(ctlBuf);
    Atomics.store(ctl, DomainCtlSlot.LIVE, 1);
    this.domainCtl.set(domid, ctl);
    const share: DomainShare = {
      domid,
      ports: domain.evtchn.buffer,
      maxPort: domain.evtchn.maxPort,
      sharedInfoMfn: domain.sharedInfoMfn,
      ctl: ctlBuf,
      vcpuStates: domain.vcpus.map((v) => this.vcpus.get(vcpuKey(domid, v.id))!.stateBuf),
      console: domain.flags.privileged || domain.flags.isConsole,
      specCtrl: domain.specCtrl,
    };
    this.shares.set(domid, share);
    for (const p of this.pools.values()) p.workers.addDomain(share);
    return 0;
  }

  /**
   * Takes a domain off the machine for good (before its memory is freed): workers stop serving
   * its events, its units go offline, running vCPUs are preempted. -EAGAIN while one of them is
   * still on a pCPU; 0 once none is, with every worker's attachment dropped.
   */
  private halt(domid: number): number {
    const live = this.live.get(domid);
    if (live !== undefined) {
      const ctl = this.domainCtl.get(domid);
      if (ctl !== undefined) Atomics.store(ctl, DomainCtlSlot.LIVE, 0);
      this.live.delete(domid);
      this.ends.push({ domid, name: live.name, reason: -2, detail: "destroyed" });
      const now = this.now();
      for (const rec of this.recordsOf(domid)) {
        this.cpupools.offline(domid, rec.vcpuId, now);
        this.preempt(rec);
      }
      if (this.live.size === 0) queueMicrotask(() => this.allDone?.());
    }
    if (!this.offPcpus(domid)) return -Errno.EAGAIN;
    this.detachWorkers(domid);
    return 0;
  }

  private recordsOf(domid: number): VcpuRecord[] {
    return [...this.vcpus.values()].filter((r) => r.domain.domid === domid);
  }

  private onPcpu(rec: VcpuRecord): boolean {
    for (const p of this.pcpus.values()) if (p.current === rec) return true;
    return false;
  }

  /** No vCPU of the domain is executing on a worker. */
  private offPcpus(domid: number): boolean {
    for (const p of this.pcpus.values()) if (p.current?.domain.domid === domid) return false;
    return true;
  }

  private detachWorkers(domid: number): void {
    for (const p of this.pcpus.values()) {
      for (const key of p.attached) {
        if (this.vcpus.get(key)?.domain.domid !== domid) continue;
        p.pool?.workers.detach(p.id, key);
        p.attached.delete(key);
      }
    }
    this.shares.delete(domid);
    for (const pool of this.pools.values()) pool.workers.forgetDomain(domid);
  }

  /** The domain's units are gone (Cpupools forgot them): drop what the machine kept for it. */
  private detachDomain(domid: number): void {
    for (const r of this.recordsOf(domid)) {
      this.guestTimers.delete(r.key);
      this.polls.delete(r.key);
      this.vcpus.delete(r.key);
    }
    this.domainCtl.delete(domid);
    this.toReap.delete(domid);
  }

  /**
   * Starts the pCPU loops (idempotent). They run until close(): a host that stays up for new
   * domains (`xenon host`, benches) calls start(); `run()` is start + wait for every domain.
   */
  start(): void {
    if (this.loops !== null) return;
    this.loops = [...this.pcpus.values()].map((p) => this.pcpuLoop(p));
    this.pumpTimers();
  }

  /** Runs until every added domain has shut down, then stops the pCPUs; returns how each ended. */
  async run(): Promise<DomainEnd[]> {
    const done = new Promise<void>((resolve) => {
      this.allDone = resolve;
    });
    if (this.live.size === 0) this.allDone?.();
    this.start();
    await done;
    await this.stop();
    return [...this.ends];
  }

  /** How the domains that have ended so far ended. */
  endings(): readonly DomainEnd[] {
    return this.ends;
  }

  private async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pcpus.values()) p.kick?.();
    for (const r of this.vcpus.values()) this.preempt(r);
    await Promise.all(this.loops ?? []);
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.hostTimer !== null) clearTimeout(this.hostTimer);
    for (const p of this.pcpus.values()) p.kick?.();
    await Promise.all([...this.pools.values()].map((p) => p.workers.close()));
    await Promise.allSettled(this.closing);
  }

  /** Per-vCPU accounting (xl vcpu-list's view): scheduler run time, work and retired instructions. */
  vcpuStats(): VcpuStats[] {
    return [...this.vcpus.values()].map((r) => ({
      domid: r.domain.domid,
      vcpu: r.vcpuId,
      state: this.control.isPaused(r.domain.domid) ? "paused" : r.unit.state,
      runNs: r.unit.runNs,
      workNs: r.unit.workNs,
      instret: (r.state[VcpuSlot.INSTRET_HI]! >>> 0) * 2 ** 32 + (r.state[VcpuSlot.INSTRET_LO]! >>> 0),
      pcpu: r.unit.lastPcpu,
    }));
  }

  /** The vCPU's shared state block (registers, exit record), for tools and tests. */
  vcpuState(domid: number, vcpu: number): Int32Array | undefined {
    return this.vcpus.get(vcpuKey(domid, vcpu))?.state;
  }

  /** Every cpupool with its name, scheduler, pCPUs and domains (xl cpupool-list's view). */
  cpupoolList(): CpupoolInfo[] {
    return this.cpupools.poolIds().map((id) => this.cpupools.info(id)!);
  }

  /** The host's pCPUs (id, class, speed). */
  hostCpus(): readonly Pcpu[] {
    return this.hostPcpus;
  }

  /** Resolves once no vCPU of the domain is executing on a pCPU (e.g. after a pause). */
  async descheduled(domid: number, timeoutMs = 5000): Promise<boolean> {
    const until = performance.now() + timeoutMs;
    while (!this.offPcpus(domid)) {
      if (performance.now() > until) return false;
      await new Promise((r) => setTimeout(r, 1));
    }
    return true;
  }

  /**
   * Retries a control op that answers -EAGAIN while a pCPU finishes what it runs (pool moves,
   * pCPU removal, destroy): the toolstack's loop, for TypeScript callers. Returns the last rc.
   */
  async retry(op: () => number, timeoutMs = 5000): Promise<number> {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const rc = op();
      if (rc !== -Errno.EAGAIN || performance.now() > until) return rc;
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  private async pcpuLoop(p: PcpuRuntime): Promise<void> {
    while (!this.stopped) {
      const now = this.now();
      const d = this.cpupools.doSchedule(p.id, now, p.ranNs);
      p.ranNs = 0;
      this.applyTickles();
      const next = d.next === null ? null : (this.vcpus.get(vcpuKey(d.next.domid, d.next.vcpuId)) ?? null);
      p.current = p.pool === null ? null : next;
      if (p.current === null) {
        const idle = new Promise<void>((resolve) => {
          p.kick = resolve;
        });
        if (this.opts.timeMode === "instructions") this.maybeAdvanceVirtualTime();
        await idle;
        p.kick = null;
        continue;
      }
      const budget =
        d.sliceNs === null ? MAX_BUDGET : Math.max(1, Math.min(MAX_BUDGET, Math.ceil(d.sliceNs / this.nsPerInstr)));
      await this.runSlice(p, p.current, budget);
      p.current = null;
      if (this.toReap.size > 0) this.reap();
    }
  }

  /** Runs `rec` on pCPU p until its slice ends or it stops being runnable. */
  private async runSlice(p: PcpuRuntime, rec: VcpuRecord, budget: number): Promise<void> {
    const workers = p.pool!.workers;
    const domid = rec.domain.domid;
    // A vCPU whose MMIO access is with a device model stays off the pCPUs until the answer.
    if (this.hv.ioreq.isWaiting(domid, rec.vcpuId)) {
      this.control.block(domid, rec.vcpuId);
      return;
    }
    const mmioGen = this.hv.ioreq.generation(domid);
    if (!p.attached.has(rec.key) || rec.attachedGen.get(p.id) !== mmioGen) {
      const ranges = this.hv.ioreq.mmioRanges(domid);
      workers.attach(p.id, rec.key, rec.stateBuf, rec.domain.p2m.descriptor(), ranges);
      p.attached.add(rec.key);
      rec.attachedGen.set(p.id, mmioGen);
    }
    let left = budget;
    while (left > 0 && !this.stopped) {
      let exit: Awaited<ReturnType<PcpuPool["run"]>>;
      try {
        if (ioTraceOn) ioTrace("core.run", domid);
        exit = await workers.run(p.id, rec.key, left);
        if (ioTraceOn) ioTrace("core.exit", exit.reason);
      } catch (e) {
        this.crash(rec.domain, `pCPU failure: ${(e as Error).message}`);
        return;
      }
      left -= exit.retired;
      p.ranNs += exit.retired * this.nsPerInstr;
      if (this.opts.timeMode === "instructions") this.clock[0] = this.clock[0]! + exit.retired * this.nsPerInstr;
      this.opts.trace?.({
        now: this.now(),
        pcpu: p.id,
        domid,
        vcpu: rec.vcpuId,
        reason: exit.reason,
        retired: exit.retired,
      });
      if (!this.live.has(domid)) return;
      if (this.opts.timeMode === "instructions") this.pumpTimers();
      const s = rec.state;
      switch (exit.reason) {
        case ExitReason.ECALL: {
          s[10] = dispatchHypercall(rec.domain, rec.vcpuId, s[17]!, s[10]!, s[11]!, s[12]!, s[13]!, s[14]!, s[15]!);
          if (!this.live.has(domid)) return;
          // Any vCPU of the domain may have had its vcpu_info registered by this call.
          this.syncUpcallLines(rec.domain);
          this.syncTimer(rec);
          // VCPUOP_down of itself: it stops here; brought up again, it returns from the call.
          if (rec.unit.state === "offline") return;
          const req = rec.domain.vcpu(rec.vcpuId)?.takeSchedRequest() ?? null;
          if (req === null) continue;
          if (req.op === "yield") {
            this.control.yield(domid, rec.vcpuId);
            return;
          }
          if (req.op === "block" || req.op === "poll") {
            if (this.upcallPending(rec)) continue;
            if (req.op === "poll") {
              // SCHEDOP_poll: woken by one of its ports (portPending), an upcall, or the timeout.
              // The core returned 0 already; none of the ports was pending when it looked.
              this.polls.set(rec.key, {
                ports: new Set(req.ports),
                deadline: req.timeoutNs > 0 ? req.timeoutNs : null,
              });
            }
            this.control.block(domid, rec.vcpuId);
            // Arms the poll's timeout.
            if (req.op === "poll") this.pumpTimers();
            return;
          }
          return; // shutdown: domainEnded() has taken the domain off the machine
        }
        case ExitReason.WFI:
          if (((Atomics.load(s, VcpuSlot.SIP) | (this.upcallPending(rec) ? SIP_SEIP : 0)) & s[VcpuSlot.SIE]!) !== 0)
            continue;
          this.control.block(domid, rec.vcpuId);
          return;
        case ExitReason.BUDGET:
          return;
        case ExitReason.PREEMPT:
          Atomics.store(s, VcpuSlot.PREEMPT, 0);
          return;
        case ExitReason.MMIO: {
          // An access in a range an IOREQ server serves or a passed-through device's registers
          // (the worker reflects any other as a fault).
          const write = s[VcpuSlot.MMIO_WRITE] !== 0;
          const direct = this.hv.passthrough.access(
            domid,
            s[VcpuSlot.MMIO_ADDR]! >>> 0,
            s[VcpuSlot.MMIO_SIZE]!,
            write,
            s[VcpuSlot.MMIO_VALUE]!,
          );
          if (direct !== null) {
            if (!write) completeMmioLoad(rec.state, direct);
            continue;
          }
          const sent = this.hv.ioreq.send(
            rec.domain,
            rec.vcpuId,
            s[VcpuSlot.MMIO_ADDR]! >>> 0,
            s[VcpuSlot.MMIO_SIZE]!,
            write,
            s[VcpuSlot.MMIO_VALUE]!,
          );
          if (ioTraceOn)
            ioTrace(sent === "posted" ? "core.ioreq.posted" : "core.ioreq.sent", s[VcpuSlot.MMIO_ADDR]! & 0xfff);
          if (sent === "posted") continue;
          if (sent === "dropped") {
            // A parked window (its device model died): the bus reads all-ones.
            if (!write) completeMmioLoad(rec.state, 0xffff_ffff);
            continue;
          }
          if (sent === "wait") {
            this.control.block(domid, rec.vcpuId);
            return;
          }
          this.crash(
            rec.domain,
            `d${domid}v${rec.vcpuId}: access to 0x${(s[VcpuSlot.MMIO_ADDR]! >>> 0).toString(16)} with no device behind it (pc 0x${(s[VcpuSlot.PC]! >>> 0).toString(16)})`,
          );
          return;
        }
        case ExitReason.FAULT:
        case ExitReason.EBREAK:
          this.crash(
            rec.domain,
            `d${domid}v${rec.vcpuId}: unhandled ${exit.reason === ExitReason.EBREAK ? "ebreak" : `exception cause ${s[VcpuSlot.EXIT_CAUSE]}`} at pc 0x${(s[VcpuSlot.PC]! >>> 0).toString(16)} tval 0x${(s[VcpuSlot.EXIT_TVAL]! >>> 0).toString(16)}`,
          );
          return;
        default:
          return;
      }
    }
  }

  /** A device model answered (domid, vcpu)'s ioreq: finish the load and let the vCPU run. */
  private ioreqDone(domid: number, vcpu: number, value: number): void {
    const rec = this.vcpus.get(vcpuKey(domid, vcpu));
    if (rec === undefined || !this.live.has(domid)) return;
    if (ioTraceOn) ioTrace("core.ioreqDone", domid);
    completeMmioLoad(rec.state, value);
    // Through the pause gate, as every wake: a paused domain's vCPU runs on unpause.
    if (rec.unit.state === "blocked") this.control.wake(domid, vcpu);
  }

  /**
   * VCPUOP_up: the first time, load the start context (VCPUOP_initialise) into the registers;
   * then the vCPU runs (through the pause gate). VCPUOP_down: off its pCPU, not run again.
   */
  private vcpuOnline(domid: number, vcpu: number, online: boolean): void {
    const rec = this.vcpus.get(vcpuKey(domid, vcpu));
    if (rec === undefined || !this.live.has(domid)) return;
    if (!online) {
      this.control.offline(domid, vcpu);
      return;
    }
    const ctx = rec.domain.vcpu(vcpu)?.takeStartContext() ?? null;
    if (ctx !== null) {
      const s = rec.state;
      for (let i = 1; i < 32; i++) s[i] = ctx.regs[i]!;
      s[VcpuSlot.PC] = ctx.pc;
      s[VcpuSlot.PRIV] = 1;
    }
    this.control.wake(domid, vcpu);
  }

  /** Asks the vCPU to leave its pCPU at its next poll (or at once, if it sleeps there in WFI). */
  private preempt(rec: VcpuRecord): void {
    Atomics.store(rec.state, VcpuSlot.PREEMPT, 1);
    this.ringBell(rec);
  }

  private ringBell(rec: VcpuRecord): void {
    const ctl = this.domainCtl.get(rec.domain.domid);
    if (ctl !== undefined) ringBell(ctl, rec.vcpuId);
  }

  /** Ends a vCPU's SCHEDOP_poll: it becomes runnable and returns from the hypercall. */
  private endPoll(key: number): void {
    this.polls.delete(key);
    const rec = this.vcpus.get(key);
    if (rec === undefined || rec.unit.state !== "blocked" || !this.live.has(rec.domain.domid)) return;
    // Through the pause gate: a paused domain's vCPU runs on unpause.
    this.control.wake(rec.domain.domid, rec.vcpuId);
  }

  private raiseUpcall(domid: number, vcpu: number): void {
    const rec = this.vcpus.get(vcpuKey(domid, vcpu));
    // The line (VcpuSlot.UPCALL_LINE_*) already reads evtchn_upcall_pending; only wake the vCPU.
    if (rec === undefined || !this.live.has(domid)) return;
    if (ioTraceOn) ioTrace("core.upcall.vcpu", domid);
    // registerVcpuInfo (from any caller) ends by raising the upcall: follow the move at once.
    this.syncUpcallLine(rec);
    // It may be sleeping in WFI on its worker.
    this.ringBell(rec);
    if (rec.unit.state === "blocked") {
      this.polls.delete(rec.key);
      this.control.wake(domid, vcpu);
    }
  }

  /**
   * Points the vCPU's interrupt line at its evtchn_upcall_pending byte: the registered vcpu_info,
   * else vCPU 0's slot at the start of shared_info, else none.
   */
  private syncUpcallLine(rec: VcpuRecord): void {
    const v = rec.domain.vcpu(rec.vcpuId);
    let mfn = 0;
    let off = -1;
    if (v?.placement) {
      mfn = v.placement.mfn;
      off = v.placement.offset;
    } else if (rec.vcpuId === 0) {
      mfn = rec.domain.sharedInfoMfn;
      off = 0;
    }
    rec.state[VcpuSlot.UPCALL_LINE_MFN] = mfn | 0;
    rec.state[VcpuSlot.UPCALL_LINE_OFF] = off;
  }

  private syncUpcallLines(d: Domain): void {
    for (const v of d.vcpus) {
      const r = this.vcpus.get(vcpuKey(d.domid, v.id));
      if (r !== undefined) this.syncUpcallLine(r);
    }
  }

  /** evtchn_upcall_pending of this vCPU, read the way the hart reads its line. */
  private upcallPending(rec: VcpuRecord): boolean {
    const off = rec.state[VcpuSlot.UPCALL_LINE_OFF]!;
    if (off < 0) return false;
    const mfn = rec.state[VcpuSlot.UPCALL_LINE_MFN]! >>> 0;
    const chunk = this.hv.memory.chunk(mfn);
    return Atomics.load(chunk.u8, this.hv.memory.frameOffset(mfn) + off) !== 0;
  }

  /** Xen's domain_crash: the core gives up on a domain (its on_crash action still applies). */
  private crash(d: Domain, detail: string): void {
    if (!this.live.has(d.domid)) return;
    this.hv.log(detail);
    this.crashDetail.set(d.domid, detail);
    this.hv.domains.shutdown(d.domid, 3 /* SHUTDOWN_crash */);
  }

  private domainEnded(domid: number, reason: number, action: ShutdownAction | null): void {
    const live = this.live.get(domid);
    if (live === undefined) return;
    // Workers stop serving events to or from the domain before anything of it changes.
    const ctl = this.domainCtl.get(domid);
    if (ctl !== undefined) Atomics.store(ctl, DomainCtlSlot.LIVE, 0);
    const detail = this.crashDetail.get(domid);
    this.crashDetail.delete(domid);
    this.ends.push(
      detail === undefined ? { domid, name: live.name, reason } : { domid, name: live.name, reason: -1, detail },
    );
    this.live.delete(domid);
    // Restart actions are the toolstack's to carry out; the machine destroys or preserves.
    if (action !== "preserve") this.toReap.add(domid);
    const now = this.now();
    for (const rec of this.recordsOf(domid)) {
      this.cpupools.offline(domid, rec.vcpuId, now);
      this.preempt(rec);
    }
    this.applyTickles();
    this.reap();
    if (this.live.size === 0) this.allDone?.();
  }

  /**
   * Destroys shut-down domains once none of their vCPUs is on a pCPU: workers drop the vCPUs,
   * the scheduler forgets them, and the core returns every frame.
   */
  private reap(): void {
    for (const domid of this.toReap) {
      if (!this.offPcpus(domid)) continue;
      this.toReap.delete(domid);
      this.detachWorkers(domid);
      this.control.domainDestroyed(domid);
      this.hv.domains.destroy(domid);
    }
  }

  /** Interrupts the pCPUs the schedulers asked for: preempt what runs there, wake idle loops. */
  private applyTickles(): void {
    this.cpupools.forEachTickle(this.tickle);
  }

  private readonly tickle = (id: number): void => {
    const p = this.pcpus.get(id);
    if (p === undefined) return;
    if (p.current !== null) this.preempt(p.current);
    p.kick?.();
  };

  /** Re-arms a vCPU's single-shot timer after a hypercall changed it. */
  private syncTimer(rec: VcpuRecord): void {
    const v = rec.domain.vcpu(rec.vcpuId);
    if (v === undefined || v.timerGeneration === rec.timerGen) return;
    rec.timerGen = v.timerGeneration;
    if (v.singleshotDeadlineNs === null) this.guestTimers.delete(rec.key);
    else this.guestTimers.set(rec.key, v.singleshotDeadlineNs);
    this.pumpTimers();
  }

  /** The earliest armed deadline: a guest timer or a scheduler's internal timer. */
  private nextDeadline(): number | null {
    let soonest: number | null = null;
    for (const t of this.guestTimers.values()) if (soonest === null || t < soonest) soonest = t;
    for (const p of this.polls.values())
      if (p.deadline !== null && (soonest === null || p.deadline < soonest)) soonest = p.deadline;
    const t = this.cpupools.nextTimerNs();
    if (t !== null && (soonest === null || t < soonest)) soonest = t;
    return soonest;
  }

  /**
   * Fires every timer that is due — VIRQ_TIMER for guest timers, onTimer for schedulers — and, in
   * host mode, sets one host timeout for the next deadline.
   */
  private pumpTimers(): void {
    if (this.stopped) return;
    const now = this.now();
    for (const [key, deadline] of this.guestTimers) {
      if (deadline > now) continue;
      this.guestTimers.delete(key);
      const rec = this.vcpus.get(key);
      const v = rec?.domain.vcpu(rec.vcpuId);
      if (rec === undefined || v === undefined || !this.live.has(rec.domain.domid)) continue;
      v.singleshotDeadlineNs = null;
      sendGuestVirq(this.hv, rec.domain, v, Virq.TIMER);
    }
    for (const [key, poll] of this.polls) if (poll.deadline !== null && poll.deadline <= now) this.endPoll(key);
    const t = this.cpupools.nextTimerNs();
    if (t !== null && t <= now) this.cpupools.onTimer(now);
    this.applyTickles();
    if (this.opts.timeMode === "host") {
      if (this.hostTimer !== null) clearTimeout(this.hostTimer);
      this.hostTimer = null;
      const next = this.nextDeadline();
      if (next === null) return;
      this.hostTimer = setTimeout(() => this.pumpTimers(), Math.max(0, (next - this.now()) / 1e6));
    }
  }

  /** Instructions mode: when every pCPU is idle, time jumps to the next deadline (nothing else moves it). */
  private maybeAdvanceVirtualTime(): void {
    for (const p of this.pcpus.values()) if (p.current !== null || p.kick === null) return;
    const next = this.nextDeadline();
    if (next === null) return;
    if (next > this.clock[0]!) this.clock[0] = next;
    queueMicrotask(() => this.pumpTimers());
  }
}
