/*
 * spin: a CPU burner for scheduler tests. Each iteration is a fixed block of integer work (a
 * xorshift/multiply chain, so the compiler cannot fold it); progress is printed every `report`
 * iterations.
 *
 *   bootargs: name=<x> report=<iterations between reports> total=<iterations, 0 = forever>
 *   (name defaults to the domain's name, report to 100000, total to 1000000)
 */
#include <stdio.h>

#include "xenon.h"

/* Integer work per iteration: enough to dwarf the loop overhead, small enough for fine reports. */
#define STEPS_PER_ITERATION 64

static uint32_t work(uint32_t x) {
  for (int i = 0; i < STEPS_PER_ITERATION; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    x = x * 2654435761u + (uint32_t)i;
  }
  return x;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  /* The toolstack keeps name= for itself, so default to the domain's name. */
  const char *name = bootarg_str("name", xen_platform.name[0] ? xen_platform.name : "spin");
  uint32_t report = bootarg_u32("report", 100000);
  uint32_t total = bootarg_u32("total", 1000000);
  printf("spin %s start report %u total %u\n", name, (unsigned)report, (unsigned)total);

  uint32_t x = 0x9e3779b9u ^ xen_platform.domid;
  uint64_t count = 0;
  uint32_t since = 0;
  for (;;) {
    if (total != 0 && count == total) break;
    x = work(x);
    count++;
    if (report != 0 && ++since == report) {
      since = 0;
      printf("spin %s progress %llu\n", name, (unsigned long long)count);
    }
  }
  printf("spin %s done (checksum %08x)\n", name, (unsigned)x);
  return 0;
}
