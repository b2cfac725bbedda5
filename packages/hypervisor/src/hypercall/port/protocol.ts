/**
 * The hypercall port: how a TypeScript domain (driver domain, xenstored, a control domain written
 * in TS) makes hypercalls. Same semantics as an RV32 guest's ecall (hypercall/semantics.ts), with
 * the caller's domid fixed by the port itself: a port is created for one domain and is that
 * domain's only capability, so a message can never claim to come from someone else.
 *
 * Wire: msgpackr-encoded messages. Over a MessagePort each message is one packed Uint8Array
 * (except `mapView` replies, which carry a SharedArrayBuffer handle and so use structured clone);
 * over a byte stream (a child process) each message is one msgpackr value in a length-prefixed
 * frame (the framing is the stream owner's: backends' driver_domain/stream.ts).
 *
 *   client -> core  { id, op, args }         op is a key of PORT_OPS; args positional
 *   core -> client  { id, ok: result }       or { id, err: "message" } for a malformed request
 *   core -> client  { ev: "upcall", ports }  evtchn_upcall_pending went 0 -> 1 (stream mode): the
 *                                            ports it found pending, taken as evtchnTakePending would
 *   core -> client  { hello: {...} }         first message: domid, thread-mode shared_info location
 */

/** Operations a port accepts: semantics method names plus the TS-domain helpers below. */
export const PORT_OPS = [
  // memory_op / xen_version / console
  "currentReservation",
  "maximumReservation",
  "xenVersion",
  "xenExtraversion",
  "consoleWrite",
  // event channels
  "evtchnAllocUnbound",
  "evtchnBindInterdomain",
  "evtchnBindVirq",
  "evtchnClose",
  "evtchnSend",
  "evtchnStatus",
  "evtchnUnmask",
  // grant tables (as a grantee: views in thread mode, copies everywhere)
  "gnttabMapGrantRefView",
  "gnttabMapGrantRefViews",
  "gnttabUnmapGrantRefs",
  "gnttabUnmapGrantRef",
  "gnttabCopyFrom",
  "gnttabCopyTo",
  // several segments in one call (GNTTABOP_copy takes an array): [ref, offset, len | bytes]...
  "gnttabCopyFromSegs",
  "gnttabCopyToSegs",
  // a request's end for a device model on views: unmaps, a ring index store, a send (unmap_publish.ts)
  "gnttabUnmapPublishSend",
  // foreign views (privileged TS domains, thread mode): XENMAPSPACE_gmfn_foreign without a physmap
  "mapForeignView",
  "unmapForeignView",
  // foreign copies (privileged TS domains, any mode: process mode's only way to a gfn):
  // [gfn, offset, len | bytes]... as the grant copy segments
  "foreignCopyFromSegs",
  "foreignCopyToSegs",
  // TS-domain event helpers
  "evtchnTakePending",
  // dm_op: device models (IOREQ servers) and their pages (XENMEM_acquire_resource)
  "dmopCreateIoreqServer",
  "dmopGetIoreqServerInfo",
  "dmopMapIoRangeToIoreqServer",
  "dmopUnmapIoRangeFromIoreqServer",
  "dmopSetIoreqServerState",
  "dmopDestroyIoreqServer",
  "dmopNrVcpus",
  "acquireIoreqServerPage",
  // the same without shared pages (process mode): fetch what waits, answer one request
  "ioreqFetch",
  "ioreqComplete",
  // sched
  "schedShutdown",
  // domctl (control domain; privileged callers only, else -EPERM)
  "domctlCreateDomain",
  "domctlDestroyDomain",
  "domctlPauseDomain",
  "domctlUnpauseDomain",
  "domctlGetDomainInfo",
  "domctlMaxMem",
  "domctlMaxVcpus",
  "domctlGetVcpuInfo",
  "domctlSetVirqHandler",
  "domctlSetTarget",
  "domctlGetVcpuAffinity",
  "domctlSetVcpuAffinity",
  "domctlSchedGetInfo",
  "domctlSchedPutInfo",
  "domctlSchedGetVcpuInfo",
  "domctlSchedPutVcpuInfo",
  // sysctl (control domain)
  "sysctlPhysinfo",
  "sysctlSchedId",
  "sysctlGetDomainInfoList",
  "sysctlCpupoolCreate",
  "sysctlCpupoolDestroy",
  "sysctlCpupoolInfo",
  "sysctlCpupoolAddCpu",
  "sysctlCpupoolRemoveCpu",
  "sysctlCpupoolMoveDomain",
  "sysctlCpupoolFreeInfo",
  "sysctlSchedGetPoolParams",
  "sysctlSchedPutPoolParams",
] as const;
export type PortOp = (typeof PORT_OPS)[number];

/** Most segments one gnttabCopyFromSegs / gnttabCopyToSegs call takes (512 KiB of 4 KiB pages). */
export const MAX_COPY_SEGMENTS = 128;

export interface PortRequest {
  readonly id: number;
  readonly op: string;
  readonly args: readonly unknown[];
}
export interface PortReply {
  readonly id: number;
  readonly ok?: unknown;
  readonly err?: string;
}
export interface PortHello {
  readonly hello: {
    readonly domid: number;
    /** Thread mode: the shared_info frame's chunk and the byte offset of the frame in it. */
    readonly sharedInfo: { readonly buffer: SharedArrayBuffer; readonly offset: number } | null;
  };
}
export interface PortEvent {
  readonly ev: "upcall";
  /** The ports taken pending with this upcall (absent: ask with evtchnTakePending). */
  readonly ports?: readonly number[];
}
export type PortDown = PortReply | PortHello | PortEvent;

/** A thread-mode view of a resource frame (ioreq server page): status 0 or -errno. */
export interface PortFrame {
  readonly status: number;
  readonly buffer: SharedArrayBuffer | null;
  readonly byteOffset: number;
}

/** A thread-mode view of a granted frame, as it crosses the MessagePort. */
export interface PortView {
  readonly status: number;
  readonly handle: number;
  readonly buffer: SharedArrayBuffer | null;
  readonly byteOffset: number;
}
