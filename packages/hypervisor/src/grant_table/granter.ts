import { GTF_permit_access, GTF_reading, GTF_readonly, GTF_writing } from "../public/grant_table.js";
import type { GrantTable } from "./grant_table.js";

/**
 * The granting side of v1 grants, for TypeScript domains (and tests standing in for a guest).
 * A C guest does the same thing on its mapped grant frames; these helpers follow the published
 * protocol (shared/reference/xen-abi.md §2.6) and use the same atomics the core uses.
 */

/**
 * Grants `domid` access to `gfn` via `ref`: writes frame, then domid and flags in one atomic
 * store, which is what makes the entry live. The ref must be unused (flags 0) — false otherwise
 * or if ref is out of range.
 */
export function grantAccess(gt: GrantTable, ref: number, domid: number, gfn: number, readonly: boolean): boolean {
  if (!gt.isValidRef(ref) || !Number.isInteger(gfn) || gfn < 0 || gfn > 0xffffffff) return false;
  const { i32, index } = gt.entryWord(ref);
  if ((Atomics.load(i32, index) & 0xffff) !== 0) return false;
  Atomics.store(i32, index + 1, gfn | 0);
  Atomics.store(i32, index, ((domid & 0xffff) << 16) | GTF_permit_access | (readonly ? GTF_readonly : 0));
  return true;
}

/**
 * Ends foreign access (Linux's gnttab_end_foreign_access_ref): fails while the grantee has the
 * entry in use (GTF_reading/GTF_writing), otherwise clears the flags with compare-exchange so a
 * concurrent pin either happens before (and we fail) or not at all. True when the ref is free.
 */
export function endForeignAccess(gt: GrantTable, ref: number): boolean {
  if (!gt.isValidRef(ref)) return false;
  const { i32, index } = gt.entryWord(ref);
  for (;;) {
    const old = Atomics.load(i32, index);
    if (old & (GTF_reading | GTF_writing)) return false;
    if (Atomics.compareExchange(i32, index, old, old & ~0xffff) === old) return true;
  }
}

/** GTF_reading | GTF_writing bits currently set on `ref` (0 when not in use). */
export function foreignAccessInUse(gt: GrantTable, ref: number): number {
  if (!gt.isValidRef(ref)) return 0;
  const { i32, index } = gt.entryWord(ref);
  return Atomics.load(i32, index) & (GTF_reading | GTF_writing);
}
