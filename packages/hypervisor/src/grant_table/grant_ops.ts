import { PAGE_SIZE } from "@xenon/hw";
import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { isValidGfn, P2mType } from "../p2m/types.js";
import { err } from "../public/errno.js";
import {
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  GNTTAB_MAX_VERSION,
  Gntst,
  type GntstCode,
  GTF_reading,
  GTF_writing,
} from "../public/grant_table.js";
import { DOMID_SELF } from "../public/xen.js";
import { acquireEntry, clearEntryFlags } from "./entry.js";
import { type ActiveGrant, MAX_PINS } from "./grant_table.js";
import type { MaptrackEntry } from "./maptrack.js";

/**
 * Grant-table operations (Xen's xen/common/grant_table.c, v1 only) on resolved domains. Every
 * caller-supplied number is range-checked and answered with a GNTST_* status (per element) or a
 * negative errno (whole call); nothing here throws on guest input.
 *
 * Life of a mapping: map pins the active entry (GTF_reading, + GTF_writing for a writable use),
 * takes a reference on the granter's frame and records a maptrack handle; unmap removes the P2M
 * entry (bumping the generation, so the vCPU's TLB forgets it), drops the pin (clearing the GTF
 * bits once the last pin of that kind goes) and the frame reference.
 */

export interface MapGrantRefArgs {
  /** Guest-physical address in the caller's physmap where the frame is mapped. */
  readonly hostAddr: number;
  /** GNTMAP_* flags. */
  readonly flags: number;
  readonly ref: number;
  /** The granting domain (a real domid: DOMID_SELF is not accepted, as in Xen). */
  readonly dom: number;
}

export interface MapResult {
  readonly status: GntstCode;
  /** Maptrack handle (valid when status is okay). */
  readonly handle: number;
}

export interface ViewMapResult extends MapResult {
  /**
   * The granted frame's 4 KiB, for a TypeScript domain. It is a view of the real frame: after
   * unmap the core stops honouring the handle, but a holder that kept the array could still
   * touch the frame (and, once the frame is reused, someone else's data). Thread-mode driver
   * domains are trusted to drop it; process-mode domains never get views, only grant copy.
   */
  readonly view: Uint8Array | null;
}

export interface UnmapGrantRefArgs {
  readonly hostAddr: number;
  /** Must be 0: we never make device mappings. */
  readonly devBusAddr: number;
  readonly handle: number;
}

/** One side of GNTTABOP_copy: a gref in `domid`'s table, or (no gref flag) a gmfn of the caller. */
export interface CopyPtr {
  /** gref, or gmfn when the matching GNTCOPY_*_gref flag is clear. */
  readonly refOrGmfn: number;
  readonly domid: number;
  readonly offset: number;
}

export interface CopyArgs {
  readonly source: CopyPtr;
  readonly dest: CopyPtr;
  readonly len: number;
  readonly flags: number;
}

// --- pinning -------------------------------------------------------------------------------------

interface Pin {
  readonly status: GntstCode;
  readonly act: ActiveGrant | null;
}

/**
 * Pins `ref` of granter rd for use by `grantee` (Xen's map/copy acquire path). The shared entry
 * is checked (and GTF bits set) on the first pin and on the first writable pin; later pins trust
 * the active entry, which remembers the frame resolved at first pin.
 */
function pin(rd: Domain, ref: number, grantee: number, readonly: boolean): Pin {
  const gt = rd.grantTable;
  let act = gt.active.get(ref);
  if (act !== undefined) {
    if (act.domid !== grantee) return { status: Gntst.general_error, act: null };
    if ((readonly ? act.readPins : act.writePins) >= MAX_PINS) return { status: Gntst.general_error, act: null };
  }
  if (act === undefined || (!readonly && act.writePins === 0)) {
    const st = acquireEntry(gt, ref, grantee, readonly);
    if (st !== Gntst.okay) return { status: st, act: null };
    const gfn = act?.gfn ?? gt.entryFrame(ref);
    const e = isValidGfn(gfn) ? rd.p2m.get(gfn) : null;
    const mfn = act?.mfn ?? e?.mfn ?? -1;
    // The granted frame must be the granter's own RAM (writable RAM for a writable use): a
    // domain cannot re-grant a frame it maps from someone else.
    const okPage =
      e !== null &&
      e.mfn === mfn &&
      rd.pages.ownsLive(mfn) &&
      (e.type === P2mType.ram_rw || (readonly && e.type === P2mType.ram_ro));
    if (!okPage && act === undefined) {
      clearEntryFlags(gt, ref, GTF_reading | GTF_writing);
      return { status: Gntst.bad_page, act: null };
    }
    if (!okPage) {
      // An upgrade to writable of a frame that is gone or read-only: undo only what we added.
      if (!readonly) clearEntryFlags(gt, ref, GTF_writing);
      return { status: Gntst.general_error, act: null };
    }
    if (act === undefined) {
      act = { domid: grantee, gfn, mfn, readPins: 0, writePins: 0 };
      gt.active.set(ref, act);
    }
  }
  if (readonly) act.readPins++;
  else act.writePins++;
  return { status: Gntst.okay, act };
}

/** Drops one pin; clears GTF_writing / GTF_reading when the last pin of that kind goes. */
function unpin(rd: Domain, ref: number, readonly: boolean): void {
  const gt = rd.grantTable;
  const act = gt.active.get(ref);
  if (act === undefined) return;
  if (readonly) act.readPins = Math.max(0, act.readPins - 1);
  else act.writePins = Math.max(0, act.writePins - 1);
  // The table's frames are gone once the granter is destroyed; then only the active entry is left.
  const live = gt.isValidRef(ref);
  if (act.writePins === 0 && live) clearEntryFlags(gt, ref, GTF_writing);
  if (act.writePins === 0 && act.readPins === 0) {
    if (live) clearEntryFlags(gt, ref, GTF_reading);
    gt.active.delete(ref);
  }
}

// --- map / unmap ---------------------------------------------------------------------------------

/** The checks map_grant_ref makes before touching the entry, in Xen's order. */
function mapPrologue(hv: Hypervisor, ld: Domain, flags: number, dom: number, ref: number): Domain | GntstCode {
  if ((flags & (GNTMAP_host_map | GNTMAP_device_map)) === 0) return Gntst.bad_gntref;
  // Translated guests get no device, application or PTE mappings.
  if (flags & (GNTMAP_device_map | GNTMAP_application_map | GNTMAP_contains_pte)) return Gntst.general_error;
  const rd = hv.domains.getLive(dom);
  if (rd === undefined || ld.dying) return Gntst.bad_domain;
  if (ld.maptrack.count >= ld.maptrack.limit) return Gntst.no_space;
  if (!rd.grantTable.isValidRef(ref)) return Gntst.bad_gntref;
  return rd;
}

const FAIL = (status: GntstCode): MapResult => ({ status, handle: 0 });

/**
 * GNTTABOP_map_grant_ref into the caller's physmap: the granted frame appears at hostAddr's gfn
 * as grant_map_rw / grant_map_ro. The gfn must be free (we do not silently replace RAM the way Xen
 * on Arm does): an occupied or invalid address is GNTST_bad_virt_addr; an exhausted P2M pool is
 * GNTST_general_error and changes nothing.
 */
export function mapGrantRef(hv: Hypervisor, ld: Domain, a: MapGrantRefArgs): MapResult {
  const rd = mapPrologue(hv, ld, a.flags, a.dom, a.ref);
  if (typeof rd === "number") return FAIL(rd);
  const gfn = Math.floor(a.hostAddr / PAGE_SIZE);
  if (!Number.isInteger(a.hostAddr) || !isValidGfn(gfn) || ld.p2m.get(gfn) !== null) return FAIL(Gntst.bad_virt_addr);
  if (!ld.p2m.canSet(gfn)) return FAIL(Gntst.general_error);
  const readonly = (a.flags & GNTMAP_readonly) !== 0;
  const p = pin(rd, a.ref, ld.domid, readonly);
  if (p.act === null) return FAIL(p.status);
  const mfn = p.act.mfn;
  rd.pages.get(mfn);
  ld.p2m.set(gfn, mfn, readonly ? P2mType.grant_map_ro : P2mType.grant_map_rw);
  const entry: MaptrackEntry = { granter: rd.domid, ref: a.ref, flags: a.flags, kind: "p2m", gfn, mfn, readonly };
  return { status: Gntst.okay, handle: ld.maptrack.add(entry) };
}

/**
 * map_grant_ref for a TypeScript domain: the same checks and pinning, but the result is a
 * bounded view of the frame instead of a P2M entry. See ViewMapResult for the revocation caveat.
 */
export function mapGrantRefView(
  hv: Hypervisor,
  ld: Domain,
  dom: number,
  ref: number,
  readonly: boolean,
): ViewMapResult {
  const flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0);
  const rd = mapPrologue(hv, ld, flags, dom, ref);
  if (typeof rd === "number") return { status: rd, handle: 0, view: null };
  const p = pin(rd, ref, ld.domid, readonly);
  if (p.act === null) return { status: p.status, handle: 0, view: null };
  const mfn = p.act.mfn;
  rd.pages.get(mfn);
  const entry: MaptrackEntry = { granter: rd.domid, ref, flags, kind: "view", gfn: -1, mfn, readonly };
  const c = hv.memory.chunk(mfn);
  return {
    status: Gntst.okay,
    handle: ld.maptrack.add(entry),
    view: new Uint8Array(c.buffer, hv.memory.frameOffset(mfn), PAGE_SIZE),
  };
}

/** Tears one mapping down (no argument checks): P2M entry, pin, frame reference, handle. */
function teardown(hv: Hypervisor, ld: Domain, handle: number, e: MaptrackEntry): void {
  if (e.kind === "p2m" && !ld.dying) ld.p2m.clear(e.gfn);
  const rd = hv.domains.get(e.granter);
  if (rd !== undefined) {
    const act = rd.grantTable.active.get(e.ref);
    // Writes through the mapping dirtied the granter's page (Xen's gnttab_mark_dirty on unmap).
    if (!e.readonly && act !== undefined && !rd.dying) rd.p2m.markGfnDirty(act.gfn);
    unpin(rd, e.ref, e.readonly);
    rd.pages.put(e.mfn);
  }
  ld.maptrack.remove(handle);
}

/**
 * GNTTABOP_unmap_grant_ref. For a P2M mapping host_addr must name the mapped gfn
 * (GNTST_general_error otherwise, as Xen on Arm answers a mismatch); a view mapping ignores it.
 */
export function unmapGrantRef(hv: Hypervisor, ld: Domain, a: UnmapGrantRefArgs): GntstCode {
  const e = ld.maptrack.get(a.handle);
  if (e === undefined) return Gntst.bad_handle;
  if (a.devBusAddr !== 0) return Gntst.bad_dev_addr;
  if (e.kind === "p2m" && (!Number.isInteger(a.hostAddr) || Math.floor(a.hostAddr / PAGE_SIZE) !== e.gfn)) {
    return Gntst.general_error;
  }
  teardown(hv, ld, a.handle, e);
  return Gntst.okay;
}

/** Domain destruction: every mapping the domain holds is undone (Xen's gnttab_release_mappings). */
export function gnttabReleaseMappings(hv: Hypervisor, ld: Domain): void {
  for (const h of ld.maptrack.handles()) teardown(hv, ld, h, ld.maptrack.get(h)!);
}

// --- copy ----------------------------------------------------------------------------------------

interface Claimed {
  readonly status: GntstCode;
  readonly mfn: number;
  /** Granter and ref pinned for the copy (to unpin), or null for a gmfn side. */
  readonly pinned: { rd: Domain; ref: number } | null;
  /** Domain and gfn to mark dirty when this is the destination. */
  readonly dirty: { d: Domain; gfn: number } | null;
}

function claimSide(hv: Hypervisor, caller: Domain, p: CopyPtr, isGref: boolean, readonly: boolean): Claimed {
  const fail = (status: GntstCode): Claimed => ({ status, mfn: -1, pinned: null, dirty: null });
  const d = p.domid === DOMID_SELF ? caller : hv.domains.getLive(p.domid);
  if (d === undefined) return fail(Gntst.bad_domain);
  if (!isGref) {
    if (d !== caller) return fail(Gntst.permission_denied);
    const e = isValidGfn(p.refOrGmfn) ? caller.p2m.get(p.refOrGmfn) : null;
    const ok =
      e !== null &&
      caller.pages.ownsLive(e.mfn) &&
      (e.type === P2mType.ram_rw || (readonly && e.type === P2mType.ram_ro));
    if (!ok) return fail(Gntst.bad_page);
    return { status: Gntst.okay, mfn: e.mfn, pinned: null, dirty: { d: caller, gfn: p.refOrGmfn } };
  }
  if (!d.grantTable.isValidRef(p.refOrGmfn)) return fail(Gntst.bad_gntref);
  const pn = pin(d, p.refOrGmfn, caller.domid, readonly);
  if (pn.act === null) return fail(pn.status);
  return {
    status: Gntst.okay,
    mfn: pn.act.mfn,
    pinned: { rd: d, ref: p.refOrGmfn },
    dirty: { d, gfn: pn.act.gfn },
  };
}

/**
 * One GNTTABOP_copy element: copies len bytes between two frames, each named by a gref (in any
 * domain that granted it to the caller) or by a gmfn of the caller itself. Checks in Xen's order:
 * domains (bad_domain / permission_denied), source, destination, then the page bounds
 * (bad_copy_arg). The destination is marked dirty for log-dirty.
 */
export function gnttabCopy(hv: Hypervisor, caller: Domain, a: CopyArgs): GntstCode {
  if (caller.dying) return Gntst.bad_domain;
  const srcGref = (a.flags & GNTCOPY_source_gref) !== 0;
  const dstGref = (a.flags & GNTCOPY_dest_gref) !== 0;
  for (const [p, isGref] of [
    [a.source, srcGref],
    [a.dest, dstGref],
  ] as const) {
    const d = p.domid === DOMID_SELF ? caller : hv.domains.getLive(p.domid);
    if (d === undefined) return Gntst.bad_domain;
    if (!isGref && d !== caller) return Gntst.permission_denied;
  }

  const src = claimSide(hv, caller, a.source, srcGref, true);
  if (src.status !== Gntst.okay) return src.status;
  const dst = claimSide(hv, caller, a.dest, dstGref, false);
  let status: GntstCode = dst.status;
  if (status === Gntst.okay) {
    const { len } = a;
    if (
      !Number.isInteger(len) ||
      len < 0 ||
      !Number.isInteger(a.source.offset) ||
      !Number.isInteger(a.dest.offset) ||
      a.source.offset < 0 ||
      a.dest.offset < 0 ||
      a.source.offset + len > PAGE_SIZE ||
      a.dest.offset + len > PAGE_SIZE
    ) {
      status = Gntst.bad_copy_arg;
    } else {
      const m = hv.memory;
      const s = m.chunk(src.mfn);
      const so = m.frameOffset(src.mfn) + a.source.offset;
      m.chunk(dst.mfn).u8.set(s.u8.subarray(so, so + len), m.frameOffset(dst.mfn) + a.dest.offset);
      dst.dirty?.d.p2m.markGfnDirty(dst.dirty.gfn);
    }
  }
  if (dst.pinned !== null) unpin(dst.pinned.rd, dst.pinned.ref, false);
  if (src.pinned !== null) unpin(src.pinned.rd, src.pinned.ref, true);
  return status;
}

// --- table management ----------------------------------------------------------------------------

export interface SetupTableResult {
  readonly status: GntstCode;
  /** gfn of each frame in the owner's physmap, -1 where not mapped (Xen's INVALID_GFN). */
  readonly frames: readonly number[];
}

/**
 * GNTTABOP_setup_table on target d: grows the table to nrFrames (GNTST_general_error beyond the
 * maximum or when the host is out of memory) and reports where its frames are mapped.
 */
export function setupTable(d: Domain, nrFrames: number): SetupTableResult {
  const gt = d.grantTable;
  if (!Number.isInteger(nrFrames) || nrFrames < 0 || nrFrames > gt.maxFrames) {
    return { status: Gntst.general_error, frames: [] };
  }
  if (nrFrames > gt.nrFrames && gt.grow(nrFrames) < 0) return { status: Gntst.general_error, frames: [] };
  return { status: Gntst.okay, frames: gt.frameGfn.slice(0, nrFrames) };
}

/** GNTTABOP_query_size. */
export function querySize(d: Domain): { nrFrames: number; maxNrFrames: number } {
  return { nrFrames: d.grantTable.nrFrames, maxNrFrames: d.grantTable.maxFrames };
}

/**
 * GNTTABOP_set_version: 1 is accepted (and is already the version); 2 is -ENOSYS as on Arm,
 * where the maximum version is 1; anything else -EINVAL. The current version comes back too.
 */
export function setVersion(d: Domain, version: number): { rc: number; version: number } {
  const cur = d.grantTable.version;
  if (version === 1) return { rc: 0, version: cur };
  if (version === 2 && GNTTAB_MAX_VERSION < 2) return { rc: err("ENOSYS"), version: cur };
  return { rc: err("EINVAL"), version: cur };
}

/** GNTTABOP_get_version. */
export function getVersion(d: Domain): number {
  return d.grantTable.version;
}
