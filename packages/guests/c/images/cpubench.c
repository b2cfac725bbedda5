/* CPU benchmark as a Xenon native image: runs the compiled-in default and prints the checksum. */
#include <stdio.h>

#include "../bench/cpubench.h"
#include "xenon.h"

int main(unsigned vcpu_id, void *fdt) {
  (void)fdt;
  uint32_t iterations = CPUBENCH_DEFAULT_ITERATIONS;
  printf("cpubench: vCPU %u, %u iterations, checksum %08x\n", vcpu_id, iterations, cpubench_run(iterations));
  return 0;
}
