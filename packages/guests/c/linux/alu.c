/*
 * RV32I integer ALU: every register-register and register-immediate op via inline asm (so the
 * exact instruction runs, whatever the compiler would have chosen), on edge operands; lui and
 * auipc; writes to x0; plus compiler-generated arithmetic and constants.
 */
#include <limits.h>

#include "common.h"

/* Operands include shift amounts >= 32 (only the low 5 bits count) and the signed extremes. */
static const uint32_t vals[] = {
    0, 1, 0xffffffffu, 2, 0x7fffffffu, 0x80000000u, 0x80000001u, 0x12345678u, 0xfffffffeu, 31, 32, 33, 63, 0xdeadbeefu,
};

#define DEF_RR(op)                                                              \
  static uint32_t op_##op(uint32_t a, uint32_t b) {                             \
    uint32_t r;                                                                 \
    __asm__ volatile(#op " %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));             \
    return r;                                                                   \
  }
DEF_RR(add)
DEF_RR(sub)
DEF_RR(sll)
DEF_RR(srl)
DEF_RR(sra)
DEF_RR(slt)
DEF_RR(sltu)
DEF_RR(xor)
DEF_RR(or)
DEF_RR(and)

static const struct {
  const char *name;
  uint32_t (*fn)(uint32_t, uint32_t);
} rr_ops[] = {
    {"add", op_add}, {"sub", op_sub}, {"sll", op_sll},   {"srl", op_srl}, {"sra", op_sra},
    {"slt", op_slt}, {"sltu", op_sltu}, {"xor", op_xor}, {"or", op_or},   {"and", op_and},
};

/* Register-immediate: the immediate must be an assembly-time constant, hence a macro. */
#define RI(op, a, imm)                                                           \
  ({                                                                             \
    uint32_t r_;                                                                 \
    __asm__ volatile(#op " %0, %1, %2" : "=r"(r_) : "r"(a), "i"(imm));           \
    r_;                                                                          \
  })

static void test_reg_imm(uint32_t a) {
  printf("imm a=%08x addi %08x %08x %08x %08x %08x", a, mix(RI(addi, a, 0)), mix(RI(addi, a, 1)),
         mix(RI(addi, a, -1)), mix(RI(addi, a, 2047)), mix(RI(addi, a, -2048)));
  printf(" slti %u%u%u%u sltiu %u%u%u%u", mix(RI(slti, a, 0)), mix(RI(slti, a, 1)), mix(RI(slti, a, -1)),
         mix(RI(slti, a, -2048)), mix(RI(sltiu, a, 0)), mix(RI(sltiu, a, 1)), mix(RI(sltiu, a, -1)),
         mix(RI(sltiu, a, 2047)));
  printf(" xori %08x %08x ori %08x %08x andi %08x %08x", mix(RI(xori, a, -1)), mix(RI(xori, a, 0x555)),
         mix(RI(ori, a, 0x7f0)), mix(RI(ori, a, -2048)), mix(RI(andi, a, 0xff)), mix(RI(andi, a, -16)));
  printf(" slli %08x %08x %08x srli %08x %08x %08x srai %08x %08x %08x\n", mix(RI(slli, a, 0)), mix(RI(slli, a, 1)),
         mix(RI(slli, a, 31)), mix(RI(srli, a, 0)), mix(RI(srli, a, 1)), mix(RI(srli, a, 31)), mix(RI(srai, a, 0)),
         mix(RI(srai, a, 1)), mix(RI(srai, a, 31)));
}

#define LUI(imm)                                                                 \
  ({                                                                             \
    uint32_t r_;                                                                 \
    __asm__ volatile("lui %0, %1" : "=r"(r_) : "i"(imm));                        \
    r_;                                                                          \
  })

/* auipc's result minus the address of the auipc itself: depends only on the immediate. */
#define AUIPC_DELTA(imm)                                                         \
  ({                                                                             \
    uint32_t r_, pc_;                                                            \
    __asm__ volatile("1: auipc %0, %2\n\tla %1, 1b" : "=&r"(r_), "=&r"(pc_) : "i"(imm)); \
    r_ - pc_;                                                                    \
  })

static void test_upper(void) {
  printf("lui %08x %08x %08x %08x %08x\n", mix(LUI(0)), mix(LUI(1)), mix(LUI(0x80000)), mix(LUI(0xfffff)),
         mix(LUI(0x12345)));
  printf("auipc-pc %08x %08x %08x %08x\n", mix(AUIPC_DELTA(0)), mix(AUIPC_DELTA(1)), mix(AUIPC_DELTA(0x7ffff)),
         mix(AUIPC_DELTA(0xfffff)));
  /* x0 is hard-wired to zero: writing it is discarded. */
  uint32_t z;
  __asm__ volatile("li t0, 1234\n\tadd zero, t0, t0\n\tmv %0, zero" : "=r"(z) : : "t0");
  printf("x0 after write %u\n", mix(z));
}

/* Functions reached only through pointers: the calls go via jalr, the addresses via auipc/lui. */
static uint32_t f_rotl(uint32_t x, uint32_t n) { return (x << (n & 31)) | (x >> ((32 - n) & 31)); }
static uint32_t f_mixer(uint32_t x, uint32_t n) { return (x ^ (x >> 13)) * 0x9e3779b1u + n; }
static uint32_t f_neg(uint32_t x, uint32_t n) { return -x - n; }
static uint32_t (*volatile fptrs[])(uint32_t, uint32_t) = {f_rotl, f_mixer, f_neg};

/* Constants the compiler materialises with lui/addi (volatile stops folding them into results). */
static void test_constants(void) {
  volatile uint32_t c[] = {0x12345678u, 0xfffff800u, 0x00000800u, 0x7ffff7ffu, 0x80000000u, 0xabcdef01u};
  uint32_t acc = 0;
  for (unsigned i = 0; i < ARRAY_LEN(c); i++) acc = acc * 31 + c[i];
  printf("constants acc %08x\n", mix(acc));
  for (unsigned i = 0; i < ARRAY_LEN(fptrs); i++) {
    printf("fptr[%u](0x89abcdef, 7) = %08x\n", i, mix(fptrs[i](0x89abcdefu, 7)));
  }
}

/* Compiler-generated arithmetic on the signed extremes (all well-defined: unsigned wrap). */
static void test_c_arith(void) {
  volatile int32_t mn = INT_MIN, mx = INT_MAX, m1 = -1, z = 0;
  printf("c: max+1 %08x min-1 %08x -min %08x min>>1 %d max>>30 %d -1>>31 %d -1u>>31 %u\n",
         mix((uint32_t)mx + 1u), mix((uint32_t)mn - 1u), mix(0u - (uint32_t)mn), (int)mix((uint32_t)(mn >> 1)),
         (int)mix((uint32_t)(mx >> 30)), (int)mix((uint32_t)(m1 >> 31)), mix((uint32_t)m1 >> 31));
  printf("c: min<max %d min<0 %d (u)min<(u)max %d z==0 %d ~z %08x\n", mn < mx, mn < z, (uint32_t)mn < (uint32_t)mx,
         z == 0, mix(~(uint32_t)z));
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  for (unsigned i = 0; i < ARRAY_LEN(vals); i++) {
    for (unsigned j = 0; j < ARRAY_LEN(vals); j++) {
      printf("rr a=%08x b=%08x", vals[i], vals[j]);
      for (unsigned k = 0; k < ARRAY_LEN(rr_ops); k++) {
        printf(" %s=%08x", rr_ops[k].name, mix(rr_ops[k].fn(vals[i], vals[j])));
      }
      printf("\n");
    }
  }
  for (unsigned i = 0; i < ARRAY_LEN(vals); i++) test_reg_imm(vals[i]);
  test_upper();
  test_constants();
  test_c_arith();
  print_hash("alu");
  return 0;
}
