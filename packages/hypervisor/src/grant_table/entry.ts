import {
  GNTTAB_CAS_RETRIES,
  Gntst,
  type GntstCode,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_type_mask,
  GTF_writing,
} from "../public/grant_table.js";
import type { GrantTable } from "./grant_table.js";

/**
 * The shared v1 entry's flags word, as the core sees it. The 32-bit word at the start of an
 * entry holds `flags` (low 16 bits) and `domid` (high 16 bits); the granting guest rewrites it
 * at any time from its own vCPU, so the core changes it only with compare-exchange (setting
 * GTF_reading/GTF_writing) or atomic AND (clearing them), never with a plain store.
 */

const FLAGS_MASK = 0xffff;

/**
 * Marks the entry in use for `grantee` (Xen's _set_status_v1): checks it is a permit_access
 * entry for that domain, refuses a writable use of a GTF_readonly entry, and sets GTF_reading
 * (+ GTF_writing). Gives up with general_error after Xen's 5 lost races ("unstable entry").
 */
export function acquireEntry(gt: GrantTable, ref: number, grantee: number, readonly: boolean): GntstCode {
  const { i32, index } = gt.entryWord(ref);
  for (let tries = 0; tries < GNTTAB_CAS_RETRIES; tries++) {
    const old = Atomics.load(i32, index);
    const flags = old & FLAGS_MASK;
    const domid = old >>> 16;
    if ((flags & GTF_type_mask) !== GTF_permit_access || domid !== grantee) return Gntst.general_error;
    if (!readonly && flags & GTF_readonly) return Gntst.general_error;
    const next = old | GTF_reading | (readonly ? 0 : GTF_writing);
    if (next === old || Atomics.compareExchange(i32, index, old, next) === old) return Gntst.okay;
  }
  return Gntst.general_error;
}

/** Clears GTF_reading and/or GTF_writing (the granter may race with us; AND keeps its other bits). */
export function clearEntryFlags(gt: GrantTable, ref: number, bits: number): void {
  const { i32, index } = gt.entryWord(ref);
  Atomics.and(i32, index, ~(bits & (GTF_reading | GTF_writing)));
}

/** The entry's current flags (u16). */
export function entryFlags(gt: GrantTable, ref: number): number {
  const { i32, index } = gt.entryWord(ref);
  return Atomics.load(i32, index) & FLAGS_MASK;
}

/** The entry's current grantee domid. */
export function entryDomid(gt: GrantTable, ref: number): number {
  const { i32, index } = gt.entryWord(ref);
  return Atomics.load(i32, index) >>> 16;
}
