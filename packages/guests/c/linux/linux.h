/*
 * Linux RV32 syscalls used by the differential test programs: ecall with the number in a7,
 * arguments in a0..a5, result in a0 (negative errno). Only write/exit/exit_group are used so
 * any Linux-ABI harness (qemu-riscv32, Xenon's) can run the programs.
 */
#ifndef XENON_LINUX_H
#define XENON_LINUX_H

#include <stddef.h>

#define SYS_write 64
#define SYS_exit 93
#define SYS_exit_group 94

static inline long linux_syscall3(long nr, long a0, long a1, long a2) {
  register long r_a0 __asm__("a0") = a0;
  register long r_a1 __asm__("a1") = a1;
  register long r_a2 __asm__("a2") = a2;
  register long r_a7 __asm__("a7") = nr;
  __asm__ volatile("ecall" : "+r"(r_a0) : "r"(r_a1), "r"(r_a2), "r"(r_a7) : "memory");
  return r_a0;
}

long sys_write(int fd, const void *buf, size_t len);
_Noreturn void sys_exit(int status);
_Noreturn void sys_exit_group(int status);

/* printf to any file descriptor, unbuffered apart from one internal chunk per call. */
int dprintf(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int main(int argc, char **argv);

#endif
