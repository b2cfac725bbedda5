import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classify } from "./decode_table.js";
import { Cause, ExitReason } from "./exit.js";
import { Asm, C, I, Reg } from "./test_asm.js";
import { DATA_BASE, MMIO_BASE, RAM_BASE, TestMachine } from "./test_machine.js";
import { VcpuSlot } from "./vcpu_state.js";

const { a0, a1, a2, a3, a4, a5, ra, sp, s0, s1, t0, t1 } = Reg;
const INT_MIN = -0x8000_0000;
const INT_MAX = 0x7fff_ffff;

/** Assembles `build` at RAM_BASE followed by ebreak, runs it, and expects the ebreak exit. */
function exec(build: (a: Asm) => void, init: Record<number, number> = {}, budget = 100_000): TestMachine {
  const m = new TestMachine();
  const a = new Asm(RAM_BASE);
  build(a);
  a.label("__end").i(I.ebreak());
  m.load(a);
  for (const [r, v] of Object.entries(init)) m.setX(Number(r), v);
  const exit = m.cpu.run(budget);
  assert.equal(
    exit,
    ExitReason.EBREAK,
    `exit ${exit} at pc 0x${m.pc.toString(16)}, cause ${m.state[VcpuSlot.EXIT_CAUSE]}`,
  );
  return m;
}

/** One machine running "op a2, a0, a1; ebreak" again and again. */
class Alu {
  private readonly m = new TestMachine();
  constructor(word: number) {
    this.m.load(new Asm(RAM_BASE).i(word, I.ebreak()));
  }
  run(a: number, b: number): number {
    this.m.pc = RAM_BASE;
    this.m.setX(a0, a);
    this.m.setX(a1, b);
    assert.equal(this.m.cpu.run(10), ExitReason.EBREAK);
    return this.m.x(a2);
  }
}

type Case = [number, number, number];
const R_CASES: Record<string, [number, Case[]]> = {
  add: [
    I.add(a2, a0, a1),
    [
      [1, 2, 3],
      [INT_MAX, 1, INT_MIN],
      [-1, 1, 0],
    ],
  ],
  sub: [
    I.sub(a2, a0, a1),
    [
      [1, 2, -1],
      [INT_MIN, 1, INT_MAX],
      [5, 5, 0],
    ],
  ],
  sll: [
    I.sll(a2, a0, a1),
    [
      [1, 31, INT_MIN],
      [1, 33, 2],
      [3, 0, 3],
    ],
  ],
  slt: [
    I.slt(a2, a0, a1),
    [
      [-1, 0, 1],
      [0, -1, 0],
      [5, 5, 0],
      [INT_MIN, INT_MAX, 1],
    ],
  ],
  sltu: [
    I.sltu(a2, a0, a1),
    [
      [-1, 0, 0],
      [0, -1, 1],
      [5, 5, 0],
      [1, 2, 1],
    ],
  ],
  xor: [
    I.xor(a2, a0, a1),
    [
      [0xf0f0, 0xff00, 0x0ff0],
      [-1, 1, -2],
    ],
  ],
  srl: [
    I.srl(a2, a0, a1),
    [
      [INT_MIN, 31, 1],
      [-1, 36, 0x0fff_ffff],
      [-1, 0, -1],
    ],
  ],
  sra: [
    I.sra(a2, a0, a1),
    [
      [INT_MIN, 31, -1],
      [-16, 2, -4],
      [16, 34, 4],
    ],
  ],
  or: [
    I.or(a2, a0, a1),
    [
      [0xf0, 0x0f, 0xff],
      [INT_MIN, 1, INT_MIN + 1],
    ],
  ],
  and: [
    I.and(a2, a0, a1),
    [
      [0xf0, 0x3c, 0x30],
      [-1, INT_MIN, INT_MIN],
    ],
  ],
  mul: [
    I.mul(a2, a0, a1),
    [
      [INT_MAX, 2, -2],
      [-3, 5, -15],
      [0x12345678, 0x9abcdef0 | 0, 0x242d2080],
      [INT_MIN, -1, INT_MIN],
    ],
  ],
  mulh: [
    I.mulh(a2, a0, a1),
    [
      [INT_MIN, INT_MIN, 0x4000_0000],
      [-1, -1, 0],
      [-1, 1, -1],
      [INT_MAX, INT_MAX, 0x3fff_ffff],
      [INT_MIN, INT_MAX, -0x4000_0000],
    ],
  ],
  mulhsu: [
    I.mulhsu(a2, a0, a1),
    [
      [-1, -1, -1],
      [INT_MIN, -1, INT_MIN],
      [2, -1, 1],
      [-2, 3, -1],
    ],
  ],
  mulhu: [
    I.mulhu(a2, a0, a1),
    [
      [-1, -1, -2],
      [INT_MIN, 2, 1],
      [0x1_0000, 0x1_0000, 1],
    ],
  ],
  div: [
    I.div(a2, a0, a1),
    [
      [7, 2, 3],
      [-7, 2, -3],
      [7, -2, -3],
      [5, 0, -1],
      [INT_MIN, -1, INT_MIN],
      [0, 0, -1],
    ],
  ],
  divu: [
    I.divu(a2, a0, a1),
    [
      [-1, 2, INT_MAX],
      [5, 0, -1],
      [INT_MIN, -1, 0],
      [7, 2, 3],
    ],
  ],
  rem: [
    I.rem(a2, a0, a1),
    [
      [-7, 2, -1],
      [7, -2, 1],
      [5, 0, 5],
      [INT_MIN, -1, 0],
      [-5, 0, -5],
    ],
  ],
  remu: [
    I.remu(a2, a0, a1),
    [
      [-1, 10, 5],
      [5, 0, 5],
      [7, 2, 1],
      [INT_MIN, -1, INT_MIN],
    ],
  ],
};

const I_CASES: Record<string, Array<[number, number, number]>> = {
  // [a0, imm, expected]
  addi: [
    [1, -1, 0],
    [INT_MAX, 1, INT_MIN],
    [0, -2048, -2048],
    [0, 2047, 2047],
  ],
  slti: [
    [-1, 0, 1],
    [0, -1, 0],
    [-2049, -2048, 1],
  ],
  sltiu: [
    [0, -1, 1],
    [-2, -1, 1],
    [-1, -1, 0],
    [5, 3, 0],
  ],
  xori: [
    [0xff, -1, ~0xff],
    [0x0f, 0xf0, 0xff],
  ],
  ori: [
    [0x100, 0x0f, 0x10f],
    [0, -2048, -2048],
  ],
  andi: [
    [-1, 0x7ff, 0x7ff],
    [0xabc, -16, 0xab0],
  ],
  slli: [
    [1, 31, INT_MIN],
    [3, 4, 48],
  ],
  srli: [
    [INT_MIN, 31, 1],
    [-1, 4, 0x0fff_ffff],
    [-1, 0, -1],
  ],
  srai: [
    [INT_MIN, 31, -1],
    [-64, 3, -8],
    [64, 3, 8],
  ],
};
const I_ENC: Record<string, (rd: number, rs1: number, imm: number) => number> = {
  addi: I.addi,
  slti: I.slti,
  sltiu: I.sltiu,
  xori: I.xori,
  ori: I.ori,
  andi: I.andi,
  slli: I.slli,
  srli: I.srli,
  srai: I.srai,
};

describe("RV32I / M arithmetic", () => {
  for (const [name, [word, cases]] of Object.entries(R_CASES)) {
    it(`${name}`, () => {
      const alu = new Alu(word);
      for (const [a, b, want] of cases) assert.equal(alu.run(a, b), want | 0, `${name} ${a}, ${b}`);
    });
  }

  for (const [name, cases] of Object.entries(I_CASES)) {
    it(`${name}`, () => {
      for (const [a, imm, want] of cases) {
        const m = exec((as) => as.i(I_ENC[name]!(a2, a0, imm)), { [a0]: a });
        assert.equal(m.x(a2), want | 0, `${name} ${a}, ${imm}`);
      }
    });
  }

  it("mulh, mulhsu, mulhu agree with BigInt on random operands", () => {
    const mulh = new Alu(I.mulh(a2, a0, a1));
    const mulhsu = new Alu(I.mulhsu(a2, a0, a1));
    const mulhu = new Alu(I.mulhu(a2, a0, a1));
    let s = 0x2545f491;
    const rnd = () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      // mix in edge values often
      const k = s & 15;
      return k === 0 ? INT_MIN : k === 1 ? -1 : k === 2 ? INT_MAX : k === 3 ? 0 : s | 0;
    };
    const hi = (v: bigint) => Number(BigInt.asIntN(32, v >> 32n));
    for (let k = 0; k < 2000; k++) {
      const a = rnd();
      const b = rnd();
      const as = BigInt(a);
      const bs = BigInt(b);
      const au = BigInt(a >>> 0);
      const bu = BigInt(b >>> 0);
      assert.equal(mulh.run(a, b), hi(as * bs), `mulh ${a} ${b}`);
      assert.equal(mulhsu.run(a, b), hi(as * bu), `mulhsu ${a} ${b}`);
      assert.equal(mulhu.run(a, b), hi(au * bu), `mulhu ${a} ${b}`);
    }
  });

  it("lui and auipc", () => {
    const m = exec((a) => a.i(I.lui(a0, 0x12345), I.auipc(a1, 0), I.auipc(a2, 0xfffff), I.lui(a3, 0x80000)));
    assert.equal(m.x(a0), 0x12345000);
    assert.equal(m.x(a1) >>> 0, RAM_BASE + 4);
    assert.equal(m.x(a2) >>> 0, (RAM_BASE + 8 - 0x1000) >>> 0);
    assert.equal(m.x(a3), INT_MIN);
  });

  it("ignores writes to x0", () => {
    const m = exec((a) =>
      a
        .li(a5, DATA_BASE)
        .i(I.addi(0, 0, 5), I.lui(0, 0x12345), I.lw(0, a5, 0), I.add(0, a5, a5), I.jal(0, 4))
        .i(I.add(a0, 0, 0), I.mul(0, a5, a5), I.csrrs(0, 0xc02, 0)),
    );
    assert.equal(m.state[0], 0);
    assert.equal(m.x(a0), 0);
  });
});

describe("loads and stores", () => {
  it("sign- and zero-extend loads", () => {
    const m = new TestMachine();
    m.write(DATA_BASE, new Uint8Array([0x80, 0xff, 0x7f, 0x01, 0xfe, 0xff, 0xff, 0xff]));
    m.load(
      new Asm(RAM_BASE)
        .li(a5, DATA_BASE)
        .i(I.lb(a0, a5, 0), I.lbu(a1, a5, 0), I.lh(a2, a5, 0), I.lhu(a3, a5, 0), I.lw(a4, a5, 0))
        .i(I.lh(t0, a5, 2), I.lb(t1, a5, 2), I.lw(s0, a5, 4), I.lhu(s1, a5, 6), I.ebreak()),
    );
    assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    assert.equal(m.x(a0), -128);
    assert.equal(m.x(a1), 0x80);
    assert.equal(m.x(a2), -128); // 0xff80
    assert.equal(m.x(a3), 0xff80);
    assert.equal(m.x(a4), 0x017fff80);
    assert.equal(m.x(t0), 0x017f);
    assert.equal(m.x(t1), 0x7f);
    assert.equal(m.x(s0), -2);
    assert.equal(m.x(s1), 0xffff);
  });

  it("stores bytes, halves and words little-endian, with negative offsets", () => {
    const m = exec(
      (a) =>
        a
          .li(a5, DATA_BASE + 16)
          .i(I.sw(a0, a5, -16), I.sb(a1, a5, -12), I.sh(a1, a5, -10), I.sh(a0, a5, -8), I.sb(a0, a5, -5)),
      { [a0]: 0x11223344, [a1]: -2 },
    );
    assert.equal(m.readWord(DATA_BASE), 0x11223344);
    assert.equal(m.readWord(DATA_BASE + 4) >>> 0, 0xfffe00fe);
    assert.equal(m.readWord(DATA_BASE + 8) >>> 0, 0x44003344);
  });
});

describe("control transfer", () => {
  const cases: Array<[string, (a: Asm, t: string) => Asm, number, number, boolean]> = [
    ["beq", (a, t) => a.beq(a0, a1, t), 5, 5, true],
    ["beq", (a, t) => a.beq(a0, a1, t), 5, 6, false],
    ["bne", (a, t) => a.bne(a0, a1, t), 5, 6, true],
    ["bne", (a, t) => a.bne(a0, a1, t), 5, 5, false],
    ["blt", (a, t) => a.blt(a0, a1, t), -1, 0, true],
    ["blt", (a, t) => a.blt(a0, a1, t), 0, -1, false],
    ["blt", (a, t) => a.blt(a0, a1, t), 3, 3, false],
    ["bge", (a, t) => a.bge(a0, a1, t), 0, -1, true],
    ["bge", (a, t) => a.bge(a0, a1, t), 3, 3, true],
    ["bge", (a, t) => a.bge(a0, a1, t), -1, 0, false],
    ["bltu", (a, t) => a.bltu(a0, a1, t), 0, -1, true],
    ["bltu", (a, t) => a.bltu(a0, a1, t), -1, 0, false],
    ["bgeu", (a, t) => a.bgeu(a0, a1, t), -1, 0, true],
    ["bgeu", (a, t) => a.bgeu(a0, a1, t), 0, -1, false],
    ["bgeu", (a, t) => a.bgeu(a0, a1, t), 7, 7, true],
  ];
  for (const [name, br, x, y, taken] of cases) {
    it(`${name} ${x}, ${y} is ${taken ? "taken" : "not taken"} (forward and backward)`, () => {
      const fwd = exec(
        (a) =>
          br(a, "skip")
            .i(I.addi(a2, 0, 1))
            .label("skip"),
        { [a0]: x, [a1]: y },
      );
      assert.equal(fwd.x(a2), taken ? 0 : 1);
      // backward: jump over the target block, branch back into it
      const back = exec(
        (a) =>
          a
            .jal(0, "test")
            .label("back")
            .i(I.addi(a3, 0, 7))
            .jal(0, "__end")
            .label("test")
            .pipe(br, "back")
            .i(I.addi(a3, 0, 1)),
        { [a0]: x, [a1]: y },
      );
      assert.equal(back.x(a3), taken ? 7 : 1);
    });
  }

  it("jal links pc+4 and jumps both ways", () => {
    const m = exec((a) =>
      a
        .jal(ra, "f")
        .i(I.addi(a1, 0, 1))
        .jal(0, "__end")
        .label("f")
        .i(I.addi(a0, 0, 9))
        .i(I.jalr(0, ra, 0)),
    );
    assert.equal(m.x(a0), 9);
    assert.equal(m.x(a1), 1);
    assert.equal(m.x(ra) >>> 0, RAM_BASE + 4);
  });

  it("jalr clears bit 0 of the target and reads rs1 before writing rd", () => {
    const m = exec(
      (a) =>
        a
          .i(I.jalr(a0, a0, 1)) // a0 = RAM_BASE + 8 - 1 + 1 -> target RAM_BASE + 8 (bit 0 cleared)
          .i(I.addi(a1, 0, 1)) // skipped
          .i(I.addi(a2, 0, 2)),
      { [a0]: RAM_BASE + 8 - 1 + 1 },
    );
    assert.equal(m.x(a1), 0);
    assert.equal(m.x(a2), 2);
    assert.equal(m.x(a0) >>> 0, RAM_BASE + 4);
  });

  it("loops (backward branch) count exactly", () => {
    const m = exec((a) =>
      a
        .li(t0, 1000)
        .label("l")
        .i(I.addi(a0, a0, 3), I.addi(t0, t0, -1))
        .bne(t0, 0, "l"),
    );
    assert.equal(m.x(a0), 3000);
    assert.equal(m.state[VcpuSlot.INSTRET_LO], 1 + 3000 + 1); // li, loop, ebreak
  });
});

describe("compressed instructions", () => {
  it("c.li, c.addi, c.lui, c.addi16sp, c.addi4spn, c.nop", () => {
    const m = exec(
      (a) =>
        a.c(C.li(a0, -5), C.addi(a0, 7), C.lui(a1, -1), C.addi16sp(-32), C.addi4spn(s0, 1020), C.nop(), C.li(0, 3)),
      { [sp]: 0x1000 },
    );
    assert.equal(m.x(a0), 2);
    assert.equal(m.x(a1), -4096);
    assert.equal(m.x(sp), 0x1000 - 32);
    assert.equal(m.x(s0), 0x1000 - 32 + 1020);
    assert.equal(m.state[0], 0);
  });

  it("c.lwsp, c.swsp, c.lw, c.sw", () => {
    const m = exec((a) => a.c(C.swsp(a0, 8), C.lwsp(a1, 8), C.sw(a0, s0, 124), C.lw(a2, s0, 124)), {
      [sp]: DATA_BASE,
      [s0]: DATA_BASE,
      [a0]: -123456,
    });
    assert.equal(m.readWord(DATA_BASE + 8), -123456);
    assert.equal(m.readWord(DATA_BASE + 124), -123456);
    assert.equal(m.x(a1), -123456);
    assert.equal(m.x(a2), -123456);
  });

  it("c.srli, c.srai, c.slli, c.andi, c.sub, c.xor, c.or, c.and, c.mv, c.add", () => {
    const m = exec(
      (a) =>
        a
          .c(C.mv(a2, a0), C.srai(a2, 4), C.mv(a3, a0), C.srli(a3, 28), C.mv(a4, a1), C.slli(a4, 3), C.andi(a4, -9))
          .c(C.mv(a5, a1), C.sub(a5, a0), C.mv(s0, a1), C.xor(s0, a0), C.mv(s1, a1), C.or(s1, a0))
          .c(C.mv(t0, a1), C.add(t0, a0), C.and(a1, a0)),
      { [a0]: -256, [a1]: 0x0f0f },
    );
    assert.equal(m.x(a2), -16);
    assert.equal(m.x(a3), 0xf);
    assert.equal(m.x(a4), (0x0f0f << 3) & -9);
    assert.equal(m.x(a5), 0x0f0f + 256);
    assert.equal(m.x(s0), 0x0f0f ^ -256);
    assert.equal(m.x(s1), 0x0f0f | -256);
    assert.equal(m.x(t0), 0x0f0f - 256);
    assert.equal(m.x(a1), 0x0f0f & -256);
  });

  it("c.j, c.jal (links pc+2), c.jr, c.jalr", () => {
    const m = exec((a) =>
      a
        .cjal("f") // RAM_BASE + 0
        .c(C.li(a1, 1)) // + 2
        .cj("g") // + 4
        .label("f")
        .c(C.li(a0, 9), C.jr(ra))
        .label("g")
        .li(t0, RAM_BASE + 0x100)
        .c(C.jalr(t0))
        .label("back")
        .jal(0, "__end")
        .padTo(RAM_BASE + 0x100)
        .c(C.li(a2, 5), C.mv(a3, ra), C.jr(ra)),
    );
    assert.equal(m.x(a0), 9);
    assert.equal(m.x(a1), 1);
    assert.equal(m.x(a2), 5);
    // c.jalr sits right before "back"; its link is its own address + 2
    assert.equal(m.x(a3) >>> 0, m.x(ra) >>> 0);
    assert.equal((m.x(ra) >>> 0) % 2, 0);
  });

  it("c.beqz / c.bnez both ways", () => {
    for (const [v, eqTaken] of [
      [0, true],
      [5, false],
    ] as const) {
      const m = exec((a) => a.cbeqz(s0, "x").c(C.li(a0, 1)).label("x").cbnez(s0, "y").c(C.li(a1, 1)).label("y"), {
        [s0]: v,
      });
      assert.equal(m.x(a0), eqTaken ? 0 : 1);
      assert.equal(m.x(a1), eqTaken ? 1 : 0);
    }
  });

  it("c.ebreak exits EBREAK with pc at it and retires it", () => {
    const m = new TestMachine();
    m.load(new Asm(RAM_BASE).c(C.nop(), C.ebreak()));
    assert.equal(m.cpu.run(10), ExitReason.EBREAK);
    assert.equal(m.pc, RAM_BASE + 2);
    assert.equal(m.state[VcpuSlot.INSTRET_LO], 2);
  });

  it("mixes 16- and 32-bit instructions at 2-byte alignment", () => {
    const m = exec((a) =>
      a
        .c(C.li(a0, 1))
        .i(I.addi(a0, a0, 10))
        .c(C.addi(a0, 1))
        .i(I.slli(a0, a0, 1)),
    );
    assert.equal(m.x(a0), 24);
  });
});

describe("illegal instructions", () => {
  for (const [what, word] of [
    ["all ones", 0xffffffff],
    ["mret", I.mret()],
    ["slli with funct7 != 0", I.slli(a0, a0, 1) | (1 << 25)],
    ["load funct3 = 3", 0x00003003],
    ["custom-0 opcode", 0x0000000b],
    ["sfence.vma", 0x12000073],
    ["unknown CSR (mstatus)", I.csrrs(a0, 0x300, 0)],
  ] as const) {
    it(`${what}: FAULT ILLEGAL_INSTRUCTION, tval = the bits, pc at it, not retired`, () => {
      const m = new TestMachine();
      m.load(new Asm(RAM_BASE).i(I.addi(a0, 0, 1), word));
      assert.equal(m.cpu.run(10), ExitReason.FAULT);
      assert.equal(m.state[VcpuSlot.EXIT_CAUSE], Cause.ILLEGAL_INSTRUCTION);
      assert.equal(m.state[VcpuSlot.EXIT_TVAL], word | 0);
      assert.equal(m.pc, RAM_BASE + 4);
      assert.equal(m.state[VcpuSlot.INSTRET_LO], 1);
    });
  }

  it("an illegal compressed parcel reports the parcel as tval", () => {
    const m = new TestMachine();
    m.load(new Asm(RAM_BASE).c(C.nop(), 0x0000));
    assert.equal(m.cpu.run(10), ExitReason.FAULT);
    assert.equal(m.state[VcpuSlot.EXIT_CAUSE], Cause.ILLEGAL_INSTRUCTION);
    assert.equal(m.state[VcpuSlot.EXIT_TVAL], 0);
    assert.equal(m.pc, RAM_BASE + 2);
  });

  it("the interpreter faults ILLEGAL exactly where classify() says illegal (random words)", () => {
    const m = new TestMachine();
    let s = 99;
    let checked = 0;
    for (let k = 0; k < 20_000; k++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      const w = (s | 3) >>> 0;
      const name = classify(w);
      // CSR legality depends on the CSR number, not on the decode; skip SYSTEM words with f3 != 0.
      if ((w & 0x7f) === 0x73 && ((w >>> 12) & 7) !== 0) continue;
      m.writeWord(RAM_BASE, w);
      m.cpu.flushTlb(); // the host rewrote code: drop decoded instructions
      m.pc = RAM_BASE;
      for (let r = 1; r < 32; r++) m.setX(r, DATA_BASE);
      m.state[VcpuSlot.STVEC] = RAM_BASE;
      const exit = m.cpu.run(1);
      const illegal = exit === ExitReason.FAULT && m.state[VcpuSlot.EXIT_CAUSE] === Cause.ILLEGAL_INSTRUCTION;
      assert.equal(illegal, name === "illegal", `0x${w.toString(16)} (${name}) exit ${exit}`);
      checked++;
    }
    assert.ok(checked > 15_000);
  });
});

describe("MMIO exits", () => {
  const loads: Array<[string, (rd: number, rs1: number, imm: number) => number, number, number, number]> = [
    // name, encoder, size, signed, expected a0 after completeMmio(0xfffff080)
    ["lb", I.lb, 1, 1, -128],
    ["lbu", I.lbu, 1, 0, 0x80],
    ["lh", I.lh, 2, 1, -0xf80],
    ["lhu", I.lhu, 2, 0, 0xf080],
    ["lw", I.lw, 4, 1, 0xfffff080 | 0],
  ];
  for (const [name, enc, size, signed, want] of loads) {
    it(`${name} from a non-RAM address exits MMIO and completeMmio extends the value`, () => {
      const m = new TestMachine();
      m.load(new Asm(RAM_BASE).li(a5, MMIO_BASE).i(enc(a0, a5, 8), I.addi(a1, a0, 0), I.ebreak()));
      assert.equal(m.cpu.run(100), ExitReason.MMIO);
      const st = m.state;
      assert.equal(st[VcpuSlot.MMIO_ADDR], MMIO_BASE + 8);
      assert.equal(st[VcpuSlot.MMIO_SIZE], size);
      assert.equal(st[VcpuSlot.MMIO_WRITE], 0);
      assert.equal(st[VcpuSlot.MMIO_RD], a0);
      assert.equal(st[VcpuSlot.MMIO_SIGNED], signed);
      assert.equal(m.pc, RAM_BASE + 8, "pc is past the load");
      m.cpu.completeMmio(0xfffff080);
      assert.equal(m.cpu.run(100), ExitReason.EBREAK);
      assert.equal(m.x(a0), want);
      assert.equal(m.x(a1), want);
    });
  }

  it("a load into x0 exits too, and completeMmio leaves x0 alone", () => {
    const m = new TestMachine();
    m.load(new Asm(RAM_BASE).li(a5, MMIO_BASE).i(I.lw(0, a5, 0), I.ebreak()));
    assert.equal(m.cpu.run(100), ExitReason.MMIO);
    assert.equal(m.state[VcpuSlot.MMIO_RD], 0);
    m.cpu.completeMmio(1234);
    assert.equal(m.state[0], 0);
  });

  for (const [name, enc, size, value] of [
    ["sb", I.sb, 1, 0xef],
    ["sh", I.sh, 2, 0xbeef],
    ["sw", I.sw, 4, 0xdeadbeef | 0],
  ] as const) {
    it(`${name} to a non-RAM address exits MMIO with the value`, () => {
      const m = new TestMachine();
      m.load(
        new Asm(RAM_BASE)
          .li(a5, MMIO_BASE)
          .li(a0, 0xdeadbeef)
          .i(enc(a0, a5, -4), I.ebreak()),
      );
      assert.equal(m.cpu.run(100), ExitReason.MMIO);
      assert.equal(m.state[VcpuSlot.MMIO_ADDR], MMIO_BASE - 4);
      assert.equal(m.state[VcpuSlot.MMIO_SIZE], size);
      assert.equal(m.state[VcpuSlot.MMIO_WRITE], 1);
      assert.equal(m.state[VcpuSlot.MMIO_VALUE], value);
      assert.equal(m.pc, RAM_BASE + 16);
      m.cpu.completeMmio(0); // no-op for stores
      assert.equal(m.cpu.run(100), ExitReason.EBREAK);
    });
  }
});

describe("misaligned accesses fault (not emulated)", () => {
  for (const [name, word, cause, tval] of [
    ["lw", I.lw(a0, a5, 1), Cause.MISALIGNED_LOAD, DATA_BASE + 1],
    ["lh", I.lh(a0, a5, 3), Cause.MISALIGNED_LOAD, DATA_BASE + 3],
    ["lhu", I.lhu(a0, a5, 1), Cause.MISALIGNED_LOAD, DATA_BASE + 1],
    ["sw", I.sw(a0, a5, 2), Cause.MISALIGNED_STORE, DATA_BASE + 2],
    ["sh", I.sh(a0, a5, 1), Cause.MISALIGNED_STORE, DATA_BASE + 1],
    ["amoadd.w", I.amoadd_w(a0, a1, a4), Cause.MISALIGNED_STORE, DATA_BASE + 2],
    ["sc.w", I.sc_w(a0, a1, a4), Cause.MISALIGNED_STORE, DATA_BASE + 2],
    ["lr.w", I.lr_w(a0, a4), Cause.MISALIGNED_LOAD, DATA_BASE + 2],
    ["lw to MMIO", I.lw(a0, a3, 2), Cause.MISALIGNED_LOAD, MMIO_BASE + 2],
  ] as const) {
    it(`${name}: FAULT with tval = the address, pc at it, not retired`, () => {
      const m = new TestMachine();
      m.load(new Asm(RAM_BASE).i(word));
      m.setX(a5, DATA_BASE);
      m.setX(a4, DATA_BASE + 2);
      m.setX(a3, MMIO_BASE);
      assert.equal(m.cpu.run(10), ExitReason.FAULT);
      assert.equal(m.state[VcpuSlot.EXIT_CAUSE], cause);
      assert.equal(m.state[VcpuSlot.EXIT_TVAL]! >>> 0, tval);
      assert.equal(m.pc, RAM_BASE);
      assert.equal(m.state[VcpuSlot.INSTRET_LO], 0);
    });
  }
});
