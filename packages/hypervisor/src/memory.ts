import type { Domain } from "./domain.js";
import { isValidGfn, MAX_GFN, P2mType } from "./p2m/types.js";
import { err } from "./public/errno.js";
import { DOMU_MAX_ORDER, XENMAPIDX_grant_table_status, XenMapSpace } from "./public/memory.js";

/**
 * memory_op semantics on a resolved target domain (Xen's xen/common/memory.c for a translated
 * guest). Callers (hypercall/semantics.ts) have done the domid and privilege checks.
 *
 * Reservation ops take a list of extents and return how many they completed; like Xen, they stop
 * at the first extent that fails and report the count so far (a partial result is not an error).
 */

/** What occupies a gfn, from the physmap's point of view. */
type Occupant =
  | { kind: "none" }
  | { kind: "ram"; mfn: number }
  | { kind: "shared_info" }
  | { kind: "grant_frame"; index: number }
  | { kind: "foreign" }
  | { kind: "other" };

function occupant(d: Domain, gfn: number): Occupant {
  const e = d.p2m.get(gfn);
  if (e === null) return { kind: "none" };
  if (d.foreignMaps.has(gfn)) return { kind: "foreign" };
  if (e.type === P2mType.ram_rw || e.type === P2mType.ram_ro) {
    if (d.pages.ownsLive(e.mfn)) return { kind: "ram", mfn: e.mfn };
    if (e.mfn === d.sharedInfoMfn) return { kind: "shared_info" };
    const index = d.grantTable.frames.indexOf(e.mfn);
    if (index >= 0) return { kind: "grant_frame", index };
  }
  return { kind: "other" };
}

/** Removes whatever `occupant` found at gfn, undoing its bookkeeping. Only for none/ram/xenheap. */
function evict(d: Domain, gfn: number, o: Occupant): void {
  switch (o.kind) {
    case "ram":
      d.p2m.clear(gfn);
      d.pages.release(o.mfn);
      return;
    case "shared_info":
      d.p2m.clear(gfn);
      d.sharedInfoGfn = -1;
      return;
    case "grant_frame":
      d.p2m.clear(gfn);
      d.grantTable.frameGfn[o.index] = -1;
      return;
    case "foreign": {
      const f = d.foreignMaps.get(gfn)!;
      d.foreignMaps.delete(gfn);
      d.p2m.clear(gfn);
      f.owner.pages.put(f.mfn);
      return;
    }
    default:
      return;
  }
}

function extentOk(gpfn: number, order: number): boolean {
  const n = 2 ** order;
  return isValidGfn(gpfn) && gpfn % n === 0 && gpfn + n - 1 <= MAX_GFN;
}

/**
 * XENMEM_populate_physmap: for each gpfn, allocates 2^order fresh (zeroed) frames and maps them
 * as ram_rw at gpfn.. (gpfn must be order-aligned and the range unmapped). Stops at max_pages,
 * host memory exhaustion, an exhausted P2M pool or a bad gpfn; returns extents done.
 */
export function populatePhysmap(d: Domain, gpfns: readonly number[], order: number, maxOrder = DOMU_MAX_ORDER): number {
  if (!Number.isInteger(order) || order < 0 || order > maxOrder || d.dying) return 0;
  const n = 2 ** order;
  let done = 0;
  for (const gpfn of gpfns) {
    if (!extentOk(gpfn, order)) break;
    let free = true;
    for (let i = 0; i < n && free; i++) free = d.p2m.get(gpfn + i) === null;
    if (!free || d.pages.totPages + n > d.pages.maxPages) break;
    const mfns: number[] = [];
    let ok = true;
    for (let i = 0; i < n; i++) {
      // A direct-mapped domain's RAM sits at gfn == mfn: only that very static frame will do.
      const mfn = d.flags.directMap ? d.pages.takeStatic(gpfn + i) : d.pages.alloc();
      if (mfn < 0 || d.p2m.set(gpfn + i, mfn, P2mType.ram_rw) < 0) {
        if (mfn >= 0) d.pages.release(mfn);
        ok = false;
        break;
      }
      mfns.push(mfn);
    }
    if (!ok) {
      mfns.forEach((mfn, i) => {
        d.p2m.clear(gpfn + i);
        d.pages.release(mfn);
      });
      break;
    }
    done++;
  }
  return done;
}

/**
 * XENMEM_decrease_reservation: for each gpfn, unmaps 2^order of the domain's own RAM pages and
 * frees them (or leaves them to their last foreign reference). An extent that is not entirely
 * the domain's RAM stops the operation. Returns extents done.
 */
export function decreaseReservation(d: Domain, gpfns: readonly number[], order: number): number {
  if (!Number.isInteger(order) || order < 0 || order > DOMU_MAX_ORDER || d.dying) return 0;
  const n = 2 ** order;
  let done = 0;
  for (const gpfn of gpfns) {
    if (!extentOk(gpfn, order)) break;
    const victims: Occupant[] = [];
    for (let i = 0; i < n; i++) {
      const o = occupant(d, gpfn + i);
      if (o.kind !== "ram") break;
      victims.push(o);
    }
    if (victims.length !== n) break;
    victims.forEach((o, i) => {
      evict(d, gpfn + i, o);
    });
    done++;
  }
  return done;
}

/** XENMEM_current_reservation: tot_pages. */
export function currentReservation(d: Domain): number {
  return d.pages.totPages;
}

/** XENMEM_maximum_reservation: max_pages. */
export function maximumReservation(d: Domain): number {
  return d.pages.maxPages;
}

/**
 * XENMEM_add_to_physmap for XENMAPSPACE_shared_info (idx 0) and XENMAPSPACE_grant_table (idx =
 * frame number; the table grows to idx+1 frames). The frame moves to gpfn (an earlier mapping of
 * it is removed). A RAM page already at gpfn is released, as Linux on Arm expects when it maps
 * shared_info over one of its own pages; gpfns holding grant, foreign or MMIO mappings are refused
 * (-EBUSY). 0 or -EINVAL / -ENOSYS (other spaces) / -ENOMEM / -EBUSY.
 */
export function addToPhysmap(d: Domain, space: number, idx: number, gpfn: number): number {
  if (d.dying) return err("EINVAL");
  if (!isValidGfn(gpfn)) return err("EINVAL");
  let mfn: number;
  if (space === XenMapSpace.shared_info) {
    if (idx !== 0) return err("EINVAL");
    mfn = d.sharedInfoMfn;
  } else if (space === XenMapSpace.grant_table) {
    if (!Number.isInteger(idx) || idx < 0 || idx >= XENMAPIDX_grant_table_status) return err("EINVAL");
    if (idx >= d.grantTable.maxFrames) return err("EINVAL");
    const rc = d.grantTable.grow(idx + 1);
    if (rc < 0) return rc;
    mfn = d.grantTable.frames[idx]!;
  } else {
    return err("ENOSYS");
  }

  const here = occupant(d, gpfn);
  const existing = d.p2m.get(gpfn);
  if (existing !== null && existing.mfn === mfn) return 0;
  if (here.kind === "other") return err("EBUSY");
  if (!d.p2m.canSet(gpfn)) return err("ENOMEM");
  evict(d, gpfn, here);

  if (space === XenMapSpace.shared_info) {
    if (d.sharedInfoGfn >= 0) d.p2m.clear(d.sharedInfoGfn);
    d.sharedInfoGfn = gpfn;
  } else {
    const old = d.grantTable.frameGfn[idx]!;
    if (old >= 0) d.p2m.clear(old);
    d.grantTable.frameGfn[idx] = gpfn;
  }
  // canSet() was checked and nothing since consumed a table page, so this cannot fail.
  d.p2m.set(gpfn, mfn, P2mType.ram_rw);
  return 0;
}

/**
 * One XENMAPSPACE_gmfn_foreign entry of XENMEM_add_to_physmap_batch (how a privileged toolstack
 * builds or inspects another domain, Xen on Arm's privcmd foreign map): `owner`'s RAM page at gfn
 * `idx` appears in d's physmap at `gpfn`, read-write (never executable), with a reference so the
 * frame outlives the owner releasing it until d unmaps it (XENMEM_remove_from_physmap) or dies.
 * -EINVAL: own domain, dying owner, idx not the owner's RAM, bad gpfn; -EBUSY: gpfn holds
 * something that is not plain RAM; -ENOMEM: no P2M table page for gpfn.
 */
export function mapForeign(d: Domain, owner: Domain, idx: number, gpfn: number): number {
  if (d.dying || owner.dying || owner === d) return err("EINVAL");
  if (!isValidGfn(idx) || !isValidGfn(gpfn)) return err("EINVAL");
  const e = owner.p2m.get(idx);
  if (e === null || (e.type !== P2mType.ram_rw && e.type !== P2mType.ram_ro) || !owner.pages.ownsLive(e.mfn))
    return err("EINVAL");
  const here = occupant(d, gpfn);
  if (here.kind === "other" || here.kind === "grant_frame" || here.kind === "shared_info") return err("EBUSY");
  if (here.kind === "foreign") {
    const f = d.foreignMaps.get(gpfn)!;
    if (f.owner === owner && f.mfn === e.mfn) return 0;
  }
  if (!d.p2m.canSet(gpfn)) return err("ENOMEM");
  if (!owner.pages.get(e.mfn)) return err("EINVAL");
  evict(d, gpfn, here);
  d.p2m.set(gpfn, e.mfn, e.type === P2mType.ram_ro ? P2mType.foreign_ro : P2mType.foreign_rw);
  d.foreignMaps.set(gpfn, { owner, mfn: e.mfn });
  return 0;
}

/** Drops every foreign mapping and view d holds (its destruction). */
export function releaseForeignMaps(d: Domain): void {
  for (const [gfn, f] of d.foreignMaps) {
    d.p2m.clear(gfn);
    f.owner.pages.put(f.mfn);
  }
  d.foreignMaps.clear();
  for (const h of [...d.foreignViews.keys()]) unmapForeignView(d, h);
}

/**
 * A foreign map for a TypeScript domain (a driver domain with no physmap of its own): `owner`'s
 * RAM page at `gfn` becomes a view handle, with a reference on the frame so it outlives the owner
 * releasing it until d unmaps it or dies. Privilege is the caller's check (as for gmfn_foreign).
 * A writable view needs a writable page. { handle } or -EINVAL: own or dying domain, not the
 * owner's RAM (or read-only RAM for a writable view).
 */
export function mapForeignView(
  d: Domain,
  owner: Domain,
  gfn: number,
  writable: boolean,
): { handle: number; mfn: number } | number {
  if (d.dying || owner.dying || owner === d || !isValidGfn(gfn)) return err("EINVAL");
  const e = owner.p2m.get(gfn);
  if (e === null || !owner.pages.ownsLive(e.mfn)) return err("EINVAL");
  if (e.type !== P2mType.ram_rw && (writable || e.type !== P2mType.ram_ro)) return err("EINVAL");
  if (!owner.pages.get(e.mfn)) return err("EINVAL");
  const handle = d.nextForeignView++;
  d.foreignViews.set(handle, { owner, mfn: e.mfn, gfn, writable });
  return { handle, mfn: e.mfn };
}

/** Drops a foreign view: its frame reference; writes through it dirtied the owner's page. 0 or -EINVAL. */
export function unmapForeignView(d: Domain, handle: number): number {
  const v = d.foreignViews.get(handle);
  if (v === undefined) return err("EINVAL");
  d.foreignViews.delete(handle);
  if (v.writable && !v.owner.dying) v.owner.p2m.markGfnDirty(v.gfn);
  v.owner.pages.put(v.mfn);
  return 0;
}

/**
 * XENMEM_remove_from_physmap: unmaps gpfn. The domain's own RAM is released; shared_info and
 * grant frames are only unmapped (they stay the domain's); a foreign mapping drops its reference. Grant mappings must be undone with
 * GNTTABOP_unmap_grant_ref (-EINVAL here). 0, -EINVAL or -ENOENT.
 */
export function removeFromPhysmap(d: Domain, gpfn: number): number {
  if (d.dying || !isValidGfn(gpfn)) return err("EINVAL");
  const o = occupant(d, gpfn);
  if (o.kind === "none") return err("ENOENT");
  if (o.kind === "other") return err("EINVAL");
  evict(d, gpfn, o);
  return 0;
}

/**
 * Toolstack helper (xc_domain_populate_physmap_exact): maps `count` fresh RAM pages at
 * firstGfn... Returns 0, or -ENOMEM after undoing nothing (the pages done stay mapped, as with
 * the hypercall); -EINVAL for a bad range.
 */
export function populateRange(d: Domain, firstGfn: number, count: number): number {
  if (!Number.isInteger(count) || count < 0 || !isValidGfn(firstGfn) || firstGfn + count - 1 > MAX_GFN) {
    return err("EINVAL");
  }
  const gpfns: number[] = [];
  for (let i = 0; i < count; i++) gpfns.push(firstGfn + i);
  return populatePhysmap(d, gpfns, 0) === count ? 0 : err("ENOMEM");
}
