/** Facts from xen/include/public/memory.h (Xen 4.17), see shared/reference/xen-abi.md §1.5. */

/** `XENMEM_*` sub-ops of memory_op (the low MEMOP_CMD_MASK bits of the command). */
export const XenMem = {
  increase_reservation: 0,
  decrease_reservation: 1,
  maximum_ram_page: 2,
  current_reservation: 3,
  maximum_reservation: 4,
  populate_physmap: 6,
  add_to_physmap: 7,
  maximum_gpfn: 14,
  remove_from_physmap: 15,
  add_to_physmap_batch: 23,
} as const;
/** Most entries one XENMEM_add_to_physmap_batch may carry (Xenon's limit; Xen preempts instead). */
export const ADD_TO_PHYSMAP_BATCH_MAX = 1024;

/**
 * memory_op's command word: the sub-op in bits 0..5, the extent to resume from above them (Xen's
 * continuation encoding, which guests may also use to start part-way through a list).
 */
export const MEMOP_EXTENT_SHIFT = 6;
export const MEMOP_CMD_MASK = (1 << MEMOP_EXTENT_SHIFT) - 1;

/** `XENMAPSPACE_*` of xen_add_to_physmap. */
export const XenMapSpace = {
  shared_info: 0,
  grant_table: 1,
  gmfn: 2,
  gmfn_range: 3,
  gmfn_foreign: 4,
  dev_mmio: 5,
} as const;
/** OR'ed into idx to ask for a v2 status frame (never valid here: we are v1 only). */
export const XENMAPIDX_grant_table_status = 0x80000000;

/** Highest extent order an unprivileged guest may ask for (Xen's CONFIG_DOMU_MAX_ORDER). */
export const DOMU_MAX_ORDER = 9;
