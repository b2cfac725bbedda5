/*
 * printf formatting core shared by every sink (console printf, snprintf, Linux dprintf).
 *
 * Supported: %d %i %u %x %X %o %c %s %p %%; flags '-' '0' '+' ' ' '#'; width and precision
 * (digits or '*'); length modifiers hh h l ll z j t. Floating point is not supported (guests
 * are soft-float and never need it). An unknown conversion is printed verbatim.
 *
 * Invariant: every va_arg happens in fmt_vformat itself; the va_list is never handed to a
 * helper, which would make its later use undefined.
 */
#include "format.h"

#include <stdint.h>

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };
enum { L_INT, L_CHAR, L_SHORT, L_LONG, L_LLONG, L_SIZE };

struct out {
  fmt_sink sink;
  void *ctx;
  int total;
};

static void emit(struct out *o, const char *s, size_t n) {
  if (n == 0) return;
  o->sink(o->ctx, s, n);
  o->total += (int)n;
}

static void emit_fill(struct out *o, char c, int n) {
  char chunk[16];
  for (int i = 0; i < (int)sizeof chunk; i++) chunk[i] = c;
  while (n > 0) {
    int k = n < (int)sizeof chunk ? n : (int)sizeof chunk;
    emit(o, chunk, (size_t)k);
    n -= k;
  }
}

/* Writes v in base into the end of buf (24 bytes is enough for 64-bit octal); returns the start. */
static char *utoa(char *end, uint64_t v, unsigned base, int upper) {
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  char *p = end;
  /* Stay in 32-bit arithmetic when possible: it avoids the slow 64-bit division helper. */
  while (v >> 32) {
    *--p = digits[v % base];
    v /= base;
  }
  uint32_t w = (uint32_t)v;
  do {
    *--p = digits[w % base];
    w /= base;
  } while (w);
  return p;
}

/* Lays out [sign/prefix][zeros][digits] within width, honouring '-', '0' and precision. */
static void emit_number(struct out *o, const char *prefix, const char *digits, int ndigits, int flags, int width,
                        int prec) {
  int nprefix = 0;
  while (prefix[nprefix]) nprefix++;
  int zeros = prec > ndigits ? prec - ndigits : 0;
  int len = nprefix + zeros + ndigits;
  int pad = width > len ? width - len : 0;
  if ((flags & F_ZERO) && !(flags & F_LEFT) && prec < 0) {
    zeros += pad;
    pad = 0;
  }
  if (!(flags & F_LEFT)) emit_fill(o, ' ', pad);
  emit(o, prefix, (size_t)nprefix);
  emit_fill(o, '0', zeros);
  emit(o, digits, (size_t)ndigits);
  if (flags & F_LEFT) emit_fill(o, ' ', pad);
}

int fmt_vformat(fmt_sink sink, void *ctx, const char *fmt, va_list ap) {
  struct out o = {sink, ctx, 0};
  const char *p = fmt;
  while (*p) {
    const char *lit = p;
    while (*p && *p != '%') p++;
    emit(&o, lit, (size_t)(p - lit));
    if (!*p) break;
    const char *spec = p++;

    int flags = 0;
    for (;; p++) {
      if (*p == '-') flags |= F_LEFT;
      else if (*p == '0') flags |= F_ZERO;
      else if (*p == '+') flags |= F_PLUS;
      else if (*p == ' ') flags |= F_SPACE;
      else if (*p == '#') flags |= F_ALT;
      else break;
    }

    int width = 0;
    if (*p == '*') {
      width = va_arg(ap, int);
      if (width < 0) {
        flags |= F_LEFT;
        width = -width;
      }
      p++;
    } else {
      while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    }

    int prec = -1; /* -1: none given */
    if (*p == '.') {
      p++;
      prec = 0;
      if (*p == '*') {
        prec = va_arg(ap, int);
        if (prec < 0) prec = -1;
        p++;
      } else {
        while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
      }
    }

    int len = L_INT;
    if (*p == 'h') {
      p++;
      len = L_SHORT;
      if (*p == 'h') p++, len = L_CHAR;
    } else if (*p == 'l') {
      p++;
      len = L_LONG;
      if (*p == 'l') p++, len = L_LLONG;
    } else if (*p == 'j') {
      p++, len = L_LLONG;
    } else if (*p == 'z' || *p == 't') {
      p++, len = L_SIZE;
    }

    char conv = *p;
    if (conv == 0) {
      /* A lone '%' (or truncated spec) at the end: print it as written. */
      emit(&o, spec, (size_t)(p - spec));
      break;
    }
    p++;

    char buf[24];
    char *end = buf + sizeof buf;
    switch (conv) {
      case 'd':
      case 'i': {
        int64_t v;
        if (len == L_LLONG) v = va_arg(ap, long long);
        else if (len == L_LONG) v = va_arg(ap, long);
        else v = va_arg(ap, int);
        if (len == L_CHAR) v = (signed char)v;
        else if (len == L_SHORT) v = (short)v;
        uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;
        char *d = (prec == 0 && mag == 0) ? end : utoa(end, mag, 10, 0);
        const char *sign = v < 0 ? "-" : (flags & F_PLUS) ? "+" : (flags & F_SPACE) ? " " : "";
        emit_number(&o, sign, d, (int)(end - d), flags, width, prec);
        break;
      }
      case 'u':
      case 'x':
      case 'X':
      case 'o': {
        uint64_t v;
        if (len == L_LLONG) v = va_arg(ap, unsigned long long);
        else if (len == L_LONG) v = va_arg(ap, unsigned long);
        else v = va_arg(ap, unsigned);
        if (len == L_CHAR) v = (unsigned char)v;
        else if (len == L_SHORT) v = (unsigned short)v;
        unsigned base = conv == 'u' ? 10 : conv == 'o' ? 8 : 16;
        char *d = (prec == 0 && v == 0) ? end : utoa(end, v, base, conv == 'X');
        const char *prefix = "";
        if ((flags & F_ALT) && v != 0) prefix = conv == 'x' ? "0x" : conv == 'X' ? "0X" : "";
        /* '#' with octal guarantees a leading zero. */
        if ((flags & F_ALT) && conv == 'o' && (d == end || *d != '0')) *--d = '0';
        emit_number(&o, prefix, d, (int)(end - d), flags, width, prec);
        break;
      }
      case 'p': {
        uintptr_t v = (uintptr_t)va_arg(ap, void *);
        char *d = utoa(end, v, 16, 0);
        emit_number(&o, "0x", d, (int)(end - d), flags & F_LEFT, width, 8);
        break;
      }
      case 'c': {
        char c = (char)va_arg(ap, int);
        int pad = width > 1 ? width - 1 : 0;
        if (!(flags & F_LEFT)) emit_fill(&o, ' ', pad);
        emit(&o, &c, 1);
        if (flags & F_LEFT) emit_fill(&o, ' ', pad);
        break;
      }
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        /* Never read past the precision: the string need not be terminated within it. */
        int n = 0;
        while ((prec < 0 || n < prec) && s[n]) n++;
        int pad = width > n ? width - n : 0;
        if (!(flags & F_LEFT)) emit_fill(&o, ' ', pad);
        emit(&o, s, (size_t)n);
        if (flags & F_LEFT) emit_fill(&o, ' ', pad);
        break;
      }
      case '%':
        emit(&o, "%", 1);
        break;
      default:
        emit(&o, spec, (size_t)(p - spec));
        break;
    }
  }
  return o.total;
}
