/*
 * Time for a Xenon guest: the `time` CSR counts at /cpus timebase-frequency (10 MHz), and the
 * core's system time (vcpu_time_info, timer deadlines) is that count in ns (x 100 at 10 MHz).
 * One-shot timers are VCPUOP_set_singleshot_timer; their expiry arrives as VIRQ_TIMER on an event
 * channel (timer_bind_virq sets that up). The images do not depend on timer delivery.
 */
#ifndef XENON_TIMER_H
#define XENON_TIMER_H

#include <stdint.h>

#include "events.h"

/* The time CSR, read consistently (rdtimeh / rdtime / rdtimeh until the high half is stable). */
uint64_t timer_ticks(void);
/* Ticks per second (from the device tree, via xen_platform). */
uint32_t timer_hz(void);
uint64_t timer_ticks_to_ns(uint64_t ticks);
uint64_t timer_ticks_to_us(uint64_t ticks);
/* Current system time in ns, the clock timer deadlines use. */
uint64_t timer_now_ns(void);

/* Arms this vCPU's one-shot timer at absolute system time `deadline_ns`. With `future`, a deadline
 * already past is refused with -ETIME instead of firing at once. 0 or a negative Xen errno. */
int timer_set_singleshot(unsigned vcpu, uint64_t deadline_ns, int future);
int timer_stop_singleshot(unsigned vcpu);
/* Binds VIRQ_TIMER of `vcpu` to fn(port, arg) and unmasks it; the port through *port. */
int timer_bind_virq(unsigned vcpu, evtchn_handler_t fn, void *arg, evtchn_port_t *port);

#endif
