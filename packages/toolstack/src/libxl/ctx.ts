/**
 * The toolstack's context (libxl_ctx): what it knows about the host beyond what hypercalls tell
 * it — domain names and configs (Xen keeps those in XenStore), cpupool names, console logs — and
 * who it acts as: the control domain, whose privilege every domctl/sysctl is checked against.
 */
import type { DriverDomain, DriverDomainXenstore, VifSwitch } from "@xenon/backends";
import type { Domain, Hypervisor, Machine } from "@xenon/hypervisor";
import { ConsoleLog } from "./console.js";
import type { DomainConfig } from "./types.js";

/** A cpupool the host was started with: its id and the name the toolstack knows it by. */
export interface HostPool {
  readonly id: number;
  readonly name: string;
}

export interface DomainRecord {
  readonly domid: number;
  readonly name: string;
  /** The config it was created from; absent for domains the toolstack did not create (boot). */
  readonly config?: DomainConfig;
  readonly console: ConsoleLog;
  /** Destroy was asked for: no on_* restart applies. */
  destroyRequested: boolean;
  /**
   * Stops what serves the domain (its driver domain) once it has shut down or is destroyed:
   * idempotent, as both may happen.
   */
  onRelease?: () => void;
  /** The driver domains serving its virtio devices (they move with it on save and migration). */
  driverDomains?: DriverDomain[];
}

export type DomainEvent =
  | { readonly type: "created"; readonly domid: number; readonly name: string }
  | {
      readonly type: "shutdown";
      readonly domid: number;
      readonly name: string;
      readonly reason: number;
      readonly action: string | null;
    }
  | { readonly type: "destroyed"; readonly domid: number; readonly name: string };

export interface LibxlCtxOptions {
  readonly hv: Hypervisor;
  readonly machine: Machine;
  readonly pools: readonly HostPool[];
  /** The domain the toolstack's hypercalls are made as (privileged; 0 = Domain-0). */
  readonly controlDomid: number;
  /** Reported by `xl info` as host. */
  readonly hostName?: string;
  /** XenStore: gives a new domain its ring and introduces it (before it runs). */
  readonly xenstore?: {
    introduce(d: Domain, name: string): Promise<void>;
    /** Driver domains' device nodes and connections (libxl's virtio device code). */
    readonly driverDomains?: DriverDomainXenstore;
  };
  /** Also receives every created domain's console output (`xenon host --console`). */
  readonly consoleTee?: (name: string, bytes: Uint8Array) => void;
  /** The host's switch (xenbr0) that `vif=` devices plug into. */
  readonly vswitch?: VifSwitch;
}

export class LibxlCtx {
  readonly hv: Hypervisor;
  readonly machine: Machine;
  readonly self: number;
  readonly hostName: string;
  readonly xenstore: LibxlCtxOptions["xenstore"];
  readonly consoleTee: LibxlCtxOptions["consoleTee"];
  readonly vswitch: LibxlCtxOptions["vswitch"];
  readonly startedAt = Date.now();
  /** cpupool id -> name (Xen: /local/pool/<id>/name). */
  readonly poolNames = new Map<number, string>();
  readonly domains = new Map<number, DomainRecord>();
  private readonly listeners = new Set<(e: DomainEvent) => void>();

  constructor(opts: LibxlCtxOptions) {
    this.hv = opts.hv;
    this.machine = opts.machine;
    this.self = opts.controlDomid;
    this.hostName = opts.hostName ?? "xenon";
    this.xenstore = opts.xenstore;
    this.consoleTee = opts.consoleTee;
    this.vswitch = opts.vswitch;
    for (const p of opts.pools) this.poolNames.set(p.id, p.name);
  }

  /** The hypercall operations, called as the control domain. */
  get hc() {
    return this.hv.hypercalls;
  }

  onEvent(l: (e: DomainEvent) => void): () => void {
    this.listeners.add(l);
    return () => {
      this.listeners.delete(l);
    };
  }

  emit(e: DomainEvent): void {
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        // a listener's failure (a closed connection) is its own business
      }
    }
  }

  /** Starts tracking a domain: its name and a console log fed from the core's console sink. */
  track(domid: number, name: string, config?: DomainConfig, tee?: (bytes: Uint8Array) => void): DomainRecord {
    const rec: DomainRecord = {
      domid,
      name,
      console: new ConsoleLog(),
      destroyRequested: false,
      ...(config !== undefined ? { config } : {}),
    };
    this.domains.set(domid, rec);
    this.hv.domains.get(domid)?.console.setSink((bytes) => {
      rec.console.push(bytes);
      tee?.(bytes);
    });
    return rec;
  }

  /** Every driver domain serving a tracked domain's devices. */
  driverDomains(): DriverDomain[] {
    return [...this.domains.values()].flatMap((r) => r.driverDomains ?? []);
  }

  nameOf(domid: number): string {
    return this.domains.get(domid)?.name ?? this.hv.domains.get(domid)?.name ?? `Domain-${domid}`;
  }
}
