import { Cause, EXIT_REASON_NAMES, VcpuSlot } from "@xenon/hw";

/** Shell-style status for a guest killed by a fault, as qemu-user reports a fatal signal. */
export const SIGNAL_STATUS = { SIGILL: 128 + 4, SIGTRAP: 128 + 5, SIGBUS: 128 + 7, SIGSEGV: 128 + 11 } as const;

/** The signal a Linux kernel would have sent for this exception cause. */
export function signalForCause(cause: number): keyof typeof SIGNAL_STATUS {
  switch (cause) {
    case Cause.ILLEGAL_INSTRUCTION:
      return "SIGILL";
    case Cause.BREAKPOINT:
      return "SIGTRAP";
    case Cause.MISALIGNED_FETCH:
    case Cause.MISALIGNED_LOAD:
    case Cause.MISALIGNED_STORE:
      return "SIGBUS";
    default:
      return "SIGSEGV";
  }
}

export function describeExit(state: Int32Array): string {
  const reason = EXIT_REASON_NAMES[state[VcpuSlot.EXIT_REASON]!] ?? `exit ${state[VcpuSlot.EXIT_REASON]}`;
  const hex = (v: number | undefined) => `0x${((v ?? 0) >>> 0).toString(16).padStart(8, "0")}`;
  return `${reason} at pc=${hex(state[VcpuSlot.PC])} cause=${state[VcpuSlot.EXIT_CAUSE]} tval=${hex(state[VcpuSlot.EXIT_TVAL])} addr=${hex(state[VcpuSlot.MMIO_ADDR])}`;
}
