/**
 * The end of a request for a device model working on grant views (a thread-mode driver domain),
 * in one port message instead of three crossings: unmap the request's grants, then store the new
 * 16-bit ring index into a frame the caller holds mapped writable (its used ring), then send on
 * its event channel. The order is the point: the frontend may end its grants as soon as it sees
 * the index, so the unmaps come first; the interrupt comes last, after the index is visible.
 *
 * The send may be conditional on what the frontend asked for, read after the store as VirtIO's
 * notification suppression wants (§2.7.7.2: write the index, then read used_event): with `when`
 * = [handle, offset, old] the 16-bit used_event at that offset of a frame the caller holds mapped
 * decides (sent iff it lies in [old, new), VIRTIO_F_EVENT_IDX); with old = -1 the 16-bit flags
 * word there does (sent unless VIRTQ_AVAIL_F_NO_INTERRUPT). A device model deciding before its
 * call would race a frontend that moves used_event while the call is under way.
 *
 * Nothing here reaches more than the caller could by itself: the store and the read go through
 * the caller's own view mappings (its maptrack handles), the send through its own port.
 */
import type { Hypervisor } from "../../hypervisor.js";
import { err } from "../../public/errno.js";
import { Gntst } from "../../public/grant_table.js";

/** Where the index goes: [maptrack handle of a writable view, offset in that frame (even), value]. */
export type PublishAt = readonly [number, number, number];

/** When to send: [handle, offset, old] (EVENT_IDX rule, old >= 0; flags rule, old = -1). */
export type SendWhen = readonly [number, number, number];

export interface UnmapPublishResult {
  /** GNTST status of each unmap, in order. */
  readonly unmapped: number[];
  /** 0, or a GNTST code for a handle that is not a live writable view / a bad offset. */
  readonly published: number;
  /**
   * 1 sent, 0 not sent (no port, or `when` said no), -errno: the send failed or was refused (a
   * failed store, a bad `when`).
   */
  readonly sent: number;
}

const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;

/** The 16-bit word at `offset` of the frame the caller maps under `handle`, or a GNTST code (< 0). */
function word(hv: Hypervisor, caller: number, handle: number, offset: number, writable: boolean): Uint16Array | number {
  const e = hv.domains.get(caller)?.maptrack.get(handle);
  if (e === undefined) return Gntst.bad_handle;
  if (e.kind !== "view" || (writable && e.readonly)) return Gntst.permission_denied;
  if (!Number.isInteger(offset) || offset < 0 || offset > 4094 || (offset & 1) !== 0) return Gntst.general_error;
  return new Uint16Array(hv.memory.chunk(e.mfn).buffer, hv.memory.frameOffset(e.mfn) + offset, 1);
}

export function unmapPublishSend(
  hv: Hypervisor,
  caller: number,
  handles: readonly number[],
  at: PublishAt | null,
  port: number,
  when: SendWhen | null = null,
): UnmapPublishResult {
  const s = hv.hypercalls;
  const unmapped = handles.map((h) => s.gnttabUnmapGrantRef(caller, { hostAddr: 0, devBusAddr: 0, handle: h }));
  let published = 0;
  if (at !== null) {
    const w = word(hv, caller, at[0], at[1], true);
    if (typeof w === "number") published = w;
    else Atomics.store(w, 0, at[2] & 0xffff);
  }
  if (port < 0) return { unmapped, published, sent: 0 };
  // No send after a failed store: the interrupt would announce an index that is not there.
  if (published !== 0) return { unmapped, published, sent: err("EINVAL") };
  if (when !== null) {
    const w = word(hv, caller, when[0], when[1], false);
    if (typeof w === "number" || at === null) return { unmapped, published, sent: err("EINVAL") };
    const v = Atomics.load(w, 0);
    const now = at[2] & 0xffff;
    const old = when[2];
    const wanted = old < 0 ? (v & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0 : ((now - v - 1) & 0xffff) < ((now - old) & 0xffff);
    if (!wanted) return { unmapped, published, sent: 0 };
  }
  const rc = s.evtchnSend(caller, port);
  return { unmapped, published, sent: rc < 0 ? rc : 1 };
}
