/*
 * Shared bits of the differential test programs. Output must be a pure function of the
 * program (never of addresses or timing), so the rv32ima and rv32imac builds, qemu-riscv32 and
 * Xenon all print byte-identical text.
 */
#ifndef XENON_TEST_COMMON_H
#define XENON_TEST_COMMON_H

#include <stdint.h>
#include <stdio.h>

#include "linux.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Running FNV-1a hash of every result a program prints; the last line shows it. */
static uint32_t result_hash = 2166136261u;

static inline uint32_t mix(uint32_t v) {
  for (int i = 0; i < 4; i++) {
    result_hash ^= (v >> (8 * i)) & 0xff;
    result_hash *= 16777619u;
  }
  return v;
}

static inline void print_hash(const char *program) { printf("%s: result hash %08x\n", program, result_hash); }

#endif
