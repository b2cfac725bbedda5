/**
 * A domain's XenStore connection, set up by the builder as libxl (and init-dom0less) do on Arm:
 * one page at a fixed "magic" guest frame outside RAM, granted to the XenStore domain through
 * the reserved grant entry GNTTAB_RESERVED_XENSTORE, and an event channel left unbound for the
 * XenStore domain to bind. The guest learns both from HVM_PARAM_STORE_PFN / STORE_EVTCHN; the
 * toolstack then introduces the domain to xenstored (XS_INTRODUCE domid gfn port), which maps
 * the page by grant and binds the port.
 */
import { PAGE_SIZE } from "@xenon/hw";
import type { Domain } from "./domain.js";
import { DomainBuildError } from "./domain_build.js";
import { grantAccess } from "./grant_table/granter.js";
import type { Hypervisor } from "./hypervisor.js";
import { populateRange } from "./memory.js";
import { P2mType } from "./p2m/types.js";
import { err } from "./public/errno.js";
import { GNTTAB_RESERVED_XENSTORE } from "./public/grant_table.js";
import { DOMID_SELF, HvmParam } from "./public/xen.js";

/** Arm's magic-page region (below the /hypervisor window, outside RAM); the guest never allocates there. */
export const GUEST_MAGIC_BASE = 0x7e000000;
export const XENSTORE_PFN_OFFSET = 1;
export const GUEST_XENSTORE_GFN = GUEST_MAGIC_BASE / PAGE_SIZE + XENSTORE_PFN_OFFSET;

export interface XenstoreRingSetup {
  readonly gfn: number;
  /** The domain's port, unbound with remote = the XenStore domain. */
  readonly evtchn: number;
}

function mapHeapPage(d: Domain, gfn: number): number {
  if (d.p2m.get(gfn) !== null) return err("EBUSY");
  const mfn = d.pages.allocHeap();
  if (mfn < 0) return err("ENOMEM");
  if (d.p2m.set(gfn, mfn, P2mType.ram_rw) < 0) {
    d.pages.release(mfn);
    return err("ENOMEM");
  }
  return 0;
}

/**
 * Populates and zeroes the domain's XenStore page, grants it to `xsDomid` through gref 1, opens
 * the unbound port and records both in the HVM params. Throws DomainBuildError if any step is
 * refused (no memory left under max_mem, entry 1 already in use, no free port).
 */
export function setupXenstoreRing(hv: Hypervisor, d: Domain, xsDomid: number): XenstoreRingSetup {
  const gfn = GUEST_XENSTORE_GFN;
  // A static domain's banks are all RAM: its magic page comes from the heap, as Xen's do.
  const rc = d.pages.isStatic ? mapHeapPage(d, gfn) : populateRange(d, gfn, 1);
  if (rc < 0) throw new DomainBuildError(`${d.name}: cannot populate the XenStore page (error ${rc})`);
  // Indices start at 0 and connection = XENSTORE_CONNECTED: a fresh ring the guest may use at once.
  if (d.guest.copyToGuest(gfn * PAGE_SIZE, new Uint8Array(PAGE_SIZE)) !== 0)
    throw new DomainBuildError(`${d.name}: cannot clear the XenStore page`);
  if (!grantAccess(d.grantTable, GNTTAB_RESERVED_XENSTORE, xsDomid, gfn, false))
    throw new DomainBuildError(`${d.name}: grant entry ${GNTTAB_RESERVED_XENSTORE} is not free`);
  const evtchn = hv.hypercalls.evtchnAllocUnbound(d.domid, DOMID_SELF, xsDomid);
  if (evtchn < 0) throw new DomainBuildError(`${d.name}: cannot allocate the XenStore event channel (${evtchn})`);
  d.hvmParams[HvmParam.STORE_PFN] = gfn;
  d.hvmParams[HvmParam.STORE_EVTCHN] = evtchn;
  return { gfn, evtchn };
}
