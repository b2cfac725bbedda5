/**
 * The RISC-V hart (vCPU): RV32IMAC + Zicsr + Zifencei in virtual S/U mode, executing real guest
 * machine code out of machine memory through the domain's P2M.
 *
 * Structure — and the seam for a future translator:
 *   run(budget)   the exit interface. Owns everything a caller can observe between instructions:
 *                 polling (PREEMPT, P2M generation -> TLB flush, interrupt delivery), the budget,
 *                 EXIT_REASON. It calls exec() for slices of at most SLICE instructions.
 *   exec(limit)   the execution engine: retires at most `limit` instructions with no polling,
 *                 keeps pc in a local, writes pc and instret back to the state, and returns an
 *                 ExitReason, or CONTINUE when the slice ran out or an instruction asked for a poll.
 *                 A block translator (JS or wasm) replaces exec() alone; run()'s contract, the
 *                 state layout and the slow paths (system/amo/mmio/fault helpers) stay.
 *
 * All architectural state is in `state` (see vcpu_state.ts), so another worker holding the same
 * state buffer and memory chunks resumes this vCPU. The soft TLB and the decoded-instruction cache
 * (tlb.ts) are per-instance derived state.
 *
 * The interpreter executes predecoded words (predecode.ts): each executed frame has one decode
 * slot per parcel, filled on first execution, so the loop is: fetch-page check, one load, one
 * dense switch. The host must call flushTlb() after writing code into guest memory itself.
 *
 * Hot-path rules (V8): the interpreter loop allocates nothing, keeps every value an int32
 * (`|0`, `>>>0` only inside comparisons, Math.imul), reads registers straight from the state
 * Int32Array, keeps x0 zero by never writing it (`if (rd !== 0)`), keeps few values live across
 * the loop (register pressure decides whether V8 spills them), and moves every miss/exception path
 * into a method so the loop body stays small.
 */

import type { MachineMemory } from "../memory/machine_memory.js";
import { Csr, csrAccessible, csrRead, csrWrite, SI_MASK } from "./csr.js";
import { Cause, ExitReason, SIP_SEIP, SIP_SSIP, SSTATUS_SIE, SSTATUS_SPIE, SSTATUS_SPP } from "./exit.js";
import type { P2mLookup } from "./p2m.js";
import { compressedDecodeTable, Op, predecode } from "./predecode.js";
import type { TimeSource } from "./time.js";
import { CODE_TAG, FETCH, READ, SLOTS_PER_FRAME, TLB_MASK, TLB_NOT_RAM, Tlb, WRITE } from "./tlb.js";
import { createVcpuState, VCPU_STATE_WORDS, VcpuSlot } from "./vcpu_state.js";

export interface CpuOptions {
  memory: MachineMemory;
  p2m: P2mLookup;
  time: TimeSource;
  /** The vCPU state block (default: createVcpuState(): everything 0 except PRIV = S). */
  state?: Int32Array;
}

/** Most instructions exec() runs between two polls. Bounds PREEMPT / interrupt / flush latency. */
export const SLICE = 4096;

/** exec() and slow-path results besides ExitReason values. */
const CONTINUE = -1; // slice over, or an instruction asked for a poll: run() polls and goes on
const NEXT = -2; // slow path done: continue at the next instruction

const S = VcpuSlot;
const TWO32 = 0x1_0000_0000;
const INT_MIN = -0x8000_0000;

const EMPTY_I32 = new Int32Array(0);

/** Loads by op id (Op.LB..Op.LHU = 12..16): alignment mask and size in bytes. */
const LOAD_ALIGN = new Int32Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 0, 1]);
const LOAD_SIZE = new Int32Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 1, 2]);

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed-array views use host byte order; RISC-V is little-endian.
  throw new Error("Xenon's CPU needs a little-endian host");
}

/** High word of the unsigned 64-bit product of two uint32 (as numbers), exactly. */
function mulhu(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff); // < 3 * 2^16
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) | 0; // exact: the sum is < 2^32
}

/** Zeroes the decode slots of a code frame that a store of `size` bytes at `addr` overlaps. */
function invalidateSlots(dec: Int32Array, addr: number, size: number): void {
  const first = (addr & 0xfff) >> 1;
  const last = ((addr & 0xfff) + size - 1) >> 1;
  // A 32-bit instruction starting one parcel earlier covers `first` too.
  for (let s = first > 0 ? first - 1 : 0; s <= last; s++) dec[s] = 0;
}

/**
 * completeMmio on a vCPU state block, for whoever holds the state while the vCPU is off its pCPU
 * (the core, after a device model answered): the load's rd gets `value`, sign- or zero-extended.
 */
export function completeMmioLoad(st: Int32Array, value: number): void {
  const rd = st[S.MMIO_RD]!;
  if (st[S.MMIO_WRITE] !== 0 || rd === 0) return;
  const signed = st[S.MMIO_SIGNED] !== 0;
  switch (st[S.MMIO_SIZE]) {
    case 1:
      st[rd] = signed ? (value << 24) >> 24 : value & 0xff;
      break;
    case 2:
      st[rd] = signed ? (value << 16) >> 16 : value & 0xffff;
      break;
    default:
      st[rd] = value | 0;
  }
}

export class Cpu {
  readonly state: Int32Array;
  readonly memory: MachineMemory;
  readonly p2m: P2mLookup;
  readonly time: TimeSource;
  private readonly tlb: Tlb;
  /** Parcel -> decoded word (predecode.ts). */
  private readonly cdec: Int32Array;
  /** The P2M generation the TLB was filled against. */
  private tlbGen: number;
  /** Cached view of the upcall line's byte (see VcpuSlot.UPCALL_LINE_*); lineOff -1 = none cached. */
  private lineMfn = -1;
  private lineOff = -1;
  private lineI32: Int32Array = new Int32Array(new SharedArrayBuffer(4));
  private lineIndex = 0;
  private lineMask = 0;
  /** Instructions the last exec() retired. */
  private retired = 0;
  /** Where a slow path that ends the slice leaves pc. */
  private nextPc = 0;
  /** A private word for fence's full barrier (a seq-cst RMW). */
  private readonly fenceCell = new Int32Array(new SharedArrayBuffer(4));

  constructor(opts: CpuOptions) {
    this.memory = opts.memory;
    this.p2m = opts.p2m;
    this.time = opts.time;
    this.state = opts.state ?? createVcpuState();
    if (this.state.length < VCPU_STATE_WORDS) throw new RangeError("vCPU state block too small");
    this.tlb = new Tlb(this.memory, this.p2m);
    this.cdec = compressedDecodeTable();
    this.tlbGen = Atomics.load(this.p2m.generation, 0);
    this.state[S.TLB_GEN_SEEN] = this.tlbGen;
  }

  /**
   * Executes at most `budget` instructions; returns (and stores in EXIT_REASON) why it stopped.
   * Polls at entry and every SLICE instructions: PREEMPT (left set for the caller to clear), the
   * P2M generation, pending interrupts. instret is up to date on return.
   */
  run(budget: number): ExitReason {
    const st = this.state;
    let left = budget > 0 ? Math.floor(budget) : 0;
    let reason: number;
    for (;;) {
      if (Atomics.load(st, S.PREEMPT) !== 0) {
        reason = ExitReason.PREEMPT;
        break;
      }
      this.checkGeneration();
      this.takeInterrupt();
      if (left <= 0) {
        reason = ExitReason.BUDGET;
        break;
      }
      const r = this.exec(Math.min(left, SLICE));
      left -= this.retired;
      if (r !== CONTINUE) {
        reason = r;
        break;
      }
    }
    st[S.EXIT_REASON] = reason;
    return reason as ExitReason;
  }

  /**
   * Finishes an MMIO load exit: writes `value`, sign- or zero-extended to the access size, to the
   * load's rd (nothing for rd = x0 or for a store).
   */
  completeMmio(value: number): void {
    completeMmioLoad(this.state, value);
  }

  /**
   * Delivers a trap into the guest's S-mode vector: a synchronous exception `cause` (Cause.*) with
   * stval = tval, or an interrupt when bit 31 of cause is set. sepc is the current state PC: after a
   * FAULT exit that is the faulting instruction; set PC first for anything else (e.g. after an
   * ECALL exit pc is past the ecall).
   */
  injectTrap(cause: number, tval: number): void {
    this.trap(cause | 0, tval | 0);
  }

  /**
   * Drops every soft-TLB entry and every decoded instruction (the next run() refills from the P2M
   * and memory). Call it after the host itself writes code into guest memory (a loader, a debugger):
   * the vCPU sees its own stores to code at once, other writers only after fence.i, a P2M
   * generation change or this.
   */
  flushTlb(): void {
    this.tlb.flush();
  }

  // ---- polling -----------------------------------------------------------------------------

  private checkGeneration(): void {
    const gen = Atomics.load(this.p2m.generation, 0);
    if (gen !== this.tlbGen) {
      this.tlb.flush();
      this.tlbGen = gen;
      this.state[S.TLB_GEN_SEEN] = gen;
    } else if (this.tlb.overfull) this.tlb.flushCode();
  }

  /**
   * Pending interrupt bits: SIP as set by other threads, plus SEIP while the upcall line's byte is
   * non-zero. The line's frame view is cached and re-resolved when the slots change.
   */
  pendingInterrupts(): number {
    const st = this.state;
    let pending = Atomics.load(st, S.SIP);
    const off = st[S.UPCALL_LINE_OFF]!;
    if (off >= 0) {
      const mfn = st[S.UPCALL_LINE_MFN]! >>> 0;
      if (mfn !== this.lineMfn || off !== this.lineOff) {
        const chunk = this.memory.chunk(mfn);
        const byte = this.memory.frameOffset(mfn) + (off & 0xfff);
        this.lineI32 = chunk.i32;
        this.lineIndex = byte >> 2;
        this.lineMask = 0xff << ((byte & 3) * 8);
        this.lineMfn = mfn;
        this.lineOff = off;
      }
      if ((Atomics.load(this.lineI32, this.lineIndex) & this.lineMask) !== 0) pending |= SIP_SEIP;
    }
    return pending & SI_MASK;
  }

  /** Takes the highest-priority pending and enabled interrupt, if any (SEI > SSI > STI). */
  private takeInterrupt(): void {
    const st = this.state;
    const pending = this.pendingInterrupts() & st[S.SIE]!;
    if (pending === 0) return;
    if (st[S.PRIV] !== 0 && (st[S.SSTATUS]! & SSTATUS_SIE) === 0) return;
    const cause = pending & SIP_SEIP ? 9 : pending & SIP_SSIP ? 1 : 5;
    this.trap(cause | INT_MIN, 0);
  }

  /** Trap entry into S-mode (direct mode: every trap goes to stvec). */
  private trap(scause: number, tval: number): void {
    const st = this.state;
    const s = st[S.SSTATUS]!;
    st[S.SCAUSE] = scause;
    st[S.SEPC] = st[S.PC]!;
    st[S.STVAL] = tval;
    st[S.SSTATUS] =
      (s & ~(SSTATUS_SIE | SSTATUS_SPIE | SSTATUS_SPP)) |
      (s & SSTATUS_SIE ? SSTATUS_SPIE : 0) |
      (st[S.PRIV] !== 0 ? SSTATUS_SPP : 0);
    st[S.PRIV] = 1;
    st[S.PC] = st[S.STVEC]! & ~3;
    // A trap breaks any LR/SC sequence in progress (as a context switch would).
    st[S.RESERVATION_VALID] = 0;
  }

  // ---- the interpreter (the execution engine behind run()) -----------------------------------

  /**
   * Retires at most `limit` instructions. Returns an ExitReason, or CONTINUE. On return state PC is
   * the next instruction (the faulting one for FAULT, the ebreak for EBREAK), this.retired says how
   * many instructions retired and INSTRET has been advanced by that many.
   */
  private exec(limit: number): number {
    const x = this.state;
    const tlb = this.tlb;
    // The TLB's arrays (read, write and fetch entries at READ / WRITE / FETCH offsets).
    const tag = tlb.tag;
    const off = tlb.off;
    const u8 = tlb.u8;
    const u16 = tlb.u16;
    const i32 = tlb.i32;

    let pc = x[S.PC]! | 0;
    let left = limit | 0; // an int32 local: V8 keeps it untagged in a register
    let exit = CONTINUE;
    // The current fetch page: while pc >>> 12 === fPage, the decoded word of the instruction at pc
    // is fDec[(pc & 0xfff) >> 1] (0 until first decoded).
    let fPage = -1;
    let fDec: Int32Array = EMPTY_I32;

    if ((pc & 1) !== 0) {
      left = 0;
      exit = this.fault(Cause.MISALIGNED_FETCH, pc);
    }

    loop: while (left > 0) {
      // ---- fetch ----
      if (pc >>> 12 !== fPage) {
        const gfn = pc >>> 12;
        let ti = (gfn & TLB_MASK) | FETCH;
        if (tag[ti] !== gfn) {
          ti = tlb.fillFetch(gfn);
          if (ti < 0) {
            exit = this.fault(Cause.FETCH_ACCESS, pc);
            break;
          }
        }
        fPage = gfn;
        fDec = tlb.dec[ti]!;
      }
      let d = fDec[(pc & 0xfff) >> 1]!;
      if (d === 0) {
        d = this.decodeAt(pc, fDec);
        if (d === 0) {
          exit = ExitReason.FAULT; // the second half of a page-straddling instruction is not executable
          break;
        }
      }
      let npc = (pc + 4 - ((d >> 5) & 2)) | 0; // OP_COMPRESSED (bit 6) -> length 2

      // ---- execute ----
      // Case labels are the Op ids of predecode.ts written as literals: V8 builds a jump table
      // only for literal labels. Every op has semantic tests, so a mismatch cannot go unnoticed.
      const rd = (d >> 7) & 31;
      switch (d & 63) {
        case 20: // addi
          if (rd !== 0) x[rd] = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          break;
        case 2: // lui
          if (rd !== 0) x[rd] = d & ~0xfff;
          break;
        case 3: // auipc
          if (rd !== 0) x[rd] = (pc + (d & ~0xfff)) | 0;
          break;
        case 4: {
          // jal: imm[20|10:1|11|19:12] = inst[31|30:21|20|19:12]
          if (rd !== 0) x[rd] = npc;
          npc = (pc + (((d >> 11) & ~0xfffff) | (d & 0xff000) | ((d >> 9) & 0x800) | ((d >> 20) & 0x7fe))) | 0;
          break;
        }
        case 5: {
          // jalr: the target is computed before rd is written (rd may be rs1)
          const target = (x[(d >> 15) & 31]! + (d >> 20)) & ~1;
          if (rd !== 0) x[rd] = npc;
          npc = target;
          break;
        }
        // Branches: imm[12|10:5|4:1|11] = inst[31|30:25|11:8|7]
        case 6: // beq
          if (x[(d >> 15) & 31] === x[(d >> 20) & 31])
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        case 7: // bne
          if (x[(d >> 15) & 31] !== x[(d >> 20) & 31])
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        case 8: // blt
          if (x[(d >> 15) & 31]! < x[(d >> 20) & 31]!)
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        case 9: // bge
          if (x[(d >> 15) & 31]! >= x[(d >> 20) & 31]!)
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        case 10: // bltu
          if (x[(d >> 15) & 31]! >>> 0 < x[(d >> 20) & 31]! >>> 0)
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        case 11: // bgeu
          if (x[(d >> 15) & 31]! >>> 0 >= x[(d >> 20) & 31]! >>> 0)
            npc = (pc + (((d >> 19) & ~0xfff) | ((d << 4) & 0x800) | ((d >> 20) & 0x7e0) | ((d >> 7) & 0x1e))) | 0;
          break;
        // Loads and stores: the inline code is the TLB hit of an aligned access; everything else
        // (misalignment, miss, MMIO, no right, code frames) is in loadSlow / storeSlow.
        case 12: {
          // lb
          const addr = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | READ;
          if (tag[ti] === addr >>> 12) {
            if (rd !== 0) x[rd] = (u8[ti]![off[ti]! + (addr & 0xfff)]! << 24) >> 24;
          } else {
            const r = this.loadSlow(addr, 12, rd);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 13: {
          // lh
          const addr = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | READ;
          if (tag[ti] === addr >>> 12 && (addr & 1) === 0) {
            if (rd !== 0) x[rd] = (u16[ti]![(off[ti]! + (addr & 0xfff)) >> 1]! << 16) >> 16;
          } else {
            const r = this.loadSlow(addr, 13, rd);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 14: {
          // lw
          const addr = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | READ;
          if (tag[ti] === addr >>> 12 && (addr & 3) === 0) {
            if (rd !== 0) x[rd] = i32[ti]![(off[ti]! + (addr & 0xfff)) >> 2]!;
          } else {
            const r = this.loadSlow(addr, 14, rd);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 15: {
          // lbu
          const addr = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | READ;
          if (tag[ti] === addr >>> 12) {
            if (rd !== 0) x[rd] = u8[ti]![off[ti]! + (addr & 0xfff)]!;
          } else {
            const r = this.loadSlow(addr, 15, rd);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 16: {
          // lhu
          const addr = (x[(d >> 15) & 31]! + (d >> 20)) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | READ;
          if (tag[ti] === addr >>> 12 && (addr & 1) === 0) {
            if (rd !== 0) x[rd] = u16[ti]![(off[ti]! + (addr & 0xfff)) >> 1]!;
          } else {
            const r = this.loadSlow(addr, 16, rd);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        // S-type address: imm[11:5|4:0] = inst[31:25|11:7]
        case 17: {
          // sb
          const addr = (x[(d >> 15) & 31]! + (((d >> 20) & ~31) | ((d >> 7) & 31))) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | WRITE;
          if (tag[ti] === addr >>> 12) u8[ti]![off[ti]! + (addr & 0xfff)] = x[(d >> 20) & 31]!;
          else {
            const r = this.storeSlow(addr, 0, x[(d >> 20) & 31]!);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 18: {
          // sh
          const addr = (x[(d >> 15) & 31]! + (((d >> 20) & ~31) | ((d >> 7) & 31))) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | WRITE;
          if (tag[ti] === addr >>> 12 && (addr & 1) === 0)
            u16[ti]![(off[ti]! + (addr & 0xfff)) >> 1] = x[(d >> 20) & 31]!;
          else {
            const r = this.storeSlow(addr, 1, x[(d >> 20) & 31]!);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 19: {
          // sw
          const addr = (x[(d >> 15) & 31]! + (((d >> 20) & ~31) | ((d >> 7) & 31))) | 0;
          const ti = ((addr >>> 12) & TLB_MASK) | WRITE;
          if (tag[ti] === addr >>> 12 && (addr & 3) === 0)
            i32[ti]![(off[ti]! + (addr & 0xfff)) >> 2] = x[(d >> 20) & 31]!;
          else {
            const r = this.storeSlow(addr, 2, x[(d >> 20) & 31]!);
            if (r !== NEXT) {
              exit = r;
              if (r === ExitReason.MMIO) {
                x[S.MMIO_PC] = pc;
                pc = npc;
                left--;
              }
              break loop;
            }
          }
          break;
        }
        case 21: // slti
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! < d >> 20 ? 1 : 0;
          break;
        case 22: // sltiu
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! >>> 0 < (d >> 20) >>> 0 ? 1 : 0;
          break;
        case 23: // xori
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! ^ (d >> 20);
          break;
        case 24: // ori
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! | (d >> 20);
          break;
        case 25: // andi
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! & (d >> 20);
          break;
        case 26: // slli
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! << ((d >> 20) & 31);
          break;
        case 27: // srli
          if (rd !== 0) x[rd] = (x[(d >> 15) & 31]! >>> ((d >> 20) & 31)) | 0;
          break;
        case 28: // srai
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! >> ((d >> 20) & 31);
          break;
        case 29: // add
          if (rd !== 0) x[rd] = (x[(d >> 15) & 31]! + x[(d >> 20) & 31]!) | 0;
          break;
        case 30: // sub
          if (rd !== 0) x[rd] = (x[(d >> 15) & 31]! - x[(d >> 20) & 31]!) | 0;
          break;
        case 31: // sll
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! << (x[(d >> 20) & 31]! & 31);
          break;
        case 32: // slt
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! < x[(d >> 20) & 31]! ? 1 : 0;
          break;
        case 33: // sltu
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! >>> 0 < x[(d >> 20) & 31]! >>> 0 ? 1 : 0;
          break;
        case 34: // xor
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! ^ x[(d >> 20) & 31]!;
          break;
        case 35: // srl
          if (rd !== 0) x[rd] = (x[(d >> 15) & 31]! >>> (x[(d >> 20) & 31]! & 31)) | 0;
          break;
        case 36: // sra
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! >> (x[(d >> 20) & 31]! & 31);
          break;
        case 37: // or
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! | x[(d >> 20) & 31]!;
          break;
        case 38: // and
          if (rd !== 0) x[rd] = x[(d >> 15) & 31]! & x[(d >> 20) & 31]!;
          break;
        case 39: // mul
          if (rd !== 0) x[rd] = Math.imul(x[(d >> 15) & 31]!, x[(d >> 20) & 31]!);
          break;
        case 40: {
          // mulh: signed x signed; the unsigned high word corrected for negative operands
          const a = x[(d >> 15) & 31]!;
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = (mulhu(a >>> 0, b >>> 0) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
          break;
        }
        case 41: {
          // mulhsu: signed x unsigned
          const a = x[(d >> 15) & 31]!;
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = (mulhu(a >>> 0, b >>> 0) - (a < 0 ? b : 0)) | 0;
          break;
        }
        case 42: // mulhu
          if (rd !== 0) x[rd] = mulhu(x[(d >> 15) & 31]! >>> 0, x[(d >> 20) & 31]! >>> 0);
          break;
        case 43: {
          // div: x/0 = -1, INT_MIN/-1 = INT_MIN (no trap)
          const a = x[(d >> 15) & 31]!;
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = b === 0 ? -1 : a === INT_MIN && b === -1 ? INT_MIN : (a / b) | 0;
          break;
        }
        case 44: {
          // divu
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = b === 0 ? -1 : ((x[(d >> 15) & 31]! >>> 0) / (b >>> 0)) | 0;
          break;
        }
        case 45: {
          // rem: x%0 = x, INT_MIN%-1 = 0
          const a = x[(d >> 15) & 31]!;
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = b === 0 ? a : a === INT_MIN && b === -1 ? 0 : (a % b) | 0;
          break;
        }
        case 46: {
          // remu
          const a = x[(d >> 15) & 31]!;
          const b = x[(d >> 20) & 31]!;
          if (rd !== 0) x[rd] = b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
          break;
        }
        case 47: // fence
          // Plain typed-array accesses are unordered across threads; a seq-cst RMW is a full barrier
          // for them (matters on weakly ordered hosts and against compiler reordering).
          Atomics.add(this.fenceCell, 0, 0);
          break;
        case 48: // fence.i: drop decoded code, then restart the slice (fDec is stale)
          tlb.flushCode();
          pc = npc;
          left--;
          break loop;
        case 49: {
          // AMO (A extension)
          const r = this.amo((d & ~0x7f) | 0x2f);
          if (r !== NEXT) {
            exit = r;
            break loop;
          }
          break;
        }
        case 50: {
          // SYSTEM
          const r = this.system((d & ~0x7f) | 0x73, pc, npc, limit - left);
          if (r !== NEXT) {
            exit = r;
            if (r !== ExitReason.FAULT) {
              pc = this.nextPc;
              left--;
            }
            break loop;
          }
          break;
        }
        default: // 1: illegal
          exit = this.fault(Cause.ILLEGAL_INSTRUCTION, this.rawAt(pc));
          break loop;
      }
      pc = npc;
      left--;
    }

    x[S.PC] = pc;
    const done = limit - left;
    this.retired = done;
    const lo = (x[S.INSTRET_LO]! >>> 0) + done;
    x[S.INSTRET_LO] = lo | 0;
    if (lo >= TWO32) x[S.INSTRET_HI] = (x[S.INSTRET_HI]! + 1) | 0;
    return exit;
  }

  // ---- slow paths ----------------------------------------------------------------------------

  /**
   * Decodes the instruction at pc (on the current fetch page, whose slots are `dec`) and caches the
   * decoded word, except for a 32-bit instruction straddling into the next page (its second half
   * depends on that page's mapping). Returns 0 after recording a FETCH_ACCESS fault for it.
   */
  private decodeAt(pc: number, dec: Int32Array): number {
    const lo = this.fetchParcel(pc);
    const slot = (pc & 0xfff) >> 1;
    if ((lo & 3) !== 3) {
      const d = this.cdec[lo]!;
      dec[slot] = d;
      return d;
    }
    const hi = this.fetchParcel((pc + 2) | 0);
    if (hi < 0) {
      this.fault(Cause.FETCH_ACCESS, (pc + 2) | 0);
      return 0;
    }
    const d = predecode(lo | (hi << 16));
    if (slot !== SLOTS_PER_FRAME - 1) dec[slot] = d;
    return d;
  }

  /** The raw instruction bits at pc (for an illegal instruction's tval). */
  private rawAt(pc: number): number {
    const lo = this.fetchParcel(pc);
    if ((lo & 3) !== 3) return lo;
    return lo | (this.fetchParcel((pc + 2) | 0) << 16);
  }

  private fault(cause: number, tval: number): number {
    this.state[S.EXIT_CAUSE] = cause;
    this.state[S.EXIT_TVAL] = tval;
    return ExitReason.FAULT;
  }

  private mmio(addr: number, size: number, write: number, value: number, rd: number, signed: number): number {
    const st = this.state;
    st[S.MMIO_ADDR] = addr;
    st[S.MMIO_SIZE] = size;
    st[S.MMIO_WRITE] = write;
    st[S.MMIO_VALUE] = value;
    st[S.MMIO_RD] = rd;
    st[S.MMIO_SIGNED] = signed;
    return ExitReason.MMIO;
  }

  /**
   * A load the inline path did not take (op: Op.LB..Op.LHU). Checks alignment, then translation;
   * loads the value into rd. Returns NEXT, MMIO (the exit is recorded) or FAULT.
   */
  private loadSlow(addr: number, op: number, rd: number): number {
    if ((addr & LOAD_ALIGN[op]!) !== 0) return this.fault(Cause.MISALIGNED_LOAD, addr);
    const t = this.tlb;
    const gfn = addr >>> 12;
    const ti = (gfn & TLB_MASK) | READ;
    if (t.tag[ti] !== gfn) {
      const r = t.fillRead(gfn);
      if (r < 0) {
        if (r === TLB_NOT_RAM) return this.mmio(addr, LOAD_SIZE[op]!, 0, 0, rd, op <= Op.LW ? 1 : 0);
        return this.fault(Cause.LOAD_ACCESS, addr);
      }
    }
    const o = t.off[ti]! + (addr & 0xfff);
    let v: number;
    if (op === Op.LW) v = t.i32[ti]![o >> 2]!;
    else if (op === Op.LB) v = (t.u8[ti]![o]! << 24) >> 24;
    else if (op === Op.LBU) v = t.u8[ti]![o]!;
    else if (op === Op.LH) v = (t.u16[ti]![o >> 1]! << 16) >> 16;
    else v = t.u16[ti]![o >> 1]!;
    if (rd !== 0) this.state[rd] = v;
    return NEXT;
  }

  /**
   * A store the inline path did not take (size = log2 bytes). Checks alignment, fills the entry,
   * stores, and for a frame with decoded code zeroes the decode slots the bytes overlap (including
   * the slot before, where a 32-bit instruction may start). Returns NEXT, MMIO or FAULT.
   */
  private storeSlow(addr: number, size: number, v: number): number {
    if ((addr & ((1 << size) - 1)) !== 0) return this.fault(Cause.MISALIGNED_STORE, addr);
    const t = this.tlb;
    const gfn = addr >>> 12;
    const ti = (gfn & TLB_MASK) | WRITE;
    if (t.tag[ti] !== (gfn | CODE_TAG)) {
      const r = t.fillWrite(gfn);
      if (r < 0) {
        if (r === TLB_NOT_RAM)
          return this.mmio(addr, 1 << size, 1, size === 2 ? v : v & ((1 << (8 << size)) - 1), 0, 0);
        return this.fault(Cause.STORE_ACCESS, addr);
      }
    }
    const off = t.off[ti]! + (addr & 0xfff);
    if (size === 2) t.i32[ti]![off >> 2] = v;
    else if (size === 0) t.u8[ti]![off] = v;
    else t.u16[ti]![off >> 1] = v;
    if (t.tag[ti] !== gfn) invalidateSlots(t.dec[ti]!, addr, 1 << size);
    return NEXT;
  }

  /** The 16-bit parcel at guest-physical `addr` through the fetch TLB, or -1 if not executable. */
  private fetchParcel(addr: number): number {
    const t = this.tlb;
    const gfn = addr >>> 12;
    let ti = (gfn & TLB_MASK) | FETCH;
    if (t.tag[ti] !== gfn) {
      ti = t.fillFetch(gfn);
      if (ti < 0) return -1;
    }
    return t.u16[ti]![(t.off[ti]! + (addr & 0xfff)) >> 1]!;
  }

  /** Set by amoWord(): the chunk view holding the word amoWord() returned the index of. */
  private amoView: Int32Array = EMPTY_I32;

  /**
   * Translates the aligned word at `addr` for an atomic access (R, plus W unless `readOnly`) and
   * returns its index in this.amoView, or -1 if it is not RAM with those rights (no atomics over
   * MMIO). A write to a frame with decoded code invalidates the slots it overlaps.
   */
  private amoWord(addr: number, readOnly: boolean): number {
    const t = this.tlb;
    const gfn = addr >>> 12;
    let ti = (gfn & TLB_MASK) | READ;
    if (t.tag[ti] !== gfn && t.fillRead(gfn) < 0) return -1;
    if (!readOnly) {
      ti = (gfn & TLB_MASK) | WRITE;
      if (t.tag[ti] !== gfn && t.tag[ti] !== (gfn | CODE_TAG) && t.fillWrite(gfn) < 0) return -1;
      if (t.tag[ti] !== gfn) invalidateSlots(t.dec[ti]!, addr, 4);
    }
    this.amoView = t.i32[ti]!;
    return (t.off[ti]! + (addr & 0xfff)) >> 2;
  }

  /**
   * lr.w / sc.w / amo*.w. All accesses go through Atomics on the chunk's Int32Array, so they are
   * atomic against other vCPU threads sharing the memory (aq/rl are subsumed: Atomics are seq-cst).
   *
   * LR/SC is emulated by value (as QEMU does): lr.w records address and value; sc.w succeeds only if
   * the reservation is valid for that address and Atomics.compareExchange still finds the value lr.w
   * saw. A store by another hart of a different value makes it fail; an ABA store of the same value
   * does not (allowed: the guest cannot tell the difference for the word itself). Any sc clears the
   * reservation; so does a trap.
   */
  private amo(inst: number): number {
    const x = this.state;
    const rd = (inst >> 7) & 31;
    const f5 = inst >>> 27;
    if (((inst >> 12) & 7) !== 2) return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
    const addr = x[(inst >> 15) & 31]!;
    const v = x[(inst >> 20) & 31]!;
    if (f5 === 0x02) {
      // lr.w
      if (((inst >> 20) & 31) !== 0) return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
      if ((addr & 3) !== 0) return this.fault(Cause.MISALIGNED_LOAD, addr);
      const idx = this.amoWord(addr, true);
      if (idx < 0) return this.fault(Cause.LOAD_ACCESS, addr);
      const val = Atomics.load(this.amoView, idx);
      x[S.RESERVATION_ADDR] = addr;
      x[S.RESERVATION_VALUE] = val;
      x[S.RESERVATION_VALID] = 1;
      if (rd !== 0) x[rd] = val;
      return NEXT;
    }
    // Every other funct5 that exists; the rest are illegal (checked before any access).
    if (((0x1111_111b >>> f5) & 1) === 0) return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
    if ((addr & 3) !== 0) return this.fault(Cause.MISALIGNED_STORE, addr);
    const idx = this.amoWord(addr, false);
    if (idx < 0) return this.fault(Cause.STORE_ACCESS, addr);
    const m = this.amoView;
    let old: number;
    switch (f5) {
      case 0x03: {
        // sc.w
        const ok =
          x[S.RESERVATION_VALID] !== 0 &&
          x[S.RESERVATION_ADDR] === addr &&
          Atomics.compareExchange(m, idx, x[S.RESERVATION_VALUE]!, v) === x[S.RESERVATION_VALUE];
        x[S.RESERVATION_VALID] = 0;
        old = ok ? 0 : 1;
        break;
      }
      case 0x01:
        old = Atomics.exchange(m, idx, v);
        break;
      case 0x00:
        old = Atomics.add(m, idx, v);
        break;
      case 0x04:
        old = Atomics.xor(m, idx, v);
        break;
      case 0x0c:
        old = Atomics.and(m, idx, v);
        break;
      case 0x08:
        old = Atomics.or(m, idx, v);
        break;
      default: {
        // amomin/amomax/amominu/amomaxu: compare-and-swap until no other hart intervened.
        for (;;) {
          old = Atomics.load(m, idx);
          let nv: number;
          if (f5 === 0x10) nv = Math.min(old, v);
          else if (f5 === 0x14) nv = Math.max(old, v);
          else if (f5 === 0x18) nv = old >>> 0 < v >>> 0 ? old : v;
          else nv = old >>> 0 > v >>> 0 ? old : v;
          if (Atomics.compareExchange(m, idx, old, nv) === old) break;
        }
      }
    }
    if (rd !== 0) x[rd] = old;
    return NEXT;
  }

  /**
   * SYSTEM: ecall, ebreak, sret, wfi and Zicsr. Returns NEXT, FAULT, or another ExitReason /
   * CONTINUE with the next pc in this.nextPc (the instruction retired).
   */
  private system(inst: number, pc: number, npc: number, retired: number): number {
    const st = this.state;
    const f3 = (inst >> 12) & 7;
    const priv = st[S.PRIV]!;
    if (f3 === 0) {
      switch (inst) {
        case 0x00000073: // ecall: the host services it (hypercall / syscall) and writes a0
          this.nextPc = npc;
          return ExitReason.ECALL;
        case 0x00100073: // ebreak: pc stays at the ebreak
          this.nextPc = pc;
          return ExitReason.EBREAK;
        case 0x10200073: {
          // sret
          if (priv === 0) break;
          const s = st[S.SSTATUS]!;
          st[S.PRIV] = s & SSTATUS_SPP ? 1 : 0;
          st[S.SSTATUS] = (s & ~(SSTATUS_SIE | SSTATUS_SPP)) | (s & SSTATUS_SPIE ? SSTATUS_SIE : 0) | SSTATUS_SPIE;
          this.nextPc = st[S.SEPC]! & ~1;
          return CONTINUE; // an interrupt may have become deliverable
        }
        case 0x10500073: // wfi: a nop if an interrupt is pending and enabled in sie
          if (priv === 0) break;
          if ((this.pendingInterrupts() & st[S.SIE]!) !== 0) return NEXT;
          this.nextPc = npc;
          return ExitReason.WFI;
      }
      return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
    }
    if (f3 === 4) return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
    // Zicsr. csrrw always writes; csrrs/csrrc write unless the source is x0 / uimm 0.
    const csr = inst >>> 20;
    const src = (inst >> 15) & 31;
    const rd = (inst >> 7) & 31;
    const op = f3 & 3; // 1 = write, 2 = set, 3 = clear
    const operand = f3 & 4 ? src : st[src]!;
    const writes = op === 1 || src !== 0;
    if (!csrAccessible(csr, priv, writes)) return this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
    // csrrw with rd = x0 does not read (reads have no side effects here, so it only saves work).
    // sip reads through pendingInterrupts(): SEIP also reflects the upcall line.
    const old =
      op !== 1 || rd !== 0 ? (csr === Csr.SIP ? this.pendingInterrupts() : csrRead(st, this.time, csr, retired)) : 0;
    let poll = false;
    if (writes) poll = csrWrite(st, csr, op === 1 ? operand : op === 2 ? old | operand : old & ~operand);
    if (rd !== 0) st[rd] = old;
    if (!poll) return NEXT;
    this.nextPc = npc;
    return CONTINUE;
  }
}
