/*
 * Control flow: beq bne blt bge bltu bgeu via inline asm on signed/unsigned edge pairs (taken
 * and not taken, forward and backward), loops, a switch the compiler lowers to a jump table,
 * recursion, and indirect calls through function-pointer tables (jal/jalr, and their
 * compressed forms in the rv32imac build).
 */
#include "common.h"

static const uint32_t vals[] = {0, 1, 0xffffffffu, 0x7fffffffu, 0x80000000u, 0x80000001u, 2, 0xfffffffeu};

/* Each returns 1 if the branch was taken. Forward branch over the "not taken" assignment. */
#define DEF_BR(op)                                                              \
  static uint32_t br_##op(uint32_t a, uint32_t b) {                             \
    uint32_t r;                                                                 \
    __asm__ volatile("li %0, 1\n\t" #op " %1, %2, 1f\n\tli %0, 0\n1:"           \
                     : "=&r"(r)                                                 \
                     : "r"(a), "r"(b));                                         \
    return r;                                                                   \
  }
DEF_BR(beq)
DEF_BR(bne)
DEF_BR(blt)
DEF_BR(bge)
DEF_BR(bltu)
DEF_BR(bgeu)

static uint32_t (*const branches[])(uint32_t, uint32_t) = {br_beq, br_bne, br_blt, br_bge, br_bltu, br_bgeu};

/* A backward-branch loop in asm: counts a down to b with bne, returns the number of steps. */
static uint32_t asm_countdown(uint32_t from) {
  uint32_t steps = 0;
  __asm__ volatile("beqz %0, 2f\n1:\n\taddi %1, %1, 1\n\taddi %0, %0, -1\n\tbnez %0, 1b\n2:"
                   : "+r"(from), "+r"(steps));
  return steps;
}

/* Dense cases with distinct work: clang emits a jump table (jalr through a table of labels). */
static __attribute__((noinline)) uint32_t dispatch(uint32_t op, uint32_t x) {
  switch (op) {
    case 0: return x + 0x1111;
    case 1: return x ^ 0xa5a5a5a5u;
    case 2: return x << 3;
    case 3: return x >> 5;
    case 4: return x * 9;
    case 5: return ~x;
    case 6: return x - 12345;
    case 7: return (x << 16) | (x >> 16);
    case 8: return x & 0x0f0f0f0fu;
    case 9: return x | 0x80000001u;
    case 10: return x + (x >> 1);
    case 11: return 0 - x;
    default: return 0xdead;
  }
}

static uint32_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

static uint32_t ackermann(uint32_t m, uint32_t n) {
  if (m == 0) return n + 1;
  if (n == 0) return ackermann(m - 1, 1);
  return ackermann(m - 1, ackermann(m, n - 1));
}

static int is_odd(uint32_t n);
static __attribute__((noinline)) int is_even(uint32_t n) { return n == 0 ? 1 : is_odd(n - 1); }
static __attribute__((noinline)) int is_odd(uint32_t n) { return n == 0 ? 0 : is_even(n - 1); }

static uint32_t op_add(uint32_t a, uint32_t b) { return a + b; }
static uint32_t op_sub(uint32_t a, uint32_t b) { return a - b; }
static uint32_t op_mul(uint32_t a, uint32_t b) { return a * b; }
static uint32_t op_max(uint32_t a, uint32_t b) { return (int32_t)a > (int32_t)b ? a : b; }
static uint32_t (*volatile calls[])(uint32_t, uint32_t) = {op_add, op_sub, op_mul, op_max};

/* Calls through a pointer chosen by data, so no call can be devirtualised. */
static uint32_t run_program(const uint8_t *prog, unsigned n, uint32_t acc) {
  for (unsigned i = 0; i < n; i++) acc = calls[prog[i] & 3](acc, prog[i]);
  return acc;
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  static const char *names[] = {"beq", "bne", "blt", "bge", "bltu", "bgeu"};
  for (unsigned i = 0; i < ARRAY_LEN(vals); i++) {
    for (unsigned j = 0; j < ARRAY_LEN(vals); j++) {
      printf("a=%08x b=%08x", vals[i], vals[j]);
      for (unsigned k = 0; k < ARRAY_LEN(branches); k++) printf(" %s=%u", names[k], mix(branches[k](vals[i], vals[j])));
      printf("\n");
    }
  }

  printf("asm countdown 0:%u 1:%u 1000:%u\n", mix(asm_countdown(0)), mix(asm_countdown(1)),
         mix(asm_countdown(1000)));

  /* Loop shapes: counted up/down, while with early break, do-while, nested with continue. */
  uint32_t up = 0, down = 0, w = 0, dw = 0, nest = 0;
  for (uint32_t i = 0; i < 100; i++) up += i * i;
  for (int32_t i = 50; i >= -50; i -= 3) down = down * 3 + (uint32_t)i;
  uint32_t n = 27;
  while (n != 1) {
    n = (n & 1) ? 3 * n + 1 : n / 2;
    if (++w > 1000) break;
  }
  do dw += 7;
  while (dw < 100);
  for (int i = 0; i < 10; i++) {
    for (int j = 0; j < 10; j++) {
      if ((i + j) % 3 == 0) continue;
      if (j > i + 4) break;
      nest += (uint32_t)(i * 10 + j);
    }
  }
  printf("loops up %u down %08x collatz27 %u dowhile %u nest %u\n", mix(up), mix(down), mix(w), mix(dw), mix(nest));

  uint32_t x = 0x13579bdfu;
  for (uint32_t op = 0; op < 14; op++) {
    x = dispatch(op % 13, x);
    printf("dispatch %2u -> %08x\n", op % 13, mix(x));
  }

  printf("fib(20) %u ackermann(2,3) %u even(77) %d odd(77) %d\n", mix(fib(20)), mix(ackermann(2, 3)), is_even(77),
         is_odd(77));

  static const uint8_t prog[] = {5, 2, 7, 12, 1, 9, 3, 255, 128, 64, 33, 18, 6, 4, 11};
  printf("indirect program %08x\n", mix(run_program(prog, ARRAY_LEN(prog), 1)));

  /* Signed versus unsigned comparisons in C, which the compiler turns into blt/bltu/slt. */
  int32_t si = -1;
  uint32_t ui = 1;
  printf("signed -1<1 %d unsigned 0xffffffff<1 %d\n", si < (int32_t)ui, (uint32_t)si < ui);
  print_hash("branches");
  return 0;
}
