/**
 * The stage-2 translation the CPU asks for: guest frame number -> machine frame number plus
 * access rights. hw defines it; the hypervisor implements it (one P2M per domain).
 *
 * Entry encoding (a JS number, exact up to 2^53): `mfn * P2M_ENTRY_MFN_SCALE + flags`.
 * P2M_NONE means "not RAM": the access leaves the vCPU as an MMIO exit.
 */
export const P2M_NONE = -1;
export const P2M_R = 1;
export const P2M_W = 2;
export const P2M_X = 4;
/** Writes are allowed but the first one must be reported with markDirty() (log-dirty mode). */
export const P2M_LOGDIRTY = 8;
export const P2M_FLAGS_MASK = 15;
export const P2M_ENTRY_MFN_SCALE = 16;

export function p2mEntry(mfn: number, flags: number): number {
  return mfn * P2M_ENTRY_MFN_SCALE + flags;
}
export function p2mEntryMfn(entry: number): number {
  return Math.floor(entry / P2M_ENTRY_MFN_SCALE);
}
export function p2mEntryFlags(entry: number): number {
  return entry % P2M_ENTRY_MFN_SCALE;
}

export interface P2mLookup {
  /** The entry for gfn, or P2M_NONE. Called only on a soft-TLB miss. */
  lookup(gfn: number): number;
  /**
   * Called once before the first write to a P2M_LOGDIRTY page is let through; the P2M records the
   * frame as dirty and returns the entry to use from now on (normally without P2M_LOGDIRTY).
   */
  markDirty(gfn: number): number;
  /**
   * Slot 0 is bumped (Atomics.add) whenever an entry loses rights or changes frame (unmap, revoke,
   * log-dirty round). A vCPU whose TLB was filled against an older generation flushes it.
   */
  readonly generation: Int32Array;
}
