/*
 * hostile: throws garbage at every hypercall and checks that the core neither falls over, nor
 * changes this domain's memory where it should not, nor lets it read or write anyone else's.
 *
 *   bootargs: seed=<PRNG seed> iters=<random calls per (hypercall, sub-op)> paranoid=0|1
 *   (defaults 1, 2, 0; paranoid checksums the image after every random call to name the culprit)
 *
 * Phases: (1) targeted attacks with known right answers (foreign grant maps and copies, sends to
 * every port, binds to random domains, cross-domain memory ops, populate past max_pages,
 * add_to_physmap over our own code, console_io with huge counts, bad shutdown reasons, block and
 * poll); (2) every hypercall number 0..63 x sub-op 0..40 with PRNG arguments; (3) checks that text,
 * rodata and a canary page are unchanged and that foreign grants still give nothing. Prints
 * "hostile: survived N calls, M returned success" and powers off, or crashes on a violation.
 *
 * Self-protection (the garbage must hurt the core, not us; RAM is all read-write in the P2M):
 * - No argument value or struct word ever names our image RAM, as an address or as a gfn:
 *   sanitize() moves such values into an unmapped range. Memory the core may legitimately write
 *   is a scratch area we populate in a hole below RAM, followed by unmapped space, so any overrun
 *   (huge counts, batched ops) faults there instead of reaching our RAM.
 * - Scratch page A holds random struct words (aligned pointers only point here); page B and the
 *   rest of A hold 0xEE bytes, which decode to invalid ids, gfns and pointers at any offset, so
 *   misaligned pointers (which point into B) cannot assemble a valid gfn out of two words. Both
 *   are refilled before every call.
 * - console_io writes only from an all-zero area (the core drops NULs), so the console shows no
 *   garbage; console reads land in the scratch area.
 * - SCHEDOP_block/poll/shutdown/shutdown_code and VCPUOP_down are only called in controlled ways
 *   (they would stop or hang this vCPU by design); the event upcall source stays masked.
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"

#define PAGE XEN_PAGE_SIZE
/* Hole addresses we use; checked against RAM and the window at start. */
#define SCRATCH_BASE 0x60000000u /* pages A and B, then unmapped */
#define ZERO_BASE 0x60100000u    /* ZERO_PAGES zero pages for console writes, then unmapped */
#define ZERO_PAGES 4u
#define POP_BASE 0x61000000u /* populate-past-limit attack */
#define POP_MAX 1024u
#define RANDOM_WORDS 64u /* random struct words at the start of page A */
#define FILL 0xeeeeeeeeu

/* A page of our own code that the add_to_physmap attack replaces and then restores. */
__asm__(".pushsection .text.hostile_victim, \"ax\", @progbits\n"
        ".balign 4096\n"
        ".globl hostile_victim\n"
        "hostile_victim:\n"
        "  li a0, 0x1234\n"
        "  ret\n"
        ".balign 4096\n"
        ".globl hostile_victim_end\n"
        "hostile_victim_end:\n"
        ".popsection\n");
extern uint32_t hostile_victim(void);
extern char hostile_victim_end[];

/* A page of .data the core must never touch (nothing passes its address anywhere). */
static uint32_t canary[PAGE / 4] = {0xc0ffee00u, 0xdeadbeefu, 1, 2, 3, 4, 5, 6, 7, 8};

static uint32_t rng;
static uint32_t my_domid, ram_base, ram_end, ram_gfn, ram_pages, window_base, window_size;
static volatile uint32_t *page_a, *page_b;
static int violations;

/* --- accounting --------------------------------------------------------------------------- */

static uint32_t n_calls, n_success, n_err[128], n_err_other, n_gntst[14], n_gntst_other;

static long hcall(unsigned nr, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t a4, uint32_t a5) {
  long rc = xen_hypercall6(nr, (long)a0, (long)a1, (long)a2, (long)a3, (long)a4, (long)a5);
  n_calls++;
  if (rc >= 0) n_success++;
  else if (rc > -128) n_err[-rc]++;
  else n_err_other++;
  return rc;
}

static void count_gntst(int16_t st) {
  if (st <= 0 && st >= -13) n_gntst[-st]++;
  else n_gntst_other++;
}

static void violation(const char *what, long detail) {
  printf("hostile: VIOLATION %s (%ld)\n", what, detail);
  violations++;
}

static const char *errno_name(unsigned e) {
  switch (e) {
    case XEN_EPERM:
      return "EPERM";
    case XEN_ENOENT:
      return "ENOENT";
    case XEN_ESRCH:
      return "ESRCH";
    case XEN_E2BIG:
      return "E2BIG";
    case XEN_EAGAIN:
      return "EAGAIN";
    case XEN_ENOMEM:
      return "ENOMEM";
    case XEN_EACCES:
      return "EACCES";
    case XEN_EFAULT:
      return "EFAULT";
    case XEN_EBUSY:
      return "EBUSY";
    case XEN_EEXIST:
      return "EEXIST";
    case XEN_EINVAL:
      return "EINVAL";
    case XEN_ENOSPC:
      return "ENOSPC";
    case XEN_ERANGE:
      return "ERANGE";
    case XEN_ENOSYS:
      return "ENOSYS";
    case XEN_ETIME:
      return "ETIME";
    case XEN_EOVERFLOW:
      return "EOVERFLOW";
    case XEN_EOPNOTSUPP:
      return "EOPNOTSUPP";
    default:
      return "E?";
  }
}

/* --- garbage ------------------------------------------------------------------------------- */

static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* Moves a value that names our image RAM or scratch pages (as address or gfn) into a hole. */
static uint32_t sanitize(uint32_t v) {
  if (v - ram_base < ram_end - ram_base) v = 0x20000000u | (v & 0x0fffffffu);
  if (v - ram_gfn < ram_pages || v - (SCRATCH_BASE >> 12) < 0x200u) v = 0x20000u | (v & 0xffffu);
  return v;
}

/* gfns it is fine for the core to (un)map: the upper half of the window, the populate area,
 * shared_info's own gfn, and out-of-range values. */
static uint32_t safe_gfn(void) {
  switch (rnd() % 6) {
    case 0:
      return (window_base + window_size / 2) / PAGE + rnd() % (window_size / 2 / PAGE);
    case 1:
      return POP_BASE / PAGE + rnd() % 64;
    case 2:
      return window_base / PAGE;
    case 3:
      return 0xfffffu;
    case 4:
      return 0x100000u;
    default:
      return rnd() % 16;
  }
}

static uint32_t pick_word_raw(void) {
  static const uint32_t huge[] = {0x10000u, 0x100000u, 0x7fffffffu, 0xfffffff0u};
  switch (rnd() % 16) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return rnd() % 9;
    case 3:
      return 0xffffffffu;
    case 4:
      return 0x80000000u;
    case 5:
      return 0x7fffffffu;
    case 6:
      return DOMID_SELF;
    case 7:
      return rnd() % 8;
    case 8:
      return my_domid;
    case 9:
      return rnd() & 0xffffu;
    case 10:
      return rnd() % EVTCHN_2L_NR_CHANNELS;
    case 11:
      return rnd() % 65;
    case 12:
      return (uint32_t)(uintptr_t)page_a + rnd() % RANDOM_WORDS * 8;
    case 13:
      return safe_gfn();
    case 14:
      return huge[rnd() % 4];
    default:
      return sanitize(rnd());
  }
}

/* Every menu value goes through sanitize(): constants such as 0x80000000 are RAM addresses too. */
static uint32_t pick_word(void) { return sanitize(pick_word_raw()); }

static uint32_t pick_ptr_raw(void) {
  uint32_t a = (uint32_t)(uintptr_t)page_a, b = (uint32_t)(uintptr_t)page_b;
  switch (rnd() % 16) {
    case 0:
      return 0;
    case 1:
      return 0xffffffffu;
    case 2:
      return 0xfffffff8u;
    case 3:
      return 0x1000u;
    case 4:
      return 0x10000000u;
    case 5:
      return window_base; /* our shared_info */
    case 6:
      return window_base + PAGE; /* our grant frame 0 */
    case 7:
      return window_base + window_size - PAGE + (rnd() & 0xff8u); /* unmapped window page */
    case 8:
    case 9:
    case 10:
      return a + rnd() % RANDOM_WORDS * 8;
    case 11:
      return b + 1 + rnd() % (PAGE - 16); /* misaligned, over 0xEE bytes */
    case 12:
      return b + PAGE - 4; /* straddles into the hole */
    case 13:
      return ram_end - 2; /* straddles the end of RAM */
    case 14:
      return window_base - 4; /* straddles into shared_info from below */
    default:
      return sanitize(rnd());
  }
}

static uint32_t pick_ptr(void) { return sanitize(pick_ptr_raw()); }

static uint32_t pick_arg(void) { return rnd() & 1 ? pick_ptr() : pick_word(); }

static void refill_scratch(void) {
  for (unsigned i = 0; i < RANDOM_WORDS; i++) page_a[i] = pick_word();
  for (unsigned i = RANDOM_WORDS; i < PAGE / 4; i++) page_a[i] = FILL;
  for (unsigned i = 0; i < PAGE / 4; i++) page_b[i] = FILL;
}

/* --- checks -------------------------------------------------------------------------------- */

static uint32_t fnv(const volatile uint8_t *p, const volatile uint8_t *end) {
  uint32_t h = 2166136261u;
  for (; p < end; p++) h = (h ^ *p) * 16777619u;
  return h;
}

static uint32_t image_sum(void) {
  return fnv((const uint8_t *)__image_start, (const uint8_t *)__text_end) ^
         fnv((const uint8_t *)__rodata_start, (const uint8_t *)__rodata_end) * 3u;
}

static uint32_t canary_sum(void) { return fnv((const uint8_t *)canary, (const uint8_t *)canary + sizeof canary); }

/* --- memory helpers ------------------------------------------------------------------------ */

static long reservation(unsigned cmd, xen_pfn_t *list, unsigned n, domid_t dom) {
  struct xen_memory_reservation r = {.extent_start = xen_handle(list), .nr_extents = n, .domid = dom};
  return hcall(__HYPERVISOR_memory_op, cmd, (uint32_t)(uintptr_t)&r, 0, 0, 0, 0);
}

/* Populates `n` consecutive pages at gpa; returns how many were. */
static long populate_at(uint32_t gpa, unsigned n) {
  xen_pfn_t list[16];
  if (n > 16) n = 16;
  for (unsigned i = 0; i < n; i++) list[i] = gpa / PAGE + i;
  return reservation(XENMEM_populate_physmap, list, n, DOMID_SELF);
}

static long add_to_physmap(domid_t dom, uint32_t space, uint32_t idx, uint32_t gfn) {
  struct xen_add_to_physmap x = {.domid = dom, .space = space, .idx = idx, .gpfn = gfn};
  return hcall(__HYPERVISOR_memory_op, XENMEM_add_to_physmap, (uint32_t)(uintptr_t)&x, 0, 0, 0, 0);
}

static long current_reservation(domid_t dom) {
  domid_t d = dom;
  return hcall(__HYPERVISOR_memory_op, XENMEM_current_reservation, (uint32_t)(uintptr_t)&d, 0, 0, 0, 0);
}

/* --- targeted attacks ---------------------------------------------------------------------- */

/* Domains to attack: everyone but us, and every special id. */
static const domid_t victims[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 0x7fef, DOMID_SELF, DOMID_IO, DOMID_XEN, DOMID_COW, DOMID_INVALID, DOMID_IDLE};
#define NVICTIMS (sizeof victims / sizeof victims[0])
#define NREFS 65

/* Maps and copies of foreign refs 0..64 must all fail; returns how many did not. */
static int foreign_grants(uint32_t map_gfn) {
  static struct gnttab_map_grant_ref maps[NREFS];
  static struct gnttab_copy copies[NREFS];
  int leaks = 0;
  uint32_t a_gfn = (uint32_t)(uintptr_t)page_a / PAGE;
  for (unsigned v = 0; v < NVICTIMS; v++) {
    domid_t d = victims[v];
    if (d == my_domid) continue;
    for (unsigned r = 0; r < NREFS; r++) {
      maps[r] = (struct gnttab_map_grant_ref){
          .host_addr = (uint64_t)map_gfn * PAGE,
          .flags = GNTMAP_host_map | (r & 1 ? GNTMAP_readonly : 0),
          .ref = r,
          .dom = d,
      };
    }
    long rc = hcall(__HYPERVISOR_grant_table_op, GNTTABOP_map_grant_ref, (uint32_t)(uintptr_t)maps, NREFS, 0, 0, 0);
    for (unsigned r = 0; rc == 0 && r < NREFS; r++) {
      count_gntst(maps[r].status);
      if (maps[r].status == GNTST_okay) {
        printf("hostile: mapped ref %u of domain %u!\n", r, (unsigned)d);
        leaks++;
        struct gnttab_unmap_grant_ref u = {.host_addr = maps[r].host_addr, .handle = maps[r].handle};
        hcall(__HYPERVISOR_grant_table_op, GNTTABOP_unmap_grant_ref, (uint32_t)(uintptr_t)&u, 1, 0, 0, 0);
      }
    }

    /* Reading theirs into page A, and writing page A into theirs. */
    for (unsigned i = 0; i < PAGE / 4; i++) page_a[i] = 0x5a5a5a5au;
    for (unsigned r = 0; r < NREFS; r++) {
      struct gnttab_copy_ptr ours = {.u.gmfn = a_gfn, .domid = DOMID_SELF};
      struct gnttab_copy_ptr theirs = {.u.ref = r, .domid = d};
      int in = r & 1;
      copies[r] = (struct gnttab_copy){
          .source = in ? theirs : ours,
          .dest = in ? ours : theirs,
          .len = r % 3 ? PAGE : 8,
          .flags = in ? GNTCOPY_source_gref : GNTCOPY_dest_gref,
      };
    }
    rc = hcall(__HYPERVISOR_grant_table_op, GNTTABOP_copy, (uint32_t)(uintptr_t)copies, NREFS, 0, 0, 0);
    for (unsigned r = 0; rc == 0 && r < NREFS; r++) {
      count_gntst(copies[r].status);
      if (copies[r].status == GNTST_okay) {
        printf("hostile: copied %s ref %u of domain %u!\n", r & 1 ? "from" : "to", r, (unsigned)d);
        leaks++;
      }
    }
    for (unsigned i = 0; i < PAGE / 4; i++)
      if (page_a[i] != 0x5a5a5a5au) {
        printf("hostile: a copy from domain %u changed our page at word %u\n", (unsigned)d, i);
        leaks++;
        break;
      }
  }
  return leaks;
}

static void attack_events(void) {
  /* Every port number, bound or not, ours or not. */
  for (uint32_t p = 0; p < EVTCHN_2L_NR_CHANNELS; p++) {
    evtchn_send_t s = {.port = p};
    hcall(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uint32_t)(uintptr_t)&s, 0, 0, 0, 0);
  }
  /* Binding to other domains' ports: fine only if they reserved one for us (nobody does). */
  unsigned bound = 0;
  for (unsigned i = 0; i < 320; i++) {
    struct evtchn_bind_interdomain b = {
        .remote_dom = (domid_t)(i < 64 ? i / 8 : rnd() % 4 ? rnd() % 16 : rnd()),
        .remote_port = i < 64 ? i % 8 : rnd() % 4 ? rnd() % 64 : rnd(),
    };
    if (hcall(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_interdomain, (uint32_t)(uintptr_t)&b, 0, 0, 0, 0) == 0) {
      bound++;
      evtchn_close_t c = {.port = b.local_port};
      hcall(__HYPERVISOR_event_channel_op, EVTCHNOP_close, (uint32_t)(uintptr_t)&c, 0, 0, 0, 0);
    }
  }
  /* Ports in other domains' names need privilege. */
  for (unsigned v = 0; v < NVICTIMS; v++) {
    domid_t d = victims[v];
    if (d == my_domid || d == DOMID_SELF) continue;
    struct evtchn_alloc_unbound a = {.dom = d, .remote_dom = DOMID_SELF};
    if (hcall(__HYPERVISOR_event_channel_op, EVTCHNOP_alloc_unbound, (uint32_t)(uintptr_t)&a, 0, 0, 0, 0) == 0)
      violation("alloc_unbound in another domain's name", d);
    struct evtchn_reset r = {.dom = d};
    if (hcall(__HYPERVISOR_event_channel_op, EVTCHNOP_reset, (uint32_t)(uintptr_t)&r, 0, 0, 0, 0) == 0 &&
        d < DOMID_FIRST_RESERVED)
      violation("reset of another domain's ports", d);
  }
  printf("hostile: sent to ports 0..4095, %u of 320 foreign binds succeeded\n", bound);
}

static void attack_memory(void) {
  /* Other domains' memory, by name: all need privilege. gfn 0x80000 is everyone's first RAM page. */
  for (unsigned v = 0; v < NVICTIMS; v++) {
    domid_t d = victims[v];
    if (d == my_domid || d == DOMID_SELF) continue;
    xen_pfn_t gfn = ram_gfn;
    if (reservation(XENMEM_decrease_reservation, &gfn, 1, d) > 0) violation("decrease_reservation of another domain", d);
    xen_pfn_t pop = POP_BASE / PAGE;
    if (reservation(XENMEM_populate_physmap, &pop, 1, d) > 0) violation("populate_physmap for another domain", d);
    struct xen_remove_from_physmap rm = {.domid = d, .gpfn = ram_gfn};
    if (hcall(__HYPERVISOR_memory_op, XENMEM_remove_from_physmap, (uint32_t)(uintptr_t)&rm, 0, 0, 0, 0) == 0)
      violation("remove_from_physmap of another domain", d);
    if (add_to_physmap(d, XENMAPSPACE_shared_info, 0, ram_gfn) == 0) violation("add_to_physmap in another domain", d);
    current_reservation(d);
    struct gnttab_setup_table st = {.dom = d, .nr_frames = 1, .frame_list = xen_handle(page_a)};
    hcall(__HYPERVISOR_grant_table_op, GNTTABOP_setup_table, (uint32_t)(uintptr_t)&st, 1, 0, 0, 0);
    if (st.status == GNTST_okay && d < DOMID_FIRST_RESERVED) violation("setup_table of another domain", d);
  }

  /* Populate past max_pages: it must stop there, and give everything back. */
  long before = current_reservation(DOMID_SELF);
  long max = hcall(__HYPERVISOR_memory_op, XENMEM_maximum_reservation,
                   (uint32_t)(uintptr_t) & (domid_t){DOMID_SELF}, 0, 0, 0, 0);
  xen_pfn_t *list = malloc(POP_MAX * sizeof *list);
  if (!list) {
    violation("no heap for the populate list", 0);
    return;
  }
  for (unsigned i = 0; i < POP_MAX; i++) list[i] = POP_BASE / PAGE + i;
  long got = reservation(XENMEM_populate_physmap, list, POP_MAX, DOMID_SELF);
  long peak = current_reservation(DOMID_SELF);
  if (got < 0 || got >= (long)POP_MAX || peak > max) violation("populate went past max_pages", peak);
  long back = got > 0 ? reservation(XENMEM_decrease_reservation, list, (unsigned)got, DOMID_SELF) : 0;
  long after = current_reservation(DOMID_SELF);
  if (back != got || after != before) violation("decrease_reservation did not give the pages back", after);
  printf("hostile: populate stopped after %ld pages at %ld of max %ld, all %ld given back\n", got, peak, max, back);
  free(list);

  /* Huge extent counts over a list that runs into a hole, and a bad order. */
  struct xen_memory_reservation r = {.extent_start = xen_handle(page_b + PAGE / 4 - 2), .nr_extents = ~0ull};
  hcall(__HYPERVISOR_memory_op, XENMEM_populate_physmap, (uint32_t)(uintptr_t)&r, 0, 0, 0, 0);
  r.extent_order = 31;
  hcall(__HYPERVISOR_memory_op, XENMEM_decrease_reservation, (uint32_t)(uintptr_t)&r, 0, 0, 0, 0);
}

/* add_to_physmap of a grant frame over our own code page: allowed (the RAM page goes back to
 * Xen, as when Linux maps shared_info over a RAM page), so afterwards the page must read as that
 * frame; then we put our code back and run it. */
static void attack_own_code(void) {
  uint32_t gfn = (uint32_t)(uintptr_t)hostile_victim / PAGE;
  static uint32_t saved[PAGE / 4];
  volatile uint32_t *code = (volatile uint32_t *)(uintptr_t)hostile_victim;
  if (hostile_victim() != 0x1234) violation("victim code did not run", 0);
  for (unsigned i = 0; i < PAGE / 4; i++) saved[i] = code[i];
  long rc = add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 1, gfn);
  if (rc != 0) {
    printf("hostile: add_to_physmap over our code refused (%ld)\n", rc);
    return;
  }
  unsigned nonzero = 0;
  for (unsigned i = 0; i < PAGE / 4; i++) nonzero += code[i] != 0;
  printf("hostile: add_to_physmap over our code replaced it (grant frame, %u non-zero words)\n", nonzero);
  /* Move the frame away (leaving a hole), refill the hole with RAM, and restore the code. */
  uint32_t away = xen_window_alloc(1);
  if (!away || add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 1, away / PAGE) != 0 ||
      populate_at(gfn * PAGE, 1) != 1) {
    violation("could not restore our code page", 0);
    return;
  }
  for (unsigned i = 0; i < PAGE / 4; i++) code[i] = saved[i];
  __asm__ volatile("fence.i" ::: "memory");
  if (hostile_victim() != 0x1234) violation("restored code does not run", 0);
}

static void attack_sched_console(void) {
  /* Shutdown reasons beyond SHUTDOWN_MAX must be refused, not obeyed. */
  static const uint32_t bad_reasons[] = {6, 0x100, 0xffffffffu};
  for (unsigned i = 0; i < 3; i++) {
    struct sched_shutdown s = {.reason = bad_reasons[i]};
    long rc = hcall(__HYPERVISOR_sched_op, SCHEDOP_shutdown, (uint32_t)(uintptr_t)&s, 0, 0, 0, 0);
    if (rc != -XEN_EINVAL) violation("shutdown with a bad reason not refused", rc);
    rc = hcall(__HYPERVISOR_sched_op, SCHEDOP_shutdown_code, (uint32_t)(uintptr_t)&s, 0, 0, 0, 0);
    if (rc == 0) violation("shutdown_code with a bad reason accepted", (long)bad_reasons[i]);
  }
  hcall(__HYPERVISOR_sched_op, SCHEDOP_shutdown, 0, 0, 0, 0, 0);
  hcall(__HYPERVISOR_sched_op, SCHEDOP_shutdown, 0xfffffffeu, 0, 0, 0, 0);

  /* block/poll with an event pending return at once: an IPI to ourselves, source masked in sie. */
  evtchn_port_t ipi;
  if (evtchn_bind_ipi(0, &ipi) == 0 && evtchn_unmask(ipi) == 0 && evtchn_send(ipi) == 0 &&
      events_vcpu_info()->evtchn_upcall_pending) {
    long rc = hcall(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0, 0, 0, 0);
    evtchn_port_t ports[1] = {ipi};
    struct sched_poll p = {.ports = xen_handle(ports), .nr_ports = 1};
    long rc2 = hcall(__HYPERVISOR_sched_op, SCHEDOP_poll, (uint32_t)(uintptr_t)&p, 0, 0, 0, 0);
    p.nr_ports = SCHED_POLL_MAX_PORTS + 1;
    if (hcall(__HYPERVISOR_sched_op, SCHEDOP_poll, (uint32_t)(uintptr_t)&p, 0, 0, 0, 0) != -XEN_EINVAL)
      violation("poll of 129 ports not refused", 0);
    p.nr_ports = 1;
    p.ports = 0xfffffff0u;
    if (hcall(__HYPERVISOR_sched_op, SCHEDOP_poll, (uint32_t)(uintptr_t)&p, 0, 0, 0, 0) != -XEN_EFAULT)
      violation("poll of an unmapped port list not refused", 0);
    printf("hostile: block with an event pending returned %ld, poll %ld\n", rc, rc2);
  } else {
    printf("hostile: no self-IPI pending, block/poll not tried\n");
  }

  /* Huge console writes over zeros (dropped by the core) that run into unmapped space. */
  static const uint32_t counts[] = {0, 1, PAGE * ZERO_PAGES, 0x7fffffffu, 0xffffffffu};
  for (unsigned i = 0; i < 5; i++) {
    hcall(__HYPERVISOR_console_io, CONSOLEIO_write, counts[i], ZERO_BASE, 0, 0, 0);
    hcall(__HYPERVISOR_console_io, CONSOLEIO_write, counts[i], ZERO_BASE + PAGE * ZERO_PAGES - 3, 0, 0, 0);
    hcall(__HYPERVISOR_console_io, CONSOLEIO_write, counts[i], 0, 0, 0, 0);
    hcall(__HYPERVISOR_console_io, CONSOLEIO_read, counts[i], 0xfffff000u, 0, 0, 0);
  }
}

/* --- random phase -------------------------------------------------------------------------- */

/* With `paranoid`, the image checksum is taken after every call, to name the call that broke it. */
static void random_phase(unsigned iters, int privileged, int paranoid, uint32_t sum) {
  for (unsigned nr = 0; nr < 64; nr++) {
    for (uint32_t sub = 0; sub <= 40; sub++) {
      for (unsigned it = 0; it < iters; it++) {
        refill_scratch();
        uint32_t a[6] = {sub, pick_arg(), pick_arg(), pick_arg(), pick_arg(), pick_arg()};
        switch (nr) {
          case __HYPERVISOR_sched_op:
            /* These stop or park us by design (tried in controlled ways above). */
            if (sub == SCHEDOP_block || sub == SCHEDOP_shutdown || sub == SCHEDOP_poll || sub == SCHEDOP_shutdown_code)
              continue;
            if (sub == SCHEDOP_remote_shutdown && privileged) continue;
            break;
          case __HYPERVISOR_vcpu_op:
            if (sub == VCPUOP_down) a[1] = 1 + rnd() % 64; /* never our own vCPU */
            break;
          case __HYPERVISOR_memory_op:
            if (rnd() % 4 == 0) a[0] |= (rnd() % 8) << MEMOP_EXTENT_SHIFT;
            break;
          case __HYPERVISOR_console_io:
            /* Writes only from zeros, reads only into scratch: the console stays readable. */
            if (sub == CONSOLEIO_write)
              a[2] = rnd() & 1 ? ZERO_BASE + rnd() % (PAGE * ZERO_PAGES) : pick_ptr() & 0xfffff;
            else if (sub == CONSOLEIO_read)
              a[2] = rnd() & 1 ? (uint32_t)(uintptr_t)page_b + rnd() % PAGE : 0xfffff000u;
            break;
          case __HYPERVISOR_sysctl:
          case __HYPERVISOR_domctl:
            /* Argument is a struct whose first word is the op; then the interface version. */
            page_a[0] = sub;
            page_a[1] = rnd() & 1 ? 0x15 : pick_word();
            a[0] = rnd() % 4 ? (uint32_t)(uintptr_t)page_a : pick_ptr();
            break;
          default:
            break;
        }
        long rc = hcall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        if (paranoid && image_sum() != sum) {
          printf("hostile: call %u(%#x, %#x, %#x, %#x, %#x, %#x) = %ld changed our text/rodata\n", nr,
                 (unsigned)a[0], (unsigned)a[1], (unsigned)a[2], (unsigned)a[3], (unsigned)a[4], (unsigned)a[5], rc);
          return;
        }
      }
    }
  }
}

/* --- main ---------------------------------------------------------------------------------- */

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t seed = bootarg_u32("seed", 1);
  rng = seed | 1; /* xorshift must not start at 0 */
  unsigned iters = bootarg_u32("iters", 2);
  my_domid = xen_platform.domid;
  ram_base = xen_platform.ram_base;
  ram_end = (uint32_t)(xen_platform.ram_base + xen_platform.ram_size - 1) + 1; /* 0 if RAM reaches 4 GiB */
  ram_gfn = ram_base / PAGE;
  ram_pages = (uint32_t)(xen_platform.ram_size / PAGE);
  window_base = xen_platform.window_base;
  window_size = xen_platform.window_size;
  if (!window_base || window_size < 64 * PAGE || ram_base < POP_BASE + POP_MAX * PAGE || window_base < POP_BASE + POP_MAX * PAGE) {
    printf("hostile: unexpected memory map (RAM %#x, window %#x+%#x)\n", (unsigned)ram_base, (unsigned)window_base,
           (unsigned)window_size);
    return 1;
  }
  printf("hostile: domain %u, seed %u, %u random calls per (hypercall, sub-op)\n", (unsigned)my_domid,
         (unsigned)seed, iters);

  int rc = events_init(vcpu_id);
  if (rc == 0) rc = gnttab_init(1);
  if (rc < 0) {
    printf("hostile: set-up failed: %d\n", rc);
    return 1;
  }
  irq_mask_source(xen_platform.upcall_irq); /* never take the upcall: we never service it */
  struct xen_feature_info fi = {.submap_idx = 0};
  int privileged = HYPERVISOR_xen_version(XENVER_get_features, &fi) == 0 && (fi.submap >> XENFEAT_dom0 & 1);
  if (populate_at(SCRATCH_BASE, 2) != 2 || populate_at(ZERO_BASE, ZERO_PAGES) != ZERO_PAGES) {
    printf("hostile: cannot populate the scratch area\n");
    return 1;
  }
  page_a = (volatile uint32_t *)(uintptr_t)SCRATCH_BASE;
  page_b = page_a + PAGE / 4;
  uint32_t shared_info_gfn = window_base / PAGE, gnttab_gfn = shared_info_gfn + 1;
  uint32_t map_gfn = xen_window_alloc(1) / PAGE;
  uint32_t sum = image_sum(), csum = canary_sum();

  if (privileged) {
    printf("hostile: running privileged; cross-domain attacks would really hurt, skipping them\n");
  } else {
    int leaks = foreign_grants(map_gfn);
    if (leaks) violation("foreign grants gave access", leaks);
    printf("hostile: %u domains x %u refs: no foreign grant could be mapped or copied\n", (unsigned)NVICTIMS - 1,
           NREFS);
    attack_events();
    attack_memory();
  }
  attack_own_code();
  attack_sched_console();
  printf("hostile: targeted attacks done (%u calls so far)\n", (unsigned)n_calls);

  if (!privileged) random_phase(iters, privileged, bootarg_u32("paranoid", 0) != 0, sum);
  printf("hostile: random phase done\n");

  /* The garbage may have moved shared_info and grant frame 0: put them back where they were. */
  rc = (int)add_to_physmap(DOMID_SELF, XENMAPSPACE_shared_info, 0, shared_info_gfn);
  if (rc == 0) rc = (int)add_to_physmap(DOMID_SELF, XENMAPSPACE_grant_table, 0, gnttab_gfn);
  if (rc != 0) violation("could not map shared_info/grant frame back", rc);
  /* We granted nothing, but core writes through garbage pointers may have landed in our grant
   * frame: clear it so the final foreign check cannot succeed on a grant of our own making. */
  for (unsigned i = 0; rc == 0 && i < GNTTAB_ENTRIES_PER_FRAME; i++) {
    gnttab_table[i].frame = 0;
    *(volatile uint32_t *)&gnttab_table[i] = 0;
  }
  uint32_t version = (uint32_t)hcall(__HYPERVISOR_xen_version, XENVER_version, 0, 0, 0, 0, 0);
  if (version != 0x00040011u) violation("xen_version changed", (long)version);
  if (image_sum() != sum) violation("our text/rodata changed", 0);
  if (canary_sum() != csum) violation("our canary page changed", 0);
  if (!privileged) {
    int leaks = foreign_grants(map_gfn);
    if (leaks) violation("foreign grants gave access after the random phase", leaks);
  }

  printf("hostile: survived %u calls, %u returned success\n", (unsigned)n_calls, (unsigned)n_success);
  for (unsigned e = 1; e < 128; e++)
    if (n_err[e]) printf("hostile:   -%s (%u): %u\n", errno_name(e), e, (unsigned)n_err[e]);
  if (n_err_other) printf("hostile:   other negative: %u\n", (unsigned)n_err_other);
  for (unsigned s = 0; s < 14; s++)
    if (n_gntst[s]) printf("hostile:   GNTST_%s: %u\n", gnttab_status_name(-(int)s), (unsigned)n_gntst[s]);
  if (violations) {
    printf("hostile: FAILED with %d violations\n", violations);
    return 1;
  }
  printf("hostile: text/rodata and canary unchanged, nothing learned from other domains\n");
  return 0;
}
