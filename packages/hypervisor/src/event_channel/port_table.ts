import { err } from "../public/errno.js";
import { EVTCHN_2L_NR_CHANNELS } from "../public/event_channel.js";

/** Xen's internal channel states (ECS_*). Port 0 is reserved at creation and never handed out. */
export const Ecs = {
  free: 0,
  reserved: 1,
  unbound: 2,
  interdomain: 3,
  pirq: 4,
  virq: 5,
  ipi: 6,
} as const;
export type Ecs = (typeof Ecs)[keyof typeof Ecs];

const W_STATE = 0;
const W_VCPU = 1;
/** unbound: remote domid; interdomain: remote domid; virq: virq number. */
const W_U1 = 2;
/** interdomain: remote port. */
const W_U2 = 3;
const PORT_WORDS = 4;
/** State-word flag: the port belongs to a consumer inside the hypervisor; the guest may not send/close it. */
const XEN_CONSUMER = 0x100;
const STATE_MASK = 0xff;

/**
 * Header words after the last port: SEQ is a seqlock (odd while the core is writing), READERS
 * counts pCPU workers pinned inside a fast-path section (pcpu/fast_events.ts).
 */
const H_SEQ = 0;
const H_READERS = 1;
const HEADER_WORDS = 2;
/** A writer waits at most this long for pinned readers (a pinned section is a few hundred ns). */
const WRITER_WAIT_MS = 50;

/** Int32 words of a port table's buffer for `maxPort` (what EvtchnPortView expects). */
export function portTableWords(maxPort: number): number {
  return (maxPort + 1) * PORT_WORDS + HEADER_WORDS;
}

/**
 * Read access to one domain's event-channel port table, over its SharedArrayBuffer. Four Int32
 * words per port: state, notify vCPU, u1, u2; then the header (seqlock, pinned readers). The core
 * reads through EvtchnPortTable; a pCPU worker builds its own view over the same buffer to serve
 * EVTCHNOP_send/unmask without the core.
 *
 * Worker protocol (the core is the only writer):
 *  - consistent snapshot: s = seq(); if s is odd, give up; read; valid iff seq() === s again;
 *  - pinned section: pin(); if seq() !== s (the snapshot's seq), unpin and give up; else no write
 *    can start until unpin(), so bits set in between belong to the channel the snapshot saw.
 *    A writer bumps seq first, then waits for READERS to drain (Dekker with seq-cst Atomics: the
 *    reader adds to READERS then loads SEQ; the writer adds to SEQ then loads READERS).
 * A pinned section must not block (no chunk fetch, no message wait) or the core would wait on it.
 */
export class EvtchnPortView {
  protected readonly w: Int32Array;
  private readonly header: number;

  constructor(
    readonly buffer: SharedArrayBuffer,
    readonly maxPort: number,
  ) {
    this.w = new Int32Array(buffer);
    if (this.w.length < portTableWords(maxPort)) throw new RangeError("port table buffer too small");
    this.header = (maxPort + 1) * PORT_WORDS;
  }

  /** True for any integer port number this table has a slot for (0..maxPort). */
  isValid(port: number): boolean {
    return Number.isInteger(port) && port >= 0 && port <= this.maxPort;
  }

  state(port: number): Ecs {
    return (Atomics.load(this.w, port * PORT_WORDS + W_STATE) & STATE_MASK) as Ecs;
  }
  isXenConsumer(port: number): boolean {
    return (Atomics.load(this.w, port * PORT_WORDS + W_STATE) & XEN_CONSUMER) !== 0;
  }
  notifyVcpu(port: number): number {
    return Atomics.load(this.w, port * PORT_WORDS + W_VCPU);
  }
  /** unbound / interdomain: the remote domid; virq: the virq. */
  u1(port: number): number {
    return Atomics.load(this.w, port * PORT_WORDS + W_U1);
  }
  /** interdomain: the remote port. */
  u2(port: number): number {
    return Atomics.load(this.w, port * PORT_WORDS + W_U2);
  }

  /** The seqlock word: odd while the core is changing the table. */
  seq(): number {
    return Atomics.load(this.w, this.header + H_SEQ);
  }
  /** Enters a pinned section; true if the table is still at snapshot `s` (else unpinned again). */
  pin(s: number): boolean {
    Atomics.add(this.w, this.header + H_READERS, 1);
    if (Atomics.load(this.w, this.header + H_SEQ) === s) return true;
    Atomics.sub(this.w, this.header + H_READERS, 1);
    return false;
  }
  unpin(): void {
    Atomics.sub(this.w, this.header + H_READERS, 1);
  }

  /** Core side: starts a change (seq odd) once no worker is pinned. */
  protected writeBegin(): void {
    Atomics.add(this.w, this.header + H_SEQ, 1);
    if (Atomics.load(this.w, this.header + H_READERS) === 0) return;
    const until = performance.now() + WRITER_WAIT_MS;
    // A pinned section never blocks, so this ends at once unless a worker died inside one.
    while (Atomics.load(this.w, this.header + H_READERS) !== 0 && performance.now() < until) {}
  }
  protected writeEnd(): void {
    Atomics.add(this.w, this.header + H_SEQ, 1);
  }
}

/**
 * One domain's event-channel port table, in a SharedArrayBuffer so a pCPU worker can serve
 * EVTCHNOP_send without the core (it only reads the table, see EvtchnPortView).
 *
 * Invariant: binding writes the other words first and publishes the state word last (Atomics),
 * and closing stores the state first, so a concurrent reader never sees a half-built channel in a
 * bound state; every change is also inside the seqlock. Only the core thread writes.
 */
export class EvtchnPortTable extends EvtchnPortView {
  constructor(maxPort: number) {
    if (!Number.isInteger(maxPort) || maxPort < 1 || maxPort >= EVTCHN_2L_NR_CHANNELS) {
      throw new RangeError(`max_evtchn_port ${maxPort} outside 1..${EVTCHN_2L_NR_CHANNELS - 1}`);
    }
    super(new SharedArrayBuffer(portTableWords(maxPort) * 4), maxPort);
    Atomics.store(this.w, W_STATE, Ecs.reserved);
  }

  /** The lowest free port (Xen's get_free_port), or -ENOSPC. */
  findFree(): number {
    for (let p = 1; p <= this.maxPort; p++) if (this.state(p) === Ecs.free) return p;
    return err("ENOSPC");
  }

  bind(port: number, state: Ecs, vcpu: number, u1: number, u2: number, xenConsumer = false): void {
    const b = port * PORT_WORDS;
    this.writeBegin();
    Atomics.store(this.w, b + W_VCPU, vcpu);
    Atomics.store(this.w, b + W_U1, u1);
    Atomics.store(this.w, b + W_U2, u2);
    Atomics.store(this.w, b + W_STATE, state | (xenConsumer ? XEN_CONSUMER : 0));
    this.writeEnd();
  }

  setNotifyVcpu(port: number, vcpu: number): void {
    this.writeBegin();
    Atomics.store(this.w, port * PORT_WORDS + W_VCPU, vcpu);
    this.writeEnd();
  }

  free(port: number): void {
    const b = port * PORT_WORDS;
    this.writeBegin();
    Atomics.store(this.w, b + W_STATE, Ecs.free);
    Atomics.store(this.w, b + W_VCPU, 0);
    Atomics.store(this.w, b + W_U1, 0);
    Atomics.store(this.w, b + W_U2, 0);
    this.writeEnd();
  }

  /** Every port that is not free or reserved. */
  boundPorts(): number[] {
    const out: number[] = [];
    for (let p = 1; p <= this.maxPort; p++) if (this.state(p) !== Ecs.free) out.push(p);
    return out;
  }
}
