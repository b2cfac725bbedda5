/**
 * @xenon/hypervisor — public face of the core: the domain table, per-domain memory (P2M, guest
 * accessors), event channels, grant tables, and the hypercall layer. The scheduler, boot and
 * toolstack layers build on these; internals (port tables, maptrack, pools) stay private.
 */

export type { ConsoleSink } from "./console.js";
// The control plane's hooks into the scheduling layer (domctl/sysctl), and a reference implementation over Cpupools.
export type {
  AffinityMasks,
  ControlHooks,
  CpupoolInfoResult,
  DomctlCreateDomainConfig,
  DomctlDomainInfo,
  DomctlVcpuInfo,
  HostCpuInfo,
  PhysInfo,
  PoolParamsInfo,
  SchedParamsInfo,
} from "./control.js";
export { CPUPOOLID_NONE } from "./control.js";
export type { CpupoolControlOptions } from "./control_cpupools.js";
export { CpupoolControl } from "./control_cpupools.js";
// Domains.
export type {
  DomainCreateConfig,
  DomainFlags,
  DomainInfo,
  ShutdownAction,
  ShutdownActions,
} from "./domain.js";
export { DEFAULT_SHUTDOWN_ACTIONS, Domain, SHUTDOWN_ACTIONS } from "./domain.js";
export type { HostRange, KernelPlacement, RamBank } from "./domain_build.js";
export {
  assignStaticMemory,
  buildDomainMemory,
  DomainBuildError,
  initBootVcpuState,
  mapStaticShared,
} from "./domain_build.js";
export { DomainTable, MAX_GRANT_FRAMES_LIMIT, MAX_VCPUS, p2mPoolPagesFor } from "./domain_table.js";
export type { EvtchnStatusInfo } from "./event_channel/event_channel.js";
// Events raised by the core or the boot layer.
export { evtchnBindStatic, evtchnCloseUnbound, sendGlobalVirq, sendGuestVirq } from "./event_channel/event_channel.js";
export type { FdtErrorCode, FdtHeaderInfo, MemoryReservation, ReadOptions } from "./fdt/index.js";
// Flattened device tree (DTB) reader and dtc-identical writer; value builders/decoders via `fdt.*`.
export * as fdt from "./fdt/index.js";
export { Fdt, FdtError, FdtNode, readFdt, readFdtWithHeader, writeFdt } from "./fdt/index.js";
// Grants: the granting side for TypeScript domains, and the result types of the grant ops.
export type {
  CopyArgs,
  CopyPtr,
  MapGrantRefArgs,
  MapResult,
  SetupTableResult,
  UnmapGrantRefArgs,
  ViewMapResult,
} from "./grant_table/grant_ops.js";
export type { GrantTable } from "./grant_table/grant_table.js";
export { endForeignAccess, foreignAccessInUse, grantAccess } from "./grant_table/granter.js";
export type { GuestFdtConfig, GuestVirtioMmio } from "./guest_fdt.js";
export {
  buildGuestFdt,
  GUEST_GNTTAB_BASE,
  GUEST_GNTTAB_SIZE,
  GUEST_UPCALL_IRQ,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
} from "./guest_fdt.js";
// Hypercalls.
export { dispatchHypercall } from "./hypercall/dispatch.js";
export { SCHED_VCPUINFO_MAX } from "./hypercall/guest_abi.js";
// The hypercall port: TypeScript domains' way in (the client is what backends use).
export type { GrantView, PortEndpoint } from "./hypercall/port/client.js";
export { HypercallClient, PortClosedError } from "./hypercall/port/client.js";
export type { IoreqBatch } from "./hypercall/port/ioreq_relay.js";
export type { PortDown, PortOp, PortRequest } from "./hypercall/port/protocol.js";
export { MAX_COPY_SEGMENTS, PORT_OPS } from "./hypercall/port/protocol.js";
export type { PortSink } from "./hypercall/port/server.js";
export { messagePortSink, PortServer, servePort, watchUpcalls } from "./hypercall/port/server.js";
export {
  decodeStreamValue,
  encodeStreamFrame,
  encodeStreamValue,
  MAX_STREAM_FRAME,
  STREAM_CHANNEL_CONTROL,
  STREAM_CHANNEL_HYPERCALL,
  StreamError,
  type StreamFrame,
  StreamParser,
} from "./hypercall/port/stream.js";
export type { PublishAt, SendWhen, UnmapPublishResult } from "./hypercall/port/unmap_publish.js";
export { HypercallSemantics, SCHED_POLL_MAX_PORTS, schedKind } from "./hypercall/semantics.js";
// The root object and its hooks.
export type { HypervisorHooks, HypervisorOptions } from "./hypervisor.js";
export { Hypervisor } from "./hypervisor.js";
// The running host: pCPU workers, the domain builder, the guest device tree.
export type { DomainEnd, MachineOptions, MachinePoolConfig, SpecCtrlStats, TraceEvent, VcpuStats } from "./machine.js";
export { Machine } from "./machine.js";
// Memory.
export { populateRange } from "./memory.js";
// Save / restore / migration stream (Xen's libxc stream v3 framing, XENON_RV32 domain type; MIGRATION.md).
export type { DomainInfoRec, EvtchnRec, GrantTableRec, PageBatch, VcpuRec } from "./migrate/records.js";
export { VCPU_SAVED_SLOTS } from "./migrate/records.js";
export type { RestoredDomain, RestoreOptions } from "./migrate/restore.js";
export { DomainRestorer, restoreBodyLimit, StreamRestore } from "./migrate/restore.js";
export type { SaveHost, SaveOptions } from "./migrate/save.js";
export {
  checkSaveable,
  pauseDomain,
  ramGfns,
  SaveError,
  saveDomain,
  unpauseDomain,
  writeDomainState,
  writePages,
  writeStaticData,
} from "./migrate/save.js";
export {
  DHDR_TYPE_XENON_RV32,
  MAX_BATCH_SIZE,
  PageType,
  REC_LENGTH_MAX,
  RecType,
  recName,
} from "./migrate/stream_format.js";
export type { StreamHeader, StreamItem, StreamRecord } from "./migrate/stream_reader.js";
export { MigrationStreamError, StreamReader } from "./migrate/stream_reader.js";
export type { StreamSink } from "./migrate/stream_writer.js";
export { encodeHeaders, encodeRecord, StreamWriter } from "./migrate/stream_writer.js";
export type { GuestMemory } from "./p2m/guest_access.js";
export type { P2m, P2mDescriptor, P2mEntryInfo } from "./p2m/p2m.js";
export { P2M_ROOT_PAGES, P2mReader } from "./p2m/p2m.js";
export { GUEST_RAM_BASE, GUEST_RAM_BASE_GFN, MAX_GFN, P2M_TYPE_NAMES, P2mType } from "./p2m/types.js";
export { PASSTHROUGH_MODELS, Passthrough, type PassthroughDeviceInfo } from "./passthrough/passthrough.js";
export type { TimeMode } from "./pcpu/contract.js";
// Xen's public ABI: numbers, flags, status codes and struct layouts.
export { Errno, err } from "./public/errno.js";
export {
  BITS_PER_EVTCHN_WORD,
  DEFAULT_MAX_EVTCHN_PORT,
  EVTCHN_2L_NR_CHANNELS,
  EvtchnOp,
  EvtchnStat,
} from "./public/event_channel.js";
export * from "./public/grant_table.js";
export * as layout from "./public/layout.js";
export {
  MEMOP_CMD_MASK,
  MEMOP_EXTENT_SHIFT,
  XENMAPIDX_grant_table_status,
  XenMapSpace,
  XenMem,
} from "./public/memory.js";
export * from "./public/xen.js";
// Scheduling policy (credit2, RTDS, null), cpupools and a deterministic simulator; see sched/README.md.
export type { PcpuSlot, PickResult } from "./sched/base.js";
export { mulDiv, mulDivCeil, SchedulerBase, wallForUnits, workUnits } from "./sched/base.js";
export { CpuMask } from "./sched/cpumask.js";
export type { CpupoolInfo, CpupoolsOptions, SchedOptions } from "./sched/cpupool.js";
export { CPUPOOL_PAR_ANY, Cpupool, Cpupools, createScheduler } from "./sched/cpupool.js";
export type { Credit2Options } from "./sched/credit2.js";
export { Credit2Scheduler } from "./sched/credit2.js";
export type { NullOptions } from "./sched/null.js";
export { NullScheduler } from "./sched/null.js";
export type { RtdsUtilisation } from "./sched/rtds.js";
export { RtdsScheduler } from "./sched/rtds.js";
export type { Interval, SimOptions, UnitStats, Workload } from "./sched/sim.js";
export { pcpus as simPcpus, SchedSim } from "./sched/sim.js";
export type {
  Credit2DomainParams,
  NullParams,
  Pcpu,
  PcpuClass,
  PcpuId,
  PoolParams,
  PoolParamsUpdate,
  RtdsVcpuParams,
  SchedDecision,
  SchedName,
  SchedParams,
  SchedParamsUpdate,
  Scheduler,
  UnitState,
} from "./sched/types.js";
export { REF_SPEED, SchedUnit, XEN_SCHEDULER } from "./sched/types.js";
export type { SharedRegion } from "./shared_info.js";
export type { SpecCtrlOptions, XenCmdline } from "./spec_ctrl.js";
export {
  DEFAULT_SPEC_CTRL,
  DOMAIN_SPEC_CTRL_BITS,
  domainSpecCtrl,
  effectiveSpecCtrl,
  parseDom0Cpuid,
  parseSpecCtrl,
  parseXenCmdline,
  SPEC_CTRL_IBRS,
  SPEC_CTRL_SSBD,
  SPEC_CTRL_STIBP,
  VIRT_SPEC_CTRL_SSBD,
  XenCmdlineError,
} from "./spec_ctrl.js";
// Opt-in I/O path timeline (XENON_IO_TRACE): the blk bench's --trace.
export { enableIoTrace, ioTrace, ioTraceFlush, ioTraceOn } from "./trace/io_trace.js";
export type { SchedRequest, Vcpu, VcpuInfoPlacement } from "./vcpu.js";
// XenStore connection of a domain (magic page, gref 1, unbound port, HVM params).
export type { XenstoreRingSetup } from "./xenstore_page.js";
export { GUEST_MAGIC_BASE, GUEST_XENSTORE_GFN, setupXenstoreRing, XENSTORE_PFN_OFFSET } from "./xenstore_page.js";
