/*
 * Xen public-ABI constants used by Xenon guests.
 *
 * Values follow Xen's public headers (xen.h, sched.h, xen/errno.h); structs are laid out for
 * a 32-bit guest (ILP32), which is what the hypervisor's decoders expect.
 */
#ifndef XENON_XEN_H
#define XENON_XEN_H

#include <stdint.h>

/* Hypercall numbers (placed in a7). */
#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_grant_table_op 20
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_event_channel_op 32
#define __HYPERVISOR_sysctl 35
#define __HYPERVISOR_domctl 36

/* console_io commands. */
#define CONSOLEIO_write 0
#define CONSOLEIO_read 1

/* sched_op commands. */
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll 3

/* Shutdown reasons (struct sched_shutdown.reason). */
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_reboot 1
#define SHUTDOWN_suspend 2
#define SHUTDOWN_crash 3
#define SHUTDOWN_watchdog 4

/* xen_version commands. */
#define XENVER_version 0

/* Errno values; hypercalls return them negated. */
#define XEN_EPERM 1
#define XEN_ENOENT 2
#define XEN_EFAULT 14
#define XEN_EINVAL 22
#define XEN_ENOSYS 38

/* Argument of SCHEDOP_shutdown: 4 bytes. */
struct sched_shutdown {
  uint32_t reason;
};

_Static_assert(sizeof(struct sched_shutdown) == 4, "sched_shutdown is 4 bytes in the ABI");

#endif
