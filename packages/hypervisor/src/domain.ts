import type { MachineMemory } from "@xenon/hw";
import type { DomainConsole } from "./console.js";
import type { DomainPages } from "./domain_pages.js";
import type { EvtchnPortTable } from "./event_channel/port_table.js";
import type { GrantTable } from "./grant_table/grant_table.js";
import type { Maptrack } from "./grant_table/maptrack.js";
import type { Hypervisor } from "./hypervisor.js";
import type { GuestMemory } from "./p2m/guest_access.js";
import type { P2m } from "./p2m/p2m.js";
import type { P2mPool } from "./p2m/pool.js";
import { err } from "./public/errno.js";
import { DomInf, HVM_NR_PARAMS, Shutdown, XEN_DOMINF_SHUTDOWNSHIFT } from "./public/xen.js";
import type { SharedRegion } from "./shared_info.js";
import type { Vcpu } from "./vcpu.js";

/** What the toolstack does when a domain shuts down for a given reason (xl.cfg on_* options). */
export type ShutdownAction =
  | "destroy"
  | "restart"
  | "preserve"
  | "rename-restart"
  | "coredump-destroy"
  | "coredump-restart";

export const SHUTDOWN_ACTIONS: readonly ShutdownAction[] = [
  "destroy",
  "restart",
  "preserve",
  "rename-restart",
  "coredump-destroy",
  "coredump-restart",
];

export interface DomainFlags {
  /** The control domain: may name other domains in hypercalls (Xen's is_privileged). */
  readonly privileged: boolean;
  /** The hardware domain: raw console output, receives global VIRQs by default, XENFEAT_dom0. */
  readonly hardware: boolean;
  /** The XenStore domain (XEN_DOMCTL_CDF_xs_domain). */
  readonly xenstore: boolean;
  /** May use CONSOLEIO_* (dom0less domUs get this). */
  readonly isConsole: boolean;
  /** gfn == mfn for all its RAM (XEN_DOMCTL_CDF_directmap; needs static memory). */
  readonly directMap: boolean;
}

export interface ShutdownActions {
  readonly onPoweroff: ShutdownAction;
  readonly onReboot: ShutdownAction;
  readonly onCrash: ShutdownAction;
  readonly onWatchdog: ShutdownAction;
}

/** Domain creation parameters (the parts of xen_domctl_createdomain + max_mem + paging pool we model). */
export interface DomainCreateConfig {
  /** Ask for this domid (boot-time and dom0less domains); otherwise the next free one is used. */
  readonly domid?: number;
  readonly name?: string;
  readonly maxVcpus: number;
  /** Memory limit in pages; or give maxMemKb. Default: 0 (no RAM until raised). */
  readonly maxPages?: number;
  readonly maxMemKb?: number;
  /** Frames set aside for P2M tables, taken at creation (Arm's paging mempool). */
  readonly p2mPoolPages: number;
  readonly flags?: Partial<DomainFlags>;
  /** Highest event-channel port (default 1023, at most 4095). */
  readonly maxEvtchnPort?: number;
  /** Grant-table frames this domain may grow to (default 64). */
  readonly maxGrantFrames?: number;
  /** Maptrack frames (256 handles each) for grants this domain maps (default 1024). */
  readonly maxMaptrackFrames?: number;
  readonly actions?: Partial<ShutdownActions>;
}

/** xl's defaults for the on_* options. */
export const DEFAULT_SHUTDOWN_ACTIONS: ShutdownActions = {
  onPoweroff: "destroy",
  onReboot: "restart",
  onCrash: "destroy",
  onWatchdog: "destroy",
};

/** What XEN_DOMCTL_getdomaininfo reports. */
export interface DomainInfo {
  readonly domid: number;
  readonly name: string;
  /** XEN_DOMINF_* bits, shutdown reason in bits 16..23. */
  readonly flags: number;
  readonly running: boolean;
  readonly paused: boolean;
  readonly shutdown: boolean;
  readonly dying: boolean;
  /** SHUTDOWN_* reason, or -1 if not shut down. */
  readonly shutdownReason: number;
  readonly totPages: number;
  readonly maxPages: number;
  readonly nrVcpus: number;
  readonly maxVcpuId: number;
  readonly sharedInfoFrame: number;
  readonly p2mPoolPages: number;
  readonly p2mPoolFree: number;
}

/** Everything DomainTable.create built for the domain. */
export interface DomainParts {
  readonly pages: DomainPages;
  readonly p2mPool: P2mPool;
  readonly p2m: P2m;
  readonly guest: GuestMemory;
  readonly sharedInfoMfn: number;
  readonly sharedInfo: SharedRegion;
  readonly vcpus: Vcpu[];
  readonly evtchn: EvtchnPortTable;
  readonly grantTable: GrantTable;
  readonly maptrack: Maptrack;
  readonly console: DomainConsole;
}

/**
 * A domain: its memory (pages, P2M, shared_info), its event-channel and grant state, and its
 * life-cycle state. Created and destroyed only through DomainTable.
 *
 * Life cycle: created paused once (pauseCount 1, the toolstack unpauses after building it) →
 * running → shutdown (reason recorded, vCPUs stop; the toolstack applies the recorded action) →
 * dying (destroy: resources returned) → gone (removed from the table once no other domain holds
 * a reference to its frames).
 */
export class Domain {
  readonly flags: DomainFlags;
  readonly actions: ShutdownActions;
  readonly pages: DomainPages;
  readonly p2mPool: P2mPool;
  readonly p2m: P2m;
  /** The core's checked accessors for this domain's memory. */
  readonly guest: GuestMemory;
  readonly sharedInfoMfn: number;
  /** gfn where the guest mapped shared_info (XENMAPSPACE_shared_info), or -1. */
  sharedInfoGfn = -1;
  readonly sharedInfo: SharedRegion;
  readonly vcpus: Vcpu[];
  readonly evtchn: EvtchnPortTable;
  readonly grantTable: GrantTable;
  readonly maptrack: Maptrack;
  readonly console: DomainConsole;
  readonly name: string;
  readonly memory: MachineMemory;
  /**
   * HVM params (HVMOP_get_param/set_param): how a guest finds XenStore and its PV console
   * (STORE_PFN/EVTCHN, CONSOLE_PFN/EVTCHN). Set by the toolstack; all start at 0.
   */
  readonly hvmParams: number[] = new Array<number>(HVM_NR_PARAMS).fill(0);
  /**
   * The modelled MSR_SPEC_CTRL | VIRT_SPEC_CTRL word the pCPUs run this domain with (spec_ctrl.ts),
   * set by the toolstack before the domain first runs.
   */
  specCtrl = 0;
  /** gfn -> another domain's frame mapped there (XENMAPSPACE_gmfn_foreign), with its owner. */
  readonly foreignMaps = new Map<number, { readonly owner: Domain; readonly mfn: number }>();
  /**
   * handle -> another domain's frame a TypeScript domain holds as a view (mapForeignView: a
   * privcmd foreign map without a physmap), with its owner, gfn and access.
   */
  readonly foreignViews = new Map<
    number,
    { readonly owner: Domain; readonly mfn: number; readonly gfn: number; readonly writable: boolean }
  >();
  /** Next foreign view handle (never reused while the domain lives). */
  nextForeignView = 1;

  private pauseCount = 1;
  private shutdownReason = -1;
  /** SCHEDOP_shutdown_code latches a reason for a later shutdown (e.g. suspend then crash). */
  private latchedCode = -1;
  private isDying = false;

  constructor(
    readonly domid: number,
    /** The hypervisor this domain belongs to (the hypercall dispatcher starts from a Domain). */
    readonly hv: Hypervisor,
    config: DomainCreateConfig,
    parts: DomainParts,
  ) {
    this.memory = hv.memory;
    this.name = config.name ?? `domain-${domid}`;
    this.flags = {
      privileged: config.flags?.privileged ?? false,
      hardware: config.flags?.hardware ?? false,
      xenstore: config.flags?.xenstore ?? false,
      isConsole: config.flags?.isConsole ?? false,
      directMap: config.flags?.directMap ?? false,
    };
    this.actions = { ...DEFAULT_SHUTDOWN_ACTIONS, ...config.actions };
    this.pages = parts.pages;
    this.p2mPool = parts.p2mPool;
    this.p2m = parts.p2m;
    this.guest = parts.guest;
    this.sharedInfoMfn = parts.sharedInfoMfn;
    this.sharedInfo = parts.sharedInfo;
    this.vcpus = parts.vcpus;
    this.evtchn = parts.evtchn;
    this.grantTable = parts.grantTable;
    this.maptrack = parts.maptrack;
    this.console = parts.console;
  }

  get maxVcpus(): number {
    return this.vcpus.length;
  }

  vcpu(id: number): Vcpu | undefined {
    return Number.isInteger(id) && id >= 0 ? this.vcpus[id] : undefined;
  }

  get paused(): boolean {
    return this.pauseCount > 0;
  }

  get pauseDepth(): number {
    return this.pauseCount;
  }

  get isShutdown(): boolean {
    return this.shutdownReason >= 0;
  }

  /** SHUTDOWN_* reason, or -1. */
  get shutdownCode(): number {
    return this.shutdownReason;
  }

  get dying(): boolean {
    return this.isDying;
  }

  /** Counted pause (XEN_DOMCTL_pausedomain). 0 or -EINVAL (dying) / -EOVERFLOW. */
  pause(): number {
    if (this.isDying) return err("EINVAL");
    if (this.pauseCount >= 255) return err("EOVERFLOW");
    this.pauseCount++;
    return 0;
  }

  /** Undoes one pause. -EINVAL if the domain is not paused. */
  unpause(): number {
    if (this.isDying || this.pauseCount === 0) return err("EINVAL");
    this.pauseCount--;
    return 0;
  }

  /**
   * Records a shutdown (Xen's domain_shutdown). A latched SCHEDOP_shutdown_code wins over the
   * reason given here, as in Xen. Returns false if the domain was already shut down or dying.
   */
  markShutdown(reason: number): boolean {
    if (this.isDying || this.shutdownReason >= 0) return false;
    this.shutdownReason = this.latchedCode >= 0 ? this.latchedCode : reason;
    return true;
  }

  latchShutdownCode(reason: number): void {
    this.latchedCode = reason;
  }

  /** Clears a shutdown (XEN_DOMCTL_resumedomain after a cancelled suspend). */
  resume(): number {
    if (this.isDying || this.shutdownReason < 0) return err("EINVAL");
    this.shutdownReason = -1;
    this.latchedCode = -1;
    return 0;
  }

  /** The action the toolstack should take for the recorded shutdown reason (null: none, e.g. suspend). */
  shutdownAction(): ShutdownAction | null {
    switch (this.shutdownReason) {
      case Shutdown.poweroff:
        return this.actions.onPoweroff;
      case Shutdown.reboot:
        return this.actions.onReboot;
      case Shutdown.crash:
        return this.actions.onCrash;
      case Shutdown.watchdog:
        return this.actions.onWatchdog;
      default:
        return null;
    }
  }

  /** Marks the domain dying: from now on no new mapping, binding or allocation may involve it. */
  markDying(): void {
    this.isDying = true;
  }

  info(): DomainInfo {
    const shutdown = this.isShutdown;
    const running = !this.paused && !shutdown && !this.isDying;
    let flags = DomInf.hvm_guest | DomInf.hap;
    if (this.isDying) flags |= DomInf.dying;
    if (shutdown) flags |= DomInf.shutdown | ((this.shutdownReason & 0xff) << XEN_DOMINF_SHUTDOWNSHIFT);
    if (this.paused) flags |= DomInf.paused;
    if (running) flags |= DomInf.running;
    if (this.flags.xenstore) flags |= DomInf.xs_domain;
    return {
      domid: this.domid,
      name: this.name,
      flags: flags >>> 0,
      running,
      paused: this.paused,
      shutdown,
      dying: this.isDying,
      shutdownReason: this.shutdownReason,
      totPages: this.pages.totPages,
      maxPages: this.pages.maxPages,
      nrVcpus: this.vcpus.length,
      maxVcpuId: this.vcpus.length - 1,
      sharedInfoFrame: this.sharedInfoMfn,
      p2mPoolPages: this.p2mPool.totalPages,
      p2mPoolFree: this.p2mPool.freePages,
    };
  }
}
