/**
 * Facts from xen/include/public/xen.h, sched.h, version.h, features.h and vcpu.h (Xen 4.17),
 * see shared/reference/xen-abi.md §0–§1. Only the names this package uses are listed.
 */

/** `__HYPERVISOR_*` hypercall numbers (the value a guest puts in a7). */
export const Hypercall = {
  memory_op: 12,
  xen_version: 17,
  console_io: 18,
  grant_table_op: 20,
  vcpu_op: 24,
  sched_op: 29,
  event_channel_op: 32,
  hvm_op: 34,
  sysctl: 35,
  domctl: 36,
} as const;

/** Domain ids (§0.5). Ids at or above DOMID_FIRST_RESERVED never name a real domain. */
export const DOMID_FIRST_RESERVED = 0x7ff0;
export const DOMID_SELF = 0x7ff0;
export const DOMID_IO = 0x7ff1;
export const DOMID_XEN = 0x7ff2;
export const DOMID_COW = 0x7ff3;
export const DOMID_INVALID = 0x7ff4;
export const DOMID_IDLE = 0x7fff;
export const DOMID_MASK = 0x7fff;
/** Highest id a real domain can have. */
export const DOMID_MAX = DOMID_FIRST_RESERVED - 1;

/** `VIRQ_*` (§3.2). */
export const Virq = {
  TIMER: 0,
  DEBUG: 1,
  CONSOLE: 2,
  DOM_EXC: 3,
  TBUF: 4,
  DEBUGGER: 6,
  XENOPROF: 7,
  CON_RING: 8,
  PCPU_STATE: 9,
  MEM_EVENT: 10,
  ARGO: 11,
  ENOMEM: 12,
  XENPMU: 13,
} as const;
export const NR_VIRQS = 24;

/** Per-vCPU VIRQs: one port per (vcpu, virq), bound on that vCPU for good. All others are global. */
export function virqIsPerVcpu(virq: number): boolean {
  return virq === Virq.TIMER || virq === Virq.DEBUG || virq === Virq.XENOPROF || virq === Virq.XENPMU;
}

/** `SCHEDOP_*` (§1.4). */
export const SchedOp = {
  yield: 0,
  block: 1,
  shutdown: 2,
  poll: 3,
  remote_shutdown: 4,
  shutdown_code: 5,
  watchdog: 6,
  pin_override: 7,
} as const;

/** `SHUTDOWN_*` reasons (§1.4). */
export const Shutdown = {
  poweroff: 0,
  reboot: 1,
  suspend: 2,
  crash: 3,
  watchdog: 4,
  soft_reset: 5,
} as const;
export const SHUTDOWN_MAX = Shutdown.soft_reset;

/** `CONSOLEIO_*` (§1.6). */
export const ConsoleIo = { write: 0, read: 1 } as const;

/** `XENVER_*` (§1.8). */
export const XenVer = {
  version: 0,
  extraversion: 1,
  compile_info: 2,
  capabilities: 3,
  changeset: 4,
  platform_parameters: 5,
  get_features: 6,
  pagesize: 7,
  guest_handle: 8,
  commandline: 9,
  build_id: 10,
} as const;

/** The Xen release we model: XENVER_version returns (major << 16) | minor. */
export const XEN_MAJOR = 4;
export const XEN_MINOR = 17;
export const XEN_EXTRAVERSION = ".0";

/** `XENFEAT_*` bit numbers (§0.7). */
export const XenFeat = {
  writable_page_tables: 0,
  auto_translated_physmap: 2,
  hvm_callback_vector: 8,
  dom0: 11,
  not_direct_mapped: 16,
  direct_mapped: 17,
} as const;
export const XENFEAT_NR_SUBMAPS = 1;

/** `VCPUOP_*` (§1.7); is_up, the single-shot timer and register_vcpu_info are served. */
/** The most ports one SCHEDOP_poll may name (Xen's limit). */
export const SCHED_POLL_MAX_PORTS = 128;

export const VcpuOp = {
  initialise: 0,
  up: 1,
  down: 2,
  is_up: 3,
  set_singleshot_timer: 8,
  stop_singleshot_timer: 9,
  register_vcpu_info: 10,
} as const;
/** VCPU_SSHOTTMR_future: fail with -ETIME instead of firing at once if the deadline has passed. */
export const VCPU_SSHOTTMR_FUTURE = 1;

/** `XEN_DOMINF_*` bits of getdomaininfo's flags word (§1.9). */
export const DomInf = {
  dying: 1 << 0,
  hvm_guest: 1 << 1,
  shutdown: 1 << 2,
  paused: 1 << 3,
  blocked: 1 << 4,
  running: 1 << 5,
  debugged: 1 << 6,
  xs_domain: 1 << 7,
  hap: 1 << 8,
} as const;
export const XEN_DOMINF_SHUTDOWNSHIFT = 16;
export const XEN_DOMINF_SHUTDOWNMASK = 255;

/** `HVMOP_*` (hvm_op.h): the two Arm guests have. */
export const HvmOp = { set_param: 0, get_param: 1 } as const;

/** `HVM_PARAM_*` (hvm/params.h, §0.8) that PV-on-HVM/Arm guests use. */
export const HvmParam = {
  CALLBACK_IRQ: 0,
  STORE_PFN: 1,
  STORE_EVTCHN: 2,
  CONSOLE_PFN: 17,
  CONSOLE_EVTCHN: 18,
} as const;
/** Number of HVM params in Xen 4.17 (the last one is HVM_PARAM_MCA_CAP = 38). */
export const HVM_NR_PARAMS = 39;

// ---------------------------------------------------------------------------------------------
// Control-domain interfaces: domctl.h and sysctl.h (§1.9, §1.10)
// ---------------------------------------------------------------------------------------------

/** XEN_DOMCTL_INTERFACE_VERSION of Xen 4.17; any other value in xen_domctl is -EACCES. */
export const XEN_DOMCTL_INTERFACE_VERSION = 0x15;
/** XEN_SYSCTL_INTERFACE_VERSION of Xen 4.17; any other value in xen_sysctl is -EACCES. */
export const XEN_SYSCTL_INTERFACE_VERSION = 0x15;

/** `XEN_DOMCTL_*` commands (the ones Xenon serves, and a few it names to refuse). */
export const DomctlCmd = {
  createdomain: 1,
  destroydomain: 2,
  pausedomain: 3,
  unpausedomain: 4,
  getdomaininfo: 5,
  setvcpuaffinity: 9,
  shadow_op: 10,
  max_mem: 11,
  setvcpucontext: 12,
  getvcpucontext: 13,
  getvcpuinfo: 14,
  max_vcpus: 15,
  scheduler_op: 16,
  getvcpuaffinity: 25,
  resumedomain: 27,
  set_virq_handler: 66,
  get_paging_mempool_size: 85,
  set_paging_mempool_size: 86,
} as const;

/** `XEN_DOMCTL_CDF_*` bits of xen_domctl_createdomain.flags. */
export const DomctlCdf = {
  hvm: 1 << 0,
  hap: 1 << 1,
  s3_integrity: 1 << 2,
  oos_off: 1 << 3,
  xs_domain: 1 << 4,
  iommu: 1 << 5,
  nested_virt: 1 << 6,
  vpmu: 1 << 7,
} as const;
/** createdomain.grant_opts: the low 4 bits are the highest grant-table version (Xenon: 1). */
export const XEN_DOMCTL_GRANT_VERSION_MASK = 0xf;

/** `XEN_VCPUAFFINITY_*` flags of xen_domctl_vcpuaffinity. */
export const VcpuAffinity = { hard: 1 << 0, soft: 1 << 1, force: 1 << 2 } as const;

/** `XEN_DOMCTL_SCHEDOP_*` (scheduler_op.cmd). */
export const DomctlSchedOp = { putinfo: 0, getinfo: 1, putvcpuinfo: 2, getvcpuinfo: 3 } as const;
/** xen_domctl_sched_rtds.flags bit 0: the vCPU may run beyond its budget. */
export const XEN_DOMCTL_SCHEDRT_EXTRA = 1;

/** `XEN_SYSCTL_*` commands. */
export const SysctlCmd = {
  readconsole: 1,
  physinfo: 3,
  sched_id: 4,
  getdomaininfolist: 6,
  cpupool_op: 18,
  scheduler_op: 19,
} as const;

/** `XEN_SYSCTL_CPUPOOL_OP_*` (cpupool_op.op). */
export const CpupoolOp = {
  create: 1,
  destroy: 2,
  info: 3,
  addcpu: 4,
  rmcpu: 5,
  movedomain: 6,
  freeinfo: 7,
} as const;
/** XEN_SYSCTL_CPUPOOL_PAR_ANY: "pick one" for a pool id (create) or a pCPU (addcpu/rmcpu). */
export const XEN_SYSCTL_CPUPOOL_PAR_ANY = 0xffffffff;

/** `XEN_SYSCTL_SCHEDOP_*` (pool-wide scheduler_op.cmd). */
export const SysctlSchedOp = { putinfo: 0, getinfo: 1 } as const;

/** `XEN_SYSCTL_PHYSCAP_*` bits of physinfo.capabilities. */
export const PhysCap = {
  hvm: 1 << 0,
  pv: 1 << 1,
  directio: 1 << 2,
  hap: 1 << 3,
  shadow: 1 << 4,
  iommu_hap_pt_share: 1 << 5,
  vmtrace: 1 << 6,
  vpmu: 1 << 7,
  gnttab_v1: 1 << 8,
  gnttab_v2: 1 << 9,
} as const;
