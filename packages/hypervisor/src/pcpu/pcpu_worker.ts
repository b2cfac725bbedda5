/**
 * A pCPU: the body of one long-lived piscina task. It owns a mirror of host memory (chunks are
 * fetched from the core on first touch), one hw Cpu per attached vCPU, and runs slices on request.
 *
 * What it decides by itself, as Xen does on the pCPU that took the trap:
 *  - a guest exception with a trap vector installed is reflected into the guest (the guest
 *    kernel handles its own faults);
 *  - EVTCHNOP_send on an interdomain port and EVTCHNOP_unmask, when plainly safe (fast_events.ts);
 *  - WFI and SCHEDOP_block first spin-wait briefly on the vCPU's interrupt lines (host time mode
 *    only) and keep running the vCPU if an interrupt arrives, so a ping-pong never leaves the
 *    workers; SCHEDOP_block with the upcall already pending returns 0 at once, as the core would.
 * Everything else (other hypercalls, blocking for real, MMIO, faults with no vector, budget,
 * preempt) goes back to the core as an exit.
 */
import { receiveMessageOnPort } from "node:worker_threads";
import {
  Cause,
  Cpu,
  ExitReason,
  hostTimeSince,
  MachineMemory,
  SIP_SEIP,
  TIMEBASE_HZ,
  type TimeSource,
  VcpuSlot,
} from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import { P2mReader } from "../p2m/p2m.js";
import { Hypercall, SchedOp } from "../public/xen.js";
import { ioTrace, ioTraceFlush, ioTraceOn } from "../trace/io_trace.js";
import type { ExitMsg, FromPcpu, Packed, PcpuTask, ToPcpu } from "./contract.js";
import { bellSlot, DomainCtlSlot, MAX_VCPUS_PER_KEY, onPcpuSlot, PcpuSlot, sleepSlot } from "./contract.js";
import { FastConsole } from "./fast_console.js";
import { FastEvents } from "./fast_events.js";

/** System time (ns) per tick of the 10 MHz time CSR. */
const NS_PER_TICK = 1e9 / TIMEBASE_HZ;
/** Reflected guest faults allowed per run before the vCPU is handed to the core (a fault loop). */
const MAX_REFLECTED_PER_RUN = 64;
/** Spin loops check the clock once per this many polls (performance.now costs more than a poll). */
const POLLS_PER_CLOCK = 32;

function instret(state: Int32Array): number {
  return (state[VcpuSlot.INSTRET_HI]! >>> 0) * 2 ** 32 + (state[VcpuSlot.INSTRET_LO]! >>> 0);
}

/** Deterministic time: the core's virtual clock plus what this vCPU retired since its run began. */
class InstructionTime implements TimeSource {
  runStart = 0;
  constructor(
    private readonly clock: Float64Array,
    private readonly state: Int32Array,
    private readonly nsPerInstr: number,
  ) {}
  now(): number {
    return Math.floor((this.clock[0]! + (instret(this.state) - this.runStart) * this.nsPerInstr) / NS_PER_TICK);
  }
}

export default function pcpuMain(task: PcpuTask): number {
  const { port } = task;
  const ctl = new Int32Array(task.ctl);
  /** Messages received while waiting for a chunk, handled afterwards in order. */
  const backlog: ToPcpu[] = [];

  const send = (m: FromPcpu): void => {
    const packed: Packed = { p: pack(m) };
    port.postMessage(packed);
  };
  const decode = (raw: unknown): ToPcpu => {
    if (raw !== null && typeof raw === "object" && "p" in raw) return unpack((raw as Packed).p) as ToPcpu;
    return raw as ToPcpu;
  };

  const memory = new MachineMemory({
    bytes: task.memoryBytes,
    chunkShift: task.chunkShift,
    missingChunk: (index) => {
      // Synchronous fetch: the core's event loop is never blocked on a pCPU, so it answers.
      Atomics.store(ctl, PcpuSlot.CHUNK_READY, 0);
      send({ t: "chunk?", index });
      for (;;) {
        Atomics.wait(ctl, PcpuSlot.CHUNK_READY, 0, 1000);
        for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) {
          const msg = decode(m.message);
          if (msg.t === "chunk" && msg.index === index) return msg.buffer;
          backlog.push(msg);
        }
      }
    },
  });
  for (const { index, buffer } of task.chunks) memory.adoptChunk(index, buffer);

  const vcpus = new Map<number, Cpu>();
  const p2ms = new Map<number, P2mReader>();
  // A wake the core handles mid-run may preempt the running vCPU at a timing-dependent
  // instruction: in "instructions" mode wakes are held until the run's exit (same order, no timing).
  const heldWakes: FromPcpu[] = [];
  const wake = (domid: number, vcpu: number): void => {
    if (task.timeMode === "instructions") heldWakes.push({ t: "wake", domid, vcpu });
    else send({ t: "wake", domid, vcpu });
  };
  const fast = task.fastEvents ? new FastEvents(memory, wake) : null;
  const fastConsole = new FastConsole(memory, (domid, bytes) => send({ t: "console", domid, bytes }));
  // Spinning on host time would make a deterministic ("instructions") schedule depend on timing.
  const wfiSpinUs = task.timeMode === "instructions" ? 0 : task.wfiSpinUs;
  const wfiWaitUs = task.timeMode === "instructions" ? 0 : Math.max(task.wfiWaitUs, wfiSpinUs);
  const mmioRanges = new Map<number, ReadonlyArray<readonly [number, number]>>();
  const clocks = new Map<number, InstructionTime>();
  const clock = new Float64Array(task.clock);
  let seenBell = Atomics.load(ctl, PcpuSlot.DOORBELL);

  const next = (): ToPcpu => {
    for (;;) {
      const queued = backlog.shift();
      if (queued !== undefined) return queued;
      const m = receiveMessageOnPort(port);
      if (m !== undefined) return decode(m.message);
      // The core usually answers an exit within tens of µs: catch that on the doorbell before
      // paying for a futex sleep and wake-up.
      if (task.idleSpinUs > 0 && spinUntil(() => Atomics.load(ctl, PcpuSlot.DOORBELL) !== seenBell, task.idleSpinUs)) {
        seenBell = Atomics.load(ctl, PcpuSlot.DOORBELL);
        continue;
      }
      if (ioTraceOn) ioTraceFlush(); // no event loop here: write the timeline while idle
      Atomics.wait(ctl, PcpuSlot.DOORBELL, seenBell, 1000);
      seenBell = Atomics.load(ctl, PcpuSlot.DOORBELL);
    }
  };

  // spec-ctrl (spec_ctrl.ts): on a switch to another domain than the last one run here, load its
  // SPEC_CTRL word and flush predictor state (the incoming vCPU's TLB and decode cache), as Xen
  // writes MSR_SPEC_CTRL and issues IBPB; counted in the ctl block for the core's stats.
  const specCtrlOf = new Map<number, number>();
  let lastDomid = -1;
  const switchDomain = (cpu: Cpu, domid: number): void => {
    if (lastDomid !== -1 && task.flushOnSwitch) {
      cpu.flushTlb();
      Atomics.add(ctl, PcpuSlot.PREDICTOR_FLUSHES, 1);
    }
    const want = specCtrlOf.get(domid) ?? 0;
    if (want !== Atomics.load(ctl, PcpuSlot.SPEC_CTRL)) {
      Atomics.store(ctl, PcpuSlot.SPEC_CTRL, want);
      Atomics.add(ctl, PcpuSlot.SPEC_CTRL_WRITES, 1);
    }
    Atomics.add(ctl, PcpuSlot.DOMAIN_SWITCHES, 1);
    lastDomid = domid;
  };

  for (;;) {
    const msg = next();
    switch (msg.t) {
      case "stop":
        port.close();
        return task.pcpu;
      case "chunk":
        memory.adoptChunk(msg.index, msg.buffer);
        break;
      case "domain":
        specCtrlOf.set(msg.share.domid, msg.share.specCtrl ?? 0);
        fast?.addDomain(msg.share);
        fastConsole.setDomain(msg.share.domid, msg.share.console);
        break;
      case "forget":
        fast?.removeDomain(msg.domid);
        fastConsole.removeDomain(msg.domid);
        break;
      case "attach": {
        const state = new Int32Array(msg.state);
        let time: TimeSource = hostTimeSince(task.timeOriginMs);
        if (task.timeMode === "instructions") {
          const it = new InstructionTime(clock, state, task.nsPerInstruction);
          clocks.set(msg.key, it);
          time = it;
        }
        const p2m = new P2mReader(memory, msg.p2m);
        p2ms.set(msg.key, p2m);
        vcpus.set(msg.key, new Cpu({ memory, p2m, time, state }));
        mmioRanges.set(msg.key, msg.mmioRanges);
        break;
      }
      case "detach":
        vcpus.delete(msg.key);
        p2ms.delete(msg.key);
        clocks.delete(msg.key);
        mmioRanges.delete(msg.key);
        break;
      case "run": {
        const cpu = vcpus.get(msg.key);
        if (cpu === undefined) {
          send({ t: "error", key: msg.key, message: `vCPU ${msg.key} is not attached to pCPU ${task.pcpu}` });
          break;
        }
        Atomics.store(ctl, PcpuSlot.RUNNING, msg.key);
        if (ioTraceOn) ioTrace("pcpu.run", msg.key);
        const it = clocks.get(msg.key);
        if (it !== undefined) it.runStart = instret(cpu.state);
        const domid = Math.floor(msg.key / MAX_VCPUS_PER_KEY);
        const vcpu = msg.key % MAX_VCPUS_PER_KEY;
        if (domid !== lastDomid) switchDomain(cpu, domid);
        const dctl = fast?.ctl(domid);
        const onPcpu = onPcpuSlot(vcpu);
        if (dctl !== undefined && onPcpu < dctl.length) Atomics.store(dctl, onPcpu, 1);
        let out: FromPcpu;
        try {
          const ctx: SliceContext = {
            cpu,
            key: msg.key,
            domid,
            vcpu,
            ranges: mmioRanges.get(msg.key) ?? [],
            fast: dctl === undefined ? null : fast,
            console: fastConsole,
            ctl: dctl !== undefined && sleepSlot(vcpu) < dctl.length ? dctl : null,
            p2m: p2ms.get(msg.key)!,
            wfiSpinUs,
            wfiWaitUs,
          };
          out = runSlice(ctx, msg.budget);
        } catch (e) {
          // A bug in the emulator, never a guest's doing: report it and keep the pCPU alive.
          out = { t: "error", key: msg.key, message: (e as Error).stack ?? String(e) };
        }
        // Off the pCPU before the core hears of the exit: from here a sender must post a wake.
        if (dctl !== undefined && onPcpu < dctl.length) Atomics.store(dctl, onPcpu, 0);
        Atomics.store(ctl, PcpuSlot.RUNNING, -1);
        for (const w of heldWakes.splice(0)) send(w);
        if (ioTraceOn) ioTrace("pcpu.exit", out.t === "exit" ? out.reason : -1);
        send(out);
        break;
      }
    }
  }
}

function served(ranges: ReadonlyArray<readonly [number, number]>, addr: number): boolean {
  for (const [start, end] of ranges) if (addr >= start && addr < end) return true;
  return false;
}

interface SliceContext {
  readonly cpu: Cpu;
  readonly key: number;
  readonly domid: number;
  readonly vcpu: number;
  readonly ranges: ReadonlyArray<readonly [number, number]>;
  /** The fast path, when this worker knows the vCPU's domain; null: every ECALL exits. */
  readonly fast: FastEvents | null;
  readonly console: FastConsole;
  /** The domain's control block when it has this vCPU's bell; null: no sleeping on the worker. */
  readonly ctl: Int32Array | null;
  readonly p2m: P2mReader;
  readonly wfiSpinUs: number;
  readonly wfiWaitUs: number;
}

/** Polls `ready` until it holds (true) or `us` µs of host time pass (false). */
function spinUntil(ready: () => boolean, us: number): boolean {
  const until = performance.now() + us / 1000;
  for (let i = 1; ; i++) {
    if (ready()) return true;
    if (i % POLLS_PER_CLOCK === 0 && performance.now() >= until) return false;
  }
}

/**
 * Waits on the worker, as Xen's idle loop would on this pCPU, for `wake(pending interrupts)`:
 * spin-polls for wfiSpinUs (cheapest when the peer runs on another core), then sleeps on the
 * vCPU's bell (frees the core when cores are shared) until wfiWaitUs in all. False when time ran
 * out or the core wants the pCPU (PREEMPT); the exit then goes to the core, which blocks.
 */
function waitOnWorker(ctx: SliceContext, wake: (pending: number) => boolean): boolean {
  const { cpu, ctl } = ctx;
  const s = cpu.state;
  let woke = false;
  const ready = (): boolean => {
    woke = wake(cpu.pendingInterrupts());
    return woke || Atomics.load(s, VcpuSlot.PREEMPT) !== 0;
  };
  if (ready()) return woke;
  if (ioTraceOn) ioTrace("pcpu.idle");
  if (ctx.wfiSpinUs > 0 && spinUntil(ready, ctx.wfiSpinUs)) {
    if (ioTraceOn) ioTrace("pcpu.woke", 0);
    return woke;
  }
  if (ctl === null || ctx.wfiWaitUs <= ctx.wfiSpinUs) return false;
  const bell = bellSlot(ctx.vcpu);
  const sleeping = sleepSlot(ctx.vcpu);
  const until = performance.now() + (ctx.wfiWaitUs - ctx.wfiSpinUs) / 1000;
  try {
    for (;;) {
      // Bell, then the sleeping flag, then the lines: a ring after the check changes the bell
      // and is notified (see sleepSlot), so the wait ends.
      const b = Atomics.load(ctl, bell);
      Atomics.store(ctl, sleeping, 1);
      if (ready()) {
        if (ioTraceOn) ioTrace("pcpu.woke", 1);
        return woke;
      }
      const left = until - performance.now();
      if (left <= 0) return false;
      Atomics.wait(ctl, bell, b, left);
    }
  } finally {
    Atomics.store(ctl, sleeping, 0);
  }
}

function runSlice(ctx: SliceContext, budget: number): ExitMsg {
  const { cpu, key, ranges } = ctx;
  const s = cpu.state;
  const start = instret(s);
  let reflected = 0;
  let reason: number;
  for (;;) {
    const left = budget - (instret(s) - start);
    if (left <= 0) {
      reason = ExitReason.BUDGET;
      s[VcpuSlot.EXIT_REASON] = reason;
      break;
    }
    reason = cpu.run(left);
    if (reason === ExitReason.ECALL && ctx.console.hypercall(ctx.domid, s, ctx.p2m)) continue;
    if (reason === ExitReason.ECALL && ctx.fast !== null) {
      if (ctx.fast.hypercall(ctx.domid, ctx.vcpu, s, ctx.p2m)) continue;
      if (
        s[17]! >>> 0 === Hypercall.sched_op &&
        s[10]! >>> 0 === SchedOp.block &&
        Atomics.load(ctx.fast.ctl(ctx.domid)!, DomainCtlSlot.LIVE) === 1 &&
        s[VcpuSlot.UPCALL_LINE_OFF]! >= 0 &&
        waitOnWorker(ctx, (pending) => (pending & SIP_SEIP) !== 0)
      ) {
        s[10] = 0;
        continue;
      }
      break;
    }
    if (reason === ExitReason.WFI && ctx.wfiWaitUs > 0 && waitOnWorker(ctx, (p) => (p & s[VcpuSlot.SIE]!) !== 0)) {
      continue;
    }
    if (reason === ExitReason.MMIO) {
      const addr = s[VcpuSlot.MMIO_ADDR]! >>> 0;
      if (served(ranges, addr)) {
        if (ioTraceOn) ioTrace("pcpu.mmio", addr & 0xfff);
        break;
      }
      // Unhandled: the access faults at its own instruction (a FAULT exit, then reflected below).
      s[VcpuSlot.PC] = s[VcpuSlot.MMIO_PC]!;
      s[VcpuSlot.EXIT_CAUSE] = s[VcpuSlot.MMIO_WRITE] !== 0 ? Cause.STORE_ACCESS : Cause.LOAD_ACCESS;
      s[VcpuSlot.EXIT_TVAL] = addr | 0;
      reason = ExitReason.FAULT;
      s[VcpuSlot.EXIT_REASON] = reason;
    }
    if (reason === ExitReason.FAULT && s[VcpuSlot.STVEC] !== 0 && reflected < MAX_REFLECTED_PER_RUN) {
      cpu.injectTrap(s[VcpuSlot.EXIT_CAUSE]!, s[VcpuSlot.EXIT_TVAL]!);
      reflected++;
      continue;
    }
    break;
  }
  return { t: "exit", key, reason, retired: instret(s) - start, reflected };
}
