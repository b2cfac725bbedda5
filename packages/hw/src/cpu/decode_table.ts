/**
 * The instruction set the hart implements, as data: every RV32IMAC + Zicsr + Zifencei instruction
 * (plus the privileged sret/wfi) with its mask/match encoding, and the compressed forms with their
 * legality constraints and the base instruction each expands to.
 *
 * The tables are the specification the tests check the decoders against. The interpreter (cpu.ts)
 * and `classify` below decode with switches instead, written independently of these tables, so a
 * disagreement shows up as a failing test rather than a shared mistake.
 *
 * Encodings follow the riscv-opcodes conventions (mask = the fixed bits, match = their values).
 */

export type InstFormat = "R" | "I" | "S" | "B" | "U" | "J" | "SHIFT" | "CSR" | "CSRI" | "AMO" | "FENCE" | "SYS";
export type InstExt = "I" | "M" | "A" | "Zicsr" | "Zifencei" | "Priv";

export interface InstSpec {
  readonly name: string;
  readonly mask: number;
  readonly match: number;
  readonly format: InstFormat;
  readonly ext: InstExt;
}

function i(name: string, mask: number, match: number, format: InstFormat, ext: InstExt): InstSpec {
  return { name, mask: mask >>> 0, match: match >>> 0, format, ext };
}

const OPC = 0x7f;
const F3 = 0x707f;
const F7 = 0xfe00707f;
const ALL = 0xffffffff;
const AMO = 0xf800707f;

/** Every legal 32-bit instruction. A word matching none of these is illegal. */
export const INSTRUCTIONS: readonly InstSpec[] = [
  i("lui", OPC, 0x37, "U", "I"),
  i("auipc", OPC, 0x17, "U", "I"),
  i("jal", OPC, 0x6f, "J", "I"),
  i("jalr", F3, 0x67, "I", "I"),
  i("beq", F3, 0x0063, "B", "I"),
  i("bne", F3, 0x1063, "B", "I"),
  i("blt", F3, 0x4063, "B", "I"),
  i("bge", F3, 0x5063, "B", "I"),
  i("bltu", F3, 0x6063, "B", "I"),
  i("bgeu", F3, 0x7063, "B", "I"),
  i("lb", F3, 0x0003, "I", "I"),
  i("lh", F3, 0x1003, "I", "I"),
  i("lw", F3, 0x2003, "I", "I"),
  i("lbu", F3, 0x4003, "I", "I"),
  i("lhu", F3, 0x5003, "I", "I"),
  i("sb", F3, 0x0023, "S", "I"),
  i("sh", F3, 0x1023, "S", "I"),
  i("sw", F3, 0x2023, "S", "I"),
  i("addi", F3, 0x0013, "I", "I"),
  i("slti", F3, 0x2013, "I", "I"),
  i("sltiu", F3, 0x3013, "I", "I"),
  i("xori", F3, 0x4013, "I", "I"),
  i("ori", F3, 0x6013, "I", "I"),
  i("andi", F3, 0x7013, "I", "I"),
  i("slli", F7, 0x1013, "SHIFT", "I"),
  i("srli", F7, 0x5013, "SHIFT", "I"),
  i("srai", F7, 0x40005013, "SHIFT", "I"),
  i("add", F7, 0x0033, "R", "I"),
  i("sub", F7, 0x40000033, "R", "I"),
  i("sll", F7, 0x1033, "R", "I"),
  i("slt", F7, 0x2033, "R", "I"),
  i("sltu", F7, 0x3033, "R", "I"),
  i("xor", F7, 0x4033, "R", "I"),
  i("srl", F7, 0x5033, "R", "I"),
  i("sra", F7, 0x40005033, "R", "I"),
  i("or", F7, 0x6033, "R", "I"),
  i("and", F7, 0x7033, "R", "I"),
  // fm/pred/succ/rs1/rd are ignored (FENCE.TSO and PAUSE are encodings of fence).
  i("fence", F3, 0x000f, "FENCE", "I"),
  i("ecall", ALL, 0x00000073, "SYS", "I"),
  i("ebreak", ALL, 0x00100073, "SYS", "I"),
  i("fence.i", F3, 0x100f, "FENCE", "Zifencei"),
  i("csrrw", F3, 0x1073, "CSR", "Zicsr"),
  i("csrrs", F3, 0x2073, "CSR", "Zicsr"),
  i("csrrc", F3, 0x3073, "CSR", "Zicsr"),
  i("csrrwi", F3, 0x5073, "CSRI", "Zicsr"),
  i("csrrsi", F3, 0x6073, "CSRI", "Zicsr"),
  i("csrrci", F3, 0x7073, "CSRI", "Zicsr"),
  i("mul", F7, 0x02000033, "R", "M"),
  i("mulh", F7, 0x02001033, "R", "M"),
  i("mulhsu", F7, 0x02002033, "R", "M"),
  i("mulhu", F7, 0x02003033, "R", "M"),
  i("div", F7, 0x02004033, "R", "M"),
  i("divu", F7, 0x02005033, "R", "M"),
  i("rem", F7, 0x02006033, "R", "M"),
  i("remu", F7, 0x02007033, "R", "M"),
  i("lr.w", 0xf9f0707f, 0x1000202f, "AMO", "A"),
  i("sc.w", AMO, 0x1800202f, "AMO", "A"),
  i("amoswap.w", AMO, 0x0800202f, "AMO", "A"),
  i("amoadd.w", AMO, 0x0000202f, "AMO", "A"),
  i("amoxor.w", AMO, 0x2000202f, "AMO", "A"),
  i("amoand.w", AMO, 0x6000202f, "AMO", "A"),
  i("amoor.w", AMO, 0x4000202f, "AMO", "A"),
  i("amomin.w", AMO, 0x8000202f, "AMO", "A"),
  i("amomax.w", AMO, 0xa000202f, "AMO", "A"),
  i("amominu.w", AMO, 0xc000202f, "AMO", "A"),
  i("amomaxu.w", AMO, 0xe000202f, "AMO", "A"),
  i("sret", ALL, 0x10200073, "SYS", "Priv"),
  i("wfi", ALL, 0x10500073, "SYS", "Priv"),
];

export interface CompressedSpec {
  readonly name: string;
  readonly mask: number;
  readonly match: number;
  /** The 32-bit instruction (an INSTRUCTIONS name) this form expands to. */
  readonly base: string;
  /** Each of these bit groups must not be all zero (e.g. "rd != 0", "nzimm != 0"). */
  readonly nonzero: readonly number[];
  /** The parcel must not match any of these [mask, match] pairs (carve-outs owned by another form). */
  readonly except: ReadonlyArray<readonly [number, number]>;
}

function c(
  name: string,
  mask: number,
  match: number,
  base: string,
  nonzero: readonly number[] = [],
  except: ReadonlyArray<readonly [number, number]> = [],
): CompressedSpec {
  return { name, mask, match, base, nonzero, except };
}

/** Bit groups of a compressed parcel used in constraints. */
const C_RD = 0x0f80; // bits 11:7 (rd / rs1)
const C_RS2 = 0x007c; // bits 6:2
const C_IMM6 = 0x107c; // bit 12 and bits 6:2

/**
 * Every legal RV32C parcel (F/D forms are illegal: the hart has no FPU). HINT encodings (e.g. c.li
 * with rd=x0, c.slli with shamt=0) are legal and expand to their no-op base instruction.
 * A parcel (low bits != 11) matching none of these is illegal.
 */
export const COMPRESSED: readonly CompressedSpec[] = [
  // Quadrant 0
  c("c.addi4spn", 0xe003, 0x0000, "addi", [0x1fe0]),
  c("c.lw", 0xe003, 0x4000, "lw"),
  c("c.sw", 0xe003, 0xc000, "sw"),
  // Quadrant 1
  c("c.nop", 0xffff, 0x0001, "addi"),
  c("c.addi", 0xe003, 0x0001, "addi", [], [[0xffff, 0x0001]]),
  c("c.jal", 0xe003, 0x2001, "jal"),
  c("c.li", 0xe003, 0x4001, "addi"),
  c("c.addi16sp", 0xef83, 0x6101, "addi", [C_IMM6]),
  c("c.lui", 0xe003, 0x6001, "lui", [C_IMM6], [[0xef83, 0x6101]]),
  c("c.srli", 0xfc03, 0x8001, "srli"),
  c("c.srai", 0xfc03, 0x8401, "srai"),
  c("c.andi", 0xec03, 0x8801, "andi"),
  c("c.sub", 0xfc63, 0x8c01, "sub"),
  c("c.xor", 0xfc63, 0x8c21, "xor"),
  c("c.or", 0xfc63, 0x8c41, "or"),
  c("c.and", 0xfc63, 0x8c61, "and"),
  c("c.j", 0xe003, 0xa001, "jal"),
  c("c.beqz", 0xe003, 0xc001, "beq"),
  c("c.bnez", 0xe003, 0xe001, "bne"),
  // Quadrant 2
  c("c.slli", 0xf003, 0x0002, "slli"),
  c("c.lwsp", 0xe003, 0x4002, "lw", [C_RD]),
  c("c.jr", 0xf07f, 0x8002, "jalr", [C_RD]),
  c("c.mv", 0xf003, 0x8002, "add", [C_RS2]),
  c("c.ebreak", 0xffff, 0x9002, "ebreak"),
  c("c.jalr", 0xf07f, 0x9002, "jalr", [C_RD]),
  c("c.add", 0xf003, 0x9002, "add", [C_RS2]),
  c("c.swsp", 0xe003, 0xc002, "sw"),
];

/** Whether a 16-bit parcel satisfies a compressed entry's encoding and constraints. */
export function compressedMatches(spec: CompressedSpec, parcel: number): boolean {
  if ((parcel & spec.mask) !== spec.match) return false;
  for (const m of spec.nonzero) if ((parcel & m) === 0) return false;
  for (const [m, v] of spec.except) if ((parcel & m) === v) return false;
  return true;
}

/** The table's view of a 32-bit word: the matching entry's name, or "illegal". */
export function lookupInstruction(inst: number): string {
  const w = inst >>> 0;
  for (const s of INSTRUCTIONS) if ((w & s.mask) >>> 0 === s.match) return s.name;
  return "illegal";
}

/**
 * The switch decoder's view of a 32-bit word: an instruction name or "illegal". It follows the
 * interpreter's switch structure (opcode, then funct3, then funct7/rs2/imm) and does not consult
 * the tables above; tests compare the two. Also handy for disassembly in traces.
 */
export function classify(inst: number): string {
  const f3 = (inst >>> 12) & 7;
  const f7 = inst >>> 25;
  switch (inst & 0x7f) {
    case 0x37:
      return "lui";
    case 0x17:
      return "auipc";
    case 0x6f:
      return "jal";
    case 0x67:
      return f3 === 0 ? "jalr" : "illegal";
    case 0x63:
      return ["beq", "bne", "illegal", "illegal", "blt", "bge", "bltu", "bgeu"][f3]!;
    case 0x03:
      return ["lb", "lh", "lw", "illegal", "lbu", "lhu", "illegal", "illegal"][f3]!;
    case 0x23:
      return ["sb", "sh", "sw", "illegal", "illegal", "illegal", "illegal", "illegal"][f3]!;
    case 0x13:
      switch (f3) {
        case 1:
          return f7 === 0 ? "slli" : "illegal";
        case 5:
          return f7 === 0 ? "srli" : f7 === 0x20 ? "srai" : "illegal";
        default:
          return ["addi", "", "slti", "sltiu", "xori", "", "ori", "andi"][f3]!;
      }
    case 0x33:
      if (f7 === 0) return ["add", "sll", "slt", "sltu", "xor", "srl", "or", "and"][f3]!;
      if (f7 === 1) return ["mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu"][f3]!;
      if (f7 === 0x20) return f3 === 0 ? "sub" : f3 === 5 ? "sra" : "illegal";
      return "illegal";
    case 0x0f:
      return f3 === 0 ? "fence" : f3 === 1 ? "fence.i" : "illegal";
    case 0x73:
      switch (f3) {
        case 0:
          switch (inst >>> 0) {
            case 0x00000073:
              return "ecall";
            case 0x00100073:
              return "ebreak";
            case 0x10200073:
              return "sret";
            case 0x10500073:
              return "wfi";
            default:
              return "illegal";
          }
        case 4:
          return "illegal";
        default:
          return ["", "csrrw", "csrrs", "csrrc", "", "csrrwi", "csrrsi", "csrrci"][f3]!;
      }
    case 0x2f: {
      if (f3 !== 2) return "illegal";
      const f5 = inst >>> 27;
      switch (f5) {
        case 0x02:
          return ((inst >>> 20) & 31) === 0 ? "lr.w" : "illegal";
        case 0x03:
          return "sc.w";
        case 0x01:
          return "amoswap.w";
        case 0x00:
          return "amoadd.w";
        case 0x04:
          return "amoxor.w";
        case 0x0c:
          return "amoand.w";
        case 0x08:
          return "amoor.w";
        case 0x10:
          return "amomin.w";
        case 0x14:
          return "amomax.w";
        case 0x18:
          return "amominu.w";
        case 0x1c:
          return "amomaxu.w";
        default:
          return "illegal";
      }
    }
    default:
      return "illegal";
  }
}
