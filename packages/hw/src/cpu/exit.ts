/** Why Cpu.run() returned. Values are stable: they are stored in VcpuSlot.EXIT_REASON. */
export const ExitReason = {
  /** The instruction budget was spent. pc is the next instruction. */
  BUDGET: 0,
  /** ecall: a hypercall (or a Linux syscall in --linux-abi mode). pc is past the ecall. */
  ECALL: 1,
  /** wfi with no interrupt pending and enabled in SIE. pc is past the wfi. */
  WFI: 2,
  /** ebreak. pc is the ebreak itself. */
  EBREAK: 3,
  /**
   * A load or store to a guest-physical address the P2M does not map as RAM. pc is past the
   * instruction (MMIO_PC holds its address); for a load the caller supplies the value with
   * Cpu.completeMmio().
   */
  MMIO: 4,
  /** An exception the guest did not get to see: EXIT_CAUSE and EXIT_TVAL say which; pc is the faulting instruction. */
  FAULT: 5,
  /** VcpuSlot.PREEMPT was set. pc is the next instruction. */
  PREEMPT: 6,
} as const;
export type ExitReason = (typeof ExitReason)[keyof typeof ExitReason];

export const EXIT_REASON_NAMES: readonly string[] = ["BUDGET", "ECALL", "WFI", "EBREAK", "MMIO", "FAULT", "PREEMPT"];

/** RISC-V exception causes (privileged spec, scause values without the interrupt bit). */
export const Cause = {
  MISALIGNED_FETCH: 0,
  FETCH_ACCESS: 1,
  ILLEGAL_INSTRUCTION: 2,
  BREAKPOINT: 3,
  MISALIGNED_LOAD: 4,
  LOAD_ACCESS: 5,
  MISALIGNED_STORE: 6,
  STORE_ACCESS: 7,
  ECALL_U: 8,
  ECALL_S: 9,
} as const;

/** Interrupt causes (scause with bit 31 set) and their SIP/SIE bit positions. */
export const Interrupt = {
  SUPERVISOR_SOFTWARE: 1,
  SUPERVISOR_TIMER: 5,
  /** Xenon delivers event-channel upcalls as a supervisor external interrupt. */
  SUPERVISOR_EXTERNAL: 9,
} as const;
export const SIP_SSIP = 1 << Interrupt.SUPERVISOR_SOFTWARE;
export const SIP_STIP = 1 << Interrupt.SUPERVISOR_TIMER;
export const SIP_SEIP = 1 << Interrupt.SUPERVISOR_EXTERNAL;

/** sstatus bits used. */
export const SSTATUS_SIE = 1 << 1;
export const SSTATUS_SPIE = 1 << 5;
export const SSTATUS_SPP = 1 << 8;
