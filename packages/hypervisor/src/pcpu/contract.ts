/**
 * The thread boundary between the core (main thread) and a pCPU worker: every message type and
 * every shared-memory slot, in one place. Imported by both sides.
 *
 * A pCPU is one long-lived piscina task (the worker is dedicated to it until the pool closes). It
 * executes vCPU time slices on the core's request and reports each exit. The core wakes it by
 * posting on its MessagePort and bumping the DOORBELL slot (the worker sleeps in Atomics.wait);
 * the worker answers on the same port.
 *
 * Encoding: messages that carry SharedArrayBuffers (attach, chunk, domain) use structured clone, because
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
  /** The modelled MSR_SPEC_CTRL | VIRT_SPEC_CTRL word this pCPU runs with (spec_ctrl.ts). */
  SPEC_CTRL: 3,
  /** Counters, written by the worker only: runs of another domain than the last one here... */
  DOMAIN_SWITCHES: 4,
  /** ...writes of SPEC_CTRL on such a switch, and predictor flushes on such a switch. */
  SPEC_CTRL_WRITES: 5,
  PREDICTOR_FLUSHES: 6,
} as const;
export const PCPU_CTL_WORDS = 8;

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
  /** "host" mode: the core's performance.timeOrigin; vCPU time counts from it (hostTimeSince). */
  readonly timeOriginMs: number;
  /**
   * A vCPU in WFI / SCHEDOP_block first spin-polls its interrupt lines on the worker for up to
   * wfiSpinUs, then sleeps on its bell (DomainCtlSlot) until wfiWaitUs have passed in all, and only
   * then exits to the core to block (µs of host time; 0 = never). Both are forced to 0 in
   * "instructions" mode so host timing cannot shape a deterministic schedule.
   */
  readonly wfiSpinUs: number;
  readonly wfiWaitUs: number;
  /** Longest an idle worker polls its doorbell before it sleeps in Atomics.wait (µs; 0 = never). */
  readonly idleSpinUs: number;
  /** Serve EVTCHNOP_send/unmask on the worker when plainly safe (see fast_events.ts). */
  readonly fastEvents: boolean;
  /** Flush predictor state when switching to another domain's vCPU (spec-ctrl=ibpb/bhb). */
  readonly flushOnSwitch: boolean;
}

/**
 * Slots of a domain's control block (Int32Array over a SharedArrayBuffer, domainCtlWords()),
 * written by the core and the workers, read by every worker's fast path.
 */
export const DomainCtlSlot = {
  /**
   * 1 while the machine runs the domain; the core stores 0 when it shuts down (before any of its
   * state is torn down), and workers then leave every event towards or from it to the core.
   */
  LIVE: 0,
  /**
   * onPcpuSlot(v): 1 while vCPU v is inside a worker's run (executing, spinning or sleeping on
   * its bell), so it will see its upcall line without the core; stored by that worker. A
   * fast-path sender that raises the upcall of a vCPU whose slot is 0 posts a "wake" to the core
   * (seq-cst Atomics on both sides: either the sender sees 0, or the worker's later exit is
   * followed by the core's own look at the line, which sees the byte).
   */
  VCPU_BASE: 1,
} as const;
/** Words per vCPU in a domain control block: on-pCPU flag, bell, sleeping flag. */
const CTL_WORDS_PER_VCPU = 3;
export function onPcpuSlot(vcpu: number): number {
  return DomainCtlSlot.VCPU_BASE + vcpu * CTL_WORDS_PER_VCPU;
}
/**
 * bellSlot(v): bumped by whoever raises something vCPU v's worker should wake for while it
 * sleeps in WFI: a fast-path upcall edge, the core's upcall or PREEMPT (ringBell).
 */
export function bellSlot(vcpu: number): number {
  return onPcpuSlot(vcpu) + 1;
}
/**
 * sleepSlot(v): 1 while v's worker may be in Atomics.wait on the bell, so ringBell pays for
 * Atomics.notify only then. The sleeper reads the bell, sets this, re-checks its lines, then
 * waits for the bell to change; a ringer bumps the bell, then notifies if this is set. With
 * seq-cst Atomics either the ringer sees 1, or the sleeper's re-check sees what was raised.
 */
export function sleepSlot(vcpu: number): number {
  return onPcpuSlot(vcpu) + 2;
}
export function domainCtlWords(maxVcpus: number): number {
  return DomainCtlSlot.VCPU_BASE + maxVcpus * CTL_WORDS_PER_VCPU;
}
/** Rings vCPU v's bell in a domain control block (after raising what it should see). */
export function ringBell(ctl: Int32Array, vcpu: number): void {
  const i = bellSlot(vcpu);
  if (i + 1 >= ctl.length) return;
  Atomics.add(ctl, i, 1);
  if (Atomics.load(ctl, i + 1) !== 0) Atomics.notify(ctl, i);
}

export interface DomainShare {
  readonly domid: number;
  /** The domain's EvtchnPortTable buffer (read-only to workers, seqlock + pin protocol). */
  readonly ports: SharedArrayBuffer;
  readonly maxPort: number;
  /** Machine frame of the domain's shared_info (fixed for the domain's life). */
  readonly sharedInfoMfn: number;
  /** The domain's control block (DomainCtlSlot). */
  readonly ctl: SharedArrayBuffer;
  /**
   * Each vCPU's state block: a vCPU's vcpu_info is where its UPCALL_LINE_* slots point (the core
   * keeps them in sync with VCPUOP_register_vcpu_info); OFF -1 means "no vcpu_info the worker
   * can reach" (Xen's dummy), and the event goes to the core.
   */
  readonly vcpuStates: readonly SharedArrayBuffer[];
  /** May write to its console (CONSOLEIO_write): privileged or console domains. */
  readonly console: boolean;
  /** The SPEC_CTRL word a pCPU runs this domain with (spec_ctrl.ts effectiveSpecCtrl; default 0). */
  readonly specCtrl?: number;
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
/** Core -> every pCPU (structured clone): a domain the machine now runs (see DomainShare). */
export interface DomainMsg {
  readonly t: "domain";
  readonly share: DomainShare;
}
/** Core -> every pCPU (msgpackr): forget a domain (sent after its LIVE slot went 0). */
export interface ForgetDomainMsg {
  readonly t: "forget";
  readonly domid: number;
}
export type ToPcpu = AttachMsg | ChunkMsg | RunMsg | DetachMsg | StopMsg | DomainMsg | ForgetDomainMsg;

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
/**
 * pCPU -> core, no reply: the fast path raised evtchn_upcall_pending 0 -> 1 on a vCPU that was
 * not on a pCPU; the core runs hooks.upcall(domid, vcpu) (wakes it if blocked). Posted before the
 * exit of the run that sent it (one port, FIFO), so with one pCPU the order is deterministic.
 */
export interface WakeMsg {
  readonly t: "wake";
  readonly domid: number;
  readonly vcpu: number;
}
/**
 * pCPU -> core, no reply: CONSOLEIO_write served on the worker (the vCPU went on); the core hands
 * the bytes to the domain's console. Posted before the exit of the run (FIFO), so a guest's last
 * line arrives before its shutdown.
 */
export interface ConsoleMsg {
  readonly t: "console";
  readonly domid: number;
  readonly bytes: Uint8Array;
}
export type FromPcpu = ExitMsg | ChunkRequestMsg | ErrorMsg | WakeMsg | ConsoleMsg;

/** A packed (msgpackr) message travels as this wrapper so the receiver can tell the encodings apart. */
export interface Packed {
  readonly p: Uint8Array;
}
