/*
 * dirtier: writes memory at a set rate and checks it, for live-migration tests and benches.
 * Every page of its buffer holds a write count (word 0) and its own index (word 1); each write
 * bumps one page's count, so at any time the counts sum to the writes made and every index is
 * where it was: a page lost or mixed up in a migration shows as "BAD".
 *
 *   bootargs: mib=<buffer MiB> rate=<pages written per ms> report=<ms between reports>
 *             total=<ms to run, 0 = forever>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "timer.h"
#include "xenon.h"

#define WORDS_PER_PAGE 1024u
#define INDEX_MAGIC 0x5a5a0000u

static uint32_t *buf;
static uint32_t pages;

/* True when the counts sum to `writes` and every page still holds its index. */
static int check(uint64_t writes) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < pages; i++) {
    if (buf[i * WORDS_PER_PAGE + 1] != (i ^ INDEX_MAGIC)) return 0;
    sum += buf[i * WORDS_PER_PAGE];
  }
  return sum == writes;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  uint32_t mib = bootarg_u32("mib", 4);
  uint32_t rate = bootarg_u32("rate", 100);
  uint32_t report_ms = bootarg_u32("report", 100);
  uint32_t total_ms = bootarg_u32("total", 0);
  pages = mib * 256u;
  buf = aligned_alloc(4096, (size_t)pages * 4096u);
  if (buf == NULL) {
    printf("dirtier: no memory for %u MiB\n", (unsigned)mib);
    return 1;
  }
  for (uint32_t i = 0; i < pages; i++) {
    buf[i * WORDS_PER_PAGE] = 0;
    buf[i * WORDS_PER_PAGE + 1] = i ^ INDEX_MAGIC;
  }
  printf("dirtier start pages %u rate %u/ms\n", (unsigned)pages, (unsigned)rate);
  uint64_t writes = 0;
  uint32_t p = 0;
  uint64_t start = timer_now_ns();
  uint64_t next_report = start + (uint64_t)report_ms * 1000000u;
  for (;;) {
    uint64_t now = timer_now_ns();
    uint64_t due = (now - start) / 1000000u * rate;
    while (writes < due) {
      buf[p * WORDS_PER_PAGE] += 1;
      writes++;
      /* A large odd stride walks every page before repeating one. */
      p = (p + 7919u) % pages;
    }
    if (now >= next_report) {
      printf("dirtier progress %llu %s\n", (unsigned long long)writes, check(writes) ? "ok" : "BAD");
      next_report += (uint64_t)report_ms * 1000000u;
    }
    if (total_ms != 0 && now - start >= (uint64_t)total_ms * 1000000u) break;
  }
  printf("dirtier done %llu %s\n", (unsigned long long)writes, check(writes) ? "ok" : "BAD");
  return 0;
}
