/*
 * Loads and stores: lb/lbu/lh/lhu/lw with sign/zero extension and positive and negative
 * immediate offsets (including the 12-bit extremes), sb/sh/sw, structs, arrays, and
 * memcpy/memmove/memset over odd lengths. Every access is naturally aligned: misaligned
 * access is allowed to trap, and the differential runs must not depend on it.
 */
#include <string.h>

#include "common.h"

/* 4 KiB plus margins so offsets of -2048 and +2047 from the middle stay inside. */
static uint8_t arena[4608] __attribute__((aligned(16)));
static const uint8_t pattern[16] = {0x80, 0x7f, 0xff, 0x01, 0x00, 0x81, 0xfe, 0x7e,
                                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};

#define LOAD(op, base, off)                                                      \
  ({                                                                             \
    uint32_t r_;                                                                 \
    __asm__ volatile(#op " %0, %2(%1)" : "=r"(r_) : "r"(base), "i"(off) : "memory"); \
    r_;                                                                          \
  })
#define STORE(op, base, off, v) __asm__ volatile(#op " %0, %2(%1)" : : "r"(v), "r"(base), "i"(off) : "memory")

static void test_loads(void) {
  const uint8_t *p = pattern;
  for (unsigned i = 0; i < 16; i++) {
    uint32_t lb, lbu;
    __asm__ volatile("lb %0, 0(%1)" : "=r"(lb) : "r"(p + i));
    __asm__ volatile("lbu %0, 0(%1)" : "=r"(lbu) : "r"(p + i));
    printf("byte[%2u] lb %08x lbu %08x", i, mix(lb), mix(lbu));
    if (i % 2 == 0) {
      uint32_t lh, lhu;
      __asm__ volatile("lh %0, 0(%1)" : "=r"(lh) : "r"(p + i));
      __asm__ volatile("lhu %0, 0(%1)" : "=r"(lhu) : "r"(p + i));
      printf(" lh %08x lhu %08x", mix(lh), mix(lhu));
    }
    if (i % 4 == 0) {
      uint32_t lw;
      __asm__ volatile("lw %0, 0(%1)" : "=r"(lw) : "r"(p + i));
      printf(" lw %08x", mix(lw));
    }
    printf("\n");
  }
  /* Immediate offsets, both signs, up to the encodable extremes. */
  uint8_t *mid = arena + 2304;
  for (unsigned i = 0; i < sizeof arena; i++) arena[i] = (uint8_t)(i * 37 + 11);
  printf("offsets lb(-2048) %08x lbu(2047) %08x lh(-2) %08x lhu(2046) %08x lw(-2048) %08x lw(2044) %08x lw(4) %08x\n",
         mix(LOAD(lb, mid, -2048)), mix(LOAD(lbu, mid, 2047)), mix(LOAD(lh, mid, -2)), mix(LOAD(lhu, mid, 2046)),
         mix(LOAD(lw, mid, -2048)), mix(LOAD(lw, mid, 2044)), mix(LOAD(lw, mid, 4)));
}

static void test_stores(void) {
  uint32_t words[4] __attribute__((aligned(16))) = {0, 0, 0, 0};
  uint8_t *b = (uint8_t *)words;
  STORE(sw, b, 0, 0x11223344u);
  STORE(sb, b, 0, 0xaabbccddu); /* only the low byte lands */
  STORE(sb, b, 3, 0x180u);
  STORE(sh, b, 4, 0xdeadbeefu); /* only the low half lands */
  STORE(sh, b, 6, 0x8001u);
  STORE(sw, b, 8, 0xcafef00du);
  STORE(sb, b, 12, 0xffu);
  STORE(sh, b, 14, 0x7fffu);
  printf("stores %08x %08x %08x %08x\n", mix(words[0]), mix(words[1]), mix(words[2]), mix(words[3]));
  /* Store then load back through each width, checking extension again. */
  uint8_t *mid = arena + 2304;
  STORE(sw, mid, -2048, 0x80ff7f01u);
  STORE(sh, mid, 2046, 0xfedcu);
  STORE(sb, mid, 2047, 0x80u);
  printf("roundtrip lw %08x lb %08x lh %08x lhu %08x lbu %08x lb %08x\n", mix(LOAD(lw, mid, -2048)),
         mix(LOAD(lb, mid, -2046)), mix(LOAD(lh, mid, -2046)), mix(LOAD(lhu, mid, 2046)), mix(LOAD(lbu, mid, 2046)),
         mix(LOAD(lb, mid, 2047)));
}

struct record {
  int8_t c;
  uint8_t uc;
  int16_t s;
  uint16_t us;
  int32_t i;
  int64_t ll;
  uint8_t tail[3];
};

static void test_structs(void) {
  struct record recs[5];
  memset(recs, 0xa5, sizeof recs);
  for (int k = 0; k < 5; k++) {
    recs[k].c = (int8_t)(-100 + 50 * k);
    recs[k].uc = (uint8_t)(200 + k);
    recs[k].s = (int16_t)(-30000 + 15000 * k);
    recs[k].us = (uint16_t)(65000 + k);
    recs[k].i = -2000000000 + 1000000000 * k;
    recs[k].ll = (int64_t)-1 << (10 * k);
    recs[k].tail[0] = (uint8_t)k;
    recs[k].tail[1] = (uint8_t)(k * 2);
    recs[k].tail[2] = (uint8_t)(k * 3);
  }
  struct record copy[5];
  memcpy(copy, recs, sizeof recs);
  struct record swap = copy[0]; /* struct assignment: a compiler-generated copy */
  copy[0] = copy[4];
  copy[4] = swap;
  for (int k = 0; k < 5; k++) {
    const struct record *r = &copy[k];
    printf("rec %d c %d uc %u s %d us %u i %d ll %016llx tail %u %u %u\n", k, r->c, r->uc, r->s, r->us, r->i,
           (unsigned long long)r->ll, r->tail[0], r->tail[1], r->tail[2]);
    mix((uint32_t)r->c);
    mix((uint32_t)r->s);
    mix((uint32_t)r->i);
    mix((uint32_t)r->ll);
    mix((uint32_t)(r->ll >> 32));
  }
  printf("sizeof(struct record) %u\n", (unsigned)sizeof(struct record));
}

static uint32_t hash_bytes(const uint8_t *p, unsigned n) {
  uint32_t h = 2166136261u;
  for (unsigned i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static void test_mem_routines(void) {
  static uint8_t src[64] __attribute__((aligned(4)));
  static uint8_t dst[80] __attribute__((aligned(4)));
  for (unsigned i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7 + 3);
  uint32_t acc = 0;
  for (unsigned len = 0; len <= 37; len++) {
    memset(dst, 0xee, sizeof dst);
    memcpy(dst, src, len);
    memset(dst + 40, len, len % 13);
    acc = acc * 3 + hash_bytes(dst, sizeof dst);
  }
  printf("memcpy/memset over lengths 0..37: %08x\n", mix(acc));
  /* Overlapping memmove in both directions, word-aligned and not. */
  for (unsigned shift = 1; shift <= 5; shift++) {
    for (unsigned i = 0; i < sizeof dst; i++) dst[i] = (uint8_t)i;
    memmove(dst + shift, dst, 33);
    uint32_t up = hash_bytes(dst, sizeof dst);
    for (unsigned i = 0; i < sizeof dst; i++) dst[i] = (uint8_t)i;
    memmove(dst, dst + shift, 33);
    uint32_t down = hash_bytes(dst, sizeof dst);
    printf("memmove shift %u: up %08x down %08x\n", shift, mix(up), mix(down));
  }
  printf("memcmp %d %d %d\n", memcmp(src, src, 64), memcmp(src, "\x03\x0a\x12", 3) < 0,
         memcmp("\x03\x0b", src, 2) > 0);
}

/* A 2-D array walked by rows and by columns, plus a stack array. */
static void test_arrays(void) {
  static int16_t grid[9][13];
  for (int r = 0; r < 9; r++)
    for (int c = 0; c < 13; c++) grid[r][c] = (int16_t)((r - 4) * 1000 + (c - 6) * 77);
  int32_t rows = 0, cols = 0;
  for (int r = 0; r < 9; r++)
    for (int c = 0; c < 13; c++) rows = rows * 5 + grid[r][c];
  for (int c = 0; c < 13; c++)
    for (int r = 0; r < 9; r++) cols = cols * 7 - grid[r][c];
  volatile uint8_t stack[23];
  for (int i = 0; i < 23; i++) stack[i] = (uint8_t)(i * i);
  uint32_t s = 0;
  for (int i = 22; i >= 0; i--) s = s * 13 + stack[i];
  printf("arrays rows %08x cols %08x stack %08x\n", mix((uint32_t)rows), mix((uint32_t)cols), mix(s));
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  test_loads();
  test_stores();
  test_structs();
  test_mem_routines();
  test_arrays();
  print_hash("loadstore");
  return 0;
}
