/*
 * The smallest useful Xenon native image: proves the runtime (entry registers, console
 * hypercall, printf, 64-bit division helpers) works, then powers off by returning 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "xenon.h"

/* Flattened device tree header magic, stored big-endian. */
#define FDT_MAGIC 0xd00dfeedu

static uint32_t be32(const void *p) {
  const uint8_t *b = p;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int main(unsigned vcpu_id, void *fdt) {
  printf("Hello from Xenon guest, vCPU %u\n", vcpu_id);

  /* volatile keeps the compiler from folding the division, so __udivdi3/__umoddi3 really run. */
  volatile uint64_t n = 0x0123456789abcdefULL, d = 1000000007ULL;
  printf("64-bit: %llu / %llu = %llu rem %llu\n", (unsigned long long)n, (unsigned long long)d,
         (unsigned long long)(n / d), (unsigned long long)(n % d));

  char buf[48];
  int len = snprintf(buf, sizeof buf, "[%08x|%-6s|%5d]", 0xc0ffeeu, "xen", -42);
  printf("format: %s (len %d, strlen %u)\n", buf, len, (unsigned)strlen(buf));

  if (fdt) {
    uint32_t magic = be32(fdt);
    printf("device tree at %p: magic %#x (%s)\n", fdt, magic, magic == FDT_MAGIC ? "ok" : "bad");
  } else {
    printf("no device tree\n");
  }
  return 0;
}
