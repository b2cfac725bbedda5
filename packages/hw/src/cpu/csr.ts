import { SIP_SEIP, SIP_SSIP, SIP_STIP, SSTATUS_SIE, SSTATUS_SPIE, SSTATUS_SPP } from "./exit.js";
import type { TimeSource } from "./time.js";
import { VcpuSlot } from "./vcpu_state.js";

/**
 * The CSRs of the virtual S-mode hart. Everything else (M-mode CSRs, scounteren, senvcfg, the FPU's
 * fcsr...) is an illegal instruction. All state lives in the vCPU state block.
 */
export const Csr = {
  SSTATUS: 0x100,
  SIE: 0x104,
  STVEC: 0x105,
  SSCRATCH: 0x140,
  SEPC: 0x141,
  SCAUSE: 0x142,
  STVAL: 0x143,
  SIP: 0x144,
  SATP: 0x180,
  CYCLE: 0xc00,
  TIME: 0xc01,
  INSTRET: 0xc02,
  CYCLEH: 0xc80,
  TIMEH: 0xc81,
  INSTRETH: 0xc82,
} as const;

/** sstatus bits that exist; the rest read as 0 and ignore writes. */
export const SSTATUS_MASK = SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP;
/** Interrupt bits that exist in sie/sip. */
export const SI_MASK = SIP_SSIP | SIP_STIP | SIP_SEIP;

const TWO32 = 0x1_0000_0000;

/**
 * Whether `csr` exists and may be accessed at privilege `priv` (0 = U, 1 = S). `write` is true when
 * the instruction writes (csrrw always; csrrs/csrrc unless the source is x0 / uimm 0): writing a
 * read-only CSR (csr[11:10] = 3) is illegal.
 */
export function csrAccessible(csr: number, priv: number, write: boolean): boolean {
  if (write && csr >>> 10 === 3) return false;
  switch (csr) {
    case Csr.CYCLE:
    case Csr.TIME:
    case Csr.INSTRET:
    case Csr.CYCLEH:
    case Csr.TIMEH:
    case Csr.INSTRETH:
      return true; // counters are readable from U as well (as if scounteren were all ones)
    case Csr.SSTATUS:
    case Csr.SIE:
    case Csr.STVEC:
    case Csr.SSCRATCH:
    case Csr.SEPC:
    case Csr.SCAUSE:
    case Csr.STVAL:
    case Csr.SIP:
    case Csr.SATP:
      return priv >= 1;
    default:
      return false;
  }
}

/**
 * Reads an accessible CSR. `retired` is the number of instructions retired in the current run slice
 * and not yet added to the state's instret (cycle counts instructions too: one cycle each).
 */
export function csrRead(st: Int32Array, time: TimeSource, csr: number, retired: number): number {
  switch (csr) {
    case Csr.SSTATUS:
      return st[VcpuSlot.SSTATUS]! & SSTATUS_MASK;
    case Csr.SIE:
      return st[VcpuSlot.SIE]! & SI_MASK;
    case Csr.STVEC:
      return st[VcpuSlot.STVEC]!;
    case Csr.SSCRATCH:
      return st[VcpuSlot.SSCRATCH]!;
    case Csr.SEPC:
      return st[VcpuSlot.SEPC]!;
    case Csr.SCAUSE:
      return st[VcpuSlot.SCAUSE]!;
    case Csr.STVAL:
      return st[VcpuSlot.STVAL]!;
    case Csr.SIP:
      return Atomics.load(st, VcpuSlot.SIP) & SI_MASK;
    case Csr.SATP:
      return 0;
    case Csr.CYCLE:
    case Csr.INSTRET:
      return ((st[VcpuSlot.INSTRET_LO]! >>> 0) + retired) | 0;
    case Csr.CYCLEH:
    case Csr.INSTRETH:
      return (
        ((st[VcpuSlot.INSTRET_LO]! >>> 0) + retired >= TWO32
          ? st[VcpuSlot.INSTRET_HI]! + 1
          : st[VcpuSlot.INSTRET_HI]!) | 0
      );
    case Csr.TIME:
    case Csr.TIMEH: {
      // A TimeSource may derive time from instret (deterministic mode): let it see the
      // instructions retired so far in this slice, which the state gets only when the slice ends.
      addInstret(st, retired);
      const now = time.now();
      addInstret(st, -retired);
      return (csr === Csr.TIME ? now % TWO32 : Math.floor(now / TWO32)) | 0;
    }
    default:
      return 0;
  }
}

/** Adds delta (|delta| < 2^31) to the 64-bit instret in the state. */
function addInstret(st: Int32Array, delta: number): void {
  const lo = (st[VcpuSlot.INSTRET_LO]! >>> 0) + delta;
  st[VcpuSlot.INSTRET_LO] = lo | 0;
  if (lo >= TWO32) st[VcpuSlot.INSTRET_HI] = (st[VcpuSlot.INSTRET_HI]! + 1) | 0;
  else if (lo < 0) st[VcpuSlot.INSTRET_HI] = (st[VcpuSlot.INSTRET_HI]! - 1) | 0;
}

/**
 * Writes an accessible, writable CSR (WARL: bits that do not exist are dropped). Returns true when
 * the write may have made an interrupt deliverable (sstatus, sie, sip): the caller polls at once.
 */
export function csrWrite(st: Int32Array, csr: number, value: number): boolean {
  switch (csr) {
    case Csr.SSTATUS:
      st[VcpuSlot.SSTATUS] = value & SSTATUS_MASK;
      return true;
    case Csr.SIE:
      st[VcpuSlot.SIE] = value & SI_MASK;
      return true;
    case Csr.STVEC:
      st[VcpuSlot.STVEC] = value & ~3; // direct mode only: MODE is read-only 0
      return false;
    case Csr.SSCRATCH:
      st[VcpuSlot.SSCRATCH] = value;
      return false;
    case Csr.SEPC:
      st[VcpuSlot.SEPC] = value & ~1; // IALIGN = 16
      return false;
    case Csr.SCAUSE:
      st[VcpuSlot.SCAUSE] = value;
      return false;
    case Csr.STVAL:
      st[VcpuSlot.STVAL] = value;
      return false;
    case Csr.SIP:
      // Only SSIP is guest-writable; STIP/SEIP belong to the host, which sets them from other
      // threads, so update the one bit atomically rather than storing the word.
      if (value & SIP_SSIP) Atomics.or(st, VcpuSlot.SIP, SIP_SSIP);
      else Atomics.and(st, VcpuSlot.SIP, ~SIP_SSIP);
      return true;
    default:
      return false; // satp: Bare only, writes ignored
  }
}
