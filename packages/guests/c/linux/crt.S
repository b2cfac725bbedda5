/*
 * Startup for the Linux-ABI differential test programs (static, no libc).
 *
 * The kernel (or qemu-riscv32, or Xenon's Linux-ABI harness) enters with sp pointing at argc,
 * followed by the argv array: argc = 0(sp), argv = sp + 4. The ABI's 16-byte stack alignment
 * holds on entry. After main, stdout is flushed and main's value becomes the exit status.
 */
#define SYS_exit_group 94

  .text
  .globl _start
  .type _start, @function
_start:
  lw a0, 0(sp)
  addi a1, sp, 4
  call main
  mv s0, a0
  call stdout_flush
  mv a0, s0
  li a7, SYS_exit_group
  ecall
1:
  j 1b
  .size _start, . - _start
