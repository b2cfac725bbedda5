/**
 * A pCPU: the body of one long-lived piscina task. It owns a mirror of host memory (chunks are
 * fetched from the core on first touch), one hw Cpu per attached vCPU, and runs slices on request.
 *
 * What it decides by itself, as Xen does on the pCPU that took the trap: a guest exception with a
 * trap vector installed is reflected into the guest (the guest kernel handles its own faults);
 * everything else (hypercalls, WFI, MMIO, faults with no vector, budget, preempt) goes back to
 * the core as an exit.
 */
import { receiveMessageOnPort } from "node:worker_threads";
import { Cause, Cpu, ExitReason, hostTime, MachineMemory, TIMEBASE_HZ, type TimeSource, VcpuSlot } from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import { P2mReader } from "../p2m/p2m.js";
import type { ExitMsg, FromPcpu, Packed, PcpuTask, ToPcpu } from "./contract.js";
import { PcpuSlot } from "./contract.js";

/** System time (ns) per tick of the 10 MHz time CSR. */
const NS_PER_TICK = 1e9 / TIMEBASE_HZ;
/** Reflected guest faults allowed per run before the vCPU is handed to the core (a fault loop). */
const MAX_REFLECTED_PER_RUN = 64;

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
      Atomics.wait(ctl, PcpuSlot.DOORBELL, seenBell, 1000);
      seenBell = Atomics.load(ctl, PcpuSlot.DOORBELL);
    }
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
      case "attach": {
        const state = new Int32Array(msg.state);
        let time: TimeSource = hostTime;
        if (task.timeMode === "instructions") {
          const it = new InstructionTime(clock, state, task.nsPerInstruction);
          clocks.set(msg.key, it);
          time = it;
        }
        vcpus.set(msg.key, new Cpu({ memory, p2m: new P2mReader(memory, msg.p2m), time, state }));
        mmioRanges.set(msg.key, msg.mmioRanges);
        break;
      }
      case "detach":
        vcpus.delete(msg.key);
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
        const it = clocks.get(msg.key);
        if (it !== undefined) it.runStart = instret(cpu.state);
        try {
          send(runSlice(cpu, msg.key, msg.budget, mmioRanges.get(msg.key) ?? []));
        } catch (e) {
          // A bug in the emulator, never a guest's doing: report it and keep the pCPU alive.
          send({ t: "error", key: msg.key, message: (e as Error).stack ?? String(e) });
        }
        Atomics.store(ctl, PcpuSlot.RUNNING, -1);
        break;
      }
    }
  }
}

function served(ranges: ReadonlyArray<readonly [number, number]>, addr: number): boolean {
  for (const [start, end] of ranges) if (addr >= start && addr < end) return true;
  return false;
}

function runSlice(cpu: Cpu, key: number, budget: number, ranges: ReadonlyArray<readonly [number, number]>): ExitMsg {
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
    if (reason === ExitReason.MMIO) {
      const addr = s[VcpuSlot.MMIO_ADDR]! >>> 0;
      if (served(ranges, addr)) break;
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
