import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { BITS_PER_EVTCHN_WORD } from "../public/event_channel.js";
import { evtchnMask, evtchnPending, type SharedRegion, selTestAndSet, upcallTestAndSet } from "../shared_info.js";
import type { Vcpu } from "../vcpu.js";

/**
 * The 2-level event-channel ABI (Xen's event_2l.c) over a domain's shared_info and its vCPUs'
 * vcpu_info blocks. All bit updates are atomic read-modify-writes on the shared words, because
 * the guest clears pending bits and selector words concurrently from its own thread.
 *
 * The bit work is done by the region-level functions (set2lBits, unmask2lBits), which touch only
 * shared memory: the core and the pCPU workers' fast path (pcpu/fast_events.ts) both call them,
 * so there is one implementation of the order of updates. The Domain-level wrappers add the
 * core's hooks.
 */

/** What set2lBits did: the port was already pending / became pending / and raised the upcall (0 -> 1). */
export const Set2l = { alreadyPending: 0, pending: 1, upcall: 2 } as const;
export type Set2l = (typeof Set2l)[keyof typeof Set2l];

/**
 * Xen's evtchn_2l_set_pending on raw regions, in Xen's strict order: pending bit (stop if already
 * set: the edge was delivered), then, if the port is not masked, the selector bit, then
 * evtchn_upcall_pending. The caller raises the upcall hook on Set2l.upcall.
 */
export function set2lBits(shared: SharedRegion, vcpuInfo: SharedRegion, port: number): Set2l {
  if (evtchnPending.testAndSet(shared, port)) return Set2l.alreadyPending;
  if (
    !evtchnMask.test(shared, port) &&
    !selTestAndSet(vcpuInfo, Math.floor(port / BITS_PER_EVTCHN_WORD)) &&
    !upcallTestAndSet(vcpuInfo)
  ) {
    return Set2l.upcall;
  }
  return Set2l.pending;
}

/**
 * EVTCHNOP_unmask's bit work on raw regions: clears the mask and, if the port is pending,
 * re-delivers it (selector, then upcall), since the edge that arrived while masked raised no
 * upcall. True when evtchn_upcall_pending went 0 -> 1 (the caller raises the upcall hook).
 */
export function unmask2lBits(shared: SharedRegion, vcpuInfo: SharedRegion, port: number): boolean {
  return (
    evtchnMask.testAndClear(shared, port) &&
    evtchnPending.test(shared, port) &&
    !selTestAndSet(vcpuInfo, Math.floor(port / BITS_PER_EVTCHN_WORD)) &&
    !upcallTestAndSet(vcpuInfo)
  );
}

/** Xen's vcpu_mark_events_pending: raise the upcall once per 0 -> 1 edge of upcall_pending. */
export function markEventsPending(hv: Hypervisor, d: Domain, v: Vcpu): void {
  if (!upcallTestAndSet(v.vcpuInfo)) hv.hooks.upcall?.(d.domid, v.id);
}

/**
 * Sets `port` pending for domain d and notifies vCPU v (Xen's evtchn_2l_set_pending, see
 * set2lBits). Pollers are told about every new edge (core path only: the workers' fast path
 * reports upcall edges, not ports).
 */
export function setPending2l(hv: Hypervisor, d: Domain, v: Vcpu, port: number): void {
  const r = set2lBits(d.sharedInfo, v.vcpuInfo, port);
  if (r === Set2l.alreadyPending) return;
  if (r === Set2l.upcall) hv.hooks.upcall?.(d.domid, v.id);
  hv.hooks.portPending?.(d.domid, v.id, port);
}

/** Clears a port's pending bit (a freed port must not fire when it is bound again). */
export function clearPending2l(d: Domain, port: number): void {
  evtchnPending.testAndClear(d.sharedInfo, port);
}

/** EVTCHNOP_unmask on domain d's port, notifying vCPU v (see unmask2lBits). */
export function unmask2l(hv: Hypervisor, d: Domain, v: Vcpu, port: number): void {
  if (unmask2lBits(d.sharedInfo, v.vcpuInfo, port)) hv.hooks.upcall?.(d.domid, v.id);
}

export function isPending2l(d: Domain, port: number): boolean {
  return evtchnPending.test(d.sharedInfo, port);
}

export function isMasked2l(d: Domain, port: number): boolean {
  return evtchnMask.test(d.sharedInfo, port);
}
