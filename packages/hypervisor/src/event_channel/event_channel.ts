import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { err } from "../public/errno.js";
import { EvtchnStat } from "../public/event_channel.js";
import { NR_VIRQS, virqIsPerVcpu } from "../public/xen.js";
import type { Vcpu } from "../vcpu.js";
import { clearPending2l, setPending2l, unmask2l } from "./event_2l.js";
import { Ecs } from "./port_table.js";

/**
 * Event-channel operations (Xen's xen/common/event_channel.c) on resolved domains. Domid
 * resolution and privilege checks are done by the caller (hypercall/semantics.ts). Results are a
 * port / 0, or a negative errno with Xen's conventions: bad port or wrong state -EINVAL, no free
 * port -ENOSPC, requested port busy -EBUSY, VIRQ already bound -EEXIST, no such vCPU -ENOENT.
 */

/** Either the lowest free port, or `requested` (static event channels) if it is free. */
function takePort(d: Domain, requested: number | undefined): number {
  if (requested === undefined) return d.evtchn.findFree();
  if (requested === 0 || !d.evtchn.isValid(requested)) return err("EINVAL");
  return d.evtchn.state(requested) === Ecs.free ? requested : err("EBUSY");
}

/** Sets `port` of d pending towards the port's notify vCPU. */
function notifyPort(hv: Hypervisor, d: Domain, port: number): void {
  const v = d.vcpu(d.evtchn.notifyVcpu(port)) ?? d.vcpus[0]!;
  setPending2l(hv, d, v, port);
}

/**
 * Xen's alloc_unbound_xen_event_channel: a port of d, consumed by the hypervisor, that
 * `remoteDomid` may bind to; sends from the peer reach hv.ioreq.consumerNotify, not d.
 */
export function evtchnAllocXenConsumer(d: Domain, vcpuId: number, remoteDomid: number): number {
  if (d.dying) return err("EINVAL");
  const port = d.evtchn.findFree();
  if (port < 0) return port;
  d.evtchn.bind(port, Ecs.unbound, vcpuId, remoteDomid, 0, true);
  return port;
}

/** Xen's notify_via_xen_event_channel: the core signals the peer of its own port (if bound). */
export function notifyViaXenEventChannel(hv: Hypervisor, d: Domain, port: number): void {
  if (!d.evtchn.isValid(port) || d.evtchn.state(port) !== Ecs.interdomain) return;
  const rd = hv.domains.getLive(d.evtchn.u1(port));
  const rport = d.evtchn.u2(port);
  if (rd?.evtchn.isValid(rport) && rd.evtchn.state(rport) === Ecs.interdomain) notifyPort(hv, rd, rport);
}

/** EVTCHNOP_alloc_unbound: a new port of d that only `remoteDomid` may bind to. */
export function evtchnAllocUnbound(d: Domain, remoteDomid: number, requested?: number): number {
  if (d.dying) return err("EINVAL");
  const port = takePort(d, requested);
  if (port < 0) return port;
  d.evtchn.bind(port, Ecs.unbound, 0, remoteDomid, 0);
  return port;
}

/**
 * EVTCHNOP_bind_interdomain: connects a new port of ld to rd's unbound `rport`, which must have
 * been allocated for ld. The new local port is set pending, as Xen does, so a notification sent
 * before the bind is not lost.
 */
export function evtchnBindInterdomain(
  hv: Hypervisor,
  ld: Domain,
  rd: Domain,
  rport: number,
  requested?: number,
): number {
  if (ld.dying || rd.dying) return err("EINVAL");
  if (!rd.evtchn.isValid(rport)) return err("EINVAL");
  if (rd.evtchn.state(rport) !== Ecs.unbound || rd.evtchn.u1(rport) !== ld.domid) return err("EINVAL");
  const lport = takePort(ld, requested);
  if (lport < 0) return lport;
  ld.evtchn.bind(lport, Ecs.interdomain, 0, rd.domid, rport);
  // A hypervisor-consumed port (an ioreq server's) stays one when its emulator binds to it.
  rd.evtchn.bind(rport, Ecs.interdomain, rd.evtchn.notifyVcpu(rport), ld.domid, lport, rd.evtchn.isXenConsumer(rport));
  notifyPort(hv, ld, lport);
  return lport;
}

/**
 * EVTCHNOP_bind_virq. Global VIRQs must be bound on vCPU 0 (bind_vcpu may move them later);
 * per-vCPU VIRQs get one port per (vCPU, VIRQ), fixed to that vCPU.
 */
export function evtchnBindVirq(d: Domain, virq: number, vcpuId: number): number {
  if (d.dying) return err("EINVAL");
  if (!Number.isInteger(virq) || virq < 0 || virq >= NR_VIRQS) return err("EINVAL");
  if (!virqIsPerVcpu(virq) && vcpuId !== 0) return err("EINVAL");
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (v.virqPorts[virq] !== 0) return err("EEXIST");
  const port = d.evtchn.findFree();
  if (port < 0) return port;
  d.evtchn.bind(port, Ecs.virq, v.id, virq, 0);
  v.virqPorts[virq] = port;
  return port;
}

/** EVTCHNOP_bind_ipi: a port that notifies vCPU `vcpuId` of the same domain. */
export function evtchnBindIpi(d: Domain, vcpuId: number): number {
  if (d.dying) return err("EINVAL");
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  const port = d.evtchn.findFree();
  if (port < 0) return port;
  d.evtchn.bind(port, Ecs.ipi, v.id, 0, 0);
  return port;
}

/**
 * A passed-through device's interrupt line as d's port `port` (state pirq, number `pirq`): the
 * guest's tree names the port as the device's `interrupts` cell, as for virtio devices, and the
 * core raises it with evtchnRaisePirq. Port taken at build time, like a static event channel.
 */
export function evtchnBindPirq(d: Domain, port: number, pirq: number): number {
  if (d.dying) return err("EINVAL");
  const p = takePort(d, port);
  if (p < 0) return p;
  d.evtchn.bind(p, Ecs.pirq, 0, pirq, 0);
  return p;
}

/** The device behind d's pirq port raised its interrupt. */
export function evtchnRaisePirq(hv: Hypervisor, d: Domain, port: number): void {
  if (d.dying || !d.evtchn.isValid(port) || d.evtchn.state(port) !== Ecs.pirq) return;
  notifyPort(hv, d, port);
}

/**
 * Host side: frees d's `port` if it is unbound (a domain restored here keeps its interdomain ends
 * unbound, naming backends that stayed behind; the toolstack frees one before binding it to the
 * new backend with evtchnBindStatic). Any other state is left alone: -EINVAL.
 */
export function evtchnCloseUnbound(hv: Hypervisor, d: Domain, port: number): number {
  if (!d.evtchn.isValid(port) || d.evtchn.state(port) !== Ecs.unbound) return err("EINVAL");
  return evtchnClose(hv, d, port);
}

/**
 * EVTCHNOP_close. An interdomain peer reverts to unbound (still reserved for this domain, so it
 * can be re-bound); the freed port loses its pending bit. `force` lets the core close ports owned
 * by its own consumers (domain destruction, reset).
 */
export function evtchnClose(hv: Hypervisor, d: Domain, port: number, force = false): number {
  if (!d.evtchn.isValid(port)) return err("EINVAL");
  const state = d.evtchn.state(port);
  if (state === Ecs.free || state === Ecs.reserved) return err("EINVAL");
  if (d.evtchn.isXenConsumer(port) && !force) return err("EINVAL");
  switch (state) {
    case Ecs.interdomain: {
      const rd = hv.domains.get(d.evtchn.u1(port));
      const rport = d.evtchn.u2(port);
      if (
        rd?.evtchn.isValid(rport) &&
        rd.evtchn.state(rport) === Ecs.interdomain &&
        rd.evtchn.u1(rport) === d.domid &&
        rd.evtchn.u2(rport) === port
      ) {
        rd.evtchn.bind(rport, Ecs.unbound, rd.evtchn.notifyVcpu(rport), d.domid, 0, rd.evtchn.isXenConsumer(rport));
      }
      break;
    }
    case Ecs.virq: {
      const virq = d.evtchn.u1(port);
      for (const v of d.vcpus) if (v.virqPorts[virq] === port) v.virqPorts[virq] = 0;
      break;
    }
    default:
      break;
  }
  d.evtchn.free(port);
  clearPending2l(d, port);
  return 0;
}

/**
 * EVTCHNOP_send: interdomain -> the peer's port goes pending; IPI -> this domain's port goes
 * pending; unbound -> silently dropped (0); anything else -EINVAL.
 */
export function evtchnSend(hv: Hypervisor, d: Domain, port: number): number {
  if (!d.evtchn.isValid(port)) return err("EINVAL");
  if (d.evtchn.isXenConsumer(port)) return err("EINVAL");
  switch (d.evtchn.state(port)) {
    case Ecs.interdomain: {
      const rd = hv.domains.getLive(d.evtchn.u1(port));
      if (rd !== undefined) {
        const rport = d.evtchn.u2(port);
        if (rd.evtchn.isValid(rport) && rd.evtchn.state(rport) === Ecs.interdomain) {
          // A port the hypervisor consumes (ioreq server) calls the core instead of the guest.
          if (rd.evtchn.isXenConsumer(rport)) hv.ioreq.consumerNotify(rd, rport);
          else notifyPort(hv, rd, rport);
        }
      }
      return 0;
    }
    case Ecs.ipi:
      notifyPort(hv, d, port);
      return 0;
    case Ecs.unbound:
      return 0;
    default:
      return err("EINVAL");
  }
}

/** What EVTCHNOP_status reports. */
export interface EvtchnStatusInfo {
  readonly status: number;
  readonly vcpu: number;
  /** unbound / interdomain: the remote domain. */
  readonly dom?: number;
  /** interdomain: the remote port. */
  readonly port?: number;
  readonly virq?: number;
}

export function evtchnStatus(d: Domain, port: number): EvtchnStatusInfo | number {
  if (!d.evtchn.isValid(port)) return err("EINVAL");
  const vcpu = d.evtchn.notifyVcpu(port);
  switch (d.evtchn.state(port)) {
    case Ecs.unbound:
      return { status: EvtchnStat.unbound, vcpu, dom: d.evtchn.u1(port) };
    case Ecs.interdomain:
      return { status: EvtchnStat.interdomain, vcpu, dom: d.evtchn.u1(port), port: d.evtchn.u2(port) };
    case Ecs.virq:
      return { status: EvtchnStat.virq, vcpu, virq: d.evtchn.u1(port) };
    case Ecs.ipi:
      return { status: EvtchnStat.ipi, vcpu };
    case Ecs.pirq:
      return { status: EvtchnStat.pirq, vcpu };
    default:
      return { status: EvtchnStat.closed, vcpu: 0 };
  }
}

/**
 * EVTCHNOP_bind_vcpu: moves notifications of an unbound, interdomain or global-VIRQ port to
 * another vCPU. IPI and per-vCPU VIRQ ports are fixed (-EINVAL).
 */
export function evtchnBindVcpu(d: Domain, port: number, vcpuId: number): number {
  const v = d.vcpu(vcpuId);
  if (v === undefined) return err("ENOENT");
  if (!d.evtchn.isValid(port)) return err("EINVAL");
  switch (d.evtchn.state(port)) {
    case Ecs.virq:
      if (virqIsPerVcpu(d.evtchn.u1(port))) return err("EINVAL");
      break;
    case Ecs.unbound:
    case Ecs.interdomain:
    case Ecs.pirq:
      break;
    default:
      return err("EINVAL");
  }
  d.evtchn.setNotifyVcpu(port, v.id);
  return 0;
}

/** EVTCHNOP_unmask: clears the mask; a port that went pending while masked raises the upcall now. */
export function evtchnUnmask(hv: Hypervisor, d: Domain, port: number): number {
  if (!d.evtchn.isValid(port)) return err("EINVAL");
  const v = d.vcpu(d.evtchn.notifyVcpu(port)) ?? d.vcpus[0]!;
  unmask2l(hv, d, v, port);
  return 0;
}

/** EVTCHNOP_reset: closes every port of d. */
export function evtchnReset(hv: Hypervisor, d: Domain): number {
  for (const port of d.evtchn.boundPorts()) if (d.evtchn.state(port) !== Ecs.reserved) evtchnClose(hv, d, port, true);
  return 0;
}

/** Domain destruction: every port closed, peers left unbound. */
export function evtchnDestroy(hv: Hypervisor, d: Domain): void {
  evtchnReset(hv, d);
}

/** Raises per-vCPU `virq` on vCPU v of d (Xen's send_guest_vcpu_virq), e.g. VIRQ_TIMER. */
export function sendGuestVirq(hv: Hypervisor, d: Domain, v: Vcpu, virq: number): void {
  const port = v.virqPorts[virq] ?? 0;
  if (port !== 0 && !d.dying) setPending2l(hv, d, v, port);
}

/** Raises global `virq` in the domain that handles it (Xen's send_global_virq), e.g. VIRQ_DOM_EXC. */
export function sendGlobalVirq(hv: Hypervisor, virq: number): void {
  const d = hv.globalVirqHandler(virq);
  if (d === undefined || d.dying) return;
  const port = d.vcpus[0]!.virqPorts[virq] ?? 0;
  if (port !== 0) notifyPort(hv, d, port);
}

/**
 * A static interdomain channel (dom0less `xen,evtchn-v1`): `lport` of ld connected to `rport`
 * of rd, both numbers chosen by the device tree. Made at boot, before either domain runs; unlike
 * a guest bind, the new local port is not set pending. Returns 0 or the errno of whichever half
 * failed (-EBUSY for a port already in use), leaving nothing half-bound.
 */
export function evtchnBindStatic(ld: Domain, lport: number, rd: Domain, rport: number): number {
  if (ld.dying || rd.dying) return err("EINVAL");
  if (ld === rd && lport === rport) return err("EINVAL");
  const r = takePort(rd, rport);
  if (r < 0) return r;
  const l = takePort(ld, lport);
  if (l < 0) return l;
  rd.evtchn.bind(rport, Ecs.interdomain, 0, ld.domid, lport);
  ld.evtchn.bind(lport, Ecs.interdomain, 0, rd.domid, rport);
  return 0;
}
