/* Time CSR and one-shot timers; see include/timer.h. */
#include "timer.h"

#include "hypercall.h"
#include "platform.h"

uint64_t timer_ticks(void) {
  uint32_t hi, lo, hi2;
  do {
    __asm__ volatile("rdtimeh %0" : "=r"(hi));
    __asm__ volatile("rdtime %0" : "=r"(lo));
    __asm__ volatile("rdtimeh %0" : "=r"(hi2));
  } while (hi != hi2);
  return (uint64_t)hi << 32 | lo;
}

uint32_t timer_hz(void) { return xen_platform.timebase_hz ? xen_platform.timebase_hz : 10000000u; }

/* ticks * unit / hz without overflowing 64 bits for any realistic uptime. */
static uint64_t scale(uint64_t ticks, uint32_t unit) {
  uint32_t hz = timer_hz();
  return ticks / hz * unit + ticks % hz * unit / hz;
}

uint64_t timer_ticks_to_ns(uint64_t ticks) { return scale(ticks, 1000000000u); }
uint64_t timer_ticks_to_us(uint64_t ticks) { return scale(ticks, 1000000u); }
uint64_t timer_now_ns(void) { return timer_ticks_to_ns(timer_ticks()); }

int timer_set_singleshot(unsigned vcpu, uint64_t deadline_ns, int future) {
  struct vcpu_set_singleshot_timer t = {.timeout_abs_ns = deadline_ns, .flags = future ? VCPU_SSHOTTMR_future : 0};
  return (int)HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, vcpu, &t);
}

int timer_stop_singleshot(unsigned vcpu) { return (int)HYPERVISOR_vcpu_op(VCPUOP_stop_singleshot_timer, vcpu, 0); }

int timer_bind_virq(unsigned vcpu, evtchn_handler_t fn, void *arg, evtchn_port_t *port) {
  evtchn_port_t p;
  int rc = evtchn_bind_virq(VIRQ_TIMER, vcpu, &p);
  if (rc < 0) return rc;
  rc = evtchn_bind_handler(p, fn, arg);
  if (rc < 0) return rc;
  if (port) *port = p;
  return 0;
}
