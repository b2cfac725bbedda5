/*
 * Grant tables (v1) for a Xenon guest: our own table (granting our pages to others) and the
 * map/unmap/copy operations on other domains' grants.
 *
 * gnttab_init maps the table's frames contiguously into the /hypervisor window with
 * XENMEM_add_to_physmap (XENMAPSPACE_grant_table, idx = frame) and cross-checks the result with
 * GNTTABOP_setup_table. Entries are then written directly.
 *
 * Status results are GNTST_* codes (0 = okay). When the hypercall itself fails (a bad pointer,
 * which would be a runtime bug) the functions return GNTST_general_error and leave the errno in
 * gnttab_last_errno.
 */
#ifndef XENON_GRANT_H
#define XENON_GRANT_H

#include <stdint.h>

#include "xen.h"

extern volatile struct grant_entry_v1 *gnttab_table;
extern unsigned gnttab_nr_frames;
extern long gnttab_last_errno;

/* Maps `nr_frames` frames (1..GNTTAB_MAX_INIT_FRAMES and at most the domain's maximum).
 * 0 or a negative Xen errno. */
#define GNTTAB_MAX_INIT_FRAMES 64
int gnttab_init(unsigned nr_frames);
/* Number of refs in our table (0 before gnttab_init). */
unsigned gnttab_nr_refs(void);

/* GNTTABOP_query_size / setup_table on `dom` (DOMID_SELF for ourselves). Return GNTST_*. */
int gnttab_query_size(domid_t dom, uint32_t *nr_frames, uint32_t *max_nr_frames);
int gnttab_setup_table(domid_t dom, uint32_t nr_frames, xen_pfn_t *frame_list);

/*
 * Lets `domid` map or copy our page `gfn` through `ref`. The entry goes live in Xen's order:
 * frame first, a write barrier, then the word holding domid and flags in one store.
 * 0, -EINVAL (ref outside the table), -EBUSY (the entry is not free).
 */
int gnttab_grant_access(grant_ref_t ref, domid_t domid, uint32_t gfn, int readonly);
/*
 * Revokes `ref`: an atomic compare-and-clear of the flags that fails while the core holds
 * GTF_reading/GTF_writing (someone still has it mapped or is copying). 0, -EBUSY (in use; try
 * again later), -EINVAL (not a live grant or outside the table).
 */
int gnttab_end_access(grant_ref_t ref);
/* The entry's current flags (GTF_*). */
uint16_t gnttab_query_flags(grant_ref_t ref);

/* Maps (domid, ref) at our guest-physical page `gfn` (a free page, e.g. from xen_window_alloc). */
int gnttab_map(domid_t domid, grant_ref_t ref, uint32_t gfn, int readonly, grant_handle_t *handle);
int gnttab_unmap(grant_handle_t handle, uint32_t gfn);
/* Batched forms: each element gets its own status; returns 0 or a negative Xen errno. */
long gnttab_map_batch(struct gnttab_map_grant_ref *ops, unsigned count);
long gnttab_unmap_batch(struct gnttab_unmap_grant_ref *ops, unsigned count);
long gnttab_copy_batch(struct gnttab_copy *ops, unsigned count);

/* One GNTTABOP_copy of `len` bytes; `flags` = GNTCOPY_source_gref | GNTCOPY_dest_gref as needed. */
int gnttab_copy(const struct gnttab_copy_ptr *source, const struct gnttab_copy_ptr *dest, uint16_t len,
                uint16_t flags);

/* A printable name for a GNTST_* code. */
const char *gnttab_status_name(int status);

#endif
