/*
 * Boot arguments: /chosen/bootargs as space-separated `key=value` words (a bare `key` has the value
 * ""). xenon_init parses them into a private copy (at most BOOTARGS_MAX bytes and BOOTARGS_MAX_KEYS
 * words; the rest is dropped with a warning); later keys override earlier ones.
 */
#ifndef XENON_BOOTARGS_H
#define XENON_BOOTARGS_H

#include <stdint.h>

#define BOOTARGS_MAX 1024
#define BOOTARGS_MAX_KEYS 32

void bootargs_parse(const char *cmdline);
/* The value of `key`, or `def` when absent. */
const char *bootarg_str(const char *key, const char *def);
/* The value as a number (decimal or 0x hex), or `def` when absent; a malformed number prints a
 * warning and gives `def`. */
uint32_t bootarg_u32(const char *key, uint32_t def);
int bootarg_has(const char *key);

#endif
