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
 * One domain's event-channel port table, in a SharedArrayBuffer so a pCPU worker can serve
 * EVTCHNOP_send without the core (it only reads the table). Four Int32 words per port:
 * state, notify vCPU, u1, u2.
 *
 * Invariant: binding writes the other words first and publishes the state word last (Atomics),
 * and closing stores the state first, so a concurrent reader never sees a half-built channel in a
 * bound state. Only the core thread writes.
 */
export class EvtchnPortTable {
  readonly buffer: SharedArrayBuffer;
  private readonly w: Int32Array;

  constructor(readonly maxPort: number) {
    if (!Number.isInteger(maxPort) || maxPort < 1 || maxPort >= EVTCHN_2L_NR_CHANNELS) {
      throw new RangeError(`max_evtchn_port ${maxPort} outside 1..${EVTCHN_2L_NR_CHANNELS - 1}`);
    }
    this.buffer = new SharedArrayBuffer((maxPort + 1) * PORT_WORDS * 4);
    this.w = new Int32Array(this.buffer);
    Atomics.store(this.w, W_STATE, Ecs.reserved);
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

  /** The lowest free port (Xen's get_free_port), or -ENOSPC. */
  findFree(): number {
    for (let p = 1; p <= this.maxPort; p++) if (this.state(p) === Ecs.free) return p;
    return err("ENOSPC");
  }

  bind(port: number, state: Ecs, vcpu: number, u1: number, u2: number, xenConsumer = false): void {
    const b = port * PORT_WORDS;
    Atomics.store(this.w, b + W_VCPU, vcpu);
    Atomics.store(this.w, b + W_U1, u1);
    Atomics.store(this.w, b + W_U2, u2);
    Atomics.store(this.w, b + W_STATE, state | (xenConsumer ? XEN_CONSUMER : 0));
  }

  setNotifyVcpu(port: number, vcpu: number): void {
    Atomics.store(this.w, port * PORT_WORDS + W_VCPU, vcpu);
  }

  free(port: number): void {
    const b = port * PORT_WORDS;
    Atomics.store(this.w, b + W_STATE, Ecs.free);
    Atomics.store(this.w, b + W_VCPU, 0);
    Atomics.store(this.w, b + W_U1, 0);
    Atomics.store(this.w, b + W_U2, 0);
  }

  /** Every port that is not free or reserved. */
  boundPorts(): number[] {
    const out: number[] = [];
    for (let p = 1; p <= this.maxPort; p++) if (this.state(p) !== Ecs.free) out.push(p);
    return out;
  }
}
