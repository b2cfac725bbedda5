/*
 * Xen event channels (2-level ABI) for a Xenon guest.
 *
 * events_init maps shared_info into the /hypervisor window (XENMEM_add_to_physmap), masks every
 * port, registers the upcall on the supervisor external interrupt and enables that source in sie;
 * interrupts themselves stay off until the image calls irq_enable(). A port is delivered once a
 * handler is bound and it is unmasked (evtchn_bind_handler does both).
 *
 * Handlers run in the upcall, with interrupts disabled, on the interrupted stack; each pending
 * bit is cleared before its handler runs, so an event that arrives during the handler is seen
 * again. Events are edges that coalesce: several sends before the upcall runs make one call.
 *
 * Single-vCPU runtime: the upcall scans the vcpu_info of the vCPU given to events_init
 * (shared_info.vcpu_info[0] for vCPU 0, or one registered with events_register_vcpu_info).
 */
#ifndef XENON_EVENTS_H
#define XENON_EVENTS_H

#include <stdint.h>

#include "xen.h"

typedef void (*evtchn_handler_t)(evtchn_port_t port, void *arg);

/* The mapped shared_info (NULL before events_init). */
extern volatile struct shared_info *HYPERVISOR_shared_info;

/* Returns 0 or a negative Xen errno (-ENOSPC: no window; others from add_to_physmap). */
int events_init(unsigned vcpu_id);

/* Moves this vCPU's vcpu_info to `vi` (8-aligned, inside one page of our RAM). 0 or -errno. */
int events_register_vcpu_info(unsigned vcpu_id, struct vcpu_info *vi);

/* The vcpu_info the upcall scans. */
volatile struct vcpu_info *events_vcpu_info(void);

/* Binds fn(port, arg) to `port` and unmasks it. 0, or -EINVAL for a port out of range. */
int evtchn_bind_handler(evtchn_port_t port, evtchn_handler_t fn, void *arg);
/* Masks the port and forgets its handler (the channel stays open). */
void evtchn_unbind_handler(evtchn_port_t port);

/* Hypercall wrappers; each returns 0 or a negative Xen errno, new ports through *port. */
int evtchn_alloc_unbound(domid_t remote_dom, evtchn_port_t *port);
int evtchn_bind_interdomain(domid_t remote_dom, evtchn_port_t remote_port, evtchn_port_t *local_port);
int evtchn_bind_virq(uint32_t virq, uint32_t vcpu, evtchn_port_t *port);
int evtchn_bind_ipi(uint32_t vcpu, evtchn_port_t *port);
int evtchn_send(evtchn_port_t port);
int evtchn_close(evtchn_port_t port);
int evtchn_status(domid_t dom, evtchn_port_t port, struct evtchn_status *out);
/* Clears the mask through the hypervisor, which re-raises the upcall if the port is pending. */
int evtchn_unmask(evtchn_port_t port);
/* Sets the mask bit (no hypercall: the core reads the mask before raising the upcall). */
void evtchn_mask(evtchn_port_t port);
/* Test-and-clear of the port's pending bit; returns whether it was set. */
int evtchn_clear_pending(evtchn_port_t port);
int evtchn_is_pending(evtchn_port_t port);

/* The upcall; normally reached only through the interrupt, exported for polling loops. */
void evtchn_do_upcall(void);

/* Upcall statistics: calls of the upcall and ports found pending with no handler bound. */
extern volatile uint32_t evtchn_upcalls, evtchn_spurious;

#endif
