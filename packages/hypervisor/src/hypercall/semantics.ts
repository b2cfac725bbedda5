import type { Domain } from "../domain.js";
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
import {
  addToPhysmap,
  currentReservation,
  decreaseReservation,
  maximumReservation,
  populatePhysmap,
  removeFromPhysmap,
} from "../memory.js";
import { err } from "../public/errno.js";
import { Gntst, type GntstCode } from "../public/grant_table.js";
import {
  DOMID_SELF,
  HVM_NR_PARAMS,
  HvmParam,
  SHUTDOWN_MAX,
  XEN_EXTRAVERSION,
  XEN_MAJOR,
  XEN_MINOR,
  XENFEAT_NR_SUBMAPS,
  XenFeat,
} from "../public/xen.js";
import { upcallPending } from "../shared_info.js";
import { registerVcpuInfo } from "../vcpu_op.js";

/** The most ports one SCHEDOP_poll may name (Xen's limit). */
export const SCHED_POLL_MAX_PORTS = 128;

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
}
