/*
 * Freestanding subset of <stdlib.h>: a first-fit heap (alloc.c) over the RAM that xenon_init hands
 * it (from the end of the image and boot stack up to the device tree), and strtoul.
 * Not thread-safe and not for interrupt handlers: one vCPU, called from normal context only.
 */
#ifndef XENON_STDLIB_H
#define XENON_STDLIB_H

#include <stddef.h>

void heap_init(void *start, void *end);
void *malloc(size_t size);
void *calloc(size_t n, size_t size);
void *aligned_alloc(size_t align, size_t size); /* align: a power of two */
void free(void *p);
/* Bytes in free blocks, and the largest one. */
size_t heap_free_bytes(size_t *largest);

/* Decimal, 0x hex or 0 octal per `base` (0 = detect); stops at the first non-digit. bootargs.c. */
unsigned long strtoul(const char *s, char **end, int base);

#endif
