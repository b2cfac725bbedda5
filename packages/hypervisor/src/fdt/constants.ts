/** Flattened device tree format constants (Devicetree Specification v0.4, chapter 5). */

export const FDT_MAGIC = 0xd00dfeed;

/** The version this module writes, and the oldest version a v17 blob stays compatible with. */
export const FDT_VERSION = 17;
export const FDT_LAST_COMP_VERSION = 16;
/** Oldest version the reader accepts: v16 is v17 without size_dt_struct. */
export const FDT_OLDEST_READABLE_VERSION = 16;

/** Header sizes: v17 adds size_dt_struct to the v16 (= v3) header. */
export const FDT_V17_HEADER_SIZE = 40;
export const FDT_V16_HEADER_SIZE = 36;

/** Byte offsets of the big-endian u32 header fields. */
export const FdtHeader = {
  magic: 0,
  totalsize: 4,
  offDtStruct: 8,
  offDtStrings: 12,
  offMemRsvmap: 16,
  version: 20,
  lastCompVersion: 24,
  bootCpuidPhys: 28,
  sizeDtStrings: 32,
  sizeDtStruct: 36,
} as const;

/** Struct-block tokens (each a big-endian u32 at a 4-aligned offset). */
export const FdtToken = {
  BEGIN_NODE: 0x1,
  END_NODE: 0x2,
  PROP: 0x3,
  NOP: 0x4,
  END: 0x9,
} as const;

/** A memory-reservation entry is two u64s (address, size); the list ends with a size-0 entry. */
export const FDT_RSV_ENTRY_SIZE = 16;
/** Required alignment of the memory-reservation block and of the struct block. */
export const FDT_RSVMAP_ALIGN = 8;
export const FDT_STRUCT_ALIGN = 4;

/** Default nesting limit of the reader (Linux's unflattener uses the same bound). */
export const FDT_DEFAULT_MAX_DEPTH = 64;

/** Longest property name the reader accepts (the spec allows 31 characters). */
export const FDT_MAX_PROPNAME_LEN = 255;

/** Limits for #address-cells / #size-cells that this module decodes. */
export const FDT_MAX_NCELLS = 4;
/** Defaults a parent implies when it has no #address-cells / #size-cells (spec §2.3.5). */
export const FDT_DEFAULT_ADDRESS_CELLS = 2;
export const FDT_DEFAULT_SIZE_CELLS = 1;

/** Rounds up to a multiple of 4; arithmetic rather than bit ops so lengths near 2^32 stay exact. */
export const align4 = (n: number): number => n + ((4 - (n % 4)) % 4);
