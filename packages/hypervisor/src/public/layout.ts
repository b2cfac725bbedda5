/**
 * Every structure shared with a guest, laid out once, with named offsets and sizes. These follow
 * Xen's Arm ABI for a 32-bit guest (shared/reference/xen-abi.md §0.1): little-endian,
 * xen_ulong_t/xen_pfn_t are 64-bit, 64-bit fields are 8-aligned, a XEN_GUEST_HANDLE inside a
 * struct is 8 bytes (the upper half must be zero on RV32). ABI.md restates these tables; the byte
 * tests in layout.test.ts check them against hand-written literals.
 *
 * u64 fields decode to a JS number (lo + hi * 2^32). That is exact below 2^53, and every value we
 * accept is below 2^32, so a larger (even imprecise) number is simply rejected by the caller.
 */

export type FieldType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "u64";

export interface FieldSpec {
  readonly offset: number;
  readonly type: FieldType;
}

export interface StructLayout<F extends string = string> {
  readonly name: string;
  readonly size: number;
  readonly fields: { readonly [K in F]: FieldSpec };
}

const FIELD_SIZE: Record<FieldType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, u64: 8 };

export function fieldSize(type: FieldType): number {
  return FIELD_SIZE[type];
}

/** Declares a layout and checks (once, at load) that every field is naturally aligned and inside it. */
export function struct<F extends string>(
  name: string,
  size: number,
  fields: { readonly [K in F]: readonly [number, FieldType] },
): StructLayout<F> {
  const out = {} as { [K in F]: FieldSpec };
  for (const key of Object.keys(fields) as F[]) {
    const [offset, type] = fields[key];
    const n = FIELD_SIZE[type];
    if (offset % n !== 0 || offset + n > size) throw new Error(`layout ${name}.${key}: bad offset ${offset}`);
    out[key] = { offset, type };
  }
  return Object.freeze({ name, size, fields: Object.freeze(out) });
}

/** Reads one field at `base + field.offset` of a little-endian byte buffer. */
export function readField(bytes: Uint8Array, base: number, f: FieldSpec): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = base + f.offset;
  switch (f.type) {
    case "u8":
      return dv.getUint8(o);
    case "i8":
      return dv.getInt8(o);
    case "u16":
      return dv.getUint16(o, true);
    case "i16":
      return dv.getInt16(o, true);
    case "u32":
      return dv.getUint32(o, true);
    case "i32":
      return dv.getInt32(o, true);
    case "u64":
      return dv.getUint32(o, true) + dv.getUint32(o + 4, true) * 2 ** 32;
  }
}

/** Writes one field; the value is truncated to the field's width (two's complement for negatives). */
export function writeField(bytes: Uint8Array, base: number, f: FieldSpec, value: number): void {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const o = base + f.offset;
  switch (f.type) {
    case "u8":
    case "i8":
      dv.setUint8(o, value & 0xff);
      return;
    case "u16":
    case "i16":
      dv.setUint16(o, value & 0xffff, true);
      return;
    case "u32":
    case "i32":
      dv.setUint32(o, value >>> 0, true);
      return;
    case "u64": {
      const v = Math.max(0, value);
      dv.setUint32(o, (v % 2 ** 32) >>> 0, true);
      dv.setUint32(o + 4, Math.floor(v / 2 ** 32) >>> 0, true);
      return;
    }
  }
}

export type StructValues<F extends string> = { [K in F]: number };

/** Decodes a whole struct from `bytes` at `base`. */
export function decode<F extends string>(layout: StructLayout<F>, bytes: Uint8Array, base = 0): StructValues<F> {
  const out = {} as StructValues<F>;
  for (const key of Object.keys(layout.fields) as F[]) out[key] = readField(bytes, base, layout.fields[key]);
  return out;
}

/** Encodes the given fields into a fresh zeroed buffer of the struct's size (or into `into` at `base`). */
export function encode<F extends string>(
  layout: StructLayout<F>,
  values: Partial<StructValues<F>>,
  into?: Uint8Array,
  base = 0,
): Uint8Array {
  const bytes = into ?? new Uint8Array(layout.size);
  for (const key of Object.keys(values) as F[]) {
    const v = values[key];
    if (v !== undefined) writeField(bytes, base, layout.fields[key], v);
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// shared_info / vcpu_info (xen.h, Arm flavour: XEN_LEGACY_MAX_VCPUS = 1, empty arch parts)
// ---------------------------------------------------------------------------------------------

export const VcpuTimeInfo = struct("vcpu_time_info", 32, {
  version: [0, "u32"],
  pad0: [4, "u32"],
  tsc_timestamp: [8, "u64"],
  system_time: [16, "u64"],
  tsc_to_system_mul: [24, "u32"],
  tsc_shift: [28, "i8"],
  flags: [29, "u8"],
});

export const VcpuInfo = struct("vcpu_info", 48, {
  evtchn_upcall_pending: [0, "u8"],
  evtchn_upcall_mask: [1, "u8"],
  evtchn_pending_sel: [8, "u64"],
  /** `arch` is empty on Arm and here, so `time` also starts at 16. */
  time_version: [16, "u32"],
  time_tsc_timestamp: [24, "u64"],
  time_system_time: [32, "u64"],
  time_tsc_to_system_mul: [40, "u32"],
  time_tsc_shift: [44, "i8"],
  time_flags: [45, "u8"],
});
export const VCPU_INFO_TIME_OFFSET = 16;

/** Number of vcpu_info slots inside shared_info; other vCPUs use VCPUOP_register_vcpu_info. */
export const XEN_LEGACY_MAX_VCPUS = 1;
/** evtchn_pending[] / evtchn_mask[]: 64 words of 64 bits each. */
export const EVTCHN_WORDS = 64;
export const EVTCHN_WORD_BYTES = 8;

/** Array fields (vcpu_info[1], evtchn_pending[64], evtchn_mask[64]) are named by their first element. */
export const SharedInfo = struct("shared_info", 1088, {
  vcpu_info0: [0, "u8"],
  evtchn_pending: [48, "u64"],
  evtchn_mask: [560, "u64"],
  wc_version: [1072, "u32"],
  wc_sec: [1076, "u32"],
  wc_nsec: [1080, "u32"],
  wc_sec_hi: [1084, "u32"],
});
export const SHARED_INFO_VCPU_INFO_OFFSET = 0;
export const SHARED_INFO_EVTCHN_PENDING_OFFSET = 48;
export const SHARED_INFO_EVTCHN_MASK_OFFSET = 560;

// ---------------------------------------------------------------------------------------------
// grant tables (grant_table.h)
// ---------------------------------------------------------------------------------------------

export const GrantEntryV1 = struct("grant_entry_v1", 8, {
  flags: [0, "u16"],
  domid: [2, "u16"],
  frame: [4, "u32"],
});

export const GnttabMapGrantRef = struct("gnttab_map_grant_ref", 32, {
  host_addr: [0, "u64"],
  flags: [8, "u32"],
  ref: [12, "u32"],
  dom: [16, "u16"],
  status: [18, "i16"],
  handle: [20, "u32"],
  dev_bus_addr: [24, "u64"],
});

export const GnttabUnmapGrantRef = struct("gnttab_unmap_grant_ref", 24, {
  host_addr: [0, "u64"],
  dev_bus_addr: [8, "u64"],
  handle: [16, "u32"],
  status: [20, "i16"],
});

/** Two gnttab_copy_ptr (16 bytes: union{ref u32 | gmfn u64} @0, domid @8, offset @10), then len/flags/status. */
export const GnttabCopy = struct("gnttab_copy", 40, {
  source_ref: [0, "u32"],
  source_gmfn: [0, "u64"],
  source_domid: [8, "u16"],
  source_offset: [10, "u16"],
  dest_ref: [16, "u32"],
  dest_gmfn: [16, "u64"],
  dest_domid: [24, "u16"],
  dest_offset: [26, "u16"],
  len: [32, "u16"],
  flags: [34, "u16"],
  status: [36, "i16"],
});

export const GnttabSetupTable = struct("gnttab_setup_table", 24, {
  dom: [0, "u16"],
  nr_frames: [4, "u32"],
  status: [8, "i16"],
  frame_list: [16, "u64"],
});

export const GnttabQuerySize = struct("gnttab_query_size", 16, {
  dom: [0, "u16"],
  nr_frames: [4, "u32"],
  max_nr_frames: [8, "u32"],
  status: [12, "i16"],
});

export const GnttabSetVersion = struct("gnttab_set_version", 4, { version: [0, "u32"] });

export const GnttabGetVersion = struct("gnttab_get_version", 8, {
  dom: [0, "u16"],
  pad: [2, "u16"],
  version: [4, "u32"],
});

// ---------------------------------------------------------------------------------------------
// event channels (event_channel.h)
// ---------------------------------------------------------------------------------------------

export const EvtchnAllocUnbound = struct("evtchn_alloc_unbound", 8, {
  dom: [0, "u16"],
  remote_dom: [2, "u16"],
  port: [4, "u32"],
});

export const EvtchnBindInterdomain = struct("evtchn_bind_interdomain", 12, {
  remote_dom: [0, "u16"],
  remote_port: [4, "u32"],
  local_port: [8, "u32"],
});

export const EvtchnBindVirq = struct("evtchn_bind_virq", 12, {
  virq: [0, "u32"],
  vcpu: [4, "u32"],
  port: [8, "u32"],
});

export const EvtchnBindIpi = struct("evtchn_bind_ipi", 8, { vcpu: [0, "u32"], port: [4, "u32"] });

/** evtchn_close, evtchn_send and evtchn_unmask are all `{ port u32 }`. */
export const EvtchnPort = struct("evtchn_port", 4, { port: [0, "u32"] });

export const EvtchnStatus = struct("evtchn_status", 24, {
  dom: [0, "u16"],
  port: [4, "u32"],
  status: [8, "u32"],
  vcpu: [12, "u32"],
  /** union: unbound.dom / interdomain.dom (u16), pirq / virq (u32) all start at 16. */
  u_dom: [16, "u16"],
  u_word: [16, "u32"],
  interdomain_port: [20, "u32"],
});

export const EvtchnBindVcpu = struct("evtchn_bind_vcpu", 8, { port: [0, "u32"], vcpu: [4, "u32"] });

export const EvtchnReset = struct("evtchn_reset", 2, { dom: [0, "u16"] });

// ---------------------------------------------------------------------------------------------
// memory_op (memory.h)
// ---------------------------------------------------------------------------------------------

export const XenMemoryReservation = struct("xen_memory_reservation", 32, {
  extent_start: [0, "u64"],
  nr_extents: [8, "u64"],
  extent_order: [16, "u32"],
  mem_flags: [20, "u32"],
  domid: [24, "u16"],
});

export const XenAddToPhysmap = struct("xen_add_to_physmap", 24, {
  domid: [0, "u16"],
  size: [2, "u16"],
  space: [4, "u32"],
  idx: [8, "u64"],
  gpfn: [16, "u64"],
});

/**
 * XENMEM_add_to_physmap_batch (32 bytes): `size` entries; for gmfn_foreign, `u` is the foreign
 * domid, idxs[] its gfns (xen_ulong_t) and gpfns[] where they go (xen_pfn_t); errs[] (int) gets
 * each entry's result.
 */
export const XenAddToPhysmapBatch = struct("xen_add_to_physmap_batch", 32, {
  domid: [0, "u16"],
  space: [2, "u16"],
  size: [4, "u16"],
  foreign_domid: [6, "u16"],
  idxs: [8, "u64"],
  gpfns: [16, "u64"],
  errs: [24, "u64"],
});

export const XenRemoveFromPhysmap = struct("xen_remove_from_physmap", 16, {
  domid: [0, "u16"],
  gpfn: [8, "u64"],
});

/** current_reservation / maximum_reservation take a pointer to a bare domid_t. */
export const DomidArg = struct("domid_t", 2, { domid: [0, "u16"] });

/** An element of extent_start[]: one xen_pfn_t. */
export const XEN_PFN_SIZE = 8;

// ---------------------------------------------------------------------------------------------
// sched_op (sched.h), xen_version (version.h), vcpu_op (vcpu.h)
// ---------------------------------------------------------------------------------------------

export const SchedShutdown = struct("sched_shutdown", 4, { reason: [0, "u32"] });

export const SchedPoll = struct("sched_poll", 24, {
  ports: [0, "u64"],
  nr_ports: [8, "u32"],
  timeout: [16, "u64"],
});

export const SchedRemoteShutdown = struct("sched_remote_shutdown", 8, {
  domain_id: [0, "u16"],
  reason: [4, "u32"],
});

export const XenFeatureInfo = struct("xen_feature_info", 8, { submap_idx: [0, "u32"], submap: [4, "u32"] });

/** XENVER_extraversion's result: a NUL-padded char[16]. */
export const XEN_EXTRAVERSION_LEN = 16;
/** XENVER_capabilities' result: char[1024]. */
export const XEN_CAPABILITIES_INFO_LEN = 1024;
/** XENVER_changeset's result: char[64]. */
export const XEN_CHANGESET_INFO_LEN = 64;
/** XENVER_commandline's result: char[1024] (xen_commandline_t). */
export const XEN_COMMANDLINE_LEN = 1024;

export const VcpuSetSingleshotTimer = struct("vcpu_set_singleshot_timer", 16, {
  timeout_abs_ns: [0, "u64"],
  flags: [8, "u32"],
});

/**
 * VCPUOP_initialise's argument on Xenon RV32 (Xen's vcpu_guest_context, arch part of our own):
 * `flags` (must be 0), the start `pc`, and x0..x31 (x0 ignored) — 136 bytes.
 */
export const VcpuGuestContext = struct("vcpu_guest_context", 136, {
  flags: [0, "u32"],
  pc: [4, "u32"],
  x: [8, "u32"],
});
/** Registers in vcpu_guest_context.x. */
export const VCPU_GUEST_CONTEXT_REGS = 32;

export const VcpuRegisterVcpuInfo = struct("vcpu_register_vcpu_info", 16, {
  mfn: [0, "u64"],
  offset: [8, "u32"],
  rsvd: [12, "u32"],
});

/** HVMOP_set_param / HVMOP_get_param argument. */
export const XenHvmParam = struct("xen_hvm_param", 16, {
  domid: [0, "u16"],
  pad: [2, "u16"],
  index: [4, "u32"],
  value: [8, "u64"],
});

// ---------------------------------------------------------------------------------------------
// domctl / sysctl (domctl.h, sysctl.h; control domain only). The envelope and each union member
// are separate layouts: a member's offsets are relative to the union, which starts at
// XEN_DOMCTL_U_OFFSET / XEN_SYSCTL_U_OFFSET of the envelope.
// ---------------------------------------------------------------------------------------------

/** struct xen_domctl: cmd, interface_version, domain (IN/OUT), 6 bytes of pad, then a 128-byte union. */
export const XenDomctl = struct("xen_domctl", 144, {
  cmd: [0, "u32"],
  interface_version: [4, "u32"],
  domain: [8, "u16"],
});
export const XEN_DOMCTL_U_OFFSET = 16;

/** struct xen_sysctl: cmd, interface_version, then a 128-byte union (8-aligned). */
export const XenSysctl = struct("xen_sysctl", 136, {
  cmd: [0, "u32"],
  interface_version: [4, "u32"],
});
export const XEN_SYSCTL_U_OFFSET = 8;

/** struct xenctl_bitmap: a byte bitmap (bit n = pCPU n) behind a guest handle, and its length in bits. */
export const XenctlBitmap = struct("xenctl_bitmap", 16, {
  bitmap: [0, "u64"],
  nr_bits: [8, "u32"],
});

/** Xen 4.17's xen_domctl_createdomain with Arm's xen_arch_domainconfig at 56 (`handle[16]` at 4). */
export const XenDomctlCreatedomain = struct("xen_domctl_createdomain", 68, {
  ssidref: [0, "u32"],
  flags: [20, "u32"],
  iommu_opts: [24, "u32"],
  max_vcpus: [28, "u32"],
  max_evtchn_port: [32, "u32"],
  max_grant_frames: [36, "i32"],
  max_maptrack_frames: [40, "i32"],
  grant_opts: [44, "u32"],
  vmtrace_size: [48, "u32"],
  cpupool_id: [52, "u32"],
  arch_gic_version: [56, "u8"],
  arch_tee_type: [58, "u16"],
  arch_nr_spis: [60, "u32"],
  arch_clock_frequency: [64, "u32"],
});
export const XEN_DOMAIN_HANDLE_OFFSET = 4;
export const XEN_DOMAIN_HANDLE_LEN = 16;

/** xen_domctl_getdomaininfo (OUT); `handle[16]` at 76, `pad2[7]` at 97, arch_config at 104. */
export const XenDomctlGetdomaininfo = struct("xen_domctl_getdomaininfo", 120, {
  domain: [0, "u16"],
  pad1: [2, "u16"],
  flags: [4, "u32"],
  tot_pages: [8, "u64"],
  max_pages: [16, "u64"],
  outstanding_pages: [24, "u64"],
  shr_pages: [32, "u64"],
  paged_pages: [40, "u64"],
  shared_info_frame: [48, "u64"],
  cpu_time: [56, "u64"],
  nr_online_vcpus: [64, "u32"],
  max_vcpu_id: [68, "u32"],
  ssidref: [72, "u32"],
  cpupool: [92, "u32"],
  gpaddr_bits: [96, "u8"],
  arch_config_gic_version: [104, "u8"],
  arch_config_tee_type: [106, "u16"],
  arch_config_nr_spis: [108, "u32"],
  arch_config_clock_frequency: [112, "u32"],
});

/** XEN_DOMCTL_setvcpucontext / getvcpucontext: the vCPU and a pointer to a vcpu_guest_context. */
export const XenDomctlVcpucontext = struct("xen_domctl_vcpucontext", 16, { vcpu: [0, "u32"], ctxt: [8, "u64"] });

export const XenDomctlMaxMem = struct("xen_domctl_max_mem", 8, { max_memkb: [0, "u64"] });

export const XenDomctlMaxVcpus = struct("xen_domctl_max_vcpus", 4, { max: [0, "u32"] });

export const XenDomctlVcpuaffinity = struct("xen_domctl_vcpuaffinity", 40, {
  vcpu: [0, "u32"],
  flags: [4, "u32"],
  cpumap_hard_bitmap: [8, "u64"],
  cpumap_hard_nr_bits: [16, "u32"],
  cpumap_soft_bitmap: [24, "u64"],
  cpumap_soft_nr_bits: [32, "u32"],
});

/** xen_domctl_scheduler_op: the union at 8 is credit/credit2 {weight, cap}, rtds {period, budget, flags} or v. */
export const XenDomctlSchedulerOp = struct("xen_domctl_scheduler_op", 24, {
  sched_id: [0, "u32"],
  cmd: [4, "u32"],
  credit2_weight: [8, "u16"],
  credit2_cap: [10, "u16"],
  rtds_period: [8, "u32"],
  rtds_budget: [12, "u32"],
  rtds_flags: [16, "u32"],
  v_vcpus: [8, "u64"],
  v_nr_vcpus: [16, "u32"],
});

/** An element of scheduler_op.u.v.vcpus[] (put/getvcpuinfo): the params union, then vcpuid. */
export const XenDomctlSchedparamVcpu = struct("xen_domctl_schedparam_vcpu", 16, {
  rtds_period: [0, "u32"],
  rtds_budget: [4, "u32"],
  rtds_flags: [8, "u32"],
  vcpuid: [12, "u32"],
});

export const XenSysctlPhysinfo = struct("xen_sysctl_physinfo", 112, {
  threads_per_core: [0, "u32"],
  cores_per_socket: [4, "u32"],
  nr_cpus: [8, "u32"],
  max_cpu_id: [12, "u32"],
  nr_nodes: [16, "u32"],
  max_node_id: [20, "u32"],
  cpu_khz: [24, "u32"],
  capabilities: [28, "u32"],
  arch_capabilities: [32, "u32"],
  total_pages: [40, "u64"],
  free_pages: [48, "u64"],
  scrub_pages: [56, "u64"],
  outstanding_pages: [64, "u64"],
  max_mfn: [72, "u64"],
  hw_cap0: [80, "u32"],
});

export const XenSysctlSchedId = struct("xen_sysctl_sched_id", 4, { sched_id: [0, "u32"] });

export const XenSysctlGetdomaininfolist = struct("xen_sysctl_getdomaininfolist", 24, {
  first_domain: [0, "u16"],
  max_domains: [4, "u32"],
  buffer: [8, "u64"],
  num_domains: [16, "u32"],
});

export const XenSysctlCpupoolOp = struct("xen_sysctl_cpupool_op", 40, {
  op: [0, "u32"],
  cpupool_id: [4, "u32"],
  sched_id: [8, "u32"],
  domid: [12, "u32"],
  cpu: [16, "u32"],
  n_dom: [20, "u32"],
  cpumap_bitmap: [24, "u64"],
  cpumap_nr_bits: [32, "u32"],
});

/** Pool-wide xen_sysctl_scheduler_op; the union at 16 is credit {tslice_ms, ratelimit_us, …} or credit2 {ratelimit_us}. */
export const XenSysctlSchedulerOp = struct("xen_sysctl_scheduler_op", 32, {
  cpupool_id: [0, "u32"],
  sched_id: [4, "u32"],
  cmd: [8, "u32"],
  sched_credit2_ratelimit_us: [16, "u32"],
});

/** xen_domctl_getvcpuinfo: `vcpu` IN, the rest OUT. */
export const XenDomctlGetvcpuinfo = struct("xen_domctl_getvcpuinfo", 24, {
  vcpu: [0, "u32"],
  online: [4, "u8"],
  blocked: [5, "u8"],
  running: [6, "u8"],
  cpu_time: [8, "u64"],
  cpu: [16, "u32"],
});

export const XenDomctlSetVirqHandler = struct("xen_domctl_set_virq_handler", 4, { virq: [0, "u32"] });

// ---------------------------------------------------------------------------------------------
// XenStore (io/xs_wire.h): the message header and the per-domain ring page.
// ---------------------------------------------------------------------------------------------

/** struct xsd_sockmsg: every XenStore message starts with it, on a socket or a ring. */
export const XsdSockmsg = struct("xsd_sockmsg", 16, {
  type: [0, "u32"],
  req_id: [4, "u32"],
  tx_id: [8, "u32"],
  len: [12, "u32"],
});

/**
 * struct xenstore_domain_interface: one 4 KiB page shared by a domain and the XenStore domain.
 * `req`/`rsp` are 1024-byte byte rings (the TS fields name their first byte); the indices are
 * free-running u32 counters, byte x living at x & (XENSTORE_RING_SIZE - 1).
 */
export const XenstoreDomainInterface = struct("xenstore_domain_interface", 2076, {
  req: [0, "u8"],
  rsp: [1024, "u8"],
  req_cons: [2048, "u32"],
  req_prod: [2052, "u32"],
  rsp_cons: [2056, "u32"],
  rsp_prod: [2060, "u32"],
  server_features: [2064, "u32"],
  connection: [2068, "u32"],
  error: [2072, "u32"],
});
export const XENSTORE_RING_SIZE = 1024;
/** server_features bit: the server honours `connection = XENSTORE_RECONNECT`. */
export const XENSTORE_SERVER_FEATURE_RECONNECTION = 1;
/** server_features bit: the server reports why it gave up in `error`. */
export const XENSTORE_SERVER_FEATURE_ERROR = 2;
export const XENSTORE_CONNECTED = 0;
export const XENSTORE_RECONNECT = 1;
/** `error` values: none, event channel trouble, a bad ring index, a protocol violation (oversize payload). */
export const XENSTORE_ERROR_NONE = 0;
export const XENSTORE_ERROR_COMM = 1;
export const XENSTORE_ERROR_RINGIDX = 2;
export const XENSTORE_ERROR_PROTO = 3;
