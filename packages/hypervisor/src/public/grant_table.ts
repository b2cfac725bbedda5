/** Facts from xen/include/public/grant_table.h (Xen 4.17), see shared/reference/xen-abi.md §1.2, §2. */

/** `GNTTABOP_*` sub-ops of grant_table_op. */
export const GnttabOp = {
  map_grant_ref: 0,
  unmap_grant_ref: 1,
  setup_table: 2,
  dump_table: 3,
  transfer: 4,
  copy: 5,
  query_size: 6,
  unmap_and_replace: 7,
  set_version: 8,
  get_status_frames: 9,
  get_version: 10,
  swap_grant_ref: 11,
  cache_flush: 12,
} as const;

/** `GTF_*` bits of a v1 entry's flags (u16). */
export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 0x04;
export const GTF_reading = 0x08;
export const GTF_writing = 0x10;
export const GTF_PWT = 0x20;
export const GTF_PCD = 0x40;
export const GTF_PAT = 0x80;
export const GTF_sub_page = 0x100;

/** `GNTMAP_*` flags of gnttab_map_grant_ref. */
export const GNTMAP_device_map = 0x1;
export const GNTMAP_host_map = 0x2;
export const GNTMAP_readonly = 0x4;
export const GNTMAP_application_map = 0x8;
export const GNTMAP_contains_pte = 0x10;

/** `GNTCOPY_*` flags of gnttab_copy. */
export const GNTCOPY_source_gref = 0x1;
export const GNTCOPY_dest_gref = 0x2;

/** `GNTST_*` per-element status codes (§2.5). */
export const Gntst = {
  okay: 0,
  general_error: -1,
  bad_domain: -2,
  bad_gntref: -3,
  bad_handle: -4,
  bad_virt_addr: -5,
  bad_dev_addr: -6,
  no_device_space: -7,
  permission_denied: -8,
  bad_page: -9,
  bad_copy_arg: -10,
  address_too_big: -11,
  eagain: -12,
  no_space: -13,
} as const;
export type GntstCode = (typeof Gntst)[keyof typeof Gntst];

/** v1 entry: 8 bytes, 512 per 4 KiB frame. */
export const GRANT_ENTRY_V1_SIZE = 8;
export const GRANT_ENTRIES_PER_FRAME = 512;
/** Refs 0..7 are reserved for the toolstack (0 console, 1 XenStore). */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;
/** Xen's defaults: 64 grant frames, 1024 maptrack frames of 256 handles each. */
export const DEFAULT_MAX_GRANT_FRAMES = 64;
export const DEFAULT_MAX_MAPTRACK_FRAMES = 1024;
export const MAPTRACK_PER_FRAME = 256;
/** Xen gives up on a v1 entry after this many lost compare-exchange races ("unstable entry"). */
export const GNTTAB_CAS_RETRIES = 5;
/** Our maximum (and only) grant-table version, as on Arm. */
export const GNTTAB_MAX_VERSION = 1;
