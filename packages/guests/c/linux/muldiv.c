/*
 * RV32M: mul mulh mulhsu mulhu div divu rem remu via inline asm over a table of edge operands,
 * including the two cases the ISA defines instead of trapping: division by zero
 * (div/divu -> all ones, rem/remu -> dividend) and INT_MIN / -1 (div -> INT_MIN, rem -> 0).
 */
#include "common.h"

static const uint32_t vals[] = {
    0,           1,           0xffffffffu, 2,           0xfffffffeu, 3,           7,           0xfffffff9u,
    0x80000000u, 0x7fffffffu, 0x80000001u, 0x12345678u, 0x0000ffffu, 0x00010000u, 0xdeadbeefu, 0x55555555u,
};

#define DEF_M(op)                                                               \
  static uint32_t op_##op(uint32_t a, uint32_t b) {                             \
    uint32_t r;                                                                 \
    __asm__ volatile(#op " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));             \
    return r;                                                                   \
  }
DEF_M(mul)
DEF_M(mulh)
DEF_M(mulhsu)
DEF_M(mulhu)
DEF_M(div)
DEF_M(divu)
DEF_M(rem)
DEF_M(remu)

static const struct {
  const char *name;
  uint32_t (*fn)(uint32_t, uint32_t);
} ops[] = {
    {"mul", op_mul}, {"mulh", op_mulh}, {"mulhsu", op_mulhsu}, {"mulhu", op_mulhu},
    {"div", op_div}, {"divu", op_divu}, {"rem", op_rem},       {"remu", op_remu},
};

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  for (unsigned i = 0; i < ARRAY_LEN(vals); i++) {
    for (unsigned j = 0; j < ARRAY_LEN(vals); j++) {
      printf("a=%08x b=%08x", vals[i], vals[j]);
      for (unsigned k = 0; k < ARRAY_LEN(ops); k++) printf(" %s=%08x", ops[k].name, mix(ops[k].fn(vals[i], vals[j])));
      printf("\n");
    }
  }
  /* rd aliasing a source register: the result must still use the original operand values. */
  uint32_t x = 0x12345, y = 0x6789a;
  __asm__ volatile("mul %0, %0, %1" : "+r"(x) : "r"(y));
  uint32_t q = 1000000, d = 7;
  __asm__ volatile("divu %0, %0, %1" : "+r"(q) : "r"(d));
  printf("aliased: mul %08x divu %08x\n", mix(x), mix(q));
  print_hash("muldiv");
  return 0;
}
