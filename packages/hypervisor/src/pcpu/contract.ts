/**
 * The thread boundary between the core (main thread) and a pCPU worker: every message type and
 * every shared-memory slot, in one place. Imported by both sides.
 *
 * A pCPU is one long-lived piscina task (the worker is dedicated to it until the pool closes). It
 * executes vCPU time slices on the core's request and reports each exit. The core wakes it by
 * posting on its MessagePort and bumping the DOORBELL slot (the worker sleeps in Atomics.wait);
 * the worker answers on the same port.
 *
 * Encoding: messages that carry SharedArrayBuffers (attach, chunk) use structured clone, because
 * a shared buffer is a handle, not bytes; every other message is msgpackr-packed bytes.
 */
import type { MessagePort } from "node:worker_threads";
import type { P2mDescriptor } from "../p2m/p2m.js";

/** Slots of a pCPU's control block (an Int32Array over a SharedArrayBuffer). */
export const PcpuSlot = {
  /** Bumped by the core after each post to the worker; the worker waits on it when idle. */
  DOORBELL: 0,
  /** Set to 1 by the core when the chunk the worker asked for has been posted. */
  CHUNK_READY: 1,
  /** The vCPU key the worker is running now, -1 when idle (read by the core for tickles). */
  RUNNING: 2,
} as const;
export const PCPU_CTL_WORDS = 4;

/** Time mode for vCPUs: host clock, or retired instructions (deterministic). */
export type TimeMode = "host" | "instructions";

/** The piscina task that becomes a pCPU. */
export interface PcpuTask {
  readonly pcpu: number;
  readonly port: MessagePort;
  readonly ctl: SharedArrayBuffer;
  readonly memoryBytes: number;
  readonly chunkShift: number;
  /** Chunks already materialised when the pCPU started (others are fetched on demand). */
  readonly chunks: ReadonlyArray<{ index: number; buffer: SharedArrayBuffer }>;
  readonly timeMode: TimeMode;
  /**
   * "instructions" mode: Float64Array[1] holding the machine's virtual system time in ns, written
   * by the core between runs. A vCPU's time is that plus its instructions retired in the current
   * run × nsPerInstruction.
   */
  readonly clock: SharedArrayBuffer;
  readonly nsPerInstruction: number;
}

/** vCPU key: identifies a vCPU on a pCPU (domid * MAX_VCPUS_PER_KEY + vcpu id). */
export const MAX_VCPUS_PER_KEY = 1024;
export function vcpuKey(domid: number, vcpu: number): number {
  return domid * MAX_VCPUS_PER_KEY + vcpu;
}

// Core -> pCPU (structured clone)
export interface AttachMsg {
  readonly t: "attach";
  readonly key: number;
  readonly state: SharedArrayBuffer;
  readonly p2m: P2mDescriptor;
  /**
   * Guest-physical [start, end) ranges an emulator (IOREQ server) serves for this domain: accesses
   * there leave as MMIO exits. An access to a hole outside them is reflected into the guest as an
   * access fault, as Xen on Arm injects a data abort for unhandled MMIO.
   */
  readonly mmioRanges: ReadonlyArray<readonly [number, number]>;
}
export interface ChunkMsg {
  readonly t: "chunk";
  readonly index: number;
  readonly buffer: SharedArrayBuffer;
}
// Core -> pCPU (msgpackr)
export interface RunMsg {
  readonly t: "run";
  readonly key: number;
  /** Most instructions to retire before returning BUDGET. */
  readonly budget: number;
}
export interface DetachMsg {
  readonly t: "detach";
  readonly key: number;
}
export interface StopMsg {
  readonly t: "stop";
}
export type ToPcpu = AttachMsg | ChunkMsg | RunMsg | DetachMsg | StopMsg;

// pCPU -> core (msgpackr)
export interface ExitMsg {
  readonly t: "exit";
  readonly key: number;
  /** hw ExitReason */
  readonly reason: number;
  /** Instructions retired in this run. */
  readonly retired: number;
  /** Guest faults reflected into the guest's own trap vector during this run. */
  readonly reflected: number;
}
export interface ChunkRequestMsg {
  readonly t: "chunk?";
  readonly index: number;
}
export interface ErrorMsg {
  readonly t: "error";
  readonly key: number;
  readonly message: string;
}
export type FromPcpu = ExitMsg | ChunkRequestMsg | ErrorMsg;

/** A packed (msgpackr) message travels as this wrapper so the receiver can tell the encodings apart. */
export interface Packed {
  readonly p: Uint8Array;
}
