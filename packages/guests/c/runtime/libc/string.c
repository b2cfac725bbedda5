/*
 * Freestanding string/memory routines.
 *
 * Compiled with -fno-builtin so the compiler cannot turn these loops back into calls to
 * themselves. Word-sized copies are used only when both pointers are 4-byte aligned: every
 * access the runtime makes is naturally aligned, so guests never depend on misaligned-access
 * emulation.
 */
#include <stdint.h>
#include <string.h>

/* A word type the compiler may alias with anything, so word copies are not UB. */
typedef uint32_t __attribute__((may_alias)) word_t;

static int both_aligned(const void *a, const void *b) { return (((uintptr_t)a | (uintptr_t)b) & 3) == 0; }

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (both_aligned(d, s)) {
    for (; n >= 16; n -= 16, d += 16, s += 16) {
      ((word_t *)d)[0] = ((const word_t *)s)[0];
      ((word_t *)d)[1] = ((const word_t *)s)[1];
      ((word_t *)d)[2] = ((const word_t *)s)[2];
      ((word_t *)d)[3] = ((const word_t *)s)[3];
    }
    for (; n >= 4; n -= 4, d += 4, s += 4) *(word_t *)d = *(const word_t *)s;
  }
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d == s || n == 0) return dst;
  /* Forward copy is safe when the destination starts before the source (or they are disjoint). */
  if (d < s || d >= s + n) {
    if (both_aligned(d, s)) {
      for (; n >= 4; n -= 4, d += 4, s += 4) *(word_t *)d = *(const word_t *)s;
    }
    while (n--) *d++ = *s++;
    return dst;
  }
  /* Overlap with d > s: copy from the end. */
  d += n;
  s += n;
  if (both_aligned(d, s)) {
    for (; n >= 4; n -= 4) {
      d -= 4;
      s -= 4;
      *(word_t *)d = *(const word_t *)s;
    }
  }
  while (n--) *--d = *--s;
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  unsigned char b = (unsigned char)c;
  if (((uintptr_t)d & 3) == 0) {
    word_t w = b * 0x01010101u;
    for (; n >= 4; n -= 4, d += 4) *(word_t *)d = w;
  }
  while (n--) *d++ = b;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *p = a, *q = b;
  for (; n; n--, p++, q++) {
    if (*p != *q) return *p < *q ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char *s) {
  const char *p = s;
  while (*p) p++;
  return (size_t)(p - s);
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
    if (*a == 0) return 0;
  }
  return 0;
}

char *strcpy(char *restrict dst, const char *restrict src) {
  char *d = dst;
  while ((*d++ = *src++) != 0) {
  }
  return dst;
}

char *strchr(const char *s, int c) {
  char ch = (char)c;
  for (;; s++) {
    if (*s == ch) return (char *)s;
    if (*s == 0) return 0;
  }
}
