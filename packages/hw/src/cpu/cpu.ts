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
 * state buffer and memory chunks resumes this vCPU. The soft TLB is per-instance derived state.
 *
 * Hot-path rules (V8): the interpreter loop allocates nothing, keeps every value an int32
 * (`|0`, `>>>0` only inside comparisons, Math.imul), reads registers straight from the state
 * Int32Array, and keeps x0 zero by never writing it (`if (rd !== 0)`).
 */

import type { MachineMemory } from "../memory/machine_memory.js";
import { compressedTable } from "./compressed.js";
import { csrAccessible, csrRead, csrWrite, SI_MASK } from "./csr.js";
import { Cause, ExitReason, SIP_SEIP, SIP_SSIP, SSTATUS_SIE, SSTATUS_SPIE, SSTATUS_SPP } from "./exit.js";
import type { P2mLookup } from "./p2m.js";
import type { TimeSource } from "./time.js";
import { TLB_MASK, TLB_NOT_RAM, Tlb } from "./tlb.js";
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

const EMPTY_U16 = new Uint16Array(new SharedArrayBuffer(2));

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

export class Cpu {
  readonly state: Int32Array;
  readonly memory: MachineMemory;
  readonly p2m: P2mLookup;
  readonly time: TimeSource;
  private readonly tlb: Tlb;
  private readonly ctab: Int32Array;
  /** The P2M generation the TLB was filled against. */
  private tlbGen: number;
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
    this.ctab = compressedTable();
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
    const st = this.state;
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

  /**
   * Delivers a trap into the guest's S-mode vector: a synchronous exception `cause` (Cause.*) with
   * stval = tval, or an interrupt when bit 31 of cause is set. sepc is the current state PC: after a
   * FAULT exit that is the faulting instruction; set PC first for anything else (e.g. after an
   * ECALL exit pc is past the ecall).
   */
  injectTrap(cause: number, tval: number): void {
    this.trap(cause | 0, tval | 0);
  }

  /** Drops every soft-TLB entry (the next run() refills from the P2M). */
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
    }
  }

  /** Takes the highest-priority pending and enabled interrupt, if any (SEI > SSI > STI). */
  private takeInterrupt(): void {
    const st = this.state;
    const pending = Atomics.load(st, S.SIP) & st[S.SIE]! & SI_MASK;
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
    const ctab = this.ctab;
    const tlb = this.tlb;
    const rTag = tlb.read.tag;
    const rOff = tlb.read.off;
    const rU8 = tlb.read.u8;
    const rU16 = tlb.read.u16;
    const rI32 = tlb.read.i32;
    const wTag = tlb.write.tag;
    const wOff = tlb.write.off;
    const wU8 = tlb.write.u8;
    const wU16 = tlb.write.u16;
    const wI32 = tlb.write.i32;
    const xTag = tlb.fetch.tag;
    const xOff = tlb.fetch.off;
    const xU16 = tlb.fetch.u16;

    let pc = x[S.PC]! | 0;
    let left = limit;
    let exit = CONTINUE;
    // The current fetch page: while pc >>> 12 === fPage, parcel k of the page is fMem[fBase + k].
    let fPage = -1;
    let fMem: Uint16Array = EMPTY_U16;
    let fBase = 0;

    if ((pc & 1) !== 0) {
      left = 0;
      exit = this.fault(Cause.MISALIGNED_FETCH, pc);
    }

    loop: while (left > 0) {
      // ---- fetch ----
      if (pc >>> 12 !== fPage) {
        const gfn = pc >>> 12;
        let ti = gfn & TLB_MASK;
        if (xTag[ti] !== gfn) {
          ti = tlb.fillFetch(gfn);
          if (ti < 0) {
            exit = this.fault(Cause.FETCH_ACCESS, pc);
            break;
          }
        }
        fPage = gfn;
        fMem = xU16[ti]!;
        fBase = xOff[ti]! >> 1;
      }
      let inst = fMem[fBase + ((pc & 0xfff) >> 1)]!;
      let npc: number;
      if ((inst & 3) === 3) {
        if ((pc & 0xfff) !== 0xffe) {
          inst |= fMem[fBase + ((pc & 0xfff) >> 1) + 1]! << 16;
        } else {
          const hi = this.fetchParcel((pc + 2) | 0);
          if (hi < 0) {
            exit = this.fault(Cause.FETCH_ACCESS, (pc + 2) | 0);
            break;
          }
          inst |= hi << 16;
        }
        npc = (pc + 4) | 0;
      } else {
        const parcel = inst;
        inst = ctab[parcel]!;
        if (inst === 0) {
          exit = this.fault(Cause.ILLEGAL_INSTRUCTION, parcel);
          break;
        }
        npc = (pc + 2) | 0;
      }

      // ---- execute ----
      const rd = (inst >> 7) & 31;
      switch (inst & 0x7f) {
        case 0x13: {
          // OP-IMM
          const a = x[(inst >> 15) & 31]!;
          let v: number;
          switch ((inst >> 12) & 7) {
            case 0:
              v = (a + (inst >> 20)) | 0;
              break;
            case 1:
              if (inst >>> 25 !== 0) {
                exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
                break loop;
              }
              v = a << ((inst >> 20) & 31);
              break;
            case 2:
              v = a < inst >> 20 ? 1 : 0;
              break;
            case 3:
              v = a >>> 0 < (inst >> 20) >>> 0 ? 1 : 0;
              break;
            case 4:
              v = a ^ (inst >> 20);
              break;
            case 5:
              if (inst >>> 25 === 0) v = (a >>> ((inst >> 20) & 31)) | 0;
              else if (inst >>> 25 === 0x20) v = a >> ((inst >> 20) & 31);
              else {
                exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
                break loop;
              }
              break;
            case 6:
              v = a | (inst >> 20);
              break;
            default:
              v = a & (inst >> 20);
          }
          if (rd !== 0) x[rd] = v;
          break;
        }
        case 0x33: {
          // OP and the M extension
          const a = x[(inst >> 15) & 31]!;
          const b = x[(inst >> 20) & 31]!;
          const f7 = inst >>> 25;
          let v: number;
          if (f7 === 0) {
            switch ((inst >> 12) & 7) {
              case 0:
                v = (a + b) | 0;
                break;
              case 1:
                v = a << (b & 31);
                break;
              case 2:
                v = a < b ? 1 : 0;
                break;
              case 3:
                v = a >>> 0 < b >>> 0 ? 1 : 0;
                break;
              case 4:
                v = a ^ b;
                break;
              case 5:
                v = (a >>> (b & 31)) | 0;
                break;
              case 6:
                v = a | b;
                break;
              default:
                v = a & b;
            }
          } else if (f7 === 1) {
            switch ((inst >> 12) & 7) {
              case 0:
                v = Math.imul(a, b);
                break;
              case 1: // mulh: signed x signed; correct the unsigned high word for negative operands
                v = (mulhu(a >>> 0, b >>> 0) - (a < 0 ? b : 0) - (b < 0 ? a : 0)) | 0;
                break;
              case 2: // mulhsu: signed x unsigned
                v = (mulhu(a >>> 0, b >>> 0) - (a < 0 ? b : 0)) | 0;
                break;
              case 3:
                v = mulhu(a >>> 0, b >>> 0);
                break;
              case 4: // div: x/0 = -1, INT_MIN/-1 = INT_MIN (no trap)
                v = b === 0 ? -1 : a === INT_MIN && b === -1 ? INT_MIN : (a / b) | 0;
                break;
              case 5:
                v = b === 0 ? -1 : ((a >>> 0) / (b >>> 0)) | 0;
                break;
              case 6: // rem: x%0 = x, INT_MIN%-1 = 0
                v = b === 0 ? a : a === INT_MIN && b === -1 ? 0 : (a % b) | 0;
                break;
              default:
                v = b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
            }
          } else if (f7 === 0x20 && ((inst >> 12) & 7) === 0) {
            v = (a - b) | 0;
          } else if (f7 === 0x20 && ((inst >> 12) & 7) === 5) {
            v = a >> (b & 31);
          } else {
            exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
            break loop;
          }
          if (rd !== 0) x[rd] = v;
          break;
        }
        case 0x03: {
          // LOAD. Checks order: illegal funct3, misalignment, then translation.
          const f3 = (inst >> 12) & 7;
          const addr = (x[(inst >> 15) & 31]! + (inst >> 20)) | 0;
          if (((0xc8 >> f3) & 1) !== 0) {
            exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
            break loop;
          }
          if ((addr & ((1 << (f3 & 3)) - 1)) !== 0) {
            exit = this.fault(Cause.MISALIGNED_LOAD, addr);
            break loop;
          }
          const gfn = addr >>> 12;
          const ti = gfn & TLB_MASK;
          if (rTag[ti] !== gfn) {
            const r = tlb.fillRead(gfn);
            if (r < 0) {
              if (r === TLB_NOT_RAM) {
                exit = this.mmio(addr, 1 << (f3 & 3), 0, 0, rd, f3 < 4 ? 1 : 0);
                pc = npc;
                left--;
              } else exit = this.fault(Cause.LOAD_ACCESS, addr);
              break loop;
            }
          }
          const off = rOff[ti]! + (addr & 0xfff);
          let v: number;
          switch (f3) {
            case 0:
              v = (rU8[ti]![off]! << 24) >> 24;
              break;
            case 1:
              v = (rU16[ti]![off >> 1]! << 16) >> 16;
              break;
            case 2:
              v = rI32[ti]![off >> 2]!;
              break;
            case 4:
              v = rU8[ti]![off]!;
              break;
            default:
              v = rU16[ti]![off >> 1]!;
          }
          if (rd !== 0) x[rd] = v;
          break;
        }
        case 0x23: {
          // STORE
          const f3 = (inst >> 12) & 7;
          const addr = (x[(inst >> 15) & 31]! + (((inst >> 20) & ~31) | ((inst >> 7) & 31))) | 0;
          if (f3 > 2) {
            exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
            break loop;
          }
          if ((addr & ((1 << f3) - 1)) !== 0) {
            exit = this.fault(Cause.MISALIGNED_STORE, addr);
            break loop;
          }
          const v = x[(inst >> 20) & 31]!;
          const gfn = addr >>> 12;
          const ti = gfn & TLB_MASK;
          if (wTag[ti] !== gfn) {
            const r = tlb.fillWrite(gfn);
            if (r < 0) {
              if (r === TLB_NOT_RAM) {
                exit = this.mmio(addr, 1 << f3, 1, f3 === 2 ? v : v & ((1 << (8 << f3)) - 1), 0, 0);
                pc = npc;
                left--;
              } else exit = this.fault(Cause.STORE_ACCESS, addr);
              break loop;
            }
          }
          const off = wOff[ti]! + (addr & 0xfff);
          if (f3 === 2) wI32[ti]![off >> 2] = v;
          else if (f3 === 0) wU8[ti]![off] = v;
          else wU16[ti]![off >> 1] = v;
          break;
        }
        case 0x63: {
          // BRANCH
          const a = x[(inst >> 15) & 31]!;
          const b = x[(inst >> 20) & 31]!;
          let taken: boolean;
          switch ((inst >> 12) & 7) {
            case 0:
              taken = a === b;
              break;
            case 1:
              taken = a !== b;
              break;
            case 4:
              taken = a < b;
              break;
            case 5:
              taken = a >= b;
              break;
            case 6:
              taken = a >>> 0 < b >>> 0;
              break;
            case 7:
              taken = a >>> 0 >= b >>> 0;
              break;
            default:
              exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
              break loop;
          }
          if (taken) {
            // imm[12|10:5|4:1|11] = inst[31|30:25|11:8|7]
            const imm = ((inst >> 19) & ~0xfff) | ((inst << 4) & 0x800) | ((inst >> 20) & 0x7e0) | ((inst >> 7) & 0x1e);
            npc = (pc + imm) | 0;
          }
          break;
        }
        case 0x37: // LUI
          if (rd !== 0) x[rd] = inst & ~0xfff;
          break;
        case 0x17: // AUIPC
          if (rd !== 0) x[rd] = (pc + (inst & ~0xfff)) | 0;
          break;
        case 0x6f: {
          // JAL: imm[20|10:1|11|19:12] = inst[31|30:21|20|19:12]
          const imm = ((inst >> 11) & ~0xfffff) | (inst & 0xff000) | ((inst >> 9) & 0x800) | ((inst >> 20) & 0x7fe);
          if (rd !== 0) x[rd] = npc;
          npc = (pc + imm) | 0;
          break;
        }
        case 0x67: {
          // JALR (target computed before rd is written: rd may be rs1)
          if (((inst >> 12) & 7) !== 0) {
            exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
            break loop;
          }
          const target = (x[(inst >> 15) & 31]! + (inst >> 20)) & ~1;
          if (rd !== 0) x[rd] = npc;
          npc = target;
          break;
        }
        case 0x0f: {
          // MISC-MEM
          const f3 = (inst >> 12) & 7;
          if (f3 === 0) {
            // fence: plain typed-array accesses are unordered across threads; a seq-cst RMW is a
            // full barrier for them (matters on weakly ordered hosts and against V8 reordering).
            Atomics.add(this.fenceCell, 0, 0);
          } else if (f3 !== 1) {
            // f3 = 1 is fence.i: instructions are fetched from memory every time (no decoded
            // cache yet), so there is nothing to invalidate.
            exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
            break loop;
          }
          break;
        }
        case 0x2f: {
          // AMO (A extension)
          const r = this.amo(inst);
          if (r !== NEXT) {
            exit = r;
            break loop;
          }
          break;
        }
        case 0x73: {
          // SYSTEM
          const r = this.system(inst, pc, npc, limit - left);
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
        default:
          exit = this.fault(Cause.ILLEGAL_INSTRUCTION, inst);
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

  /** The 16-bit parcel at guest-physical `addr` through the fetch TLB, or -1 if not executable. */
  private fetchParcel(addr: number): number {
    const t = this.tlb.fetch;
    const gfn = addr >>> 12;
    let ti = gfn & TLB_MASK;
    if (t.tag[ti] !== gfn) {
      ti = this.tlb.fillFetch(gfn);
      if (ti < 0) return -1;
    }
    return t.u16[ti]![(t.off[ti]! + (addr & 0xfff)) >> 1]!;
  }

  /** Set by amoWord(): the chunk view holding the word amoWord() returned the index of. */
  private amoView: Int32Array = new Int32Array(0);

  /**
   * Translates the aligned word at `addr` for an atomic access (R, plus W unless `readOnly`) and
   * returns its index in this.amoView, or -1 if it is not RAM with those rights (no atomics over
   * MMIO).
   */
  private amoWord(addr: number, readOnly: boolean): number {
    const gfn = addr >>> 12;
    const ti = gfn & TLB_MASK;
    const r = this.tlb.read;
    if (r.tag[ti] !== gfn && this.tlb.fillRead(gfn) < 0) return -1;
    let t = r;
    if (!readOnly) {
      t = this.tlb.write;
      if (t.tag[ti] !== gfn && this.tlb.fillWrite(gfn) < 0) return -1;
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
          if ((Atomics.load(st, S.SIP) & st[S.SIE]! & SI_MASK) !== 0) return NEXT;
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
    const old = op !== 1 || rd !== 0 ? csrRead(st, this.time, csr, retired) : 0;
    let poll = false;
    if (writes) poll = csrWrite(st, csr, op === 1 ? operand : op === 2 ? old | operand : old & ~operand);
    if (rd !== 0) st[rd] = old;
    if (!poll) return NEXT;
    this.nextPc = npc;
    return CONTINUE;
  }
}
