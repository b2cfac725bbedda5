/**
 * The core's side of a set of pCPUs: one piscina pool whose every worker runs one long-lived
 * pcpu task (see pcpu_worker.ts). A cpupool owns one PcpuPool. The core calls attach/run/detach;
 * each run resolves with the vCPU's exit. Chunk requests from workers are answered here.
 *
 * pCPUs join and leave at run time (cpupool-cpu-add/-remove): leaving ends the pCPU's task (its
 * thread stays idle in piscina), joining starts one and tells it every domain it may serve.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import type { MachineMemory } from "@xenon/hw";
import { pack, unpack } from "msgpackr";
import { Piscina } from "piscina";
import type { P2mDescriptor } from "../p2m/p2m.js";
import {
  type DomainShare,
  type ExitMsg,
  type FromPcpu,
  type Packed,
  PCPU_CTL_WORDS,
  PcpuSlot,
  type PcpuTask,
  type TimeMode,
  type ToPcpu,
} from "./contract.js";

interface PcpuHandle {
  readonly id: number;
  readonly port: MessagePort;
  readonly ctl: Int32Array;
  /** The exit this pCPU owes for its current run, if any. */
  pending: { resolve(e: ExitMsg): void; reject(e: Error): void } | null;
  done: Promise<unknown>;
}

export interface PcpuPoolOptions {
  readonly memory: MachineMemory;
  /** Host pCPU ids this pool runs at first (one worker thread each). */
  readonly pcpus: readonly number[];
  /** Most pCPUs the pool may ever hold at once (piscina's maxThreads; default: pcpus.length). */
  readonly maxPcpus?: number;
  readonly timeMode: TimeMode;
  /** Float64Array[1] of virtual system time (ns), see PcpuTask.clock. */
  readonly clock: SharedArrayBuffer;
  readonly nsPerInstruction: number;
  /** See PcpuTask.wfiSpinUs / wfiWaitUs (defaults 50 / 1000; ignored in "instructions" mode). */
  readonly wfiSpinUs?: number;
  readonly wfiWaitUs?: number;
  /** See PcpuTask.idleSpinUs (default 30). */
  readonly idleSpinUs?: number;
  /** See PcpuTask.fastEvents (default true). */
  readonly fastEvents?: boolean;
  /** See PcpuTask.flushOnSwitch (default true). */
  readonly flushOnSwitch?: boolean;
  /** A worker's fast path raised the upcall of a vCPU not on a pCPU (WakeMsg). */
  readonly onWake?: (domid: number, vcpu: number) => void;
  /** A worker served CONSOLEIO_write (ConsoleMsg). */
  readonly onConsole?: (domid: number, bytes: Uint8Array) => void;
}

export const DEFAULT_WFI_SPIN_US = 50;
export const DEFAULT_WFI_WAIT_US = 1000;
export const DEFAULT_IDLE_SPIN_US = 30;

export class PcpuPool {
  private readonly piscina: Piscina;
  private readonly handles = new Map<number, PcpuHandle>();
  /** Every domain the pool's pCPUs may deliver events into, replayed to pCPUs that join. */
  private readonly shares = new Map<number, DomainShare>();
  private closed = false;

  constructor(private readonly opts: PcpuPoolOptions) {
    const n = opts.pcpus.length;
    this.piscina = new Piscina({
      filename: new URL("./pcpu_worker.js", import.meta.url).href,
      minThreads: n,
      maxThreads: Math.max(1, n, opts.maxPcpus ?? n),
      idleTimeout: Number.POSITIVE_INFINITY,
      concurrentTasksPerWorker: 1,
    });
    for (const id of opts.pcpus) this.start(id);
  }

  get pcpus(): number[] {
    return [...this.handles.keys()];
  }

  /** The spec-ctrl counters of this pool's pCPUs (PcpuSlot.DOMAIN_SWITCHES...). */
  specCtrlStats(): { domainSwitches: number; specCtrlWrites: number; predictorFlushes: number } {
    const sum = { domainSwitches: 0, specCtrlWrites: 0, predictorFlushes: 0 };
    for (const h of this.handles.values()) {
      sum.domainSwitches += Atomics.load(h.ctl, PcpuSlot.DOMAIN_SWITCHES);
      sum.specCtrlWrites += Atomics.load(h.ctl, PcpuSlot.SPEC_CTRL_WRITES);
      sum.predictorFlushes += Atomics.load(h.ctl, PcpuSlot.PREDICTOR_FLUSHES);
    }
    return sum;
  }

  /** The vCPU key a pCPU is running right now, or -1. */
  running(pcpu: number): number {
    const h = this.handles.get(pcpu);
    return h === undefined ? -1 : Atomics.load(h.ctl, PcpuSlot.RUNNING);
  }

  attach(
    pcpu: number,
    key: number,
    state: SharedArrayBuffer,
    p2m: P2mDescriptor,
    mmioRanges: ReadonlyArray<readonly [number, number]> = [],
  ): void {
    this.post(this.handle(pcpu), { t: "attach", key, state, p2m, mmioRanges });
  }

  /** Tells every pCPU of the pool about a domain it may deliver events into (DomainMsg). */
  addDomain(share: DomainShare): void {
    this.shares.set(share.domid, share);
    for (const h of this.handles.values()) this.post(h, { t: "domain", share });
  }

  /** Every pCPU forgets the domain (its DomainCtlSlot.LIVE must already be 0). */
  forgetDomain(domid: number): void {
    this.shares.delete(domid);
    for (const h of this.handles.values()) this.post(h, { t: "forget", domid });
  }

  /** Starts pCPU `id` in this pool (it must not be running a task here already). */
  addPcpu(id: number): void {
    if (this.closed) throw new Error("pCPU pool is closed");
    if (this.handles.has(id)) throw new Error(`pCPU ${id} is already in this pool`);
    this.start(id);
    const h = this.handles.get(id)!;
    for (const share of this.shares.values()) this.post(h, { t: "domain", share });
  }

  /**
   * Ends pCPU `id`'s task: everything attached there is dropped with it. The core must not be
   * running a vCPU on it. Resolves once the task has returned.
   */
  async removePcpu(id: number): Promise<void> {
    const h = this.handles.get(id);
    if (h === undefined) return;
    if (h.pending !== null) throw new Error(`pCPU ${id} is running a vCPU`);
    this.handles.delete(id);
    this.post(h, { t: "stop" });
    await h.done;
  }

  detach(pcpu: number, key: number): void {
    this.post(this.handle(pcpu), { t: "detach", key });
  }

  /** Runs vCPU `key` (attached to this pCPU) for at most `budget` instructions. */
  run(pcpu: number, key: number, budget: number): Promise<ExitMsg> {
    const h = this.handle(pcpu);
    if (h.pending !== null) return Promise.reject(new Error(`pCPU ${pcpu} is already running a vCPU`));
    return new Promise<ExitMsg>((resolve, reject) => {
      h.pending = { resolve, reject };
      this.post(h, { t: "run", key, budget });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.handles.values()) this.post(h, { t: "stop" });
    await Promise.allSettled([...this.handles.values()].map((h) => h.done));
    await this.piscina.destroy();
  }

  private start(id: number): void {
    const { port1, port2 } = new MessageChannel();
    const ctlBuf = new SharedArrayBuffer(PCPU_CTL_WORDS * 4);
    const ctl = new Int32Array(ctlBuf);
    Atomics.store(ctl, PcpuSlot.RUNNING, -1);
    const task: PcpuTask = {
      pcpu: id,
      port: port2,
      ctl: ctlBuf,
      memoryBytes: this.opts.memory.totalFrames * 4096,
      chunkShift: this.opts.memory.chunkShift,
      chunks: this.opts.memory.exportChunks(),
      timeMode: this.opts.timeMode,
      clock: this.opts.clock,
      nsPerInstruction: this.opts.nsPerInstruction,
      timeOriginMs: performance.timeOrigin,
      wfiSpinUs: this.opts.wfiSpinUs ?? DEFAULT_WFI_SPIN_US,
      wfiWaitUs: this.opts.wfiWaitUs ?? DEFAULT_WFI_WAIT_US,
      idleSpinUs: this.opts.idleSpinUs ?? DEFAULT_IDLE_SPIN_US,
      fastEvents: this.opts.fastEvents ?? true,
      flushOnSwitch: this.opts.flushOnSwitch ?? true,
    };
    const h: PcpuHandle = { id, port: port1, ctl, pending: null, done: Promise.resolve() };
    h.done = this.piscina.run(task, { transferList: [port2] }).catch((e: unknown) => {
      h.pending?.reject(new Error(`pCPU ${id} died: ${String(e)}`));
      h.pending = null;
    });
    port1.on("message", (raw: unknown) => this.onMessage(h, raw));
    this.handles.set(id, h);
  }

  private onMessage(h: PcpuHandle, raw: unknown): void {
    const msg = unpack((raw as Packed).p) as FromPcpu;
    switch (msg.t) {
      case "chunk?": {
        const chunk = this.opts.memory.chunk(msg.index << this.opts.memory.chunkShift);
        h.port.postMessage({ t: "chunk", index: msg.index, buffer: chunk.buffer } satisfies ToPcpu);
        Atomics.store(h.ctl, PcpuSlot.CHUNK_READY, 1);
        Atomics.notify(h.ctl, PcpuSlot.CHUNK_READY);
        return;
      }
      case "exit": {
        const p = h.pending;
        h.pending = null;
        p?.resolve(msg);
        return;
      }
      case "wake":
        this.opts.onWake?.(msg.domid, msg.vcpu);
        return;
      case "console":
        this.opts.onConsole?.(msg.domid, msg.bytes);
        return;
      case "error": {
        const p = h.pending;
        h.pending = null;
        p?.reject(new Error(`pCPU ${h.id}: ${msg.message}`));
        return;
      }
    }
  }

  private handle(pcpu: number): PcpuHandle {
    const h = this.handles.get(pcpu);
    if (h === undefined) throw new Error(`pCPU ${pcpu} is not in this pool`);
    return h;
  }

  private post(h: PcpuHandle, msg: ToPcpu): void {
    if (msg.t === "attach" || msg.t === "chunk" || msg.t === "domain") h.port.postMessage(msg);
    else h.port.postMessage({ p: pack(msg) } satisfies Packed);
    Atomics.add(h.ctl, PcpuSlot.DOORBELL, 1);
    Atomics.notify(h.ctl, PcpuSlot.DOORBELL);
  }
}
