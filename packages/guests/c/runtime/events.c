/*
 * 2-level event channels; see include/events.h.
 *
 * Bit layout used throughout: evtchn_pending/evtchn_mask are 64 u64 words stored as 128
 * little-endian u32 halves, so port p is bit p % 32 of u32 number p / 32, and the selector bit of
 * u64 word w is bit w % 32 of selector half w / 32. Every read-modify-write is a 32-bit AMO, as
 * the core's are (ABI.md §4.1).
 */
#include "events.h"

#include <stdio.h>

#include "hypercall.h"
#include "platform.h"
#include "trap.h"

volatile struct shared_info *HYPERVISOR_shared_info;
volatile uint32_t evtchn_upcalls, evtchn_spurious;

static struct {
  evtchn_handler_t fn;
  void *arg;
} handlers[EVTCHN_2L_NR_CHANNELS];

static volatile struct vcpu_info *this_vcpu_info;

static volatile uint32_t *pending32(void) { return (volatile uint32_t *)HYPERVISOR_shared_info->evtchn_pending; }
static volatile uint32_t *mask32(void) { return (volatile uint32_t *)HYPERVISOR_shared_info->evtchn_mask; }

/* Count of trailing zeros of a non-zero word (no Zbb, and no libgcc to call). */
static unsigned ctz32(uint32_t x) {
  unsigned n = 0;
  if (!(x & 0xffff)) n += 16, x >>= 16;
  if (!(x & 0xff)) n += 8, x >>= 8;
  if (!(x & 0xf)) n += 4, x >>= 4;
  if (!(x & 0x3)) n += 2, x >>= 2;
  if (!(x & 0x1)) n += 1;
  return n;
}

volatile struct vcpu_info *events_vcpu_info(void) { return this_vcpu_info; }

static void dispatch(evtchn_port_t port) {
  evtchn_handler_t fn = handlers[port].fn;
  if (fn) fn(port, handlers[port].arg);
  else evtchn_spurious++;
}

/*
 * Xen's guest upcall loop: clear evtchn_upcall_pending first (the line is level-triggered on it,
 * and the core sets it again only for a selector bit it finds clear), swap the selector out, and
 * for each selected word clear-then-dispatch every pending unmasked port of a snapshot. An event
 * that lands after the swap sets its selector bit and evtchn_upcall_pending again, so the outer
 * loop sees it; nothing is lost and the line drops once the loop ends with the byte clear.
 */
void evtchn_do_upcall(void) {
  volatile struct vcpu_info *vi = this_vcpu_info;
  if (!vi || !HYPERVISOR_shared_info) return;
  volatile uint32_t *pend = pending32(), *mask = mask32();
  volatile uint32_t *sel32 = (volatile uint32_t *)&vi->evtchn_pending_sel;
  evtchn_upcalls++;
  do {
    __atomic_store_n(&vi->evtchn_upcall_pending, 0, __ATOMIC_SEQ_CST);
    for (unsigned h = 0; h < 2; h++) {
      uint32_t sel = __atomic_exchange_n(&sel32[h], 0, __ATOMIC_SEQ_CST);
      while (sel) {
        unsigned word = h * 32 + ctz32(sel);
        sel &= sel - 1;
        for (unsigned idx = word * 2; idx < word * 2 + 2; idx++) {
          uint32_t bits = pend[idx] & ~mask[idx];
          while (bits) {
            unsigned b = ctz32(bits);
            bits &= bits - 1;
            uint32_t old = __atomic_fetch_and(&pend[idx], ~(1u << b), __ATOMIC_SEQ_CST);
            if (old & (1u << b)) dispatch(idx * 32 + b);
          }
        }
      }
    }
  } while (__atomic_load_n(&vi->evtchn_upcall_pending, __ATOMIC_SEQ_CST));
}

static void upcall_irq(struct trap_frame *frame) {
  (void)frame;
  evtchn_do_upcall();
}

int events_init(unsigned vcpu_id) {
  uint32_t gpa = xen_window_alloc(1);
  if (!gpa) return -XEN_ENOSPC;
  struct xen_add_to_physmap xatp = {
      .domid = DOMID_SELF,
      .space = XENMAPSPACE_shared_info,
      .idx = 0,
      .gpfn = gpa >> XEN_PAGE_SHIFT,
  };
  long rc = HYPERVISOR_memory_op(XENMEM_add_to_physmap, &xatp);
  if (rc < 0) return (int)rc;
  HYPERVISOR_shared_info = (volatile struct shared_info *)(uintptr_t)gpa;
  /* Everything masked until a handler is bound; an edge that arrived earlier stays pending and
   * is re-raised by EVTCHNOP_unmask. */
  for (unsigned i = 0; i < EVTCHN_2L_NR_CHANNELS / 32; i++) __atomic_fetch_or(&mask32()[i], ~0u, __ATOMIC_SEQ_CST);
  this_vcpu_info = vcpu_id == 0 ? &HYPERVISOR_shared_info->vcpu_info[0] : 0;
  trap_set_irq_handler(xen_platform.upcall_irq, upcall_irq);
  irq_unmask_source(xen_platform.upcall_irq);
  return 0;
}

int events_register_vcpu_info(unsigned vcpu_id, struct vcpu_info *vi) {
  struct vcpu_register_vcpu_info r = {
      .mfn = (uintptr_t)vi >> XEN_PAGE_SHIFT,
      .offset = (uintptr_t)vi & (XEN_PAGE_SIZE - 1),
  };
  long rc = HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, vcpu_id, &r);
  if (rc == 0) this_vcpu_info = vi;
  return (int)rc;
}

int evtchn_bind_handler(evtchn_port_t port, evtchn_handler_t fn, void *arg) {
  if (port == 0 || port >= EVTCHN_2L_NR_CHANNELS) return -XEN_EINVAL;
  uint32_t flags = irq_disable();
  handlers[port].fn = fn;
  handlers[port].arg = arg;
  irq_restore(flags);
  return evtchn_unmask(port);
}

void evtchn_unbind_handler(evtchn_port_t port) {
  if (port >= EVTCHN_2L_NR_CHANNELS) return;
  evtchn_mask(port);
  uint32_t flags = irq_disable();
  handlers[port].fn = 0;
  handlers[port].arg = 0;
  irq_restore(flags);
}

int evtchn_alloc_unbound(domid_t remote_dom, evtchn_port_t *port) {
  struct evtchn_alloc_unbound op = {.dom = DOMID_SELF, .remote_dom = remote_dom};
  long rc = HYPERVISOR_event_channel_op(EVTCHNOP_alloc_unbound, &op);
  if (rc == 0) *port = op.port;
  return (int)rc;
}

int evtchn_bind_interdomain(domid_t remote_dom, evtchn_port_t remote_port, evtchn_port_t *local_port) {
  struct evtchn_bind_interdomain op = {.remote_dom = remote_dom, .remote_port = remote_port};
  long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_interdomain, &op);
  if (rc == 0) *local_port = op.local_port;
  return (int)rc;
}

int evtchn_bind_virq(uint32_t virq, uint32_t vcpu, evtchn_port_t *port) {
  struct evtchn_bind_virq op = {.virq = virq, .vcpu = vcpu};
  long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_virq, &op);
  if (rc == 0) *port = op.port;
  return (int)rc;
}

int evtchn_bind_ipi(uint32_t vcpu, evtchn_port_t *port) {
  struct evtchn_bind_ipi op = {.vcpu = vcpu};
  long rc = HYPERVISOR_event_channel_op(EVTCHNOP_bind_ipi, &op);
  if (rc == 0) *port = op.port;
  return (int)rc;
}

int evtchn_send(evtchn_port_t port) {
  evtchn_send_t op = {.port = port};
  return (int)HYPERVISOR_event_channel_op(EVTCHNOP_send, &op);
}

int evtchn_close(evtchn_port_t port) {
  evtchn_close_t op = {.port = port};
  return (int)HYPERVISOR_event_channel_op(EVTCHNOP_close, &op);
}

int evtchn_status(domid_t dom, evtchn_port_t port, struct evtchn_status *out) {
  *out = (struct evtchn_status){.dom = dom, .port = port};
  return (int)HYPERVISOR_event_channel_op(EVTCHNOP_status, out);
}

int evtchn_unmask(evtchn_port_t port) {
  evtchn_unmask_t op = {.port = port};
  return (int)HYPERVISOR_event_channel_op(EVTCHNOP_unmask, &op);
}

void evtchn_mask(evtchn_port_t port) {
  if (port >= EVTCHN_2L_NR_CHANNELS || !HYPERVISOR_shared_info) return;
  __atomic_fetch_or(&mask32()[port / 32], 1u << (port % 32), __ATOMIC_SEQ_CST);
}

int evtchn_clear_pending(evtchn_port_t port) {
  if (port >= EVTCHN_2L_NR_CHANNELS || !HYPERVISOR_shared_info) return 0;
  uint32_t bit = 1u << (port % 32);
  return (__atomic_fetch_and(&pending32()[port / 32], ~bit, __ATOMIC_SEQ_CST) & bit) != 0;
}

int evtchn_is_pending(evtchn_port_t port) {
  if (port >= EVTCHN_2L_NR_CHANNELS || !HYPERVISOR_shared_info) return 0;
  return (pending32()[port / 32] >> (port % 32)) & 1;
}
