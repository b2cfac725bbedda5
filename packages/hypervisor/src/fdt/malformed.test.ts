/**
 * Hostile and broken blobs: every failure is an FdtError with the documented code, promptly,
 * without large allocations; nothing else is ever thrown.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FdtHeader, FdtToken } from "./constants.js";
import { FdtError, type FdtErrorCode } from "./errors.js";
import { readFdt, readFdtWithHeader } from "./reader.js";
import { assemble, dtc, dtcVersion, fixtureNames, fixturePath, prng, StructBuilder } from "./test_support.js";
import { Fdt } from "./tree.js";
import { str, u32 } from "./values.js";
import { writeFdt } from "./writer.js";

/** Runs `fn` and returns the FdtError code it throws; fails the test on success or other errors. */
function codeOf(fn: () => unknown): FdtErrorCode {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FdtError, `expected FdtError, got ${String(e)}`);
    return e.code;
  }
  assert.fail("expected an FdtError");
}

function sampleTree(): Fdt {
  const fdt = new Fdt(undefined, [{ address: 0x1000n, size: 0x2000n }]);
  fdt.root.set("#address-cells", u32(1)).set("#size-cells", u32(1)).set("compatible", str("xenon,test"));
  fdt.root.subnode("chosen").set("bootargs", str("console=hvc0"));
  fdt.root.subnode("memory@0").set("device_type", str("memory")).set("reg", u32(0, 0x1000));
  return fdt;
}

const sample = (): Uint8Array => writeFdt(sampleTree());

function patch32(blob: Uint8Array, at: number, value: number): Uint8Array {
  const out = blob.slice();
  new DataView(out.buffer).setUint32(at, value >>> 0);
  return out;
}

const field = (blob: Uint8Array, f: keyof typeof FdtHeader): number =>
  new DataView(blob.buffer, blob.byteOffset).getUint32(FdtHeader[f]);

/** "compatible\0x\0" as a strings block: name offsets 0 ("compatible") and 11 ("x"). */
const STR = "compatible\0x\0";
const good = () => new StructBuilder().begin("").prop(0, [1]).begin("a").prop(11).end().end();

describe("malformed blobs", () => {
  it("the hand-assembled baseline is valid", () => {
    const fdt = readFdt(assemble(good().finish(), STR));
    assert.deepEqual(fdt.root.get("compatible"), u32(1));
    assert.equal(fdt.getNode("/a").get("x")?.length, 0);
  });

  const cases: [string, () => Uint8Array, FdtErrorCode][] = [
    // Header.
    ["empty buffer", () => new Uint8Array(0), "FDT_ERR_TRUNCATED"],
    ["bad magic", () => patch32(sample(), 0, 0xd00dfeee), "FDT_ERR_BADMAGIC"],
    ["little-endian magic", () => patch32(sample(), 0, 0xedfe0dd0), "FDT_ERR_BADMAGIC"],
    ["version 15", () => patch32(sample(), FdtHeader.version, 15), "FDT_ERR_BADVERSION"],
    ["last_comp_version 18", () => patch32(sample(), FdtHeader.lastCompVersion, 18), "FDT_ERR_BADVERSION"],
    [
      "last_comp_version above version",
      () => patch32(patch32(sample(), FdtHeader.version, 16), FdtHeader.lastCompVersion, 17),
      "FDT_ERR_BADVERSION",
    ],
    [
      "totalsize beyond the buffer",
      () => patch32(sample(), FdtHeader.totalsize, sample().length + 1),
      "FDT_ERR_TRUNCATED",
    ],
    ["totalsize smaller than the header", () => patch32(sample(), FdtHeader.totalsize, 39), "FDT_ERR_BADLAYOUT"],
    [
      "totalsize cuts the strings block",
      () => patch32(sample(), FdtHeader.totalsize, sample().length - 1),
      "FDT_ERR_BADOFFSET",
    ],
    ["struct offset outside totalsize", () => patch32(sample(), FdtHeader.offDtStruct, 0x10000), "FDT_ERR_BADOFFSET"],
    ["struct offset inside the header", () => patch32(sample(), FdtHeader.offDtStruct, 16), "FDT_ERR_BADOFFSET"],
    [
      "struct size past totalsize",
      () =>
        patch32(
          sample(),
          FdtHeader.sizeDtStruct,
          field(sample(), "sizeDtStruct") + 4 + field(sample(), "sizeDtStrings"),
        ),
      "FDT_ERR_BADOFFSET",
    ],
    ["struct size 0xffffffff", () => patch32(sample(), FdtHeader.sizeDtStruct, 0xffffffff), "FDT_ERR_BADOFFSET"],
    [
      "misaligned struct offset",
      () => patch32(sample(), FdtHeader.offDtStruct, field(sample(), "offDtStruct") + 2),
      "FDT_ERR_ALIGNMENT",
    ],
    [
      "strings offset outside totalsize",
      () => patch32(sample(), FdtHeader.offDtStrings, 0xfffffff0),
      "FDT_ERR_BADOFFSET",
    ],
    ["strings size past totalsize", () => patch32(sample(), FdtHeader.sizeDtStrings, 0x1000), "FDT_ERR_BADOFFSET"],
    ["misaligned rsvmap", () => patch32(sample(), FdtHeader.offMemRsvmap, 44), "FDT_ERR_ALIGNMENT"],
    ["rsvmap inside the header", () => patch32(sample(), FdtHeader.offMemRsvmap, 8), "FDT_ERR_BADOFFSET"],
    [
      "rsvmap without terminator",
      () => {
        // Point the reservation block at the last 16 bytes, whose size word is non-zero.
        const b = sample();
        const out = new Uint8Array(Math.ceil(b.length / 8) * 8 + 16);
        out.set(b);
        out.fill(0xff, b.length);
        return patch32(patch32(out, FdtHeader.totalsize, out.length), FdtHeader.offMemRsvmap, out.length - 16);
      },
      "FDT_ERR_TRUNCATED",
    ],
    [
      // The terminator would now be read from inside the struct block.
      "rsvmap running into the struct block",
      () => patch32(sample(), FdtHeader.offMemRsvmap, field(sample(), "offDtStruct") - 8),
      "FDT_ERR_BADLAYOUT",
    ],
    [
      "strings block overlapping the struct block",
      () => patch32(sample(), FdtHeader.offDtStrings, field(sample(), "offDtStruct")),
      "FDT_ERR_BADLAYOUT",
    ],
    // Struct block.
    ["empty struct block", () => assemble([], STR), "FDT_ERR_TRUNCATED"],
    ["missing FDT_END", () => assemble(good(), STR), "FDT_ERR_BADSTRUCTURE"],
    ["unbalanced FDT_END_NODE", () => assemble(good().end().finish(), STR), "FDT_ERR_BADSTRUCTURE"],
    [
      "FDT_END with a node still open",
      () => assemble(new StructBuilder().begin("").begin("a").end().finish(), STR),
      "FDT_ERR_BADSTRUCTURE",
    ],
    [
      "struct block ends inside a node",
      () => assemble(new StructBuilder().begin("").begin("a"), STR),
      "FDT_ERR_TRUNCATED",
    ],
    ["FDT_END first", () => assemble(new StructBuilder().finish(), STR), "FDT_ERR_BADSTRUCTURE"],
    ["unknown token", () => assemble(good().raw(5).finish(), STR), "FDT_ERR_BADSTRUCTURE"],
    [
      "property outside any node",
      () => assemble(new StructBuilder().prop(0, [1]).begin("").end().finish(), STR),
      "FDT_ERR_BADSTRUCTURE",
    ],
    [
      "property after a child node",
      () => assemble(new StructBuilder().begin("").begin("a").end().prop(0, [1]).end().finish(), STR),
      "FDT_ERR_BADSTRUCTURE",
    ],
    [
      "two root nodes",
      () => assemble(new StructBuilder().begin("").end().begin("").end().finish(), STR),
      "FDT_ERR_BADSTRUCTURE",
    ],
    ["data after FDT_END", () => assemble(good().finish().nop(), STR), "FDT_ERR_BADSTRUCTURE"],
    [
      "property length past the block",
      () => assemble(new StructBuilder().begin("").prop(0, [1], 0xfffffff0).end().finish(), STR),
      "FDT_ERR_TRUNCATED",
    ],
    [
      // len 5 with one word of data: the padding swallows END_NODE, so FDT_END arrives early.
      "property length one byte too long",
      () => assemble(new StructBuilder().begin("").prop(0, [1], 5).end().finish(), STR),
      "FDT_ERR_BADSTRUCTURE",
    ],
    [
      "property header cut off",
      () => assemble(new StructBuilder().begin("").raw(FdtToken.PROP, 4), STR),
      "FDT_ERR_TRUNCATED",
    ],
    [
      "node name without NUL",
      () => assemble(new StructBuilder().begin("").raw(FdtToken.BEGIN_NODE, 0x61616161), STR),
      "FDT_ERR_TRUNCATED",
    ],
    // Names and string offsets.
    [
      "string offset outside the strings block",
      () => assemble(new StructBuilder().begin("").prop(STR.length).end().finish(), STR),
      "FDT_ERR_BADOFFSET",
    ],
    [
      "string offset 0xffffffff",
      () => assemble(new StructBuilder().begin("").prop(0xffffffff).end().finish(), STR),
      "FDT_ERR_BADOFFSET",
    ],
    [
      "unterminated property name",
      () => assemble(new StructBuilder().begin("").prop(0).end().finish(), "compatible"),
      "FDT_ERR_TRUNCATED",
    ],
    [
      "empty property name",
      () => assemble(new StructBuilder().begin("").prop(10).end().finish(), STR),
      "FDT_ERR_BADNAME",
    ],
    [
      "property name over 255 bytes",
      () => assemble(new StructBuilder().begin("").prop(0).end().finish(), `${"p".repeat(256)}\0`),
      "FDT_ERR_BADNAME",
    ],
    ["named root", () => assemble(new StructBuilder().begin("r").end().finish(), STR), "FDT_ERR_BADNAME"],
    [
      "empty child name",
      () => assemble(new StructBuilder().begin("").begin("").end().end().finish(), STR),
      "FDT_ERR_BADNAME",
    ],
    [
      "child name with a slash",
      () => assemble(new StructBuilder().begin("").begin("a/b").end().end().finish(), STR),
      "FDT_ERR_BADNAME",
    ],
    [
      "duplicate property",
      () => assemble(new StructBuilder().begin("").prop(11).prop(11).end().finish(), STR),
      "FDT_ERR_EXISTS",
    ],
    [
      "duplicate sibling",
      () => assemble(new StructBuilder().begin("").begin("a").end().begin("a").end().end().finish(), STR),
      "FDT_ERR_EXISTS",
    ],
    [
      "deep nesting bomb",
      () => {
        const s = new StructBuilder().begin("");
        for (let i = 0; i < 100_000; i++) s.begin("a");
        return assemble(s, STR);
      },
      "FDT_ERR_TOODEEP",
    ],
  ];

  for (const [name, make, code] of cases) {
    it(`${name} -> ${code}`, () => {
      assert.equal(
        codeOf(() => readFdt(make())),
        code,
      );
    });
  }

  it("accepts NOPs between tokens and nests up to maxDepth", () => {
    const s = new StructBuilder().nop().begin("").nop().prop(0, [1]).nop();
    for (let i = 0; i < 63; i++) s.begin("a").nop();
    for (let i = 0; i < 64; i++) s.end().nop();
    const blob = assemble(s.finish(), STR);
    assert.equal(readFdt(blob).root.get("compatible")?.length, 4);
    assert.equal(
      codeOf(() => readFdt(blob, { maxDepth: 63 })),
      "FDT_ERR_TOODEEP",
    );
  });

  it("reads version 16 blobs, whose struct block ends at FDT_END", () => {
    const blob = assemble(good().finish(), STR, { version: 16, sizeDtStruct: 0xdeadbeef });
    const { fdt, header } = readFdtWithHeader(blob);
    assert.equal(header.sizeDtStruct, good().finish().words.length * 4);
    assert.equal(fdt.getNode("/a").has("x"), true);
    assert.equal(
      codeOf(() => readFdt(assemble(good(), STR, { version: 16 }))),
      "FDT_ERR_BADSTRUCTURE",
    );
  });

  it("accepts a blob inside a larger buffer, and newer versions that stay compatible", () => {
    const b = sample();
    const big = new Uint8Array(b.length + 100);
    big.set(b);
    assert.deepEqual(readFdt(big), readFdt(b));
    assert.equal(readFdtWithHeader(patch32(b, FdtHeader.version, 18)).header.version, 18);
  });

  it("every proper prefix of a valid blob is FDT_ERR_TRUNCATED", () => {
    const blobs: Uint8Array[] = [sample()];
    if (dtcVersion()) {
      for (const f of fixtureNames(".dts")) blobs.push(dtc(["-I", "dts", "-O", "dtb", "-o", "-", fixturePath(f)]));
    }
    for (const blob of blobs) {
      readFdt(blob);
      for (let n = 0; n < blob.length; n++) {
        assert.equal(
          codeOf(() => readFdt(blob.subarray(0, n))),
          "FDT_ERR_TRUNCATED",
          `prefix of ${n} bytes`,
        );
      }
    }
  });

  it("random corruption yields a tree or an FdtError, nothing else", () => {
    const rand = prng(1234);
    const base = sample();
    const interesting = [0, 1, 3, 4, 8, 9, 16, 17, 0x7fffffff, 0x80000000, 0xfffffffc, 0xffffffff, base.length];
    let parsed = 0;
    for (let i = 0; i < 20_000; i++) {
      const b = base.slice();
      const dv = new DataView(b.buffer);
      const edits = 1 + Math.floor(rand() * 3);
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * (b.length - 3));
        const r = rand();
        if (r < 0.4) b[at] = Math.floor(rand() * 256);
        else if (r < 0.7) dv.setUint32(at & ~3, interesting[Math.floor(rand() * interesting.length)]!);
        else dv.setUint32(Math.floor(rand() * 10) * 4, Math.floor(rand() * (b.length + 64)));
      }
      const cut = rand() < 0.1 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
      try {
        readFdt(cut);
        parsed++;
      } catch (e) {
        if (!(e instanceof FdtError) || e.code === "FDT_ERR_INTERNAL") throw e;
      }
    }
    assert.ok(parsed > 0, "some corruptions (e.g. in values) still parse");
  });

  it("hostile lengths and offsets cost time and memory in proportion to the blob", () => {
    // 20k properties each naming a different offset into one long string: refused at the
    // first name longer than the limit instead of decoding 20k long suffixes.
    const s = new StructBuilder().begin("");
    for (let i = 0; i < 20_000; i++) s.prop(i);
    const blob = assemble(s.end().finish(), `${"n".repeat(100_000)}\0`);
    assert.equal(
      codeOf(() => readFdt(blob)),
      "FDT_ERR_BADNAME",
    );

    // A wide, flat tree of 50k nodes parses in one linear pass.
    const wide = new StructBuilder().begin("");
    for (let i = 0; i < 50_000; i++) wide.begin(`n${i}`).prop(11).end();
    const fdt = readFdt(assemble(wide.end().finish(), STR));
    assert.equal(fdt.root.children.length, 50_000);
  });
});
