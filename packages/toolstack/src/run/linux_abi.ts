import { ExitReason, parseElf32, VcpuSlot } from "@xenon/hw";
import { describeExit, SIGNAL_STATUS, signalForCause } from "./exit_status.js";
import { FlatGuest } from "./flat_guest.js";
import { emulateMisaligned } from "./misaligned.js";

/**
 * `xenon run --linux-abi`: a static RV32 Linux user program on one vCPU, with the three system
 * calls our differential programs use (write, exit, exit_group) served from ECALL exits. The same
 * ELF runs under qemu-riscv32; the two runs must agree on stdout, stderr and exit status.
 */
export const SYS_WRITE = 64;
export const SYS_EXIT = 93;
export const SYS_EXIT_GROUP = 94;
const ENOSYS = 38;
const EBADF = 9;
const EFAULT = 14;

/** The user stack: 1 MiB ending below 0x80000000 (qemu-user places it high as well; programs must not care). */
export const STACK_TOP = 0x7fff0000;
export const STACK_SIZE = 1 << 20;
const AT_NULL = 0;
const AT_PAGESZ = 6;

export interface LinuxRunOptions {
  argv: readonly string[];
  /** Receives the guest's fd 1 and fd 2 bytes. */
  write(fd: 1 | 2, bytes: Uint8Array): void;
  /** Instructions per run() call between host checks. */
  slice?: number;
  /** Stop after this many instructions (a runaway guest); undefined = no limit. */
  maxInstructions?: number;
}

export interface LinuxRunResult {
  status: number;
  instructions: number;
  /** Set when the guest died of a fault rather than calling exit. */
  fault?: string;
}

/** Builds the initial stack (argc, argv[], NULL, envp NULL, auxv) at sp, as the Linux ABI does. */
function buildStack(guest: FlatGuest, argv: readonly string[]): number {
  guest.mapRange(STACK_TOP - STACK_SIZE, STACK_SIZE);
  const enc = new TextEncoder();
  let top = STACK_TOP;
  const ptrs: number[] = [];
  for (const a of argv) {
    const bytes = enc.encode(`${a}\0`);
    top -= bytes.length;
    guest.write(top, bytes);
    ptrs.push(top);
  }
  const words = [argv.length, ...ptrs, 0, 0, AT_PAGESZ, 4096, AT_NULL, 0];
  let sp = (top - words.length * 4) & ~15;
  const block = new Uint8Array(words.length * 4);
  const dv = new DataView(block.buffer);
  for (let i = 0; i < words.length; i++) dv.setUint32(i * 4, words[i]! >>> 0, true);
  guest.write(sp, block);
  sp >>>= 0;
  return sp;
}

export function runLinuxUser(elf: Uint8Array, opts: LinuxRunOptions): LinuxRunResult {
  const image = parseElf32(elf);
  const guest = new FlatGuest();
  guest.loadElf(image, "vaddr");
  const s = guest.cpu.state;
  s[VcpuSlot.PRIV] = 0; // user mode
  s[VcpuSlot.PC] = image.entry | 0;
  s[2] = buildStack(guest, opts.argv) | 0; // sp
  const slice = opts.slice ?? 50_000_000;
  let executed = 0;
  for (;;) {
    const before = instret(s);
    const reason = guest.cpu.run(slice);
    executed += instret(s) - before;
    if (opts.maxInstructions !== undefined && executed >= opts.maxInstructions) {
      return {
        status: SIGNAL_STATUS.SIGSEGV,
        instructions: executed,
        fault: `instruction limit ${opts.maxInstructions} reached`,
      };
    }
    switch (reason) {
      case ExitReason.BUDGET:
      case ExitReason.PREEMPT:
        continue;
      case ExitReason.ECALL: {
        const nr = s[17]!;
        const a0 = s[10]!;
        if (nr === SYS_EXIT || nr === SYS_EXIT_GROUP) return { status: a0 & 0xff, instructions: executed };
        if (nr === SYS_WRITE) {
          const fd = a0;
          const len = s[12]! >>> 0;
          if (fd !== 1 && fd !== 2) {
            s[10] = -EBADF;
            continue;
          }
          const bytes = guest.read(s[11]! >>> 0, len);
          if (bytes === null) {
            s[10] = -EFAULT;
            continue;
          }
          opts.write(fd, bytes);
          s[10] = len;
          continue;
        }
        s[10] = -ENOSYS;
        continue;
      }
      case ExitReason.FAULT: {
        if (emulateMisaligned(guest)) continue;
        const sig = signalForCause(s[VcpuSlot.EXIT_CAUSE]!);
        return { status: SIGNAL_STATUS[sig], instructions: executed, fault: `${sig}: ${describeExit(s)}` };
      }
      case ExitReason.EBREAK:
        return { status: SIGNAL_STATUS.SIGTRAP, instructions: executed, fault: `SIGTRAP: ${describeExit(s)}` };
      case ExitReason.MMIO:
        // A user program has no devices: an access outside its memory is a segmentation fault.
        return { status: SIGNAL_STATUS.SIGSEGV, instructions: executed, fault: `SIGSEGV: ${describeExit(s)}` };
      case ExitReason.WFI:
        return {
          status: SIGNAL_STATUS.SIGILL,
          instructions: executed,
          fault: `SIGILL: wfi in user mode: ${describeExit(s)}`,
        };
      default:
        return { status: SIGNAL_STATUS.SIGSEGV, instructions: executed, fault: `unknown exit ${reason}` };
    }
  }
}

function instret(s: Int32Array): number {
  return (s[VcpuSlot.INSTRET_HI]! >>> 0) * 2 ** 32 + (s[VcpuSlot.INSTRET_LO]! >>> 0);
}
