/*
 * Traps of a Xenon guest: one vector (stvec, direct mode) for interrupts and synchronous
 * exceptions. trap.S saves every caller-saved register plus sepc/sstatus on the current stack
 * (there is one stack), calls trap_dispatch, restores and srets.
 *
 * Interrupts (scause bit 31) go to the handler registered for their cause; the Xen event upcall is
 * cause 9 (supervisor external), level-triggered on vcpu_info.evtchn_upcall_pending. An interrupt
 * with no handler crashes the domain, since a level-triggered line would otherwise storm.
 * Synchronous exceptions go to the fault hook if one is set; without one, or if it declines, the
 * domain prints scause/sepc/stval and shuts down with SHUTDOWN_crash.
 */
#ifndef XENON_TRAP_H
#define XENON_TRAP_H

#include <stdint.h>

#define SCAUSE_INTERRUPT 0x80000000u
#define IRQ_S_SOFT 1
#define IRQ_S_TIMER 5
#define IRQ_S_EXT 9

#define EXC_INST_MISALIGNED 0
#define EXC_INST_ACCESS 1
#define EXC_ILLEGAL_INST 2
#define EXC_BREAKPOINT 3
#define EXC_LOAD_MISALIGNED 4
#define EXC_LOAD_ACCESS 5
#define EXC_STORE_MISALIGNED 6
#define EXC_STORE_ACCESS 7

#define SSTATUS_SIE (1u << 1)
#define SIE_SEIE (1u << IRQ_S_EXT)

/* The registers trap.S saves, in this order (offsets are part of trap.S). */
struct trap_frame {
  uint32_t ra;
  uint32_t t[7]; /* t0..t6 */
  uint32_t a[8]; /* a0..a7 */
  uint32_t sepc; /* restored into sepc before sret: a fault hook may advance it */
  uint32_t sstatus;
  uint32_t pad[2];
};
_Static_assert(sizeof(struct trap_frame) == 80, "trap.S reserves 80 bytes (16-byte aligned)");

typedef void (*irq_handler_t)(struct trap_frame *frame);
/* Returns non-zero when it handled the exception (execution resumes at frame->sepc). */
typedef int (*fault_hook_t)(struct trap_frame *frame, uint32_t scause, uint32_t stval);

/* Points stvec at the vector (called by xenon_init). Interrupts stay disabled. */
void trap_init(void);
/* Handler for interrupt `cause` (0..31); NULL removes it. Does not touch sie. */
void trap_set_irq_handler(unsigned cause, irq_handler_t fn);
/* Installs (or with NULL removes) the synchronous-exception hook; returns the previous one. */
fault_hook_t trap_set_fault_hook(fault_hook_t fn);
/* The dispatcher trap.S calls. */
void trap_dispatch(struct trap_frame *frame);

#define csr_read(csr)                                     \
  ({                                                      \
    uint32_t v_;                                          \
    __asm__ volatile("csrr %0, " #csr : "=r"(v_)::"memory"); \
    v_;                                                   \
  })
#define csr_write(csr, val) __asm__ volatile("csrw " #csr ", %0" ::"r"((uint32_t)(val)) : "memory")
#define csr_set(csr, bits) __asm__ volatile("csrs " #csr ", %0" ::"r"((uint32_t)(bits)) : "memory")
#define csr_clear(csr, bits) __asm__ volatile("csrc " #csr ", %0" ::"r"((uint32_t)(bits)) : "memory")

/* sstatus.SIE on. Pending enabled interrupts are taken at once. */
static inline void irq_enable(void) { csr_set(sstatus, SSTATUS_SIE); }
/* sstatus.SIE off; returns the previous sstatus for irq_restore. */
static inline uint32_t irq_disable(void) {
  uint32_t old;
  __asm__ volatile("csrrc %0, sstatus, %1" : "=r"(old) : "r"(SSTATUS_SIE) : "memory");
  return old;
}
static inline void irq_restore(uint32_t old) {
  if (old & SSTATUS_SIE) irq_enable();
}
/* Enables / disables one interrupt source in sie. */
static inline void irq_unmask_source(unsigned cause) { csr_set(sie, 1u << cause); }
static inline void irq_mask_source(unsigned cause) { csr_clear(sie, 1u << cause); }

/* Blocks the vCPU until an interrupt is pending and enabled in sie, whatever sstatus.SIE says. */
static inline void wfi(void) { __asm__ volatile("wfi" ::: "memory"); }

/*
 * Sleeps until *flag != seen, then returns its new value; interrupts are enabled on return. The
 * check runs with interrupts off, and wfi wakes on a pending-and-enabled interrupt even then, so
 * an event arriving between the check and the wfi is not lost: its handler runs as soon as
 * interrupts are re-enabled, and the loop checks again.
 */
static inline uint32_t wait_for_change(volatile uint32_t *flag, uint32_t seen) {
  for (;;) {
    irq_disable();
    uint32_t now = *flag;
    if (now != seen) {
      irq_enable();
      return now;
    }
    wfi();
    irq_enable();
  }
}

#endif
