import { Cause, expandCompressed, VcpuSlot } from "@xenon/hw";
import type { FlatGuest } from "./flat_guest.js";

/**
 * Misaligned load/store emulation for Linux-ABI programs. The hart traps misaligned accesses (as
 * the privileged spec allows); a Linux kernel then emulates the access for the user program, so
 * user code may rely on misaligned accesses working. qemu-user does the same, so the
 * differential harness must too. AMOs and LR/SC are not emulated: misaligned atomics are a
 * SIGBUS on Linux as well.
 *
 * Returns true when the access was emulated (pc advanced, rd written); false to deliver SIGBUS.
 */
export function emulateMisaligned(guest: FlatGuest): boolean {
  const s = guest.cpu.state;
  const cause = s[VcpuSlot.EXIT_CAUSE];
  if (cause !== Cause.MISALIGNED_LOAD && cause !== Cause.MISALIGNED_STORE) return false;
  const pc = s[VcpuSlot.PC]! >>> 0;
  const lo = guest.read(pc, 2);
  if (lo === null) return false;
  const parcel = lo[0]! | (lo[1]! << 8);
  let inst: number;
  let length: number;
  if ((parcel & 3) !== 3) {
    inst = expandCompressed(parcel);
    length = 2;
  } else {
    const word = guest.readU32(pc);
    if (word === null) return false;
    inst = word | 0;
    length = 4;
  }
  const opcode = inst & 0x7f;
  const funct3 = (inst >>> 12) & 7;
  const rs1 = (inst >>> 15) & 31;
  const rd = (inst >>> 7) & 31;
  if (opcode === 0x03) {
    // LOAD: lh 1, lw 2, lhu 5
    const size = funct3 === 2 ? 4 : funct3 === 1 || funct3 === 5 ? 2 : 0;
    if (size === 0) return false;
    const addr = (s[rs1]! + (inst >> 20)) >>> 0;
    const b = guest.read(addr, size);
    if (b === null) return false;
    let v = size === 4 ? b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24) : b[0]! | (b[1]! << 8);
    if (funct3 === 1) v = (v << 16) >> 16;
    if (rd !== 0) s[rd] = v;
  } else if (opcode === 0x23) {
    // STORE: sh 1, sw 2
    const size = funct3 === 2 ? 4 : funct3 === 1 ? 2 : 0;
    if (size === 0) return false;
    const imm = ((inst >> 25) << 5) | ((inst >>> 7) & 31);
    const addr = (s[rs1]! + imm) >>> 0;
    const v = s[(inst >>> 20) & 31]!;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i++) bytes[i] = (v >>> (8 * i)) & 0xff;
    if (!guest.write(addr, bytes)) return false;
  } else {
    return false;
  }
  s[VcpuSlot.PC] = (pc + length) | 0;
  return true;
}
