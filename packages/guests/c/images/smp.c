/*
 * smp: secondary vCPUs through VCPUOP_initialise, VCPUOP_up, VCPUOP_down and VCPUOP_is_up.
 *
 *   bootargs: vcpus=<n> (the domain's vCPU count, default 2, at most 8) rounds=<n> (default 100000)
 *
 * vCPU 0 checks that a secondary starts down and cannot come up before it has a context, then
 * starts each one at secondary_main with a stack of its own. Every vCPU adds 1 to a shared counter
 * `rounds` times with amoadd; each secondary then takes itself down. vCPU 0 waits until all are
 * down and checks the sum. Last, it brings vCPU 1 up again: VCPUOP_down returns there, vCPU 1 notes
 * that it resumed and goes down again.
 */
#include <stdio.h>

#include "xenon.h"

#define MAX_VCPUS 8
#define STACK_BYTES 4096

static uint8_t stacks[MAX_VCPUS][STACK_BYTES] __attribute__((aligned(16)));
static volatile uint32_t counter;
static volatile uint32_t done_mask;
static volatile uint32_t resumed;
static uint32_t rounds;

static void add_rounds(void) {
  for (uint32_t i = 0; i < rounds; i++) __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
}

/* Entered with sp at the top of this vCPU's stack and a0 = its id; never returns. */
void secondary_main(unsigned id) {
  add_rounds();
  __atomic_fetch_or(&done_mask, 1u << id, __ATOMIC_SEQ_CST);
  HYPERVISOR_vcpu_op(VCPUOP_down, id, 0);
  /* Up again: VCPUOP_down returned. */
  __atomic_fetch_add(&resumed, 1, __ATOMIC_SEQ_CST);
  HYPERVISOR_vcpu_op(VCPUOP_down, id, 0);
  for (;;) __asm__ volatile("wfi");
}

static long is_up(unsigned v) {
  return HYPERVISOR_vcpu_op(VCPUOP_is_up, v, 0);
}

/* Yields until cond() holds (at most ~10 s of yields). */
static int wait_for(int (*cond)(unsigned), unsigned arg) {
  for (uint32_t i = 0; i < 10000000u; i++) {
    if (cond(arg)) return 1;
    HYPERVISOR_sched_op(SCHEDOP_yield, 0);
  }
  return 0;
}

static int all_done(unsigned n) {
  return done_mask == ((1u << n) - 2u);
}

static int all_down(unsigned n) {
  for (unsigned v = 1; v < n; v++)
    if (is_up(v) != 0) return 0;
  return 1;
}

static int resumed_once(unsigned unused) {
  (void)unused;
  return resumed == 1 && is_up(1) == 0;
}

int main(unsigned vcpu_id, void *fdt) {
  xenon_init(vcpu_id, fdt);
  unsigned n = bootarg_u32("vcpus", 2);
  rounds = bootarg_u32("rounds", 100000);
  if (n < 2 || n > MAX_VCPUS) {
    printf("smp: vcpus=%u out of range 2..%u\n", n, MAX_VCPUS);
    return 1;
  }
  long up0 = is_up(0), up1 = is_up(1), early = HYPERVISOR_vcpu_op(VCPUOP_up, 1, 0);
  printf("smp: is_up(0) %ld, is_up(1) %ld, up before initialise %ld\n", up0, up1, early);
  if (up0 != 1 || up1 != 0 || early != -XEN_EINVAL) return 1;

  for (unsigned v = 1; v < n; v++) {
    struct vcpu_guest_context ctx = {0};
    ctx.pc = (uint32_t)(uintptr_t)secondary_main;
    ctx.x[2] = (uint32_t)(uintptr_t)&stacks[v][STACK_BYTES]; /* sp */
    ctx.x[10] = v;                                           /* a0 */
    long rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, v, &ctx);
    long again = HYPERVISOR_vcpu_op(VCPUOP_initialise, v, &ctx);
    long up = HYPERVISOR_vcpu_op(VCPUOP_up, v, 0);
    if (rc != 0 || again != -XEN_EEXIST || up != 0) {
      printf("smp: vCPU %u: initialise %ld, again %ld, up %ld\n", v, rc, again, up);
      return 1;
    }
  }
  add_rounds();
  if (!wait_for(all_done, n) || !wait_for(all_down, n)) {
    printf("smp: secondaries did not finish (done 0x%x)\n", (unsigned)done_mask);
    return 1;
  }
  uint32_t want = n * rounds;
  printf("smp: %u vCPUs added %u (expected %u), all secondaries down\n", n, (unsigned)counter, (unsigned)want);
  if (counter != want) return 1;

  long up = HYPERVISOR_vcpu_op(VCPUOP_up, 1, 0);
  if (up != 0 || !wait_for(resumed_once, 0)) {
    printf("smp: vCPU 1 did not resume (up %ld, resumed %u)\n", up, (unsigned)resumed);
    return 1;
  }
  printf("smp: vCPU 1 resumed after VCPUOP_down and went down again\n");
  printf("smp: ok\n");
  return 0;
}
