import type { FrameAllocator, MachineMemory } from "@xenon/hw";
import { ByteRing } from "./console.js";
import type { ControlHooks } from "./control.js";
import type { Domain, ShutdownAction } from "./domain.js";
import { DomainTable } from "./domain_table.js";
import { HypercallSemantics } from "./hypercall/semantics.js";
import { IoreqServers } from "./ioreq/ioreq_servers.js";
import { Passthrough } from "./passthrough/passthrough.js";
import { NR_VIRQS } from "./public/xen.js";
import { DEFAULT_SPEC_CTRL, type SpecCtrlOptions, specCtrlReport, type XenCmdline } from "./spec_ctrl.js";

/**
 * Callbacks from the core to the layers above it. All are optional and called synchronously on
 * the thread that caused the event; they must not call back into the core re-entrantly.
 */
export interface HypervisorHooks {
  /**
   * evtchn_upcall_pending of (domid, vcpu) went from 0 to 1: the scheduler layer raises SIP_SEIP
   * on that vCPU and wakes it if it is blocked.
   */
  upcall?(domid: number, vcpu: number): void;
  /** A port became pending (whether or not it upcalls): wakes a vCPU in SCHEDOP_poll on it. */
  portPending?(domid: number, vcpu: number, port: number): void;
  /** A domain shut down; `action` is its recorded on_* action (null for suspend/soft_reset). */
  shutdown?(domid: number, reason: number, action: ShutdownAction | null): void;
  /**
   * A device model answered vCPU (domid, vcpu)'s ioreq (or its server went away): for a load,
   * `value` goes to the load's register; the vCPU may run again.
   */
  ioreqDone?(domid: number, vcpu: number, value: number): void;
  /** A destroyed domain's last frame went back to the allocator; its domid is free again. */
  domainReleased?(domid: number): void;
  /**
   * VCPUOP_up / VCPUOP_down changed a vCPU's online state: the scheduling layer loads its start
   * context (first up) and makes it runnable, or takes it off its pCPU for good.
   */
  vcpuOnline?(domid: number, vcpu: number, online: boolean): void;
}

export interface HypervisorOptions {
  readonly memory: MachineMemory;
  readonly allocator: FrameAllocator;
  readonly hooks?: HypervisorHooks;
  /** Size of the hypervisor console ring read by CONSOLEIO_read / `xl dmesg` (default 16 KiB). */
  readonly consoleRingBytes?: number;
}

/**
 * The core's root object (Xen's globals): host memory, the domain table, the console ring, the
 * hooks into the scheduler/toolstack layers, and who handles global VIRQs.
 */
export class Hypervisor {
  readonly memory: MachineMemory;
  readonly allocator: FrameAllocator;
  readonly domains: DomainTable;
  readonly consoleRing: ByteRing;
  /** The hypercall operations, shared by the guest ABI decoder and TypeScript domains' ports. */
  readonly hypercalls: HypercallSemantics;
  /** Device models' IOREQ servers (dm_op). */
  readonly ioreq: IoreqServers;
  /** Host devices that can be passed through to domains, behind the host IOMMU. */
  readonly passthrough: Passthrough;
  hooks: HypervisorHooks;
  /**
   * The scheduling layer's control interface for domctl/sysctl (pause, affinity, scheduler
   * parameters, cpupools). Ops that need it are -ENOSYS while it is unset.
   */
  control?: ControlHooks;
  /** The command line it was booted with (XENVER_commandline; `xl info`'s xen_commandline). */
  commandLine = "";
  /** Its `spec-ctrl=` policy: what every pCPU applies on a switch between domains. */
  specCtrl: SpecCtrlOptions = DEFAULT_SPEC_CTRL;
  /** `dom0-cpuid=`: speculation features shown (true) or hidden (false) from the hardware domain. */
  dom0Cpuid: ReadonlyMap<string, boolean> = new Map();
  /** Per global VIRQ: the domid it is delivered to (Xen's set_global_virq_handler), -1 = default. */
  private readonly virqHandler = new Int32Array(NR_VIRQS).fill(-1);

  constructor(opts: HypervisorOptions) {
    this.memory = opts.memory;
    this.allocator = opts.allocator;
    this.hooks = opts.hooks ?? {};
    this.consoleRing = new ByteRing(opts.consoleRingBytes ?? 16 * 1024);
    this.domains = new DomainTable(this);
    this.hypercalls = new HypercallSemantics(this);
    this.ioreq = new IoreqServers(this);
    this.passthrough = new Passthrough(this);
  }

  /** Routes a global VIRQ to `domid` (XEN_DOMCTL_set_virq_handler). */
  setGlobalVirqHandler(virq: number, domid: number): void {
    if (Number.isInteger(virq) && virq >= 0 && virq < NR_VIRQS) this.virqHandler[virq] = domid;
  }

  /** The domain that receives global `virq`: the configured one, else the hardware domain, else domain 0. */
  globalVirqHandler(virq: number): Domain | undefined {
    const chosen = virq >= 0 && virq < NR_VIRQS ? this.virqHandler[virq]! : -1;
    if (chosen >= 0) return this.domains.get(chosen);
    return this.domains.list().find((d) => d.flags.hardware) ?? this.domains.get(0);
  }

  /**
   * System time in ns (Xen's NOW()): what guest timers are set against. The scheduling layer
   * replaces it with its clock (host or virtual); time CSR ticks × 100 = system time.
   */
  now: () => number = () => Math.round(performance.now() * 1e6);

  /**
   * Boot: takes the parsed command line as the policy and prints the speculation summary to the
   * console ring, as Xen does at boot (`xl dmesg`).
   */
  applyCommandLine(line: string, parsed: XenCmdline): void {
    this.commandLine = line;
    this.specCtrl = parsed.specCtrl;
    this.dom0Cpuid = parsed.dom0Cpuid;
    this.log(`Command line: ${line}`);
    for (const l of specCtrlReport(parsed)) this.log(l);
  }

  /** A line for the hypervisor console ring (Xen's printk). */
  log(text: string): void {
    this.consoleRing.write(new TextEncoder().encode(`(XEN) ${text}\n`));
  }
}
