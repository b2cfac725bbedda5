/*
 * Xenon native-guest runtime API: start.S, console.c and sched.c below, and the umbrella for the
 * other runtime modules (platform/trap/events/grant/timer/heap/bootargs headers).
 *
 * Boot contract: only the boot vCPU enters _start, with a0 = vCPU id and a1 = guest-physical
 * address of the device tree (or 0). RAM begins at XENON_RAM_BASE. Other vCPUs must be brought
 * up with VCPUOP_initialise/VCPUOP_up on their own stacks; they must not re-enter _start
 * (it clears .bss and reuses the one boot stack).
 */
#ifndef XENON_RUNTIME_H
#define XENON_RUNTIME_H

#include <stddef.h>

#include "bootargs.h"
#include "events.h"
#include "grant.h"
#include "hypercall.h"
#include "platform.h"
#include "stdlib.h"
#include "timer.h"
#include "trap.h"
#include "xen.h"

#define XENON_RAM_BASE 0x80000000u

/* Writes len bytes to the domain's Xen console. Returns 0 or a negative Xen errno. */
long console_write(const char *buf, size_t len);

/* SCHEDOP_shutdown with the given SHUTDOWN_* reason. Returns only if the hypercall failed. */
long xen_shutdown(unsigned reason);

/* SCHEDOP_yield. */
long xen_yield(void);

/* The image's entry point, called by _start. Returning 0 powers off, anything else crashes. */
int main(unsigned vcpu_id, void *fdt);

#endif
