/*
 * Integer CPU benchmark in the spirit of CoreMark: linked-list processing, matrix multiply, a
 * tokenizer state machine and CRC-16, chained so each iteration's input depends on the previous
 * iteration's result. The returned checksum therefore depends on every iteration, and any
 * wrong instruction anywhere shows up in it.
 */
#ifndef XENON_CPUBENCH_H
#define XENON_CPUBENCH_H

#include <stdint.h>

/* About 0.05 s under qemu-riscv32 on a current x86-64 host. */
#define CPUBENCH_DEFAULT_ITERATIONS 20000u

uint32_t cpubench_run(uint32_t iterations);

#endif
