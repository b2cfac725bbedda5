/*
 * grantshare: one domain grants a page to another, which maps it, checks it, writes to it and
 * unmaps it; then the granter revokes the grant and the mapper proves the mapping is gone.
 *
 *   bootargs: role=granter|mapper peer=<domid> port=<static local port> gref=<ref>
 *
 * The two are linked by a static interdomain event channel and move in lock-step, one event per
 * step, so no edge can coalesce with another:
 *   granter: grant gref (read-write) ------------------ ev 1 --> mapper: map, verify pattern A,
 *   granter: check pattern B, end_access must be busy <-- ev 1 -- write pattern B to 2nd half
 *   granter ------------------------------------------- ev 2 --> mapper: unmap, "mapper verified"
 *   granter: end_access must now succeed               <-- ev 2 -- mapper: load from the old gfn
 * The last load must fault (load access fault, reflected to our vector): the fault hook prints
 * "grantshare: unmap revoked access" and powers off. A load that succeeds is a failure.
 */
#include <stdio.h>
#include <string.h>

#include "xenon.h"

#define WORDS (XEN_PAGE_SIZE / 4)
#define HALF (WORDS / 2)

static uint32_t shared_page[WORDS] __attribute__((aligned(XEN_PAGE_SIZE)));
static volatile uint32_t received;
static evtchn_port_t port;
static uint32_t peer;

static uint32_t pattern_a(unsigned i) { return 0xa5000000u ^ (i * 2654435761u); }
static uint32_t pattern_b(unsigned i) { return 0x5b000000u ^ (i * 40503u + 17u); }

static void on_event(evtchn_port_t p, void *arg) {
  (void)p;
  (void)arg;
  received++;
}

static int fail(const char *what, int rc) {
  printf("grantshare: FAILED %s (%d)\n", what, rc);
  return 1;
}

/* Sends our next event and waits for the peer's `n`th. */
static int step(uint32_t n, int send_first) {
  int rc;
  if (send_first && (rc = evtchn_send(port)) < 0) return fail("evtchn_send", rc);
  wait_for_change(&received, n - 1);
  if (received != n) return fail("event count", (int)received);
  return 0;
}

/* Index of the first word of [from, to) that differs from pat, or -1. */
static int check(volatile const uint32_t *page, unsigned from, unsigned to, uint32_t (*pat)(unsigned)) {
  for (unsigned i = from; i < to; i++)
    if (page[i] != pat(i)) return (int)i;
  return -1;
}

static int granter(uint32_t gref) {
  uint32_t frames = gref / GNTTAB_ENTRIES_PER_FRAME + 1;
  int rc = gnttab_init(frames);
  if (rc < 0) return fail("gnttab_init", rc);
  for (unsigned i = 0; i < WORDS; i++) shared_page[i] = pattern_a(i);
  uint32_t gfn = (uint32_t)(uintptr_t)shared_page >> XEN_PAGE_SHIFT;
  rc = gnttab_grant_access(gref, (domid_t)peer, gfn, 0);
  if (rc < 0) return fail("gnttab_grant_access", rc);
  printf("grantshare: granter granted gfn %#x to domain %u as ref %u\n", (unsigned)gfn, (unsigned)peer,
         (unsigned)gref);

  if (step(1, 1)) return 1;
  int bad = check(shared_page, 0, HALF, pattern_a);
  if (bad >= 0) return fail("first half changed at word", bad);
  bad = check(shared_page, HALF, WORDS, pattern_b);
  if (bad >= 0) return fail("mapper's pattern missing at word", bad);
  printf("grantshare: granter sees the mapper's write\n");
  uint16_t flags = gnttab_query_flags(gref);
  rc = gnttab_end_access(gref);
  if (rc != -XEN_EBUSY) return fail("end_access while mapped should be -EBUSY", rc);
  printf("grantshare: granter end_access while mapped refused (flags %#x)\n", flags);

  if (step(2, 1)) return 1;
  rc = gnttab_end_access(gref);
  if (rc != 0) return fail("end_access after unmap", rc);
  flags = gnttab_query_flags(gref);
  if (flags != 0) return fail("flags after end_access", flags);
  printf("grantshare: granter end_access ok after unmap\n");
  printf("grantshare: granter done\n");
  return 0;
}

static volatile uint32_t expect_fault_at;

/* The mapper's last act: a load from the unmapped gfn must trap, nothing else may. */
static int revoked_fault(struct trap_frame *frame, uint32_t scause, uint32_t stval) {
  (void)frame;
  if (!expect_fault_at || scause != EXC_LOAD_ACCESS || stval != expect_fault_at) return 0;
  printf("grantshare: unmap revoked access\n");
  stdout_flush();
  xen_shutdown(SHUTDOWN_poweroff);
  for (;;) wfi();
}

static int mapper(uint32_t gref) {
  if (step(1, 0)) return 1;
  uint32_t addr = xen_window_alloc(1);
  if (!addr) return fail("no free gfn in the window", 0);
  uint32_t gfn = addr >> XEN_PAGE_SHIFT;
  grant_handle_t handle;
  int st = gnttab_map((domid_t)peer, gref, gfn, 0, &handle);
  if (st != GNTST_okay) {
    printf("grantshare: map of (%u, %u) failed: %s\n", (unsigned)peer, (unsigned)gref, gnttab_status_name(st));
    return 1;
  }
  volatile uint32_t *page = (volatile uint32_t *)(uintptr_t)addr;
  int bad = check(page, 0, WORDS, pattern_a);
  if (bad >= 0) return fail("pattern mismatch at word", bad);
  printf("grantshare: mapper mapped ref %u of domain %u at %#x, pattern ok\n", (unsigned)gref, (unsigned)peer,
         (unsigned)addr);
  for (unsigned i = HALF; i < WORDS; i++) page[i] = pattern_b(i);

  if (step(2, 1)) return 1;
  st = gnttab_unmap(handle, gfn);
  if (st != GNTST_okay) {
    printf("grantshare: unmap failed: %s\n", gnttab_status_name(st));
    return 1;
  }
  printf("grantshare: mapper verified\n");
  int rc = evtchn_send(port);
  if (rc < 0) return fail("evtchn_send", rc);

  trap_set_fault_hook(revoked_fault);
  expect_fault_at = addr;
  uint32_t v = page[0];
  expect_fault_at = 0;
  printf("grantshare: STILL MAPPED (read %#x at %#x)\n", (unsigned)v, (unsigned)addr);
  return 1;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *role = bootarg_str("role", "");
  peer = bootarg_u32("peer", DOMID_INVALID);
  port = bootarg_u32("port", 0);
  uint32_t gref = bootarg_u32("gref", GNTTAB_NR_RESERVED_ENTRIES);
  int is_granter = strcmp(role, "granter") == 0;
  if ((!is_granter && strcmp(role, "mapper") != 0) || peer >= DOMID_FIRST_RESERVED || port == 0) {
    printf("grantshare: needs role=granter|mapper peer=<domid> port=<port> [gref=<ref>]\n");
    return 1;
  }
  if (gref >= GNTTAB_MAX_INIT_FRAMES * GNTTAB_ENTRIES_PER_FRAME) return fail("gref too large", (int)gref);
  printf("grantshare: %s, domain %u, peer %u, port %u, gref %u\n", role, (unsigned)xen_platform.domid,
         (unsigned)peer, (unsigned)port, (unsigned)gref);
  int rc = events_init(vcpu_id);
  if (rc < 0) return fail("events_init", rc);
  rc = evtchn_bind_handler(port, on_event, 0);
  if (rc < 0) return fail("unmask of the static port", rc);
  irq_enable();
  return is_granter ? granter(gref) : mapper(gref);
}
