import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { BITS_PER_EVTCHN_WORD } from "../public/event_channel.js";
import { evtchnMask, evtchnPending, selTestAndSet, upcallTestAndSet } from "../shared_info.js";
import type { Vcpu } from "../vcpu.js";

/**
 * The 2-level event-channel ABI (Xen's event_2l.c) over a domain's shared_info and its vCPUs'
 * vcpu_info blocks. All bit updates are atomic read-modify-writes on the shared words, because
 * the guest clears pending bits and selector words concurrently from its own thread.
 */

/** Xen's vcpu_mark_events_pending: raise the upcall once per 0 -> 1 edge of upcall_pending. */
export function markEventsPending(hv: Hypervisor, d: Domain, v: Vcpu): void {
  if (!upcallTestAndSet(v.vcpuInfo)) hv.hooks.upcall?.(d.domid, v.id);
}

/**
 * Sets `port` pending for domain d and notifies vCPU v (Xen's evtchn_2l_set_pending), in Xen's
 * strict order: pending bit (stop if already set: the edge was delivered), then, if the port is
 * not masked, the selector bit and the upcall. Pollers are told about every new edge.
 */
export function setPending2l(hv: Hypervisor, d: Domain, v: Vcpu, port: number): void {
  if (evtchnPending.testAndSet(d.sharedInfo, port)) return;
  if (!evtchnMask.test(d.sharedInfo, port) && !selTestAndSet(v.vcpuInfo, Math.floor(port / BITS_PER_EVTCHN_WORD))) {
    markEventsPending(hv, d, v);
  }
  hv.hooks.portPending?.(d.domid, v.id, port);
}

/** Clears a port's pending bit (a freed port must not fire when it is bound again). */
export function clearPending2l(d: Domain, port: number): void {
  evtchnPending.testAndClear(d.sharedInfo, port);
}

/**
 * EVTCHNOP_unmask: clears the mask and, if the port is pending, re-delivers it, since the edge
 * that arrived while masked raised no upcall.
 */
export function unmask2l(hv: Hypervisor, d: Domain, v: Vcpu, port: number): void {
  if (
    evtchnMask.testAndClear(d.sharedInfo, port) &&
    evtchnPending.test(d.sharedInfo, port) &&
    !selTestAndSet(v.vcpuInfo, Math.floor(port / BITS_PER_EVTCHN_WORD))
  ) {
    markEventsPending(hv, d, v);
  }
}

export function isPending2l(d: Domain, port: number): boolean {
  return evtchnPending.test(d.sharedInfo, port);
}

export function isMasked2l(d: Domain, port: number): boolean {
  return evtchnMask.test(d.sharedInfo, port);
}
