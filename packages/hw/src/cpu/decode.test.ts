import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compressedTable, expandCompressed } from "./compressed.js";
import { COMPRESSED, classify, compressedMatches, INSTRUCTIONS, lookupInstruction } from "./decode_table.js";
import { compressedDecodeTable, OP_COMPRESSED, OP_MASK, Op, opOf } from "./predecode.js";
import { C, I } from "./test_asm.js";

/** Deterministic PRNG (xorshift32) so failures reproduce. */
function rng(seed: number): () => number {
  let s = seed | 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

const hex = (v: number) => `0x${(v >>> 0).toString(16).padStart(8, "0")}`;

describe("32-bit decode table vs the switch decoder", () => {
  it("has no two entries that can match the same word", () => {
    for (const a of INSTRUCTIONS) {
      for (const b of INSTRUCTIONS) {
        if (a === b) continue;
        const common = (a.mask & b.mask) >>> 0;
        assert.notEqual((a.match & common) >>> 0, (b.match & common) >>> 0, `${a.name} overlaps ${b.name}`);
      }
    }
  });

  for (const spec of INSTRUCTIONS) {
    it(`classifies random ${spec.name} encodings as ${spec.name}`, () => {
      const rand = rng(spec.match ^ 0x9e3779b9);
      for (let k = 0; k < 2000; k++) {
        const w = ((rand() & ~spec.mask) | spec.match) >>> 0;
        assert.equal(classify(w), spec.name, hex(w));
        assert.equal(lookupInstruction(w), spec.name, hex(w));
      }
    });
  }

  it("calls random words that match no entry illegal", () => {
    const rand = rng(12345);
    let illegal = 0;
    for (let k = 0; k < 200_000; k++) {
      const w = (rand() | 3) >>> 0;
      const expect = lookupInstruction(w);
      assert.equal(classify(w), expect, hex(w));
      if (expect === "illegal") illegal++;
    }
    assert.ok(illegal > 100_000, "most random words are illegal");
  });

  it("agrees with the table on near-misses (legal encodings with a few bits flipped)", () => {
    const rand = rng(777);
    for (const spec of INSTRUCTIONS) {
      for (let k = 0; k < 500; k++) {
        let w = ((rand() & ~spec.mask) | spec.match) >>> 0;
        const flips = 1 + (rand() % 3);
        for (let f = 0; f < flips; f++) w = (w ^ (1 << (rand() % 32))) >>> 0;
        w = (w | 3) >>> 0;
        assert.equal(classify(w), lookupInstruction(w), `${spec.name} mutated: ${hex(w)}`);
      }
    }
  });

  it("treats words with low bits != 11 as not 32-bit instructions", () => {
    assert.equal(classify(0x00000013 & ~3), "illegal");
    assert.equal(classify(0), "illegal");
    assert.equal(classify(0xffffffff), "illegal");
  });
});

describe("compressed expansion", () => {
  it("expands exactly the parcels the compressed table calls legal, to the expected base instruction", () => {
    const tbl = compressedTable();
    const counts = new Map<string, number>();
    for (let p = 0; p < 65536; p++) {
      if ((p & 3) === 3) {
        assert.equal(tbl[p], 0);
        continue;
      }
      const matches = COMPRESSED.filter((s) => compressedMatches(s, p));
      assert.ok(matches.length <= 1, `parcel ${p.toString(16)} matches ${matches.map((m) => m.name)}`);
      const e = expandCompressed(p);
      assert.equal(tbl[p], e);
      if (matches.length === 0) {
        assert.equal(e, 0, `parcel 0x${p.toString(16)} should be illegal`);
      } else {
        const spec = matches[0]!;
        assert.notEqual(e, 0, `${spec.name} 0x${p.toString(16)} should expand`);
        assert.equal(classify(e), spec.base, `${spec.name} 0x${p.toString(16)} -> ${hex(e)}`);
        counts.set(spec.name, (counts.get(spec.name) ?? 0) + 1);
      }
    }
    for (const s of COMPRESSED) assert.ok((counts.get(s.name) ?? 0) > 0, `${s.name} never matched`);
  });

  it("marks the reserved and FPU forms illegal", () => {
    const tbl = compressedTable();
    assert.equal(tbl[0x0000], 0, "all-zero parcel");
    assert.equal(tbl[0x6101], 0, "c.addi16sp 0");
    assert.equal(tbl[0x6081], 0, "c.lui x1, 0");
    assert.equal(tbl[0x4002 | (0 << 7)], 0, "c.lwsp x0");
    assert.equal(tbl[0x8002], 0, "c.jr x0");
    assert.equal(tbl[C.srli(8, 1) | 0x1000], 0, "c.srli shamt[5]=1 on RV32");
    assert.equal(tbl[C.slli(1, 1) | 0x1000], 0, "c.slli shamt[5]=1 on RV32");
    assert.equal(tbl[0x9c01], 0, "c.subw (RV64)");
    assert.equal(tbl[0x2002], 0, "c.fldsp");
    assert.equal(tbl[0x6000], 0, "c.flw");
  });

  it("matches the 32-bit encoders operand for operand", () => {
    const rand = rng(4242);
    const nz = () => 1 + (rand() % 31);
    const cr = () => 8 + (rand() % 8);
    const simm = (bits: number, scale = 1) => (((rand() % (1 << bits)) << (32 - bits)) >> (32 - bits)) * scale;
    const uimm = (bits: number, scale: number) => (rand() % (1 << bits)) * scale;
    for (let k = 0; k < 300; k++) {
      const rd = nz();
      const rs = nz();
      const p = cr();
      const q = cr();
      const i6 = simm(6);
      const sh = rand() % 32;
      const pairs: Array<[string, number, number]> = [
        ["c.addi", C.addi(rd, i6), I.addi(rd, rd, i6)],
        ["c.li", C.li(rd, i6), I.addi(rd, 0, i6)],
        ["c.andi", C.andi(p, i6), I.andi(p, p, i6)],
        ["c.srli", C.srli(p, sh), I.srli(p, p, sh)],
        ["c.srai", C.srai(p, sh), I.srai(p, p, sh)],
        ["c.slli", C.slli(rd, sh), I.slli(rd, rd, sh)],
        ["c.sub", C.sub(p, q), I.sub(p, p, q)],
        ["c.xor", C.xor(p, q), I.xor(p, p, q)],
        ["c.or", C.or(p, q), I.or(p, p, q)],
        ["c.and", C.and(p, q), I.and(p, p, q)],
        ["c.mv", C.mv(rd, rs), I.add(rd, 0, rs)],
        ["c.add", C.add(rd, rs), I.add(rd, rd, rs)],
        ["c.jr", C.jr(rs), I.jalr(0, rs, 0)],
        ["c.jalr", C.jalr(rs), I.jalr(1, rs, 0)],
        ["c.ebreak", C.ebreak(), I.ebreak()],
        ["c.nop", C.nop(), I.addi(0, 0, 0)],
      ];
      const lw = uimm(5, 4);
      pairs.push(["c.lw", C.lw(p, q, lw), I.lw(p, q, lw)], ["c.sw", C.sw(p, q, lw), I.sw(p, q, lw)]);
      const sp = uimm(6, 4);
      pairs.push(["c.lwsp", C.lwsp(rd, sp), I.lw(rd, 2, sp)], ["c.swsp", C.swsp(rs, sp), I.sw(rs, 2, sp)]);
      const n4 = 4 * (1 + (rand() % 255));
      pairs.push(["c.addi4spn", C.addi4spn(p, n4), I.addi(p, 2, n4)]);
      let s16 = simm(6, 16);
      if (s16 === 0) s16 = 16;
      pairs.push(["c.addi16sp", C.addi16sp(s16), I.addi(2, 2, s16)]);
      let lu = simm(6);
      if (lu === 0) lu = 1;
      const luiRd = rd === 2 ? 3 : rd;
      pairs.push(["c.lui", C.lui(luiRd, lu), I.lui(luiRd, lu & 0xfffff)]);
      const j = simm(11, 2);
      pairs.push(["c.j", C.j(j), I.jal(0, j)], ["c.jal", C.jal(j), I.jal(1, j)]);
      const bo = simm(8, 2);
      pairs.push(["c.beqz", C.beqz(p, bo), I.beq(p, 0, bo)], ["c.bnez", C.bnez(p, bo), I.bne(p, 0, bo)]);
      for (const [name, parcel, word] of pairs) {
        assert.equal(hex(expandCompressed(parcel)), hex(word), `${name} parcel 0x${parcel.toString(16)}`);
      }
    }
  });
});

describe("predecode (the interpreter's decoder) vs the table", () => {
  /** The Op id the interpreter should use for a table name (AMO and SYSTEM decode further later). */
  function expectedOp(name: string, inst: number): number {
    if (name === "illegal") {
      const opcode = inst & 0x7f;
      return opcode === 0x2f ? Op.AMO : opcode === 0x73 ? Op.SYSTEM : Op.ILLEGAL;
    }
    if (name.endsWith(".w") && name !== "fence.i") return Op.AMO;
    if (["ecall", "ebreak", "sret", "wfi"].includes(name) || name.startsWith("csr")) return Op.SYSTEM;
    return Op[name.toUpperCase().replace(".", "_") as keyof typeof Op];
  }

  it("maps every table entry's encodings to its operation", () => {
    const rand = rng(31337);
    for (const spec of INSTRUCTIONS) {
      for (let k = 0; k < 300; k++) {
        const w = ((rand() & ~spec.mask) | spec.match) >>> 0;
        assert.equal(opOf(w), expectedOp(spec.name, w), `${spec.name} ${hex(w)}`);
      }
    }
  });

  it("maps random words like the table does", () => {
    const rand = rng(4711);
    for (let k = 0; k < 100_000; k++) {
      const w = (rand() | 3) >>> 0;
      assert.equal(opOf(w), expectedOp(lookupInstruction(w), w), hex(w));
    }
  });

  it("the compressed decode table holds the decoded expansion of every parcel", () => {
    const t = compressedDecodeTable();
    const e = compressedTable();
    for (let p = 0; p < 65536; p++) {
      if ((p & 3) === 3) continue;
      const d = t[p]!;
      assert.equal(d & OP_COMPRESSED, OP_COMPRESSED);
      if (e[p] === 0) assert.equal(d & OP_MASK, Op.ILLEGAL);
      else assert.equal(d, (e[p]! & ~0x7f) | opOf(e[p]!) | OP_COMPRESSED | 0);
    }
  });
});
