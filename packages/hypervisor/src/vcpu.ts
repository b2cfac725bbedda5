import { NR_VIRQS } from "./public/xen.js";
import type { SharedRegion } from "./shared_info.js";

/** What a sched_op asked the scheduler layer to do with the calling vCPU. */
export type SchedRequest =
  | { readonly op: "yield" }
  | { readonly op: "block" }
  /** Sleep until one of `ports` is pending or system time reaches timeoutNs (0 = no timeout). */
  | { readonly op: "poll"; readonly ports: readonly number[]; readonly timeoutNs: number }
  /** The domain shut down: stop running its vCPUs. */
  | { readonly op: "shutdown" };

/** A secondary vCPU's first registers (VCPUOP_initialise): pc and x0..x31 (x0 ignored). */
export interface VcpuStartContext {
  readonly pc: number;
  readonly regs: Int32Array;
}

/** Where a registered vcpu_info lives (VCPUOP_register_vcpu_info). */
export interface VcpuInfoPlacement {
  readonly gfn: number;
  readonly mfn: number;
  readonly offset: number;
}

/**
 * The core's per-vCPU record (the architectural state lives in hw's VcpuSlot block, owned by the
 * scheduler layer). virqPorts[v] is the port bound to VIRQ v on this vCPU, 0 if none (port 0 is
 * never a real channel).
 */
export class Vcpu {
  readonly virqPorts = new Int32Array(NR_VIRQS);
  /** Set by a sched_op; the scheduler layer takes it after the hypercall returns. */
  schedRequest: SchedRequest | null = null;
  /**
   * VCPUOP_set_singleshot_timer's deadline in system time (ns), or null. The scheduling layer arms
   * it when timerGeneration changes and sends VIRQ_TIMER when it passes.
   */
  singleshotDeadlineNs: number | null = null;
  timerGeneration = 0;
  /** The registered vcpu_info, or null while the default (shared_info slot or dummy) is used. */
  placement: VcpuInfoPlacement | null = null;
  /**
   * Has a start context (VCPUOP_initialise, or the domain builder for vCPU 0). Xen's
   * is_initialised: it stays set across VCPUOP_down.
   */
  initialised: boolean;
  /** Not down (Xen's !VPF_down): the scheduler may run it. vCPU 0 starts up, the rest down. */
  online: boolean;
  /** VCPUOP_initialise's registers, until the scheduling layer loads them at the first VCPUOP_up. */
  startContext: VcpuStartContext | null = null;

  constructor(
    readonly id: number,
    /** Where this vCPU's evtchn_upcall_pending / evtchn_pending_sel live. */
    public vcpuInfo: SharedRegion,
  ) {
    this.initialised = id === 0;
    this.online = id === 0;
  }

  /** Returns and clears the start context set by VCPUOP_initialise. */
  takeStartContext(): VcpuStartContext | null {
    const c = this.startContext;
    this.startContext = null;
    return c;
  }

  /** Returns and clears the pending sched request. */
  takeSchedRequest(): SchedRequest | null {
    const r = this.schedRequest;
    this.schedRequest = null;
    return r;
  }
}
