/*
 * The trap vector (stvec, direct mode; 4-byte aligned as stvec requires).
 *
 * Saves ra, t0-t6, a0-a7 (everything the C ABI lets trap_dispatch clobber) and sepc/sstatus in an
 * 80-byte frame on the interrupted stack (a single stack: traps nest only if a handler faults),
 * calls trap_dispatch(frame), restores, and srets. sepc/sstatus are restored from the frame so a
 * nested trap inside the handler cannot redirect the outer sret, and so a fault hook can move the
 * return address by editing frame->sepc. Layout: struct trap_frame in include/trap.h.
 */
  .section .text.trap_entry, "ax"
  .globl trap_entry
  .type trap_entry, @function
  .balign 4
trap_entry:
  addi sp, sp, -80
  sw ra, 0(sp)
  sw t0, 4(sp)
  sw t1, 8(sp)
  sw t2, 12(sp)
  sw t3, 16(sp)
  sw t4, 20(sp)
  sw t5, 24(sp)
  sw t6, 28(sp)
  sw a0, 32(sp)
  sw a1, 36(sp)
  sw a2, 40(sp)
  sw a3, 44(sp)
  sw a4, 48(sp)
  sw a5, 52(sp)
  sw a6, 56(sp)
  sw a7, 60(sp)
  csrr t0, sepc
  sw t0, 64(sp)
  csrr t0, sstatus
  sw t0, 68(sp)

  mv a0, sp
  call trap_dispatch

  lw t0, 64(sp)
  csrw sepc, t0
  lw t0, 68(sp)
  csrw sstatus, t0
  lw ra, 0(sp)
  lw t0, 4(sp)
  lw t1, 8(sp)
  lw t2, 12(sp)
  lw t3, 16(sp)
  lw t4, 20(sp)
  lw t5, 24(sp)
  lw t6, 28(sp)
  lw a0, 32(sp)
  lw a1, 36(sp)
  lw a2, 40(sp)
  lw a3, 44(sp)
  lw a4, 48(sp)
  lw a5, 52(sp)
  lw a6, 56(sp)
  lw a7, 60(sp)
  addi sp, sp, 80
  sret
  .size trap_entry, . - trap_entry
