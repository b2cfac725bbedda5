/**
 * A tiny RV32IMAC encoder for tests and benchmarks: raw format encoders, mnemonic helpers, the
 * compressed forms, and `Asm`, a two-pass assembler with labels. It is written from the ISA manual's
 * encoding diagrams, independently of the decoders it is used to test.
 */

export const Reg = {
  zero: 0,
  ra: 1,
  sp: 2,
  gp: 3,
  tp: 4,
  t0: 5,
  t1: 6,
  t2: 7,
  s0: 8,
  s1: 9,
  a0: 10,
  a1: 11,
  a2: 12,
  a3: 13,
  a4: 14,
  a5: 15,
  a6: 16,
  a7: 17,
  s2: 18,
  s3: 19,
  s4: 20,
  s5: 21,
  t3: 28,
  t4: 29,
  t5: 30,
  t6: 31,
} as const;

function u5(r: number): number {
  if (!Number.isInteger(r) || r < 0 || r > 31) throw new RangeError(`bad register ${r}`);
  return r;
}

function checkImm(imm: number, bits: number, align = 1): void {
  const lo = -(2 ** (bits - 1));
  const hi = 2 ** (bits - 1) - 1;
  if (!Number.isInteger(imm) || imm < lo || imm > hi || imm % align !== 0) {
    throw new RangeError(`immediate ${imm} does not fit ${bits} bits (align ${align})`);
  }
}

export function encR(op: number, rd: number, f3: number, rs1: number, rs2: number, f7: number): number {
  return ((f7 << 25) | (u5(rs2) << 20) | (u5(rs1) << 15) | (f3 << 12) | (u5(rd) << 7) | op) >>> 0;
}
export function encI(op: number, rd: number, f3: number, rs1: number, imm: number): number {
  checkImm(imm, 12);
  return (((imm & 0xfff) << 20) | (u5(rs1) << 15) | (f3 << 12) | (u5(rd) << 7) | op) >>> 0;
}
export function encS(op: number, f3: number, rs1: number, rs2: number, imm: number): number {
  checkImm(imm, 12);
  const v = imm & 0xfff;
  return (((v >> 5) << 25) | (u5(rs2) << 20) | (u5(rs1) << 15) | (f3 << 12) | ((v & 31) << 7) | op) >>> 0;
}
export function encB(f3: number, rs1: number, rs2: number, imm: number): number {
  checkImm(imm, 13, 2);
  const v = imm & 0x1fff;
  return (
    ((((v >> 12) & 1) << 31) |
      (((v >> 5) & 0x3f) << 25) |
      (u5(rs2) << 20) |
      (u5(rs1) << 15) |
      (f3 << 12) |
      (((v >> 1) & 0xf) << 8) |
      (((v >> 11) & 1) << 7) |
      0x63) >>>
    0
  );
}
/** U-type; `imm20` is the upper 20 bits (the value loaded is imm20 << 12). */
export function encU(op: number, rd: number, imm20: number): number {
  return (((imm20 & 0xfffff) << 12) | (u5(rd) << 7) | op) >>> 0;
}
export function encJ(rd: number, imm: number): number {
  checkImm(imm, 21, 2);
  const v = imm & 0x1fffff;
  return (
    ((((v >> 20) & 1) << 31) |
      (((v >> 1) & 0x3ff) << 21) |
      (((v >> 11) & 1) << 20) |
      (((v >> 12) & 0xff) << 12) |
      (u5(rd) << 7) |
      0x6f) >>>
    0
  );
}

const r = (f3: number, f7: number) => (rd: number, rs1: number, rs2: number) => encR(0x33, rd, f3, rs1, rs2, f7);
const opi = (f3: number) => (rd: number, rs1: number, imm: number) => encI(0x13, rd, f3, rs1, imm);
const sh = (f3: number, f7: number) => (rd: number, rs1: number, shamt: number) => encR(0x13, rd, f3, rs1, shamt, f7);
const ld = (f3: number) => (rd: number, rs1: number, imm: number) => encI(0x03, rd, f3, rs1, imm);
const st = (f3: number) => (rs2: number, rs1: number, imm: number) => encS(0x23, f3, rs1, rs2, imm);
const br = (f3: number) => (rs1: number, rs2: number, imm: number) => encB(f3, rs1, rs2, imm);
const amo =
  (f5: number) =>
  (rd: number, rs2: number, rs1: number, aq = 0, rl = 0) =>
    encR(0x2f, rd, 2, rs1, rs2, (f5 << 2) | (aq << 1) | rl);
const csr = (f3: number) => (rd: number, csrNum: number, rs1OrUimm: number) =>
  ((csrNum << 20) | (u5(rs1OrUimm) << 15) | (f3 << 12) | (u5(rd) << 7) | 0x73) >>> 0;

/** 32-bit instruction encoders, operands in assembly order. */
export const I = {
  lui: (rd: number, imm20: number) => encU(0x37, rd, imm20),
  auipc: (rd: number, imm20: number) => encU(0x17, rd, imm20),
  jal: (rd: number, off: number) => encJ(rd, off),
  jalr: (rd: number, rs1: number, imm: number) => encI(0x67, rd, 0, rs1, imm),
  beq: br(0),
  bne: br(1),
  blt: br(4),
  bge: br(5),
  bltu: br(6),
  bgeu: br(7),
  lb: ld(0),
  lh: ld(1),
  lw: ld(2),
  lbu: ld(4),
  lhu: ld(5),
  sb: st(0),
  sh: st(1),
  sw: st(2),
  addi: opi(0),
  slti: opi(2),
  sltiu: opi(3),
  xori: opi(4),
  ori: opi(6),
  andi: opi(7),
  slli: sh(1, 0),
  srli: sh(5, 0),
  srai: sh(5, 0x20),
  add: r(0, 0),
  sub: r(0, 0x20),
  sll: r(1, 0),
  slt: r(2, 0),
  sltu: r(3, 0),
  xor: r(4, 0),
  srl: r(5, 0),
  sra: r(5, 0x20),
  or: r(6, 0),
  and: r(7, 0),
  mul: r(0, 1),
  mulh: r(1, 1),
  mulhsu: r(2, 1),
  mulhu: r(3, 1),
  div: r(4, 1),
  divu: r(5, 1),
  rem: r(6, 1),
  remu: r(7, 1),
  fence: () => 0x0ff0000f,
  fence_i: () => 0x0000100f,
  ecall: () => 0x00000073,
  ebreak: () => 0x00100073,
  sret: () => 0x10200073,
  wfi: () => 0x10500073,
  mret: () => 0x30200073,
  csrrw: csr(1),
  csrrs: csr(2),
  csrrc: csr(3),
  csrrwi: csr(5),
  csrrsi: csr(6),
  csrrci: csr(7),
  lr_w: (rd: number, rs1: number) => encR(0x2f, rd, 2, rs1, 0, 0x02 << 2),
  sc_w: amo(0x03),
  amoswap_w: amo(0x01),
  amoadd_w: amo(0x00),
  amoxor_w: amo(0x04),
  amoand_w: amo(0x0c),
  amoor_w: amo(0x08),
  amomin_w: amo(0x10),
  amomax_w: amo(0x14),
  amominu_w: amo(0x18),
  amomaxu_w: amo(0x1c),
};

// ---- compressed -----------------------------------------------------------------------------

function creg(r: number): number {
  if (r < 8 || r > 15) throw new RangeError(`x${r} is not a compressed register (x8..x15)`);
  return r - 8;
}
const b = (v: number, from: number, to: number) => ((v >> from) & 1) << to;

function cj(f3: number, off: number): number {
  checkImm(off, 12, 2);
  return (
    (f3 << 13) |
    b(off, 11, 12) |
    b(off, 4, 11) |
    b(off, 9, 10) |
    b(off, 8, 9) |
    b(off, 10, 8) |
    b(off, 6, 7) |
    b(off, 7, 6) |
    b(off, 3, 5) |
    b(off, 2, 4) |
    b(off, 1, 3) |
    b(off, 5, 2) |
    1
  );
}
function cb(f3: number, rs1: number, off: number): number {
  checkImm(off, 9, 2);
  return (
    (f3 << 13) |
    b(off, 8, 12) |
    b(off, 4, 11) |
    b(off, 3, 10) |
    (creg(rs1) << 7) |
    b(off, 7, 6) |
    b(off, 6, 5) |
    b(off, 2, 4) |
    b(off, 1, 3) |
    b(off, 5, 2) |
    1
  );
}
function ci(f3: number, op: number, rd: number, imm: number): number {
  checkImm(imm, 6);
  return (f3 << 13) | b(imm, 5, 12) | (u5(rd) << 7) | ((imm & 31) << 2) | op;
}
function uimmCheck(v: number, max: number, align: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max || v % align !== 0) throw new RangeError(`bad offset ${v}`);
}

/** Compressed encoders (16-bit parcels); register arguments are full register numbers. */
export const C = {
  nop: () => 0x0001,
  addi: (rd: number, imm: number) => ci(0, 1, rd, imm),
  li: (rd: number, imm: number) => ci(2, 1, rd, imm),
  /** c.lui rd, imm6 (the value loaded is sign-extended imm6 << 12). */
  lui: (rd: number, imm6: number) => ci(3, 1, rd, imm6),
  addi16sp: (imm: number) => {
    checkImm(imm, 10, 16);
    return (
      (3 << 13) |
      b(imm, 9, 12) |
      (2 << 7) |
      b(imm, 4, 6) |
      b(imm, 6, 5) |
      b(imm, 8, 4) |
      b(imm, 7, 3) |
      b(imm, 5, 2) |
      1
    );
  },
  addi4spn: (rd: number, imm: number) => {
    uimmCheck(imm, 1020, 4);
    return b(imm, 5, 12) | b(imm, 4, 11) | (((imm >> 6) & 0xf) << 7) | b(imm, 2, 6) | b(imm, 3, 5) | (creg(rd) << 2);
  },
  lw: (rd: number, rs1: number, off: number) => {
    uimmCheck(off, 124, 4);
    return (2 << 13) | (((off >> 3) & 7) << 10) | (creg(rs1) << 7) | b(off, 2, 6) | b(off, 6, 5) | (creg(rd) << 2);
  },
  sw: (rs2: number, rs1: number, off: number) => {
    uimmCheck(off, 124, 4);
    return (6 << 13) | (((off >> 3) & 7) << 10) | (creg(rs1) << 7) | b(off, 2, 6) | b(off, 6, 5) | (creg(rs2) << 2);
  },
  jal: (off: number) => cj(1, off),
  j: (off: number) => cj(5, off),
  beqz: (rs1: number, off: number) => cb(6, rs1, off),
  bnez: (rs1: number, off: number) => cb(7, rs1, off),
  srli: (rd: number, shamt: number) => (4 << 13) | (creg(rd) << 7) | ((shamt & 31) << 2) | 1,
  srai: (rd: number, shamt: number) => (4 << 13) | (1 << 10) | (creg(rd) << 7) | ((shamt & 31) << 2) | 1,
  andi: (rd: number, imm: number) => {
    checkImm(imm, 6);
    return (4 << 13) | b(imm, 5, 12) | (2 << 10) | (creg(rd) << 7) | ((imm & 31) << 2) | 1;
  },
  sub: (rd: number, rs2: number) => 0x8c01 | (creg(rd) << 7) | (creg(rs2) << 2),
  xor: (rd: number, rs2: number) => 0x8c21 | (creg(rd) << 7) | (creg(rs2) << 2),
  or: (rd: number, rs2: number) => 0x8c41 | (creg(rd) << 7) | (creg(rs2) << 2),
  and: (rd: number, rs2: number) => 0x8c61 | (creg(rd) << 7) | (creg(rs2) << 2),
  slli: (rd: number, shamt: number) => (u5(rd) << 7) | ((shamt & 31) << 2) | 2,
  lwsp: (rd: number, off: number) => {
    uimmCheck(off, 252, 4);
    return (2 << 13) | b(off, 5, 12) | (u5(rd) << 7) | (((off >> 2) & 7) << 4) | (((off >> 6) & 3) << 2) | 2;
  },
  swsp: (rs2: number, off: number) => {
    uimmCheck(off, 252, 4);
    return (6 << 13) | (((off >> 2) & 0xf) << 9) | (((off >> 6) & 3) << 7) | (u5(rs2) << 2) | 2;
  },
  jr: (rs1: number) => 0x8002 | (u5(rs1) << 7),
  mv: (rd: number, rs2: number) => 0x8002 | (u5(rd) << 7) | (u5(rs2) << 2),
  ebreak: () => 0x9002,
  jalr: (rs1: number) => 0x9002 | (u5(rs1) << 7),
  add: (rd: number, rs2: number) => 0x9002 | (u5(rd) << 7) | (u5(rs2) << 2),
};

// ---- assembler with labels ------------------------------------------------------------------

type Target = number | string;
interface Item {
  size: 2 | 4;
  at: number;
  gen: (resolve: (t: Target) => number) => number;
}

/**
 * Two-pass assembler: instructions are recorded with their sizes, labels resolve on `bytes()`.
 * Branch/jump targets may be a label name or a byte offset relative to the instruction.
 */
export class Asm {
  private readonly items: Item[] = [];
  private readonly labels = new Map<string, number>();
  private size = 0;

  constructor(readonly origin: number = 0) {}

  /** The address the next instruction will have. */
  get here(): number {
    return (this.origin + this.size) >>> 0;
  }

  label(name: string): this {
    if (this.labels.has(name)) throw new Error(`duplicate label ${name}`);
    this.labels.set(name, this.size);
    return this;
  }

  /** Appends 32-bit instruction words. */
  i(...words: number[]): this {
    for (const w of words) this.push(4, () => w);
    return this;
  }

  /** Appends 16-bit parcels. */
  c(...parcels: number[]): this {
    for (const p of parcels) this.push(2, () => p);
    return this;
  }

  /** Raw data word (for data placed in the code stream). */
  word(w: number): this {
    return this.i(w);
  }

  /** Loads a 32-bit constant (lui + addi). */
  li(rd: number, value: number): this {
    const v = value | 0;
    const lo = (v << 20) >> 20;
    const hi = ((v - lo) >>> 12) & 0xfffff;
    if (hi !== 0) {
      this.i(I.lui(rd, hi));
      if (lo !== 0) this.i(I.addi(rd, rd, lo));
    } else this.i(I.addi(rd, 0, lo));
    return this;
  }

  beq(rs1: number, rs2: number, t: Target): this {
    return this.branch(0, rs1, rs2, t);
  }
  bne(rs1: number, rs2: number, t: Target): this {
    return this.branch(1, rs1, rs2, t);
  }
  blt(rs1: number, rs2: number, t: Target): this {
    return this.branch(4, rs1, rs2, t);
  }
  bge(rs1: number, rs2: number, t: Target): this {
    return this.branch(5, rs1, rs2, t);
  }
  bltu(rs1: number, rs2: number, t: Target): this {
    return this.branch(6, rs1, rs2, t);
  }
  bgeu(rs1: number, rs2: number, t: Target): this {
    return this.branch(7, rs1, rs2, t);
  }
  jal(rd: number, t: Target): this {
    return this.push(4, (res) => encJ(rd, res(t)));
  }
  cj(t: Target): this {
    return this.push(2, (res) => C.j(res(t)));
  }
  cjal(t: Target): this {
    return this.push(2, (res) => C.jal(res(t)));
  }
  cbeqz(rs1: number, t: Target): this {
    return this.push(2, (res) => C.beqz(rs1, res(t)));
  }
  cbnez(rs1: number, t: Target): this {
    return this.push(2, (res) => C.bnez(rs1, res(t)));
  }

  /** Calls f(this, ...args): splices a helper into a chain. */
  pipe<A extends unknown[]>(f: (a: Asm, ...args: A) => Asm, ...args: A): this {
    f(this, ...args);
    return this;
  }

  /** Pads with c.nop / nop until the next instruction's address is `addr`. */
  padTo(addr: number): this {
    while (this.here < addr >>> 0) {
      if (addr - this.here >= 4 && (this.here & 3) === 0) this.i(I.addi(0, 0, 0));
      else this.c(C.nop());
    }
    return this;
  }

  /** The assembled little-endian bytes. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    const dv = new DataView(out.buffer);
    for (const it of this.items) {
      const resolve = (t: Target): number => {
        if (typeof t === "number") return t;
        const at = this.labels.get(t);
        if (at === undefined) throw new Error(`undefined label ${t}`);
        return at - it.at;
      };
      const v = it.gen(resolve);
      if (it.size === 4) dv.setUint32(it.at, v >>> 0, true);
      else dv.setUint16(it.at, v & 0xffff, true);
    }
    return out;
  }

  private branch(f3: number, rs1: number, rs2: number, t: Target): this {
    return this.push(4, (res) => encB(f3, rs1, rs2, res(t)));
  }

  private push(size: 2 | 4, gen: Item["gen"]): this {
    this.items.push({ size, at: this.size, gen });
    this.size += size;
    return this;
  }
}
