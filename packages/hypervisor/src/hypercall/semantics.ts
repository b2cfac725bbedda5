import { PAGE_SIZE } from "@xenon/hw";
import {
  type AffinityMasks,
  CPUPOOLID_NONE,
  type CpupoolInfoResult,
  type DomctlCreateDomainConfig,
  type DomctlDomainInfo,
  type DomctlVcpuInfo,
  type PhysInfo,
} from "../control.js";
import type { Domain } from "../domain.js";
import { p2mPoolPagesFor } from "../domain_table.js";
import { isPending2l } from "../event_channel/event_2l.js";
import {
  type EvtchnStatusInfo,
  evtchnAllocUnbound,
  evtchnBindInterdomain,
  evtchnBindIpi,
  evtchnBindVcpu,
  evtchnBindVirq,
  evtchnClose,
  evtchnReset,
  evtchnSend,
  evtchnStatus,
  evtchnUnmask,
} from "../event_channel/event_channel.js";
import {
  type CopyArgs,
  getVersion,
  gnttabCopy,
  type MapGrantRefArgs,
  type MapResult,
  mapGrantRef,
  mapGrantRefView,
  querySize,
  type SetupTableResult,
  setupTable,
  setVersion,
  type UnmapGrantRefArgs,
  unmapGrantRef,
  type ViewMapResult,
} from "../grant_table/grant_ops.js";
import type { Hypervisor } from "../hypervisor.js";
import type { IoreqServerInfo } from "../ioreq/ioreq_servers.js";
import {
  addToPhysmap,
  currentReservation,
  decreaseReservation,
  mapForeign,
  mapForeignView,
  maximumReservation,
  populatePhysmap,
  removeFromPhysmap,
  unmapForeignView,
} from "../memory.js";
import { GFN_BITS } from "../p2m/types.js";
import { err } from "../public/errno.js";
import { Gntst, type GntstCode } from "../public/grant_table.js";
import { ADD_TO_PHYSMAP_BATCH_MAX, XenMapSpace } from "../public/memory.js";
import {
  DOMID_FIRST_RESERVED,
  DOMID_SELF,
  DomctlCdf,
  DomInf,
  HVM_NR_PARAMS,
  HvmParam,
  NR_VIRQS,
  PhysCap,
  SCHED_POLL_MAX_PORTS,
  SHUTDOWN_MAX,
  virqIsPerVcpu,
  XEN_DOMCTL_GRANT_VERSION_MASK,
  XEN_EXTRAVERSION,
  XEN_MAJOR,
  XEN_MINOR,
  XENFEAT_NR_SUBMAPS,
  XenFeat,
} from "../public/xen.js";
import {
  type PoolParams,
  type PoolParamsUpdate,
  type SchedName,
  type SchedParams,
  type SchedParamsUpdate,
  XEN_SCHEDULER,
} from "../sched/types.js";
import { upcallPending } from "../shared_info.js";
import type { VcpuStartContext } from "../vcpu.js";
import { registerVcpuInfo, vcpuInitialise, vcpuSetOnline } from "../vcpu_op.js";

export { SCHED_POLL_MAX_PORTS };

/** Capability string for XENVER_capabilities (Xen's style: "xen-3.0-<arch> "). */
export const XEN_CAPABILITIES = "xen-3.0-riscv32 ";
export const XEN_CHANGESET = "xenon";

/**
 * Hypercall semantics: one method per operation, taking the caller's domid and plain values and
 * returning a result or a negative errno (GNTST_* codes for per-element grant status). This is
 * the layer TypeScript domains reach through their hypercall port; guest_abi.ts decodes guest
 * memory into the same calls.
 *
 * Policy (Xen's default XSM "dummy" policy): a domain may name itself (its domid or DOMID_SELF);
 * naming another domain needs the privileged (control) flag, else -EPERM (GNTST_permission_denied
 * where the op has a status field). Unknown or dying domains are -ESRCH (GNTST_bad_domain).
 */
export class HypercallSemantics {
  constructor(readonly hv: Hypervisor) {}

  /** The live calling domain, or undefined (callers answer -ESRCH). */
  private self(caller: number): Domain | undefined {
    return this.hv.domains.getLive(caller);
  }

  /** Target domain for an op that may name another domain (XSM_TARGET). */
  private target(c: Domain, domid: number): Domain | number {
    if (domid === DOMID_SELF || domid === c.domid) return c;
    const d = this.hv.domains.getLive(domid);
    if (d === undefined) return err("ESRCH");
    return c.flags.privileged ? d : err("EPERM");
  }

  private withTarget(caller: number, domid: number, fn: (d: Domain, c: Domain) => number): number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    const d = this.target(c, domid);
    return typeof d === "number" ? d : fn(d, c);
  }

  // --- memory_op -------------------------------------------------------------------------------

  /** XENMEM_populate_physmap: extents done. */
  populatePhysmap(caller: number, domid: number, gpfns: readonly number[], order: number): number {
    return this.withTarget(caller, domid, (d) => populatePhysmap(d, gpfns, order));
  }

  /** XENMEM_decrease_reservation: extents done. */
  decreaseReservation(caller: number, domid: number, gpfns: readonly number[], order: number): number {
    return this.withTarget(caller, domid, (d) => decreaseReservation(d, gpfns, order));
  }

  currentReservation(caller: number, domid: number): number {
    return this.withTarget(caller, domid, (d) => currentReservation(d));
  }

  maximumReservation(caller: number, domid: number): number {
    return this.withTarget(caller, domid, (d) => maximumReservation(d));
  }

  addToPhysmap(caller: number, domid: number, space: number, idx: number, gpfn: number): number {
    return this.withTarget(caller, domid, (d) => addToPhysmap(d, space, idx, gpfn));
  }

  /**
   * XENMEM_add_to_physmap_batch. Only XENMAPSPACE_gmfn_foreign (-ENOSYS otherwise): a privileged
   * caller (-EPERM) maps `foreignDomid`'s gfns idxs[i] at gpfns[i] of `domid` (usually itself).
   * Returns each entry's result (Xen's errs[]), or a negative errno for the whole call.
   */
  addToPhysmapBatch(
    caller: number,
    domid: number,
    space: number,
    foreignDomid: number,
    idxs: readonly number[],
    gpfns: readonly number[],
  ): number[] | number {
    if (space !== XenMapSpace.gmfn_foreign) return err("ENOSYS");
    if (idxs.length !== gpfns.length || idxs.length > ADD_TO_PHYSMAP_BATCH_MAX) return err("EINVAL");
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!c.flags.privileged) return err("EPERM");
    const d = this.target(c, domid);
    if (typeof d === "number") return d;
    const fd = this.hv.domains.getLive(foreignDomid);
    if (fd === undefined) return err("ESRCH");
    return idxs.map((idx, i) => mapForeign(d, fd, idx, gpfns[i]!));
  }

  /**
   * A foreign map of `foreignDomid`'s gfn as a view, for a TypeScript domain (what privcmd's
   * gmfn_foreign mapping gives a backend in dom0). Privileged callers only (-EPERM), as
   * XENMAPSPACE_gmfn_foreign. { handle, view } or a negative errno.
   */
  mapForeignView(
    caller: number,
    foreignDomid: number,
    gfn: number,
    writable: boolean,
  ): { handle: number; view: Uint8Array } | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!c.flags.privileged) return err("EPERM");
    const fd = this.hv.domains.getLive(foreignDomid);
    if (fd === undefined) return err("ESRCH");
    const r = mapForeignView(c, fd, gfn, writable);
    if (typeof r === "number") return r;
    const chunk = this.hv.memory.chunk(r.mfn);
    return { handle: r.handle, view: new Uint8Array(chunk.buffer, this.hv.memory.frameOffset(r.mfn), PAGE_SIZE) };
  }

  unmapForeignView(caller: number, handle: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : unmapForeignView(c, handle);
  }

  /**
   * A copy from (data null) or to `foreignDomid`'s guest-physical page `gfn`, [offset,
   * offset+len), for a privileged TypeScript domain that shares no memory with the core (process
   * mode): what a dom0 backend does with memcpy through a gmfn_foreign mapping. Done as a short
   * mapForeignView, copy, unmap, so privilege, ownership, page types and dirty tracking are
   * exactly the foreign view's. The bytes (from) or 0 (to), or a negative errno.
   */
  foreignCopy(
    caller: number,
    foreignDomid: number,
    gfn: number,
    offset: number,
    len: number,
    data: Uint8Array | null,
  ): Uint8Array | number {
    if (offset < 0 || len < 0 || offset + len > PAGE_SIZE || (data !== null && data.length !== len))
      return err("EINVAL");
    const r = this.mapForeignView(caller, foreignDomid, gfn, data !== null);
    if (typeof r === "number") return r;
    try {
      if (data === null) return r.view.slice(offset, offset + len);
      r.view.set(data, offset);
      return 0;
    } finally {
      this.unmapForeignView(caller, r.handle);
    }
  }

  removeFromPhysmap(caller: number, domid: number, gpfn: number): number {
    return this.withTarget(caller, domid, (d) => removeFromPhysmap(d, gpfn));
  }

  // --- event_channel_op ------------------------------------------------------------------------

  /** EVTCHNOP_alloc_unbound: a port of `dom` for `remoteDom` (DOMID_SELF = the caller). */
  evtchnAllocUnbound(caller: number, dom: number, remoteDom: number): number {
    const remote = remoteDom === DOMID_SELF ? caller : remoteDom;
    return this.withTarget(caller, dom, (d) => evtchnAllocUnbound(d, remote));
  }

  evtchnBindInterdomain(caller: number, remoteDom: number, remotePort: number): number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    const rd = remoteDom === DOMID_SELF ? c : this.hv.domains.getLive(remoteDom);
    if (rd === undefined) return err("ESRCH");
    return evtchnBindInterdomain(this.hv, c, rd, remotePort);
  }

  evtchnBindVirq(caller: number, virq: number, vcpu: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnBindVirq(c, virq, vcpu);
  }

  evtchnBindIpi(caller: number, vcpu: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnBindIpi(c, vcpu);
  }

  evtchnClose(caller: number, port: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnClose(this.hv, c, port);
  }

  evtchnSend(caller: number, port: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnSend(this.hv, c, port);
  }

  evtchnStatus(caller: number, dom: number, port: number): EvtchnStatusInfo | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    const d = this.target(c, dom);
    return typeof d === "number" ? d : evtchnStatus(d, port);
  }

  evtchnBindVcpu(caller: number, port: number, vcpu: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnBindVcpu(c, port, vcpu);
  }

  evtchnUnmask(caller: number, port: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : evtchnUnmask(this.hv, c, port);
  }

  evtchnReset(caller: number, dom: number): number {
    return this.withTarget(caller, dom, (d) => evtchnReset(this.hv, d));
  }

  // --- grant_table_op --------------------------------------------------------------------------

  gnttabMapGrantRef(caller: number, a: MapGrantRefArgs): MapResult {
    const c = this.self(caller);
    return c === undefined ? { status: Gntst.bad_domain, handle: 0 } : mapGrantRef(this.hv, c, a);
  }

  /** map_grant_ref for a TypeScript domain: a view of the frame instead of a P2M entry. */
  gnttabMapGrantRefView(caller: number, dom: number, ref: number, readonly: boolean): ViewMapResult {
    const c = this.self(caller);
    return c === undefined
      ? { status: Gntst.bad_domain, handle: 0, view: null }
      : mapGrantRefView(this.hv, c, dom, ref, readonly);
  }

  gnttabUnmapGrantRef(caller: number, a: UnmapGrantRefArgs): GntstCode {
    const c = this.self(caller);
    return c === undefined ? Gntst.bad_domain : unmapGrantRef(this.hv, c, a);
  }

  gnttabCopy(caller: number, a: CopyArgs): GntstCode {
    const c = this.self(caller);
    return c === undefined ? Gntst.bad_domain : gnttabCopy(this.hv, c, a);
  }

  private gntTarget(caller: number, dom: number): Domain | GntstCode {
    const c = this.self(caller);
    if (c === undefined) return Gntst.bad_domain;
    const d = this.target(c, dom);
    if (d === err("EPERM")) return Gntst.permission_denied;
    return typeof d === "number" ? Gntst.bad_domain : d;
  }

  gnttabSetupTable(caller: number, dom: number, nrFrames: number): SetupTableResult {
    const d = this.gntTarget(caller, dom);
    return typeof d === "number" ? { status: d, frames: [] } : setupTable(d, nrFrames);
  }

  gnttabQuerySize(caller: number, dom: number): { status: GntstCode; nrFrames: number; maxNrFrames: number } {
    const d = this.gntTarget(caller, dom);
    return typeof d === "number" ? { status: d, nrFrames: 0, maxNrFrames: 0 } : { status: Gntst.okay, ...querySize(d) };
  }

  gnttabSetVersion(caller: number, version: number): { rc: number; version: number } {
    const c = this.self(caller);
    return c === undefined ? { rc: err("ESRCH"), version: 0 } : setVersion(c, version);
  }

  gnttabGetVersion(caller: number, dom: number): number {
    return this.withTarget(caller, dom, (d) => getVersion(d));
  }

  // --- sched_op --------------------------------------------------------------------------------
  // yield/block/poll only leave a request on the vCPU; the scheduler layer acts on it.

  schedYield(caller: number, vcpu: number): number {
    const v = this.self(caller)?.vcpu(vcpu);
    if (v === undefined) return err("ESRCH");
    v.schedRequest = { op: "yield" };
    return 0;
  }

  /** SCHEDOP_block: sleep until an event, unless one is already waiting (then return at once). */
  schedBlock(caller: number, vcpu: number): number {
    const v = this.self(caller)?.vcpu(vcpu);
    if (v === undefined) return err("ESRCH");
    const waiting = upcallPending(v.vcpuInfo);
    if (!waiting) v.schedRequest = { op: "block" };
    return 0;
  }

  /**
   * SCHEDOP_poll: sleep until one of `ports` is pending or system time reaches timeoutNs (0 =
   * no timeout). Returns at once if one already is. At most 128 ports, each a valid port number.
   */
  schedPoll(caller: number, vcpu: number, ports: readonly number[], timeoutNs: number): number {
    const c = this.self(caller);
    const v = c?.vcpu(vcpu);
    if (c === undefined || v === undefined) return err("ESRCH");
    if (ports.length > SCHED_POLL_MAX_PORTS) return err("EINVAL");
    for (const p of ports) if (!c.evtchn.isValid(p)) return err("EINVAL");
    if (ports.some((p) => isPending2l(c, p))) return 0;
    v.schedRequest = { op: "poll", ports: [...ports], timeoutNs };
    return 0;
  }

  schedShutdown(caller: number, reason: number): number {
    return this.hv.domains.shutdown(caller, reason);
  }

  /** SCHEDOP_shutdown_code: remember a reason for a later shutdown. */
  schedShutdownCode(caller: number, reason: number): number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!Number.isInteger(reason) || reason < 0 || reason > SHUTDOWN_MAX) return err("EINVAL");
    c.latchShutdownCode(reason);
    return 0;
  }

  /** SCHEDOP_remote_shutdown: privileged callers only (even for themselves, as in Xen). */
  schedRemoteShutdown(caller: number, domid: number, reason: number): number {
    return this.withTarget(caller, domid, (d, c) =>
      c.flags.privileged ? this.hv.domains.shutdown(d.domid, reason) : err("EPERM"),
    );
  }

  // --- console_io ------------------------------------------------------------------------------

  private consoleAllowed(c: Domain): boolean {
    return c.flags.privileged || c.flags.isConsole;
  }

  /** CONSOLEIO_write: 0, or -EPERM for a domain without console rights. */
  consoleWrite(caller: number, bytes: Uint8Array): number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!this.consoleAllowed(c)) return err("EPERM");
    c.console.write(bytes);
    return 0;
  }

  /** CONSOLEIO_read: consumes up to `max` bytes of the hypervisor console ring. */
  consoleRead(caller: number, max: number): Uint8Array | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!this.consoleAllowed(c)) return err("EPERM");
    return this.hv.consoleRing.read(max);
  }

  // --- xen_version -----------------------------------------------------------------------------

  /** XENVER_version: (major << 16) | minor. */
  xenVersion(): number {
    return (XEN_MAJOR << 16) | XEN_MINOR;
  }

  xenExtraversion(): string {
    return XEN_EXTRAVERSION;
  }

  /** XENVER_commandline: the hypervisor's command line, for privileged callers only (XSM_PRIV). */
  xenCommandline(caller: number): string | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!c.flags.privileged) return err("EPERM");
    return this.hv.commandLine;
  }

  /** XENVER_get_features submap `idx` for the caller, or -EINVAL. */
  xenFeatures(caller: number, idx: number): number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!(Number.isInteger(idx) && idx >= 0 && idx < XENFEAT_NR_SUBMAPS)) return err("EINVAL");
    let bits = (1 << XenFeat.auto_translated_physmap) | (1 << XenFeat.not_direct_mapped);
    if (c.flags.hardware) bits |= 1 << XenFeat.dom0;
    return bits >>> 0;
  }

  // --- vcpu_op / hvm_op ------------------------------------------------------------------------

  /** VCPUOP_initialise of one of the caller's vCPUs. */
  vcpuInitialise(caller: number, vcpu: number, ctx: VcpuStartContext, flags: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : vcpuInitialise(c, vcpu, ctx, flags);
  }

  /** VCPUOP_up (online) / VCPUOP_down of one of the caller's vCPUs. */
  vcpuSetOnline(caller: number, vcpu: number, online: boolean): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : vcpuSetOnline(this.hv, c, vcpu, online);
  }

  /** VCPUOP_is_up: 1 or 0; -ENOENT for no such vCPU. */
  vcpuIsUp(caller: number, vcpu: number): number {
    const v = this.self(caller)?.vcpu(vcpu);
    return v === undefined ? err("ENOENT") : v.online ? 1 : 0;
  }

  registerVcpuInfo(caller: number, vcpu: number, gfn: number, offset: number): number {
    const c = this.self(caller);
    return c === undefined ? err("ESRCH") : registerVcpuInfo(this.hv, c, vcpu, gfn, offset);
  }

  /** HVMOP_get_param: own params, or any domain's for the privileged. */
  hvmGetParam(caller: number, domid: number, index: number): number {
    return this.withTarget(caller, domid, (d) =>
      Number.isInteger(index) && index >= 0 && index < HVM_NR_PARAMS ? d.hvmParams[index]! : err("EINVAL"),
    );
  }

  /**
   * HVMOP_set_param: the toolstack (privileged) sets any param; a domain may set only its own
   * CALLBACK_IRQ (the rest describe what the toolstack built and must not be forged).
   */
  hvmSetParam(caller: number, domid: number, index: number, value: number): number {
    return this.withTarget(caller, domid, (d, c) => {
      if (!Number.isInteger(index) || index < 0 || index >= HVM_NR_PARAMS) return err("EINVAL");
      if (!c.flags.privileged && index !== HvmParam.CALLBACK_IRQ) return err("EPERM");
      if (!Number.isFinite(value) || value < 0) return err("EINVAL");
      d.hvmParams[index] = value;
      return 0;
    });
  }

  // --- dm_op: device models (IOREQ servers) ----------------------------------------------------
  // HYPERVISOR_dm_op on `domid` (the target). Allowed for a privileged caller or one the toolstack
  // made a device model for the target (domctlSetTarget); never for the target itself.

  private dm<T>(caller: number, domid: number, fn: (c: Domain, d: Domain) => T | number): T | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    const d = this.hv.domains.getLive(domid);
    if (d === undefined) return err("ESRCH");
    if (!this.hv.ioreq.mayServe(c, d)) return err("EPERM");
    return fn(c, d);
  }

  /** XEN_DMOP_create_ioreq_server: the server id (ioservid_t), or -errno. */
  dmopCreateIoreqServer(caller: number, domid: number, handleBufioreq: number): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.create(c, d, handleBufioreq));
  }

  /** XEN_DMOP_get_ioreq_server_info: the buffered ring's port and each vCPU's ioreq port. */
  dmopGetIoreqServerInfo(caller: number, domid: number, id: number): IoreqServerInfo | number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.info(c, d, id));
  }

  /** XEN_DMOP_map_io_range_to_ioreq_server: [start, end] inclusive. */
  dmopMapIoRangeToIoreqServer(
    caller: number,
    domid: number,
    id: number,
    type: number,
    start: number,
    end: number,
  ): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.mapRange(c, d, id, type, start, end));
  }

  /** XEN_DMOP_unmap_io_range_from_ioreq_server. */
  dmopUnmapIoRangeFromIoreqServer(
    caller: number,
    domid: number,
    id: number,
    type: number,
    start: number,
    end: number,
  ): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.unmapRange(c, d, id, type, start, end));
  }

  /** XEN_DMOP_set_ioreq_server_state. */
  dmopSetIoreqServerState(caller: number, domid: number, id: number, enabled: boolean): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.setState(c, d, id, enabled));
  }

  /** XEN_DMOP_destroy_ioreq_server. */
  dmopDestroyIoreqServer(caller: number, domid: number, id: number): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.destroy(c, d, id));
  }

  /** XEN_DMOP_nr_vcpus. */
  dmopNrVcpus(caller: number, domid: number): number {
    return this.dm(caller, domid, (_c, d) => d.vcpus.length);
  }

  /**
   * XENMEM_acquire_resource for XENMEM_resource_ioreq_server: the machine frame of the server's
   * page `frame` (0 buffered, 1 ioreq), for the port layer to hand out as a view, or -errno.
   */
  acquireIoreqServerFrame(caller: number, domid: number, id: number, frame: number): number {
    return this.dm(caller, domid, (c, d) => this.hv.ioreq.acquireFrame(c, d, id, frame));
  }

  /** XEN_DOMCTL_set_target (Xenon: a set per device model): `domid` may serve `target` via dm_op. */
  domctlSetTarget(caller: number, domid: number, target: number, allowed = true): number {
    return this.ctl(caller, domid, (d) => {
      const t = this.hv.domains.getLive(target);
      if (t === undefined || t.domid === d.domid) return err("EINVAL");
      this.hv.ioreq.setDmTarget(d.domid, t.domid, allowed);
      return 0;
    });
  }

  // --- domctl / sysctl (control domain) --------------------------------------------------------
  // Every op needs the privileged (control) flag, else -EPERM, checked before anything else. The
  // domain field is a real domid (DOMID_SELF is not special, as in Xen). Ops that act on vCPUs,
  // pCPUs or cpupools go through hv.control (the scheduling layer) and are -ENOSYS without it.

  /** P2M pool frames for a domain made by XEN_DOMCTL_createdomain (enough for 256 MiB of RAM). */
  domctlP2mPoolPages = p2mPoolPagesFor(65536);

  /** The live privileged caller, or -ESRCH / -EPERM. */
  private controller(caller: number): Domain | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    return c.flags.privileged ? c : err("EPERM");
  }

  /** A privileged caller and a live target domain (-ESRCH). */
  private ctl(caller: number, domid: number, fn: (d: Domain, c: Domain) => number): number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    const d = this.hv.domains.getLive(domid);
    return d === undefined ? err("ESRCH") : fn(d, c);
  }

  /** XEN_DOMCTL_createdomain: the new domid. The domain starts paused, with no RAM allowance. */
  domctlCreateDomain(caller: number, cfg: DomctlCreateDomainConfig): number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    const ctl = this.hv.control;
    if (ctl === undefined) return err("ENOSYS");
    if (cfg === null || typeof cfg !== "object") return err("EINVAL");
    const { flags, grantOpts, maxVcpus, cpupoolId } = cfg;
    const required = DomctlCdf.hvm | DomctlCdf.hap;
    const optional = DomctlCdf.iommu | DomctlCdf.vpmu | DomctlCdf.xs_domain;
    if (!isU32(flags) || (flags & ~optional) !== required) return err("EINVAL");
    if (!isU32(grantOpts) || grantOpts & ~XEN_DOMCTL_GRANT_VERSION_MASK || grantOpts !== 1) return err("EINVAL");
    if (!isU32(cpupoolId) || !isU32(cfg.maxEvtchnPort)) return err("EINVAL");
    if (!Number.isInteger(cfg.maxGrantFrames) || !Number.isInteger(cfg.maxMaptrackFrames)) return err("EINVAL");
    const want = cfg.domid;
    const domid = want === undefined || want === 0 || want >= DOMID_FIRST_RESERVED ? undefined : want;
    const d = this.hv.domains.create({
      domid,
      name: typeof cfg.name === "string" ? cfg.name : undefined,
      maxVcpus,
      maxPages: 0,
      p2mPoolPages: this.domctlP2mPoolPages,
      flags: { xenstore: (flags & DomctlCdf.xs_domain) !== 0 },
      maxEvtchnPort: Math.min(cfg.maxEvtchnPort, 4095),
      maxGrantFrames: cfg.maxGrantFrames < 0 ? undefined : cfg.maxGrantFrames,
      maxMaptrackFrames: cfg.maxMaptrackFrames < 0 ? undefined : cfg.maxMaptrackFrames,
    });
    if (typeof d === "number") return d;
    const rc = ctl.domainCreated(d.domid, d.maxVcpus, cpupoolId);
    if (rc < 0) {
      this.hv.domains.destroy(d.domid);
      return rc;
    }
    return d.domid;
  }

  /** XEN_DOMCTL_destroydomain: not the caller itself (-EINVAL); a dying domain again is 0. */
  domctlDestroyDomain(caller: number, domid: number): number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    const d = this.hv.domains.get(domid);
    if (d === undefined) return err("ESRCH");
    if (d === c) return err("EINVAL");
    const wasDying = d.dying;
    if (!wasDying) {
      const pre = this.hv.control?.domainDestroying?.(domid) ?? 0;
      if (pre < 0) return pre;
    }
    // Xen's clear_global_virq_handlers: its VIRQs go back to the default handler.
    for (let v = 0; v < NR_VIRQS; v++) if (this.hv.globalVirqHandler(v) === d) this.hv.setGlobalVirqHandler(v, -1);
    const rc = this.hv.domains.destroy(domid);
    if (rc === 0 && !wasDying) this.hv.control?.domainDestroyed(domid);
    return rc;
  }

  /** XEN_DOMCTL_pausedomain: a counted pause by the controller (at most 255); not of itself. */
  domctlPauseDomain(caller: number, domid: number): number {
    return this.ctl(caller, domid, (d, c) => {
      if (d === c) return err("EINVAL");
      const ctl = this.hv.control;
      if (ctl === undefined) return err("ENOSYS");
      const first = !d.paused;
      const rc = d.pause();
      if (rc < 0 || !first) return rc;
      const r = ctl.pauseDomain(d.domid);
      if (r < 0) d.unpause();
      return Math.min(r, 0);
    });
  }

  /** XEN_DOMCTL_unpausedomain: undoes one pause (-EINVAL if not paused); the last one lets it run. */
  domctlUnpauseDomain(caller: number, domid: number): number {
    return this.ctl(caller, domid, (d) => {
      const ctl = this.hv.control;
      if (ctl === undefined) return err("ENOSYS");
      const rc = d.unpause();
      if (rc < 0 || d.paused) return rc;
      const r = ctl.unpauseDomain(d.domid);
      if (r < 0) d.pause();
      return Math.min(r, 0);
    });
  }

  /**
   * XEN_DOMCTL_getdomaininfo: the domain with the lowest id >= `domid` (Xen 4.17), dying ones
   * included. The XenStore domain may ask too (XSM_XS_PRIV): it watches for dying domains.
   */
  domctlGetDomainInfo(caller: number, domid: number): DomctlDomainInfo | number {
    const c = this.self(caller);
    if (c === undefined) return err("ESRCH");
    if (!c.flags.privileged && !c.flags.xenstore) return err("EPERM");
    if (!Number.isInteger(domid) || domid < 0 || domid >= DOMID_FIRST_RESERVED) return err("EINVAL");
    const d = this.hv.domains.list().find((x) => x.domid >= domid);
    return d === undefined ? err("ESRCH") : this.domctlInfoOf(d);
  }

  private domctlInfoOf(d: Domain): DomctlDomainInfo {
    const i = d.info();
    const ctl = this.hv.control;
    let cpupool = 0;
    let cpuTimeNs = 0;
    let flags = i.flags;
    let online = i.nrVcpus;
    if (ctl !== undefined) {
      const p = ctl.domainPool(d.domid);
      cpupool = typeof p === "number" ? CPUPOOLID_NONE : p.poolId;
      cpuTimeNs = ctl.domainCpuTimeNs?.(d.domid) ?? 0;
      const rs = typeof p === "number" ? undefined : ctl.domainRunState?.(d.domid);
      if (rs !== undefined) {
        // Xen: running/blocked describe the vCPUs, and only while one is online.
        flags &= ~(DomInf.running | DomInf.blocked);
        if (rs.online > 0 && rs.running) flags |= DomInf.running;
        if (rs.online > 0 && rs.blocked) flags |= DomInf.blocked;
        online = rs.online;
      }
    }
    return {
      domid: i.domid,
      flags: flags >>> 0,
      totPages: i.totPages,
      maxPages: i.maxPages,
      sharedInfoFrame: i.sharedInfoFrame,
      cpuTimeNs,
      nrOnlineVcpus: online,
      maxVcpuId: i.maxVcpuId,
      cpupool,
      gpaddrBits: 32,
    };
  }

  /** XEN_DOMCTL_max_mem: the RAM limit in KiB (rounded down to pages; at most 4 GiB, as a clamp). */
  domctlMaxMem(caller: number, domid: number, maxMemKb: number): number {
    return this.ctl(caller, domid, (d) => {
      if (typeof maxMemKb !== "number" || !(maxMemKb >= 0)) return err("EINVAL");
      return this.hv.domains.setMaxPages(d.domid, Math.min(Math.floor(maxMemKb / 4), 1 << GFN_BITS));
    });
  }

  /** XEN_DOMCTL_max_vcpus: vCPUs are made at creation, so only that count is accepted (as Xen). */
  domctlMaxVcpus(caller: number, domid: number, max: number): number {
    return this.ctl(caller, domid, (d, c) => (d === c || max !== d.maxVcpus ? err("EINVAL") : 0));
  }

  /**
   * XEN_DOMCTL_setvcpucontext: the target must be paused by the controller (-EBUSY otherwise;
   * Xen pauses the vCPU itself) and not the caller (-EINVAL); flags must be 0. The vCPU counts as
   * initialised afterwards (VCPUOP_up may start it). -EAGAIN while it is still mid-slice.
   */
  domctlSetVcpuContext(caller: number, domid: number, vcpu: number, ctx: VcpuStartContext, flags: number): number {
    return this.ctlVcpu(caller, domid, vcpu, (d) => {
      if (d.domid === caller || flags !== 0 || ctx.regs.length !== 32) return err("EINVAL");
      if (!d.paused) return err("EBUSY");
      const set = this.hv.control?.setVcpuContext;
      if (set === undefined) return err("ENOSYS");
      const rc = set.call(this.hv.control, d.domid, vcpu, ctx);
      if (rc === 0) d.vcpu(vcpu)!.initialised = true;
      return rc;
    });
  }

  /** XEN_DOMCTL_getvcpucontext: pc and registers of a vCPU of a paused domain (-EBUSY otherwise). */
  domctlGetVcpuContext(caller: number, domid: number, vcpu: number): VcpuStartContext | number {
    let out: VcpuStartContext | number = 0;
    const rc = this.ctlVcpu(caller, domid, vcpu, (d) => {
      if (d.domid === caller) return err("EINVAL");
      if (!d.paused) return err("EBUSY");
      const get = this.hv.control?.getVcpuContext;
      out = get === undefined ? err("ENOSYS") : get.call(this.hv.control, d.domid, vcpu);
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** Checks shared by the ops on one vCPU of a domain through the control hooks. */
  private ctlVcpu(caller: number, domid: number, vcpu: number, fn: (d: Domain) => number): number {
    return this.ctl(caller, domid, (d) => {
      if (this.hv.control === undefined) return err("ENOSYS");
      if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= d.maxVcpus) return err("EINVAL");
      return fn(d);
    });
  }

  /** XEN_DOMCTL_getvcpuinfo: online/blocked/running, pCPU time and pCPU of one vCPU. */
  domctlGetVcpuInfo(caller: number, domid: number, vcpu: number): DomctlVcpuInfo | number {
    let out: DomctlVcpuInfo | number = 0;
    const rc = this.ctlVcpu(caller, domid, vcpu, (d) => {
      const ctl = this.hv.control!;
      out = ctl.vcpuInfo === undefined ? err("ENOSYS") : ctl.vcpuInfo(d.domid, vcpu);
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /**
   * XEN_DOMCTL_set_virq_handler: the domain receives global `virq` (e.g. VIRQ_DOM_EXC for the
   * XenStore domain). Per-vCPU or unknown VIRQs are -EINVAL. A destroyed handler reverts to the default.
   */
  domctlSetVirqHandler(caller: number, domid: number, virq: number): number {
    return this.ctl(caller, domid, (d) => {
      if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS || virqIsPerVcpu(virq)) return err("EINVAL");
      this.hv.setGlobalVirqHandler(virq, d.domid);
      return 0;
    });
  }

  /** XEN_DOMCTL_getvcpuaffinity: the hard and soft masks as set (pCPU id lists). */
  domctlGetVcpuAffinity(caller: number, domid: number, vcpu: number): AffinityMasks | number {
    let out: AffinityMasks | number = 0;
    const rc = this.ctlVcpu(caller, domid, vcpu, (d) => {
      out = this.hv.control!.getAffinity(d.domid, vcpu);
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /**
   * XEN_DOMCTL_setvcpuaffinity: hard and/or soft (null = unchanged, at least one given). pCPU ids
   * above the host's highest are ignored, as bits beyond nr_cpu_ids are in Xen. Returns the
   * effective masks (hard ∩ pool, soft ∩ pool ∩ hard); -EINVAL if hard misses the pool.
   */
  domctlSetVcpuAffinity(
    caller: number,
    domid: number,
    vcpu: number,
    hard: readonly number[] | null,
    soft: readonly number[] | null,
  ): AffinityMasks | number {
    let out: AffinityMasks | number = 0;
    const rc = this.ctlVcpu(caller, domid, vcpu, (d) => {
      const ctl = this.hv.control!;
      const max = ctl.hostCpus().maxCpuId;
      const clean = (m: readonly number[] | null): number[] | null | undefined => {
        if (m === null) return null;
        if (!Array.isArray(m) || !m.every((x) => Number.isInteger(x) && x >= 0)) return undefined;
        return [...new Set(m.filter((x) => x <= max))].sort((a, b) => a - b);
      };
      const h = clean(hard);
      const s = clean(soft);
      if (h === undefined || s === undefined || (h === null && s === null)) return err("EINVAL");
      out = ctl.setAffinity(d.domid, vcpu, h, s);
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** The domain's scheduler, checked against the XEN_SCHEDULER_* id the caller named (-EINVAL). */
  private ctlSched(caller: number, domid: number, schedId: number, fn: (d: Domain) => number): number {
    return this.ctl(caller, domid, (d) => {
      const ctl = this.hv.control;
      if (ctl === undefined) return err("ENOSYS");
      const pool = ctl.domainPool(d.domid);
      if (typeof pool === "number") return pool;
      return pool.schedId === schedId ? fn(d) : err("EINVAL");
    });
  }

  /**
   * The checks every scheduler_op makes before touching an element: privilege, target, hooks,
   * the named scheduler is the domain's; per-vCPU ops need RTDS (-EINVAL otherwise, as in Xen).
   */
  domctlSchedCheck(caller: number, domid: number, schedId: number, perVcpu: boolean): number {
    return this.ctlSched(caller, domid, schedId, () => (perVcpu && schedId !== XEN_SCHEDULER.rtds ? err("EINVAL") : 0));
  }

  /** XEN_DOMCTL_SCHEDOP_getinfo: credit2 {weight, cap}; RTDS vCPU 0's {period, budget, extratime}. */
  domctlSchedGetInfo(caller: number, domid: number, schedId: number): SchedParams | number {
    let out: SchedParams | number = 0;
    const rc = this.ctlSched(caller, domid, schedId, (d) => {
      const r = this.hv.control!.getSchedParams(d.domid);
      out = typeof r === "number" ? r : r.params;
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** XEN_DOMCTL_SCHEDOP_putinfo: for every vCPU (credit2 weight 0 = unchanged, cap 0 = uncapped). */
  domctlSchedPutInfo(caller: number, domid: number, schedId: number, p: SchedParamsUpdate): number {
    return this.ctlSched(caller, domid, schedId, (d) =>
      validSchedUpdate(p, schedId) ? this.hv.control!.setSchedParams(d.domid, p) : err("EINVAL"),
    );
  }

  /** XEN_DOMCTL_SCHEDOP_getvcpuinfo: RTDS only (other schedulers -EINVAL, as in Xen). */
  domctlSchedGetVcpuInfo(caller: number, domid: number, schedId: number, vcpu: number): SchedParams | number {
    let out: SchedParams | number = 0;
    const rc = this.ctlSched(caller, domid, schedId, (d) => {
      if (schedId !== XEN_SCHEDULER.rtds) return err("EINVAL");
      if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= d.maxVcpus) return err("EINVAL");
      const r = this.hv.control!.getVcpuSchedParams(d.domid, vcpu);
      out = typeof r === "number" ? r : r.params;
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** XEN_DOMCTL_SCHEDOP_putvcpuinfo: RTDS only. */
  domctlSchedPutVcpuInfo(caller: number, domid: number, schedId: number, vcpu: number, p: SchedParamsUpdate): number {
    return this.ctlSched(caller, domid, schedId, (d) => {
      if (schedId !== XEN_SCHEDULER.rtds || !validSchedUpdate(p, schedId)) return err("EINVAL");
      if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= d.maxVcpus) return err("EINVAL");
      return this.hv.control!.setVcpuSchedParams(d.domid, vcpu, p);
    });
  }

  /** The host's pCPU bitmap width (Xen's nr_cpu_ids) for xenctl_bitmaps, or -ENOSYS without hooks. */
  controlNrCpuIds(): number {
    const ctl = this.hv.control;
    return ctl === undefined ? err("ENOSYS") : ctl.hostCpus().maxCpuId + 1;
  }

  /** XEN_SYSCTL_physinfo. Memory comes from the frame allocator; pCPU facts from the hooks (0 without). */
  sysctlPhysinfo(caller: number): PhysInfo | number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    const cpus = this.hv.control?.hostCpus() ?? { nrCpus: 0, maxCpuId: 0, cpuKhz: 0 };
    const total = this.hv.memory.totalFrames;
    return {
      nrCpus: cpus.nrCpus,
      maxCpuId: cpus.maxCpuId,
      cpuKhz: cpus.cpuKhz,
      capabilities: PhysCap.hvm | PhysCap.hap | PhysCap.gnttab_v1,
      totalPages: total,
      freePages: this.hv.allocator.freeFrames,
      maxMfn: total - 1,
    };
  }

  /** XEN_SYSCTL_sched_id: the default (pool 0) scheduler's XEN_SCHEDULER_* id. */
  sysctlSchedId(caller: number): number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    return this.hv.control?.schedId() ?? err("ENOSYS");
  }

  /** XEN_SYSCTL_getdomaininfolist: up to `max` domains with id >= `first`, lowest first. */
  sysctlGetDomainInfoList(caller: number, first: number, max: number): DomctlDomainInfo[] | number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    if (!Number.isInteger(first) || first < 0 || !Number.isInteger(max) || max < 0) return err("EINVAL");
    return this.hv.domains
      .list()
      .filter((d) => d.domid >= first)
      .slice(0, max)
      .map((d) => this.domctlInfoOf(d));
  }

  /** Privileged caller + hooks, u32 arguments (-EINVAL otherwise). */
  private pool(
    caller: number,
    args: readonly number[],
    fn: (ctl: NonNullable<Hypervisor["control"]>) => number,
  ): number {
    const c = this.controller(caller);
    if (typeof c === "number") return c;
    const ctl = this.hv.control;
    if (ctl === undefined) return err("ENOSYS");
    return args.every(isU32) ? fn(ctl) : err("EINVAL");
  }

  /** XEN_SYSCTL_CPUPOOL_OP_CREATE: the new pool's id (`poolId` PAR_ANY = pick). -EEXIST, -ENOENT (scheduler). */
  sysctlCpupoolCreate(caller: number, poolId: number, schedId: number): number {
    return this.pool(caller, [poolId, schedId], (ctl) => ctl.cpupoolCreate(poolId, schedId));
  }

  /** XEN_SYSCTL_CPUPOOL_OP_DESTROY: -EBUSY while it has domains or pCPUs (and for pool 0). */
  sysctlCpupoolDestroy(caller: number, poolId: number): number {
    return this.pool(caller, [poolId], (ctl) => ctl.cpupoolDestroy(poolId));
  }

  /** XEN_SYSCTL_CPUPOOL_OP_INFO: the pool with the lowest id >= poolId, or -ENOENT. */
  sysctlCpupoolInfo(caller: number, poolId: number): CpupoolInfoResult | number {
    let out: CpupoolInfoResult | number = 0;
    const rc = this.pool(caller, [poolId], (ctl) => {
      out = ctl.cpupoolInfo(poolId);
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** XEN_SYSCTL_CPUPOOL_OP_ADDCPU (`cpu` PAR_ANY = the first free pCPU). */
  sysctlCpupoolAddCpu(caller: number, poolId: number, cpu: number): number {
    return this.pool(caller, [poolId, cpu], (ctl) => ctl.cpupoolAddCpu(poolId, cpu));
  }

  /** XEN_SYSCTL_CPUPOOL_OP_RMCPU (`cpu` PAR_ANY = the pool's last pCPU). -EAGAIN: retry later. */
  sysctlCpupoolRemoveCpu(caller: number, poolId: number, cpu: number): number {
    return this.pool(caller, [poolId, cpu], (ctl) => ctl.cpupoolRemoveCpu(poolId, cpu));
  }

  /** XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN: -ESRCH no such domain, -EPERM the caller itself. */
  sysctlCpupoolMoveDomain(caller: number, poolId: number, domid: number): number {
    return this.pool(caller, [poolId, domid], (ctl) => {
      const d = this.hv.domains.getLive(domid);
      if (d === undefined) return err("ESRCH");
      if (d.domid === caller) return err("EPERM");
      return ctl.cpupoolMoveDomain(poolId, domid);
    });
  }

  /** XEN_SYSCTL_CPUPOOL_OP_FREEINFO: pCPUs in no pool. */
  sysctlCpupoolFreeInfo(caller: number): readonly number[] | number {
    let out: readonly number[] = [];
    const rc = this.pool(caller, [], (ctl) => {
      out = ctl.cpupoolFreeCpus();
      return 0;
    });
    return rc < 0 ? rc : out;
  }

  /** XEN_SYSCTL_scheduler_op getinfo: a pool's scheduler-wide parameters (-ESRCH no pool, -EINVAL wrong scheduler). */
  sysctlSchedGetPoolParams(caller: number, poolId: number, schedId: number): PoolParams | number {
    let out: PoolParams | number = 0;
    const rc = this.pool(caller, [poolId, schedId], (ctl) => {
      const r = ctl.getPoolParams(poolId);
      out = typeof r === "number" ? r : r.schedId === schedId ? r.params : err("EINVAL");
      return typeof out === "number" ? out : 0;
    });
    return rc < 0 ? rc : out;
  }

  /** XEN_SYSCTL_scheduler_op putinfo: credit2 ratelimit_us (0, or 100..500000). */
  sysctlSchedPutPoolParams(caller: number, poolId: number, schedId: number, p: PoolParamsUpdate): number {
    return this.pool(caller, [poolId, schedId], (ctl) => {
      const r = ctl.getPoolParams(poolId);
      if (typeof r === "number") return r;
      if (r.schedId !== schedId || p === null || typeof p !== "object" || p.kind !== schedKind(schedId)) {
        return err("EINVAL");
      }
      return ctl.setPoolParams(poolId, p);
    });
  }
}

function isU32(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

/** The scheduler name behind a XEN_SCHEDULER_* id (credit and arinc653 are not modelled). */
export function schedKind(schedId: number): SchedName | undefined {
  switch (schedId) {
    case XEN_SCHEDULER.credit2:
      return "credit2";
    case XEN_SCHEDULER.rtds:
      return "rtds";
    case XEN_SCHEDULER.null:
      return "null";
    default:
      return undefined;
  }
}

/** A parameter update of the right kind whose fields are integers (range checks are the scheduler's). */
function validSchedUpdate(p: SchedParamsUpdate, schedId: number): boolean {
  if (p === null || typeof p !== "object" || p.kind !== schedKind(schedId)) return false;
  const ints = (...v: unknown[]) => v.every((x) => x === undefined || Number.isInteger(x));
  if (p.kind === "credit2") return ints(p.weight, p.cap);
  if (p.kind === "rtds")
    return ints(p.periodUs, p.budgetUs) && (p.extratime === undefined || typeof p.extratime === "boolean");
  return true;
}
