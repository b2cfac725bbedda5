/**
 * The toolstack's data types (libxl_types.idl's analogues), plain data so they cross the
 * management endpoint unchanged.
 */
import type { ShutdownAction } from "@xenon/hypervisor";

/** What `xl create` builds from an xl.cfg (libxl_domain_config). */
export interface DomainConfig {
  readonly name: string;
  /** Initial RAM in MiB (xl.cfg `memory`). */
  readonly memoryMiB: number;
  /** Maximum RAM in MiB (`maxmem`, default = memory). */
  readonly maxmemMiB: number;
  /** vCPUs online at boot (`vcpus`). */
  readonly vcpus: number;
  /** vCPUs that exist (`maxvcpus`, default = vcpus). */
  readonly maxvcpus: number;
  /** Hard affinity as CPULIST strings: one for every vCPU, or one per vCPU (`cpus`). */
  readonly cpus?: readonly string[];
  /** Soft affinity, same form (`cpus_soft`). */
  readonly cpusSoft?: readonly string[];
  /** cpupool name (`pool`, default Pool-0). */
  readonly pool?: string;
  /** Kernel image: a path on the host, or the name of a built guest image. */
  readonly kernel: string;
  readonly cmdline: string;
  readonly onPoweroff: ShutdownAction;
  readonly onReboot: ShutdownAction;
  readonly onCrash: ShutdownAction;
  readonly onWatchdog: ShutdownAction;
  readonly sched: SchedConfig;
  /** Device specs as written (`disk`, `vif`, `virtio`). */
  readonly disks: readonly string[];
  readonly vifs: readonly string[];
  readonly virtio: readonly string[];
}

export interface SchedConfig {
  /** credit2 weight (`cpu_weight`). */
  readonly weight?: number;
  /** credit2 cap, percent (`cap`). */
  readonly cap?: number;
  /** RTDS period and budget, µs (`period`; `budget` is Xenon's, Xen 4.17 has no xl.cfg key for it). */
  readonly periodUs?: number;
  readonly budgetUs?: number;
  readonly extratime?: boolean;
}

/** One row of `xl list` (libxl_dominfo). */
export interface DomainListEntry {
  readonly domid: number;
  readonly name: string;
  readonly memKiB: number;
  readonly maxMemKiB: number;
  readonly vcpus: number;
  readonly running: boolean;
  readonly blocked: boolean;
  readonly paused: boolean;
  readonly shutdown: boolean;
  /** SHUTDOWN_* reason when shut down, else -1. */
  readonly shutdownReason: number;
  readonly dying: boolean;
  readonly cpuTimeNs: number;
  /** cpupool id, or -1 when the scheduling layer does not know the domain. */
  readonly cpupool: number;
  /**
   * Speculation controls a pCPU loads on a switch to the domain (modelled): its MSR_SPEC_CTRL
   * (IBRS 0x1, STIBP 0x2, SSBD 0x4) and VIRT_SPEC_CTRL.SSBD.
   */
  readonly specCtrl: { readonly msrSpecCtrl: number; readonly virtSsbd: boolean };
  /**
   * Privileged (Xen's is_privileged): Domain-0, and a guest's driver domain (`<name>-dd`) when one
   * of the guest's devices has grant_usage=0 (it foreign-maps the guest's memory).
   */
  readonly privileged: boolean;
}

/** One row of `xl vcpu-list` (libxl_vcpuinfo). */
export interface VcpuListEntry {
  readonly domid: number;
  readonly name: string;
  readonly vcpu: number;
  readonly online: boolean;
  readonly running: boolean;
  readonly blocked: boolean;
  readonly cpu: number;
  readonly cpuTimeNs: number;
  readonly hard: readonly number[];
  readonly soft: readonly number[];
}

export interface CpupoolEntry {
  readonly poolId: number;
  readonly name: string;
  readonly sched: string;
  readonly cpus: readonly number[];
  readonly nDom: number;
}

/** `xl info` (libxl_physinfo + libxl_version_info). */
export interface HostInfo {
  readonly host: string;
  readonly nrCpus: number;
  readonly maxCpuId: number;
  readonly cpuKhz: number;
  readonly totalMemMiB: number;
  readonly freeMemMiB: number;
  readonly xenMajor: number;
  readonly xenMinor: number;
  readonly xenExtra: string;
  readonly xenCaps: string;
  readonly scheduler: string;
  readonly uptimeS: number;
  /** XENVER_commandline: the hypervisor's command line. */
  readonly xenCommandline: string;
}

/** Per-domain scheduler parameters as `xl sched-*` shows them. */
export interface DomainSchedEntry {
  readonly domid: number;
  readonly name: string;
  readonly pool: string;
  readonly params:
    | { readonly kind: "credit2"; readonly weight: number; readonly cap: number }
    | {
        readonly kind: "rtds";
        readonly vcpus: readonly { periodUs: number; budgetUs: number; extratime: boolean }[];
      }
    | { readonly kind: "null" };
}
