/*
 * Hypercall entry for Xenon guests.
 *
 * Convention: `ecall` with the hypercall number in a7, up to six arguments in a0..a5, the
 * result in a0 (>= 0 success, negative Xen errno on failure). Every other register is
 * preserved by the hypervisor. The "memory" clobber is required because arguments are often
 * pointers to structs the hypervisor reads or writes.
 */
#ifndef XENON_HYPERCALL_H
#define XENON_HYPERCALL_H

#include "xen.h"

static inline long xen_hypercall6(long nr, long a0, long a1, long a2, long a3, long a4, long a5) {
  register long r_a0 __asm__("a0") = a0;
  register long r_a1 __asm__("a1") = a1;
  register long r_a2 __asm__("a2") = a2;
  register long r_a3 __asm__("a3") = a3;
  register long r_a4 __asm__("a4") = a4;
  register long r_a5 __asm__("a5") = a5;
  register long r_a7 __asm__("a7") = nr;
  __asm__ volatile("ecall"
                   : "+r"(r_a0)
                   : "r"(r_a1), "r"(r_a2), "r"(r_a3), "r"(r_a4), "r"(r_a5), "r"(r_a7)
                   : "memory");
  return r_a0;
}

/* Fewer-argument forms pass zeros so the hypervisor never sees stale register contents. */
#define xen_hypercall0(nr) xen_hypercall6((nr), 0, 0, 0, 0, 0, 0)
#define xen_hypercall1(nr, a) xen_hypercall6((nr), (long)(a), 0, 0, 0, 0, 0)
#define xen_hypercall2(nr, a, b) xen_hypercall6((nr), (long)(a), (long)(b), 0, 0, 0, 0)
#define xen_hypercall3(nr, a, b, c) xen_hypercall6((nr), (long)(a), (long)(b), (long)(c), 0, 0, 0)

/* One wrapper per hypercall of ABI.md §5, in its register order. Pointers are guest-physical,
 * which for a Xenon guest (no paging) is the C pointer value. */

static inline long HYPERVISOR_memory_op(unsigned cmd, void *arg) {
  return xen_hypercall2(__HYPERVISOR_memory_op, cmd, arg);
}

static inline long HYPERVISOR_xen_version(int cmd, void *arg) {
  return xen_hypercall2(__HYPERVISOR_xen_version, cmd, arg);
}

static inline long HYPERVISOR_console_io(int cmd, unsigned count, const char *buf) {
  return xen_hypercall3(__HYPERVISOR_console_io, cmd, count, buf);
}

static inline long HYPERVISOR_grant_table_op(unsigned cmd, void *args, unsigned count) {
  return xen_hypercall3(__HYPERVISOR_grant_table_op, cmd, args, count);
}

static inline long HYPERVISOR_vcpu_op(int cmd, unsigned vcpuid, void *arg) {
  return xen_hypercall3(__HYPERVISOR_vcpu_op, cmd, vcpuid, arg);
}

static inline long HYPERVISOR_sched_op(int cmd, void *arg) {
  return xen_hypercall2(__HYPERVISOR_sched_op, cmd, arg);
}

static inline long HYPERVISOR_event_channel_op(int cmd, void *arg) {
  return xen_hypercall2(__HYPERVISOR_event_channel_op, cmd, arg);
}

static inline long HYPERVISOR_hvm_op(int cmd, void *arg) { return xen_hypercall2(__HYPERVISOR_hvm_op, cmd, arg); }

/* Control-domain interfaces (ABI.md §5.9, §5.10): a0 = struct xen_domctl / struct xen_sysctl.
 * A wrong interface_version is -EACCES; a guest without the privileged flag gets -EPERM. */
static inline long HYPERVISOR_domctl(void *arg) { return xen_hypercall1(__HYPERVISOR_domctl, arg); }

static inline long HYPERVISOR_sysctl(void *arg) { return xen_hypercall1(__HYPERVISOR_sysctl, arg); }

/* Zeroes `op` and fills its envelope; then set op->u.<member> and call xen_domctl(op). */
static inline void xen_domctl_init(struct xen_domctl *op, uint32_t cmd, domid_t domain) {
  volatile uint8_t *p = (volatile uint8_t *)op;
  for (size_t i = 0; i < sizeof *op; i++) p[i] = 0;
  op->cmd = cmd;
  op->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
  op->domain = domain;
}

static inline void xen_sysctl_init(struct xen_sysctl *op, uint32_t cmd) {
  volatile uint8_t *p = (volatile uint8_t *)op;
  for (size_t i = 0; i < sizeof *op; i++) p[i] = 0;
  op->cmd = cmd;
  op->interface_version = XEN_SYSCTL_INTERFACE_VERSION;
}

static inline long xen_domctl(struct xen_domctl *op) { return HYPERVISOR_domctl(op); }

static inline long xen_sysctl(struct xen_sysctl *op) { return HYPERVISOR_sysctl(op); }

#endif
