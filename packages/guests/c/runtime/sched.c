/* sched_op wrappers: a0 = SCHEDOP_* command, a1 = pointer to its argument struct (or 0). */
#include "xenon.h"

long xen_shutdown(unsigned reason) {
  struct sched_shutdown arg = {.reason = reason};
  return HYPERVISOR_sched_op(SCHEDOP_shutdown, &arg);
}

long xen_yield(void) { return HYPERVISOR_sched_op(SCHEDOP_yield, 0); }
