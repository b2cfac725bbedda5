/*
 * Freestanding subset of <stdio.h>. Formatting lives in libc/format.c; stdout is line-buffered
 * in libc/stdio.c and drained through __stdout_write, which each platform (Xen console or
 * Linux write(1)) supplies.
 *
 * Conversions: %d %i %u %x %X %o %c %s %p %%, length h hh l ll z, flags - 0 + space #,
 * width and precision (both may be *). %p prints "0x" and 8 hex digits.
 * stdout is a single buffer without a lock: one writer (vCPU) at a time.
 */
#ifndef XENON_STDIO_H
#define XENON_STDIO_H

#include <stdarg.h>
#include <stddef.h>

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int putchar(int c);
int puts(const char *s);

/* Writes out any buffered partial line. */
void stdout_flush(void);

/* Platform sink behind stdout; returns a negative value on error. */
long __stdout_write(const char *buf, size_t len);

#endif
