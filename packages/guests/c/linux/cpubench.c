/* CPU benchmark, Linux ABI: `cpubench [iterations]`; prints the checksum of the run. */
#include "../bench/cpubench.h"

#include "common.h"

static int parse_u32(const char *s, uint32_t *out) {
  uint32_t v = 0;
  if (!*s) return 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9' || v > 429496728u) return 0;
    v = v * 10 + (uint32_t)(*s - '0');
  }
  *out = v;
  return 1;
}

int main(int argc, char **argv) {
  uint32_t iterations = CPUBENCH_DEFAULT_ITERATIONS;
  if (argc > 1 && !parse_u32(argv[1], &iterations)) {
    dprintf(2, "usage: cpubench [iterations]\n");
    return 2;
  }
  printf("cpubench: %u iterations, checksum %08x\n", iterations, cpubench_run(iterations));
  return 0;
}
