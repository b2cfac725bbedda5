/**
 * The vCPU's architectural state, laid out in one shared Int32Array so a vCPU can stop on one
 * pCPU worker and resume on another (the buffer is a SharedArrayBuffer) and so another thread can
 * raise an interrupt or a preempt request while the vCPU runs.
 *
 * This is a thread-boundary contract: every slot has a name here and nowhere else.
 * Slots written by other threads while the vCPU runs (PREEMPT, SIP) must be accessed with Atomics.
 */
export const VcpuSlot = {
  /** x0..x31 occupy slots 0..31; x0 always reads 0. */
  X0: 0,
  PC: 32,
  /** Why the last run() returned (an ExitReason). */
  EXIT_REASON: 33,
  /** FAULT: the RISC-V exception cause (CAUSE_*). */
  EXIT_CAUSE: 34,
  /** FAULT: faulting address, or the instruction bits for an illegal instruction. */
  EXIT_TVAL: 35,
  /** MMIO: guest-physical address of the access. */
  MMIO_ADDR: 36,
  /** MMIO: access size in bytes (1, 2 or 4). */
  MMIO_SIZE: 37,
  /** MMIO: 1 for a store, 0 for a load. */
  MMIO_WRITE: 38,
  /** MMIO: the value stored (stores only). */
  MMIO_VALUE: 39,
  /** MMIO: destination register of a load (0 when the value is discarded). */
  MMIO_RD: 40,
  /** MMIO: 1 when the load sign-extends (lb, lh). */
  MMIO_SIGNED: 41,
  /** Retired-instruction counter, 64-bit as two halves. */
  INSTRET_LO: 42,
  INSTRET_HI: 43,
  /** Non-zero asks the running vCPU to stop with PREEMPT at its next poll. Set by other threads. */
  PREEMPT: 44,
  /** The P2M generation this vCPU's soft TLB was last filled against (lets the core wait for a flush). */
  TLB_GEN_SEEN: 45,
  /** Supervisor CSRs of the guest kernel (it runs in virtual S-mode; traps are injected here). */
  SSTATUS: 46,
  SIE: 47,
  STVEC: 48,
  SSCRATCH: 49,
  SEPC: 50,
  SCAUSE: 51,
  STVAL: 52,
  /** Pending interrupts; other threads set bits with Atomics.or (e.g. SIP_SEIP for an event upcall). */
  SIP: 53,
  /** LR/SC reservation: the reserved guest-physical address, valid when RESERVATION_VALID is 1. */
  RESERVATION_ADDR: 54,
  RESERVATION_VALID: 55,
  /** Privilege of the guest code: 1 = S (guest kernel, the default), 0 = U (Linux-ABI user programs). */
  PRIV: 56,
  /**
   * LR/SC reservation: the word lr.w read. sc.w stores with Atomics.compareExchange against it, so
   * another hart's intervening store of a different value makes the sc fail (see cpu.ts).
   */
  RESERVATION_VALUE: 57,
  /**
   * The external interrupt line (SEIP) is level-triggered on one byte of guest memory — Xen's
   * vcpu_info.evtchn_upcall_pending: asserted while that byte is non-zero, so a guest that clears
   * the byte before scanning its ports is not interrupted again for the same events. The byte is
   * given by machine frame and byte offset; UPCALL_LINE_OFF = -1 means no line (SEIP only from SIP).
   */
  UPCALL_LINE_MFN: 58,
  UPCALL_LINE_OFF: 59,
  /** MMIO: address of the instruction that made the access (PC is already past it). */
  MMIO_PC: 60,
} as const;

/** Number of Int32 slots in a vCPU state block. */
export const VCPU_STATE_WORDS = 64;
export const VCPU_STATE_BYTES = VCPU_STATE_WORDS * 4;

/** Allocates a shareable vCPU state block: all zero (pc 0, registers 0) except PRIV = 1 (S-mode) and no upcall line. */
export function createVcpuState(): Int32Array {
  const st = new Int32Array(new SharedArrayBuffer(VCPU_STATE_BYTES));
  st[VcpuSlot.PRIV] = 1;
  st[VcpuSlot.UPCALL_LINE_OFF] = -1;
  return st;
}
