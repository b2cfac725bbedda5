/**
 * RV32C: every 16-bit parcel maps to the 32-bit instruction it stands for, so the interpreter
 * executes compressed code through the same switch as full-size code (link values and fall-through
 * use the instruction length, 2). The mapping is precomputed once per process into a 65536-entry
 * table; 0 marks an illegal parcel (no 32-bit instruction is 0: its low bits are always 11).
 */

const enc = {
  r(op: number, rd: number, f3: number, rs1: number, rs2: number, f7: number): number {
    return (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op | 0;
  },
  i(op: number, rd: number, f3: number, rs1: number, imm: number): number {
    return ((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op | 0;
  },
  s(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
    return (((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | op;
  },
  b(f3: number, rs1: number, rs2: number, imm: number): number {
    return (
      (((imm >> 12) & 1) << 31) |
      (((imm >> 5) & 0x3f) << 25) |
      (rs2 << 20) |
      (rs1 << 15) |
      (f3 << 12) |
      (((imm >> 1) & 0xf) << 8) |
      (((imm >> 11) & 1) << 7) |
      0x63
    );
  },
  j(rd: number, imm: number): number {
    return (
      (((imm >> 20) & 1) << 31) |
      (((imm >> 1) & 0x3ff) << 21) |
      (((imm >> 11) & 1) << 20) |
      (((imm >> 12) & 0xff) << 12) |
      (rd << 7) |
      0x6f
    );
  },
};

/** Bit `from` of p placed at bit `to`. */
function bit(p: number, from: number, to: number): number {
  return ((p >> from) & 1) << to;
}

/** Sign-extends the low `bits` bits of v. */
function sext(v: number, bits: number): number {
  const s = 32 - bits;
  return (v << s) >> s;
}

/** The 6-bit signed immediate of c.addi/c.li/c.andi: imm[5] = p[12], imm[4:0] = p[6:2]. */
function imm6(p: number): number {
  return sext(bit(p, 12, 5) | ((p >> 2) & 0x1f), 6);
}

/** c.j / c.jal offset: [11|4|9:8|10|6|7|3:1|5] from p[12|11|10:9|8|7|6|5:3|2]. */
function jOffset(p: number): number {
  const v =
    bit(p, 12, 11) |
    bit(p, 11, 4) |
    bit(p, 10, 9) |
    bit(p, 9, 8) |
    bit(p, 8, 10) |
    bit(p, 7, 6) |
    bit(p, 6, 7) |
    bit(p, 5, 3) |
    bit(p, 4, 2) |
    bit(p, 3, 1) |
    bit(p, 2, 5);
  return sext(v, 12);
}

/** c.beqz / c.bnez offset: [8|4:3] from p[12|11:10], [7:6|2:1|5] from p[6:5|4:3|2]. */
function bOffset(p: number): number {
  const v =
    bit(p, 12, 8) |
    bit(p, 11, 4) |
    bit(p, 10, 3) |
    bit(p, 6, 7) |
    bit(p, 5, 6) |
    bit(p, 4, 2) |
    bit(p, 3, 1) |
    bit(p, 2, 5);
  return sext(v, 9);
}

/**
 * Expands one 16-bit parcel (low two bits != 11) to its 32-bit equivalent, or returns 0 if the
 * parcel is illegal or reserved on RV32 without F/D. Slow; use `compressedTable()` on hot paths.
 */
export function expandCompressed(parcel: number): number {
  const p = parcel & 0xffff;
  const f3 = p >> 13;
  const rd = (p >> 7) & 31; // also rs1 in CR/CI forms
  const rs2 = (p >> 2) & 31;
  const rdp = ((p >> 2) & 7) + 8; // rd' / rs2' (bits 4:2)
  const rs1p = ((p >> 7) & 7) + 8; // rs1' / rd' (bits 9:7)
  switch (p & 3) {
    case 0:
      switch (f3) {
        case 0: {
          // c.addi4spn: nzuimm[5:4|9:6|2|3] = p[12:11|10:7|6|5]
          const imm = bit(p, 12, 5) | bit(p, 11, 4) | (((p >> 7) & 0xf) << 6) | bit(p, 6, 2) | bit(p, 5, 3);
          return imm === 0 ? 0 : enc.i(0x13, rdp, 0, 2, imm);
        }
        case 2: // c.lw: uimm[5:3] = p[12:10], uimm[2] = p[6], uimm[6] = p[5]
          return enc.i(0x03, rdp, 2, rs1p, (((p >> 10) & 7) << 3) | bit(p, 6, 2) | bit(p, 5, 6));
        case 6: // c.sw
          return enc.s(0x23, 2, rs1p, rdp, (((p >> 10) & 7) << 3) | bit(p, 6, 2) | bit(p, 5, 6));
        default: // c.fld, c.flw, c.fsd, c.fsw (no FPU) and the reserved funct3=100
          return 0;
      }
    case 1:
      switch (f3) {
        case 0: // c.addi (c.nop when rd = 0 and imm = 0; other rd = 0 or imm = 0 forms are HINTs)
          return enc.i(0x13, rd, 0, rd, imm6(p));
        case 1: // c.jal (RV32 only)
          return enc.j(1, jOffset(p));
        case 2: // c.li (rd = 0 is a HINT)
          return enc.i(0x13, rd, 0, 0, imm6(p));
        case 3: {
          if (rd === 2) {
            // c.addi16sp: nzimm[9] = p[12], nzimm[4|6|8:7|5] = p[6|5|4:3|2]
            const imm = sext(
              bit(p, 12, 9) | bit(p, 6, 4) | bit(p, 5, 6) | bit(p, 4, 8) | bit(p, 3, 7) | bit(p, 2, 5),
              10,
            );
            return imm === 0 ? 0 : enc.i(0x13, 2, 0, 2, imm);
          }
          // c.lui: nzimm[17] = p[12], nzimm[16:12] = p[6:2] (rd = 0 is a HINT)
          const imm = imm6(p);
          return imm === 0 ? 0 : (imm << 12) | (rd << 7) | 0x37 | 0;
        }
        case 4: {
          const shamt = rs2;
          switch ((p >> 10) & 3) {
            case 0: // c.srli; shamt[5] = 1 is reserved on RV32
              return p & 0x1000 ? 0 : enc.r(0x13, rs1p, 5, rs1p, shamt, 0);
            case 1: // c.srai
              return p & 0x1000 ? 0 : enc.r(0x13, rs1p, 5, rs1p, shamt, 0x20);
            case 2: // c.andi
              return enc.i(0x13, rs1p, 7, rs1p, imm6(p));
            default: {
              if (p & 0x1000) return 0; // c.subw / c.addw: RV64 only
              switch ((p >> 5) & 3) {
                case 0:
                  return enc.r(0x33, rs1p, 0, rs1p, rdp, 0x20); // c.sub
                case 1:
                  return enc.r(0x33, rs1p, 4, rs1p, rdp, 0); // c.xor
                case 2:
                  return enc.r(0x33, rs1p, 6, rs1p, rdp, 0); // c.or
                default:
                  return enc.r(0x33, rs1p, 7, rs1p, rdp, 0); // c.and
              }
            }
          }
        }
        case 5: // c.j
          return enc.j(0, jOffset(p));
        case 6: // c.beqz
          return enc.b(0, rs1p, 0, bOffset(p));
        default: // c.bnez
          return enc.b(1, rs1p, 0, bOffset(p));
      }
    case 2:
      switch (f3) {
        case 0: // c.slli; shamt[5] = 1 is reserved on RV32; rd = 0 or shamt = 0 are HINTs
          return p & 0x1000 ? 0 : enc.r(0x13, rd, 1, rd, rs2, 0);
        case 2: {
          // c.lwsp: uimm[5] = p[12], uimm[4:2] = p[6:4], uimm[7:6] = p[3:2]; rd = 0 reserved
          const imm = bit(p, 12, 5) | (((p >> 4) & 7) << 2) | (((p >> 2) & 3) << 6);
          return rd === 0 ? 0 : enc.i(0x03, rd, 2, 2, imm);
        }
        case 4:
          if ((p & 0x1000) === 0) {
            if (rs2 === 0) return rd === 0 ? 0 : enc.i(0x67, 0, 0, rd, 0); // c.jr (rs1 = 0 reserved)
            return enc.r(0x33, rd, 0, 0, rs2, 0); // c.mv (rd = 0 is a HINT)
          }
          if (rs2 === 0) {
            if (rd === 0) return 0x00100073; // c.ebreak
            return enc.i(0x67, 1, 0, rd, 0); // c.jalr
          }
          return enc.r(0x33, rd, 0, rd, rs2, 0); // c.add (rd = 0 is a HINT)
        case 6: {
          // c.swsp: uimm[5:2] = p[12:9], uimm[7:6] = p[8:7]
          const imm = (((p >> 9) & 0xf) << 2) | (((p >> 7) & 3) << 6);
          return enc.s(0x23, 2, 2, rs2, imm);
        }
        default: // c.fldsp, c.flwsp, c.fsdsp, c.fswsp (no FPU)
          return 0;
      }
    default:
      return 0; // not a compressed parcel
  }
}

let table: Int32Array | undefined;

/**
 * The parcel -> expansion table (index: the 16-bit parcel; 0 = illegal or not compressed). Built on
 * first use, once per process (per worker thread), ~256 KiB.
 */
export function compressedTable(): Int32Array {
  if (table === undefined) {
    const t = new Int32Array(65536);
    for (let p = 0; p < 65536; p++) if ((p & 3) !== 3) t[p] = expandCompressed(p);
    table = t;
  }
  return table;
}
