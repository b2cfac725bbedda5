/*
 * shmem: two domains share a static memory region (dom0less `xen,domain-shared-memory-v1`). The
 * owner writes a pattern, the borrower reads it back and answers in the same region.
 *
 *   bootargs: role=owner|borrower id=<xen,shm-id> [words=N]
 *
 * The region is found the way a Linux guest finds it: /reserved-memory/xen-shmem@<gpa>, compatible
 * "xen,shared-memory-v1", whose xen,id is `id`. No event channel links the two, so each side
 * polls the region's state word, yielding between looks.
 *
 * Layout (32-bit words): [0] state: 0 empty, 1 written by the owner, 2 read by the borrower;
 * [1] pattern length in words; [2] the borrower's checksum of what it read; [16..] the pattern.
 */
#include <stdio.h>
#include <string.h>

#include "fdt.h"
#include "xenon.h"

#define STATE 0
#define COUNT 1
#define SUM 2
#define DATA 16
#define MAX_POLLS 2000000u

static uint32_t pattern(unsigned i) { return 0x5a000000u ^ (i * 2654435761u); }

static int fail(const char *what, long v) {
  printf("shmem: FAILED %s (%ld)\n", what, v);
  return 1;
}

/* The guest-physical range of the region named `id`, from the device tree. */
static int find_region(const char *id, uint32_t *gpa, uint32_t *size) {
  struct fdt f;
  if (xen_platform.fdt == NULL || fdt_open(&f, xen_platform.fdt, xen_platform.fdt_size) < 0) return -1;
  int rsv = fdt_find_node(&f, "/reserved-memory");
  if (rsv < 0) return -2;
  for (int n = fdt_first_subnode(&f, rsv); n >= 0; n = fdt_next_subnode(&f, n)) {
    const char *compat, *xid;
    if (fdt_get_string(&f, n, "compatible", &compat) < 0 || strcmp(compat, "xen,shared-memory-v1") != 0) continue;
    if (fdt_get_string(&f, n, "xen,id", &xid) < 0 || strcmp(xid, id) != 0) continue;
    uint64_t a, s;
    if (fdt_get_reg(&f, rsv, n, 0, &a, &s) < 0) return -3;
    *gpa = (uint32_t)a;
    *size = (uint32_t)s;
    return 0;
  }
  return -4;
}

/* Polls word `at` until it holds `want`, yielding between looks. */
static int wait_state(volatile uint32_t *r, uint32_t want) {
  for (uint32_t i = 0; i < MAX_POLLS; i++) {
    __sync_synchronize();
    if (r[STATE] == want) return 0;
    xen_yield();
  }
  return -1;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  const char *role = bootarg_str("role", "");
  const char *id = bootarg_str("id", "");
  uint32_t gpa = 0, size = 0;
  int rc = find_region(id, &gpa, &size);
  if (rc < 0) return fail("no xen,shared-memory-v1 region with that xen,id", rc);
  volatile uint32_t *r = (volatile uint32_t *)(uintptr_t)gpa;
  uint32_t words = bootarg_u32("words", 1024);
  if (words > size / 4 - DATA) words = size / 4 - DATA;
  printf("shmem: %s of '%s' at %#x, %u KiB\n", role, id, (unsigned)gpa, (unsigned)(size / 1024));

  if (strcmp(role, "owner") == 0) {
    for (uint32_t i = 0; i < words; i++) r[DATA + i] = pattern(i);
    r[COUNT] = words;
    __sync_synchronize();
    r[STATE] = 1;
    printf("shmem: owner wrote %u words\n", (unsigned)words);
    if (wait_state(r, 2) < 0) return fail("no answer from the borrower", r[STATE]);
    uint32_t sum = 0;
    for (uint32_t i = 0; i < words; i++) sum += pattern(i);
    if (r[SUM] != sum) return fail("borrower's checksum differs", (long)r[SUM]);
    printf("shmem: owner saw the borrower's answer %#x\n", (unsigned)sum);
    return 0;
  }
  if (strcmp(role, "borrower") == 0) {
    if (wait_state(r, 1) < 0) return fail("the owner never wrote", r[STATE]);
    uint32_t n = r[COUNT], sum = 0;
    if (n > size / 4 - DATA) return fail("bad count", (long)n);
    for (uint32_t i = 0; i < n; i++) {
      uint32_t v = r[DATA + i];
      if (v != pattern(i)) return fail("pattern mismatch at word", (long)i);
      sum += v;
    }
    printf("shmem: borrower read %u words, pattern ok\n", (unsigned)n);
    r[SUM] = sum;
    __sync_synchronize();
    r[STATE] = 2;
    return 0;
  }
  return fail("role must be owner or borrower", 0);
}
