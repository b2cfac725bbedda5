/*
 * printf/snprintf on top of the shared formatting core.
 *
 * stdout is line-buffered: output goes to the platform's __stdout_write when a '\n' is
 * buffered or the buffer fills, and whatever is left when stdout_flush runs (start code calls
 * it after main returns). One buffer, no lock: a single writer at a time.
 */
#include <stdio.h>

#include "format.h"

#define LINE_MAX_BYTES 256

static char line[LINE_MAX_BYTES];
static size_t line_len;

void stdout_flush(void) {
  if (line_len) __stdout_write(line, line_len);
  line_len = 0;
}

static void stdout_sink(void *ctx, const char *s, size_t n) {
  (void)ctx;
  for (size_t i = 0; i < n; i++) {
    line[line_len++] = s[i];
    if (s[i] == '\n' || line_len == LINE_MAX_BYTES) stdout_flush();
  }
}

int vprintf(const char *fmt, va_list ap) { return fmt_vformat(stdout_sink, 0, fmt, ap); }

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}

int putchar(int c) {
  char ch = (char)c;
  stdout_sink(0, &ch, 1);
  return (unsigned char)ch;
}

int puts(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  stdout_sink(0, s, n);
  stdout_sink(0, "\n", 1);
  return 0;
}

struct strbuf {
  char *buf;
  size_t cap; /* bytes available for characters, excluding the terminating NUL */
  size_t len;
};

static void str_sink(void *ctx, const char *s, size_t n) {
  struct strbuf *b = ctx;
  for (size_t i = 0; i < n; i++, b->len++) {
    if (b->len < b->cap) b->buf[b->len] = s[i];
  }
}

/* C99 semantics: returns the untruncated length; writes at most size-1 chars plus a NUL. */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  struct strbuf b = {buf, size ? size - 1 : 0, 0};
  int n = fmt_vformat(str_sink, &b, fmt, ap);
  if (size) buf[b.len < b.cap ? b.len : b.cap] = 0;
  return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}
