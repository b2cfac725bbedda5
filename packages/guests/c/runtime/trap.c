/* Trap dispatch; see include/trap.h. */
#include "trap.h"

#include <stdio.h>

#include "xenon.h"

extern char trap_entry[];

static irq_handler_t irq_handlers[32];
static fault_hook_t fault_hook;

void trap_init(void) {
  csr_clear(sstatus, SSTATUS_SIE);
  csr_write(sie, 0);
  csr_write(stvec, (uint32_t)(uintptr_t)trap_entry);
}

void trap_set_irq_handler(unsigned cause, irq_handler_t fn) {
  if (cause < 32) irq_handlers[cause] = fn;
}

fault_hook_t trap_set_fault_hook(fault_hook_t fn) {
  fault_hook_t old = fault_hook;
  fault_hook = fn;
  return old;
}

static const char *exception_name(uint32_t cause) {
  switch (cause) {
    case EXC_INST_MISALIGNED:
      return "instruction address misaligned";
    case EXC_INST_ACCESS:
      return "instruction access fault";
    case EXC_ILLEGAL_INST:
      return "illegal instruction";
    case EXC_BREAKPOINT:
      return "breakpoint";
    case EXC_LOAD_MISALIGNED:
      return "load address misaligned";
    case EXC_LOAD_ACCESS:
      return "load access fault";
    case EXC_STORE_MISALIGNED:
      return "store address misaligned";
    case EXC_STORE_ACCESS:
      return "store access fault";
    default:
      return "exception";
  }
}

/* Reports straight to the console, bypassing the stdout line buffer: the trap may have hit in
 * the middle of a printf, whose half-built line is dropped rather than interleaved. */
static void __attribute__((noreturn)) die(const char *what, uint32_t scause, uint32_t sepc, uint32_t stval) {
  char msg[160];
  int n = snprintf(msg, sizeof msg, "xenon: fatal %s: scause %#x sepc %#x stval %#x\n", what, scause, sepc, stval);
  console_write(msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
  xen_shutdown(SHUTDOWN_crash);
  for (;;) wfi();
}

void trap_dispatch(struct trap_frame *frame) {
  uint32_t scause = csr_read(scause);
  uint32_t stval = csr_read(stval);
  if (scause & SCAUSE_INTERRUPT) {
    uint32_t cause = scause & ~SCAUSE_INTERRUPT;
    irq_handler_t fn = cause < 32 ? irq_handlers[cause] : 0;
    if (!fn) die("interrupt with no handler", scause, frame->sepc, stval);
    fn(frame);
    return;
  }
  if (fault_hook && fault_hook(frame, scause, stval)) return;
  die(exception_name(scause), scause, frame->sepc, stval);
}
