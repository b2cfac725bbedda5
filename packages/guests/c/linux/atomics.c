/*
 * RV32A: lr.w/sc.w (successful loops, sc.w without a reservation, sc.w to another address),
 * every amo*.w via inline asm with and without aq/rl, and the same operations through the
 * __atomic builtins (which the compiler lowers to amo*.w or lr/sc loops). Each line shows the
 * old value the instruction returned and the new memory value.
 */
#include "common.h"

static const uint32_t vals[] = {0, 1, 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x0f0f00ffu, 5};

#define DEF_AMO(name, insn)                                                    \
  static uint32_t amo_##name(volatile uint32_t *p, uint32_t v) {                \
    uint32_t old;                                                               \
    __asm__ volatile(insn " %0, %2, (%1)" : "=r"(old) : "r"(p), "r"(v) : "memory"); \
    return old;                                                                 \
  }
DEF_AMO(amoswap, "amoswap.w")
DEF_AMO(amoadd, "amoadd.w")
DEF_AMO(amoxor, "amoxor.w")
DEF_AMO(amoand, "amoand.w")
DEF_AMO(amoor, "amoor.w")
DEF_AMO(amomin, "amomin.w")
DEF_AMO(amomax, "amomax.w")
DEF_AMO(amominu, "amominu.w")
DEF_AMO(amomaxu, "amomaxu.w")
/* Ordering bits change nothing single-threaded but are distinct encodings a decoder must accept. */
DEF_AMO(amoadd_aq, "amoadd.w.aq")
DEF_AMO(amoadd_rl, "amoadd.w.rl")
DEF_AMO(amoadd_aqrl, "amoadd.w.aqrl")
DEF_AMO(amoswap_aqrl, "amoswap.w.aqrl")

static const struct {
  const char *name;
  uint32_t (*fn)(volatile uint32_t *, uint32_t);
} amos[] = {
    {"amoswap", amo_amoswap},           {"amoadd", amo_amoadd},           {"amoxor", amo_amoxor},
    {"amoand", amo_amoand},             {"amoor", amo_amoor},             {"amomin", amo_amomin},
    {"amomax", amo_amomax},             {"amominu", amo_amominu},         {"amomaxu", amo_amomaxu},
    {"amoadd.aq", amo_amoadd_aq},       {"amoadd.rl", amo_amoadd_rl},     {"amoadd.aqrl", amo_amoadd_aqrl},
    {"amoswap.aqrl", amo_amoswap_aqrl},
};

static volatile uint32_t cell __attribute__((aligned(4)));
static volatile uint32_t other __attribute__((aligned(4)));

/* Atomic add as an lr/sc retry loop; returns the old value. */
static uint32_t lrsc_add(volatile uint32_t *p, uint32_t v) {
  uint32_t old, tmp, fail;
  __asm__ volatile("1:\n\tlr.w %0, (%3)\n\tadd %1, %0, %4\n\tsc.w %2, %1, (%3)\n\tbnez %2, 1b"
                   : "=&r"(old), "=&r"(tmp), "=&r"(fail)
                   : "r"(p), "r"(v)
                   : "memory");
  return old;
}

static void test_lrsc(void) {
  cell = 10;
  uint32_t olds = 0;
  for (uint32_t i = 1; i <= 100; i++) olds += lrsc_add(&cell, i);
  printf("lr/sc add loop: final %u sum of olds %u\n", mix(cell), mix(olds));

  /* A single lr.w/sc.w pair with no intervening store must succeed (rc 0). */
  uint32_t loaded, rc;
  cell = 0x1234;
  __asm__ volatile("lr.w.aq %0, (%2)\n\tsc.w.rl %1, %3, (%2)" : "=&r"(loaded), "=&r"(rc) : "r"(&cell), "r"(0x5678)
                   : "memory");
  printf("lr.w/sc.w pair: loaded %08x sc ok %d mem %08x\n", mix(loaded), rc == 0, mix(cell));

  /* Any sc.w ends the reservation, so a second sc.w has none and must fail, leaving memory. */
  uint32_t rc1, rc2;
  cell = 1;
  __asm__ volatile("lr.w %0, (%3)\n\tsc.w %1, %4, (%3)\n\tsc.w %2, %5, (%3)"
                   : "=&r"(loaded), "=&r"(rc1), "=&r"(rc2)
                   : "r"(&cell), "r"(2), "r"(3)
                   : "memory");
  printf("sc.w without reservation: first ok %d second failed %d mem %u\n", rc1 == 0, rc2 != 0, mix(cell));

  /* sc.w to an address other than the reserved one must fail. */
  cell = 7;
  other = 8;
  __asm__ volatile("lr.w %0, (%2)\n\tsc.w %1, %4, (%3)" : "=&r"(loaded), "=&r"(rc) : "r"(&cell), "r"(&other), "r"(9)
                   : "memory");
  printf("sc.w to other address: failed %d cell %u other %u\n", rc != 0, mix(cell), mix(other));
}

static void test_amo_asm(void) {
  for (unsigned k = 0; k < ARRAY_LEN(amos); k++) {
    for (unsigned i = 0; i < ARRAY_LEN(vals); i++) {
      printf("%-13s mem=%08x:", amos[k].name, vals[i]);
      for (unsigned j = 0; j < ARRAY_LEN(vals); j++) {
        cell = vals[i];
        uint32_t old = amos[k].fn(&cell, vals[j]);
        printf(" %08x/%08x", mix(old), mix(cell));
      }
      printf("\n");
    }
  }
  /* rd = x0 discards the old value but still updates memory. */
  cell = 40;
  __asm__ volatile("amoadd.w zero, %1, (%0)" : : "r"(&cell), "r"(2) : "memory");
  printf("amoadd rd=x0: mem %u\n", mix(cell));
}

static void test_builtins(void) {
  uint32_t u = 100;
  int32_t s = -5;
  uint32_t r1 = __atomic_fetch_add(&u, 23, __ATOMIC_SEQ_CST);
  uint32_t r2 = __atomic_fetch_sub(&u, 3, __ATOMIC_ACQ_REL);
  uint32_t r3 = __atomic_exchange_n(&u, 0xf0f0f0f0u, __ATOMIC_ACQUIRE);
  uint32_t r4 = __atomic_fetch_and(&u, 0xff00ff00u, __ATOMIC_RELEASE);
  uint32_t r5 = __atomic_fetch_or(&u, 0x0000000fu, __ATOMIC_RELAXED);
  uint32_t r6 = __atomic_fetch_xor(&u, 0xffffffffu, __ATOMIC_SEQ_CST);
  printf("builtins u: %u %u %08x %08x %08x %08x final %08x\n", mix(r1), mix(r2), mix(r3), mix(r4), mix(r5), mix(r6),
         mix(u));
  int32_t m1 = __atomic_fetch_min(&s, -7, __ATOMIC_SEQ_CST);
  int32_t m2 = __atomic_fetch_max(&s, 3, __ATOMIC_SEQ_CST);
  uint32_t m3 = __atomic_fetch_min(&u, 5u, __ATOMIC_SEQ_CST);
  uint32_t m4 = __atomic_fetch_max(&u, 0x80000000u, __ATOMIC_SEQ_CST);
  printf("builtins min/max: %d %d final s %d; %08x %08x final u %08x\n", (int)mix((uint32_t)m1),
         (int)mix((uint32_t)m2), (int)mix((uint32_t)s), mix(m3), mix(m4), mix(u));
  uint32_t expected = 0x80000000u;
  int ok1 = __atomic_compare_exchange_n(&u, &expected, 77, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  uint32_t after1 = u;
  expected = 1;
  int ok2 = __atomic_compare_exchange_n(&u, &expected, 88, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  printf("builtins cas: ok %d mem %u; ok %d mem %u expected now %u\n", ok1, mix(after1), ok2, mix(u), mix(expected));
  /* Byte and halfword atomics are emulated with masked lr/sc loops on the containing word. */
  static uint8_t bytes[4] __attribute__((aligned(4))) = {0x10, 0x20, 0x30, 0x40};
  uint8_t b = __atomic_fetch_add(&bytes[2], 0xf0, __ATOMIC_SEQ_CST);
  static uint16_t halves[2] __attribute__((aligned(4))) = {0x1234, 0xfffe};
  uint16_t h = __atomic_exchange_n(&halves[1], 0x8001, __ATOMIC_SEQ_CST);
  printf("builtins narrow: old byte %02x bytes %02x %02x %02x %02x old half %04x halves %04x %04x\n", mix(b),
         bytes[0], bytes[1], bytes[2], bytes[3], mix(h), halves[0], halves[1]);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  test_lrsc();
  test_amo_asm();
  test_builtins();
  print_hash("atomics");
  return 0;
}
