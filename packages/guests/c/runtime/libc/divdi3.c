/*
 * 64-bit division helpers that clang calls on RV32 (Debian ships no RV32 compiler-rt).
 *
 * Semantics match the RISC-V M extension scaled to 64 bits instead of trapping, so no input is
 * undefined here: x / 0 = all ones, x % 0 = x, INT64_MIN / -1 = INT64_MIN, INT64_MIN % -1 = 0.
 */
#include <stdint.h>

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem);
uint64_t __udivdi3(uint64_t n, uint64_t d);
uint64_t __umoddi3(uint64_t n, uint64_t d);
int64_t __divdi3(int64_t a, int64_t b);
int64_t __moddi3(int64_t a, int64_t b);

uint64_t __udivmoddi4(uint64_t n, uint64_t d, uint64_t *rem) {
  uint64_t q = 0;
  if (d == 0) {
    q = ~(uint64_t)0;
  } else if ((n >> 32) == 0) {
    /* n < 2^32: the hardware 32-bit divider does it (d >= 2^32 gives q = 0, r = n). */
    if ((d >> 32) == 0) {
      uint32_t n32 = (uint32_t)n, d32 = (uint32_t)d;
      q = n32 / d32;
      n = n32 % d32;
    }
  } else if (d <= n) {
    /* Shift-subtract: align d's top bit under n's, then one quotient bit per step. */
    int shift = 0;
    while (!(d >> 63) && (d << 1) <= n) {
      d <<= 1;
      shift++;
    }
    for (; shift >= 0; shift--) {
      q <<= 1;
      if (n >= d) {
        n -= d;
        q |= 1;
      }
      d >>= 1;
    }
  }
  if (rem) *rem = n;
  return q;
}

uint64_t __udivdi3(uint64_t n, uint64_t d) { return __udivmoddi4(n, d, 0); }

uint64_t __umoddi3(uint64_t n, uint64_t d) {
  uint64_t r;
  __udivmoddi4(n, d, &r);
  return r;
}

/* Magnitude of a signed value, computed in unsigned arithmetic so INT64_MIN is fine. */
static uint64_t mag(int64_t v) { return v < 0 ? -(uint64_t)v : (uint64_t)v; }

int64_t __divdi3(int64_t a, int64_t b) {
  if (b == 0) return -1;
  uint64_t q = __udivmoddi4(mag(a), mag(b), 0);
  return (int64_t)(((a < 0) != (b < 0)) ? -q : q);
}

int64_t __moddi3(int64_t a, int64_t b) {
  if (b == 0) return a;
  uint64_t r;
  __udivmoddi4(mag(a), mag(b), &r);
  /* The remainder takes the dividend's sign. */
  return (int64_t)(a < 0 ? -r : r);
}
