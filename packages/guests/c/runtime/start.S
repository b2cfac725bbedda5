/*
 * Entry of a Xenon native image.
 *
 * On entry (boot vCPU only): a0 = vCPU id, a1 = device-tree address (or 0), pc = _start.
 * Nothing else is assumed: sp is set here, .bss is zeroed here. The boot arguments are kept in
 * callee-saved s0/s1 across the .bss loop so main sees them unchanged.
 * After main: flush stdout, then SCHEDOP_shutdown (poweroff if main returned 0, else crash).
 * If the hypervisor ever returns from shutdown, park the vCPU on wfi.
 */
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_crash 3

  .section .text.start, "ax"
  .globl _start
  .type _start, @function
_start:
  la sp, __stack_top
  mv s0, a0
  mv s1, a1

  /* __bss_start/__bss_end are 16-byte aligned by the linker script, so word stores cover it. */
  la t0, __bss_start
  la t1, __bss_end
1:
  bgeu t0, t1, 2f
  sw zero, 0(t0)
  addi t0, t0, 4
  j 1b
2:
  mv a0, s0
  mv a1, s1
  call main

  mv s0, a0
  call stdout_flush
  li a0, SHUTDOWN_poweroff
  beqz s0, 3f
  li a0, SHUTDOWN_crash
3:
  call xen_shutdown
4:
  wfi
  j 4b
  .size _start, . - _start
