/* Grant tables v1; see include/grant.h. */
#include "grant.h"

#include "hypercall.h"
#include "platform.h"

volatile struct grant_entry_v1 *gnttab_table;
unsigned gnttab_nr_frames;
long gnttab_last_errno;

static int hcall_status(long rc, int16_t status) {
  if (rc < 0) {
    gnttab_last_errno = rc;
    return GNTST_general_error;
  }
  return status;
}

int gnttab_query_size(domid_t dom, uint32_t *nr_frames, uint32_t *max_nr_frames) {
  struct gnttab_query_size q = {.dom = dom};
  long rc = HYPERVISOR_grant_table_op(GNTTABOP_query_size, &q, 1);
  if (rc == 0 && q.status == GNTST_okay) {
    if (nr_frames) *nr_frames = q.nr_frames;
    if (max_nr_frames) *max_nr_frames = q.max_nr_frames;
  }
  return hcall_status(rc, q.status);
}

int gnttab_setup_table(domid_t dom, uint32_t nr_frames, xen_pfn_t *frame_list) {
  struct gnttab_setup_table s = {.dom = dom, .nr_frames = nr_frames, .frame_list = xen_handle(frame_list)};
  long rc = HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &s, 1);
  return hcall_status(rc, s.status);
}

int gnttab_init(unsigned nr_frames) {
  uint32_t cur, max;
  if (nr_frames == 0 || nr_frames > GNTTAB_MAX_INIT_FRAMES) return -XEN_EINVAL;
  if (gnttab_query_size(DOMID_SELF, &cur, &max) != GNTST_okay) return -XEN_EINVAL;
  if (nr_frames > max) return -XEN_E2BIG;
  uint32_t base = xen_window_alloc(nr_frames);
  if (!base) return -XEN_ENOSPC;
  for (unsigned i = 0; i < nr_frames; i++) {
    struct xen_add_to_physmap xatp = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_grant_table,
        .idx = i,
        .gpfn = (base >> XEN_PAGE_SHIFT) + i,
    };
    long rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp);
    if (rc < 0) return (int)rc;
  }
  /* The core reports where each frame now is: it must be exactly where we put it. */
  xen_pfn_t list[GNTTAB_MAX_INIT_FRAMES];
  int st = gnttab_setup_table(DOMID_SELF, nr_frames, list);
  if (st != GNTST_okay) return -XEN_EINVAL;
  for (unsigned i = 0; i < nr_frames; i++)
    if (list[i] != (base >> XEN_PAGE_SHIFT) + i) return -XEN_EINVAL;
  gnttab_table = (volatile struct grant_entry_v1 *)(uintptr_t)base;
  gnttab_nr_frames = nr_frames;
  return 0;
}

unsigned gnttab_nr_refs(void) { return gnttab_nr_frames * GNTTAB_ENTRIES_PER_FRAME; }

/* The aligned 32-bit word holding flags (low half) and domid (high half) of an entry. */
static volatile uint32_t *entry_word(grant_ref_t ref) { return (volatile uint32_t *)&gnttab_table[ref]; }

int gnttab_grant_access(grant_ref_t ref, domid_t domid, uint32_t gfn, int readonly) {
  if (ref >= gnttab_nr_refs()) return -XEN_EINVAL;
  volatile uint32_t *w = entry_word(ref);
  if (__atomic_load_n(w, __ATOMIC_ACQUIRE) & 0xffffu) return -XEN_EBUSY;
  gnttab_table[ref].frame = gfn;
  /* The frame must be visible before the entry can be seen as live. */
  __atomic_thread_fence(__ATOMIC_RELEASE);
  uint32_t flags = GTF_permit_access | (readonly ? GTF_readonly : 0);
  __atomic_store_n(w, (uint32_t)domid << 16 | flags, __ATOMIC_RELEASE);
  return 0;
}

int gnttab_end_access(grant_ref_t ref) {
  if (ref >= gnttab_nr_refs()) return -XEN_EINVAL;
  volatile uint32_t *w = entry_word(ref);
  uint32_t old, busy;
  /*
   * RV32A has no 16-bit CAS, so work on the 32-bit word: LR it, give up if the core holds the
   * entry (reading/writing) or it is not a grant, else SC it back with the flags half zeroed and
   * domid kept. The core only ever CASes or ANDs this word, so a lost reservation means it
   * changed: retry from the LR. One asm block keeps the LR/SC loop free of compiler code.
   */
  __asm__ volatile(
      "1: lr.w.aqrl %[old], (%[w])\n"
      "   andi %[busy], %[old], %[inuse]\n"
      "   bnez %[busy], 2f\n"
      "   andi %[busy], %[old], %[type]\n"
      "   beqz %[busy], 2f\n"
      "   srli %[busy], %[old], 16\n"
      "   slli %[busy], %[busy], 16\n"
      "   sc.w.rl %[busy], %[busy], (%[w])\n"
      "   bnez %[busy], 1b\n"
      "2:\n"
      : [old] "=&r"(old), [busy] "=&r"(busy)
      : [w] "r"(w), [inuse] "i"(GTF_reading | GTF_writing), [type] "i"(GTF_type_mask)
      : "memory");
  if (old & (GTF_reading | GTF_writing)) return -XEN_EBUSY;
  if ((old & GTF_type_mask) == 0) return -XEN_EINVAL;
  return 0;
}

uint16_t gnttab_query_flags(grant_ref_t ref) {
  if (ref >= gnttab_nr_refs()) return 0;
  return (uint16_t)__atomic_load_n(entry_word(ref), __ATOMIC_ACQUIRE);
}

long gnttab_map_batch(struct gnttab_map_grant_ref *ops, unsigned count) {
  return HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, ops, count);
}

long gnttab_unmap_batch(struct gnttab_unmap_grant_ref *ops, unsigned count) {
  return HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, ops, count);
}

long gnttab_copy_batch(struct gnttab_copy *ops, unsigned count) {
  return HYPERVISOR_grant_table_op(GNTTABOP_copy, ops, count);
}

int gnttab_map(domid_t domid, grant_ref_t ref, uint32_t gfn, int readonly, grant_handle_t *handle) {
  struct gnttab_map_grant_ref op = {
      .host_addr = (uint64_t)gfn << XEN_PAGE_SHIFT,
      .flags = GNTMAP_host_map | (readonly ? GNTMAP_readonly : 0),
      .ref = ref,
      .dom = domid,
  };
  long rc = gnttab_map_batch(&op, 1);
  int st = hcall_status(rc, op.status);
  if (st == GNTST_okay && handle) *handle = op.handle;
  return st;
}

int gnttab_unmap(grant_handle_t handle, uint32_t gfn) {
  struct gnttab_unmap_grant_ref op = {.host_addr = (uint64_t)gfn << XEN_PAGE_SHIFT, .handle = handle};
  long rc = gnttab_unmap_batch(&op, 1);
  return hcall_status(rc, op.status);
}

int gnttab_copy(const struct gnttab_copy_ptr *source, const struct gnttab_copy_ptr *dest, uint16_t len,
                uint16_t flags) {
  struct gnttab_copy op = {.source = *source, .dest = *dest, .len = len, .flags = flags};
  long rc = gnttab_copy_batch(&op, 1);
  return hcall_status(rc, op.status);
}

const char *gnttab_status_name(int status) {
  static const char *const names[] = {
      "okay",          "general_error",     "bad_domain",   "bad_gntref", "bad_handle",
      "bad_virt_addr", "bad_dev_addr",      "no_device_space", "permission_denied", "bad_page",
      "bad_copy_arg",  "address_too_big",   "eagain",       "no_space",
  };
  if (status <= 0 && status >= -13) return names[-status];
  return "unknown";
}
