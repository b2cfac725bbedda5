import { ExitReason, parseElf32, VcpuSlot } from "@xenon/hw";
import { describeExit } from "./exit_status.js";
import { FlatGuest } from "./flat_guest.js";

/**
 * `xenon run FILE.elf` for one image built against the guest runtime, before the full core runs
 * it: RAM at 0x80000000, a0 = vCPU id 0, a1 = 0 (no device tree yet), and the three hypercalls the
 * runtime's start-up and console need — console_io(write), xen_version and sched_op(shutdown).
 * Numbers and struct layouts are Xen's (see packages/hypervisor/ABI.md).
 */
export const GUEST_RAM_BASE = 0x80000000;
const HYPERVISOR_xen_version = 17;
const HYPERVISOR_console_io = 18;
const HYPERVISOR_sched_op = 29;
const CONSOLEIO_write = 0;
const SCHEDOP_yield = 0;
const SCHEDOP_shutdown = 2;
const XENVER_version = 0;
const ENOSYS = 38;
const EFAULT = 14;
const EINVAL = 22;
/** Xen's console_io refuses absurd counts; so do we (bytes per call). */
const CONSOLE_MAX = 64 * 1024;

export const SHUTDOWN_REASONS = ["poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset"] as const;

export interface NativeRunOptions {
  ramBytes?: number;
  console(bytes: Uint8Array): void;
  slice?: number;
}

export interface NativeRunResult {
  shutdown: (typeof SHUTDOWN_REASONS)[number] | "fault";
  status: number;
  instructions: number;
  fault?: string;
}

export function runNativeImage(elf: Uint8Array, opts: NativeRunOptions): NativeRunResult {
  const image = parseElf32(elf);
  const guest = new FlatGuest();
  const ram = opts.ramBytes ?? 16 << 20;
  guest.mapRange(GUEST_RAM_BASE, ram);
  for (const seg of image.segments) {
    if (seg.paddr < GUEST_RAM_BASE || seg.paddr + seg.memsz > GUEST_RAM_BASE + ram) {
      throw new Error(`image segment at 0x${seg.paddr.toString(16)} lies outside guest RAM`);
    }
  }
  guest.loadElf(image, "paddr");
  const s = guest.cpu.state;
  s[VcpuSlot.PC] = image.entry | 0;
  s[10] = 0;
  s[11] = 0;
  let instructions = 0;
  const slice = opts.slice ?? 50_000_000;
  for (;;) {
    const reason = guest.cpu.run(slice);
    instructions = (s[VcpuSlot.INSTRET_HI]! >>> 0) * 2 ** 32 + (s[VcpuSlot.INSTRET_LO]! >>> 0);
    if (reason === ExitReason.BUDGET || reason === ExitReason.PREEMPT) continue;
    if (reason === ExitReason.ECALL) {
      const nr = s[17]!;
      const a0 = s[10]!;
      if (nr === HYPERVISOR_console_io && a0 === CONSOLEIO_write) {
        const count = s[11]! >>> 0;
        if (count > CONSOLE_MAX) {
          s[10] = -EINVAL;
          continue;
        }
        const bytes = guest.read(s[12]! >>> 0, count);
        if (bytes === null) s[10] = -EFAULT;
        else {
          opts.console(bytes);
          s[10] = 0;
        }
      } else if (nr === HYPERVISOR_sched_op && a0 === SCHEDOP_shutdown) {
        const reason = guest.readU32(s[11]! >>> 0);
        if (reason === null) s[10] = -EFAULT;
        else {
          const name = SHUTDOWN_REASONS[reason] ?? "crash";
          return { shutdown: name, status: name === "poweroff" ? 0 : 1, instructions };
        }
      } else if (nr === HYPERVISOR_sched_op && a0 === SCHEDOP_yield) {
        s[10] = 0;
      } else if (nr === HYPERVISOR_xen_version && a0 === XENVER_version) {
        s[10] = (4 << 16) | 17;
      } else {
        s[10] = -ENOSYS;
      }
      continue;
    }
    if (reason === ExitReason.WFI) {
      // One vCPU and no event sources yet: nothing can ever wake it.
      return { shutdown: "fault", status: 1, instructions, fault: `vCPU blocked forever: ${describeExit(s)}` };
    }
    return { shutdown: "fault", status: 1, instructions, fault: describeExit(s) };
  }
}
