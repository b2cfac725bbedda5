import { P2M_R, P2M_W, P2M_X } from "@xenon/hw";

/**
 * P2M entry types, after Xen's p2m_type_t on Arm. The type, not a separate permission field,
 * decides what the vCPU may do with the frame and what the core may do with the entry.
 * Values are stored in machine frames (the type byte of an entry), so they are stable.
 */
export const P2mType = {
  /** No entry: the gfn is a hole; guest accesses leave the vCPU as MMIO exits. */
  invalid: 0,
  /** The domain's own RAM, read/write/execute. */
  ram_rw: 1,
  /** The domain's own RAM, read-only. */
  ram_ro: 2,
  /** A device region mapped straight through (passthrough); never executable. */
  mmio_direct: 3,
  /** Another domain's frame mapped through a grant. */
  grant_map_rw: 4,
  grant_map_ro: 5,
  /** Another domain's frame mapped by a privileged domain without a grant. */
  foreign_rw: 6,
  foreign_ro: 7,
  /** A static shared-memory region (dom0less `xen,shared-mem`). */
  static_shared_rw: 8,
  static_shared_ro: 9,
} as const;
export type P2mType = (typeof P2mType)[keyof typeof P2mType];
export const P2M_TYPE_COUNT = 10;

export const P2M_TYPE_NAMES: readonly string[] = [
  "invalid",
  "ram_rw",
  "ram_ro",
  "mmio_direct",
  "grant_map_rw",
  "grant_map_ro",
  "foreign_rw",
  "foreign_ro",
  "static_shared_rw",
  "static_shared_ro",
];

/**
 * Rights the vCPU gets per type. Like Xen on Arm, grant and foreign mappings are never
 * executable: a domain runs only code it owns.
 */
const RIGHTS: readonly number[] = [
  0,
  P2M_R | P2M_W | P2M_X,
  P2M_R | P2M_X,
  P2M_R | P2M_W,
  P2M_R | P2M_W,
  P2M_R,
  P2M_R | P2M_W,
  P2M_R,
  P2M_R | P2M_W | P2M_X,
  P2M_R | P2M_X,
];

export function p2mTypeRights(t: number): number {
  return RIGHTS[t] ?? 0;
}

export function isValidP2mType(t: number): t is P2mType {
  return Number.isInteger(t) && t > 0 && t < P2M_TYPE_COUNT;
}

/** Types the core's guest-copy helpers may read through (Xen's p2m_is_ram plus static shm). */
export function p2mIsRam(t: number): boolean {
  return (
    t === P2mType.ram_rw || t === P2mType.ram_ro || t === P2mType.static_shared_rw || t === P2mType.static_shared_ro
  );
}

/** Types the core's guest-copy helpers may write through. */
export function p2mIsWritableRam(t: number): boolean {
  return t === P2mType.ram_rw || t === P2mType.static_shared_rw;
}

export function p2mIsGrant(t: number): boolean {
  return t === P2mType.grant_map_rw || t === P2mType.grant_map_ro;
}

/** Guest-physical address space: 32 bits, so 20-bit gfns. */
export const GFN_BITS = 20;
export const MAX_GFN = (1 << GFN_BITS) - 1;
/** Guest RAM starts here (gfn 0x80000). */
export const GUEST_RAM_BASE = 0x80000000;
export const GUEST_RAM_BASE_GFN = GUEST_RAM_BASE >>> 12;

export function isValidGfn(gfn: number): boolean {
  return Number.isInteger(gfn) && gfn >= 0 && gfn <= MAX_GFN;
}
