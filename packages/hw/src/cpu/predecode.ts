/**
 * Predecoding: a 32-bit instruction becomes a "decoded word" the interpreter dispatches on with one
 * dense switch. The word keeps the instruction's bits 31..7 (register fields and immediates stay
 * where the ISA puts them, so operands are extracted exactly as from the raw instruction) and
 * replaces the opcode bits 6..0 with an operation id (bits 5..0) and a length flag (bit 6 set:
 * the instruction is a 16-bit compressed one). 0 is never a decoded word (every id is >= 1), so a
 * zeroed cache slot means "not decoded yet".
 *
 * AMO and SYSTEM are decoded only to their major opcode: their slow paths (cpu.ts) check the rest.
 */
import { compressedTable } from "./compressed.js";

/** Operation ids. cpu.ts's switch uses these values as literal case labels; keep them in sync. */
export const Op = {
  ILLEGAL: 1,
  LUI: 2,
  AUIPC: 3,
  JAL: 4,
  JALR: 5,
  BEQ: 6,
  BNE: 7,
  BLT: 8,
  BGE: 9,
  BLTU: 10,
  BGEU: 11,
  LB: 12,
  LH: 13,
  LW: 14,
  LBU: 15,
  LHU: 16,
  SB: 17,
  SH: 18,
  SW: 19,
  ADDI: 20,
  SLTI: 21,
  SLTIU: 22,
  XORI: 23,
  ORI: 24,
  ANDI: 25,
  SLLI: 26,
  SRLI: 27,
  SRAI: 28,
  ADD: 29,
  SUB: 30,
  SLL: 31,
  SLT: 32,
  SLTU: 33,
  XOR: 34,
  SRL: 35,
  SRA: 36,
  OR: 37,
  AND: 38,
  MUL: 39,
  MULH: 40,
  MULHSU: 41,
  MULHU: 42,
  DIV: 43,
  DIVU: 44,
  REM: 45,
  REMU: 46,
  FENCE: 47,
  FENCE_I: 48,
  AMO: 49,
  SYSTEM: 50,
} as const;

export const OP_MASK = 63;
/** Decoded-word flag: a 16-bit instruction (the next pc is pc + 2). */
export const OP_COMPRESSED = 64;

const BRANCH = [Op.BEQ, Op.BNE, 0, 0, Op.BLT, Op.BGE, Op.BLTU, Op.BGEU];
const LOAD = [Op.LB, Op.LH, Op.LW, 0, Op.LBU, Op.LHU, 0, 0];
const STORE = [Op.SB, Op.SH, Op.SW, 0, 0, 0, 0, 0];
const OPIMM = [Op.ADDI, Op.SLLI, Op.SLTI, Op.SLTIU, Op.XORI, Op.SRLI, Op.ORI, Op.ANDI];
const OP = [Op.ADD, Op.SLL, Op.SLT, Op.SLTU, Op.XOR, Op.SRL, Op.OR, Op.AND];
const MULDIV = [Op.MUL, Op.MULH, Op.MULHSU, Op.MULHU, Op.DIV, Op.DIVU, Op.REM, Op.REMU];

/** The operation id of a 32-bit instruction (Op.ILLEGAL if it is not one the hart implements). */
export function opOf(inst: number): number {
  const f3 = (inst >>> 12) & 7;
  const f7 = inst >>> 25;
  switch (inst & 0x7f) {
    case 0x37:
      return Op.LUI;
    case 0x17:
      return Op.AUIPC;
    case 0x6f:
      return Op.JAL;
    case 0x67:
      return f3 === 0 ? Op.JALR : Op.ILLEGAL;
    case 0x63:
      return BRANCH[f3]! || Op.ILLEGAL;
    case 0x03:
      return LOAD[f3]! || Op.ILLEGAL;
    case 0x23:
      return STORE[f3]! || Op.ILLEGAL;
    case 0x13:
      if (f3 === 1) return f7 === 0 ? Op.SLLI : Op.ILLEGAL;
      if (f3 === 5) return f7 === 0 ? Op.SRLI : f7 === 0x20 ? Op.SRAI : Op.ILLEGAL;
      return OPIMM[f3]!;
    case 0x33:
      if (f7 === 0) return OP[f3]!;
      if (f7 === 1) return MULDIV[f3]!;
      if (f7 === 0x20) return f3 === 0 ? Op.SUB : f3 === 5 ? Op.SRA : Op.ILLEGAL;
      return Op.ILLEGAL;
    case 0x0f:
      return f3 === 0 ? Op.FENCE : f3 === 1 ? Op.FENCE_I : Op.ILLEGAL;
    case 0x2f:
      return Op.AMO;
    case 0x73:
      return Op.SYSTEM;
    default:
      return Op.ILLEGAL;
  }
}

/** The decoded word of a 32-bit instruction. */
export function predecode(inst: number): number {
  return (inst & ~0x7f) | opOf(inst);
}

let ctable: Int32Array | undefined;

/**
 * Parcel -> decoded word of its expansion (with OP_COMPRESSED), or Op.ILLEGAL | OP_COMPRESSED for
 * an illegal parcel. Built once per process from the expansion table.
 */
export function compressedDecodeTable(): Int32Array {
  if (ctable === undefined) {
    const exp = compressedTable();
    const t = new Int32Array(65536);
    for (let p = 0; p < 65536; p++) {
      if ((p & 3) === 3) continue;
      const e = exp[p]!;
      t[p] = (e === 0 ? Op.ILLEGAL : predecode(e)) | OP_COMPRESSED;
    }
    ctable = t;
  }
  return ctable;
}
