/*
 * The one printf formatting core. printf, snprintf and the Linux test programs' dprintf are
 * thin sinks around it, so every program formats numbers with exactly the same code.
 */
#ifndef XENON_FORMAT_H
#define XENON_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/* Receives formatted output in pieces; pieces are not NUL-terminated. */
typedef void (*fmt_sink)(void *ctx, const char *s, size_t n);

/* Formats fmt/ap into sink. Returns the number of characters produced. */
int fmt_vformat(fmt_sink sink, void *ctx, const char *fmt, va_list ap);

#endif
