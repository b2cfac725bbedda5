/** The tree API, value builders/decoders and the writer's own checks (no dtc needed). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FdtError, type FdtErrorCode } from "./errors.js";
import { readFdt, readFdtWithHeader } from "./reader.js";
import { Fdt, FdtNode } from "./tree.js";
import {
  bytes,
  cells,
  concat,
  decodeReg,
  empty,
  readCells,
  readString,
  readStringList,
  readU32,
  readU32Array,
  readU64,
  regValue,
  str,
  strList,
  u32,
  u64,
} from "./values.js";
import { writeFdt } from "./writer.js";

function codeOf(fn: () => unknown): FdtErrorCode {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof FdtError, `expected FdtError, got ${String(e)}`);
    return e.code;
  }
  assert.fail("expected an FdtError");
}

describe("property values", () => {
  it("builds cells, u64s, strings and bytes big-endian", () => {
    assert.deepEqual(u32(1, 0xffffffff), bytes([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]));
    assert.deepEqual(
      u64(0x1122334455667788n, 5),
      bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, 0, 0, 0, 0, 5]),
    );
    assert.deepEqual(cells(0x1_0000_0002n, 3), u32(0, 1, 2));
    assert.equal(cells(0, 0).length, 0);
    assert.deepEqual(str("ab"), bytes([0x61, 0x62, 0]));
    assert.deepEqual(strList("a", "", "b"), bytes([0x61, 0, 0, 0x62, 0]));
    assert.deepEqual(concat(str("a"), u32(1), empty()), bytes([0x61, 0, 0, 0, 0, 1]));
    assert.deepEqual(
      regValue(
        [
          { address: 0x80000000n, size: 0x1000n },
          { address: 0x1_0000_0000n, size: 1n },
        ],
        2,
        1,
      ),
      u32(0, 0x80000000, 0x1000, 1, 0, 1),
    );
  });

  it("refuses values that do not fit", () => {
    assert.equal(
      codeOf(() => u32(-1)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => u32(2 ** 32)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => u32(1.5)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => u64(1n << 64n)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => u64(2 ** 53)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => cells(1n << 32n, 1)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => cells(0, 5)),
      "FDT_ERR_BADNCELLS",
    );
    assert.equal(
      codeOf(() => str("a\0b")),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => bytes([256])),
      "FDT_ERR_BADVALUE",
    );
  });

  it("decodes strictly", () => {
    assert.equal(readU32(u32(42)), 42);
    assert.equal(
      codeOf(() => readU32(u32(1, 2))),
      "FDT_ERR_BADVALUE",
    );
    assert.deepEqual(readU32Array(u32(1, 2, 3)), [1, 2, 3]);
    assert.equal(
      codeOf(() => readU32Array(bytes([1, 2]))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(readU64(u64(0xfedcba9876543210n)), 0xfedcba9876543210n);
    assert.equal(
      codeOf(() => readU64(u32(1))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(readCells(u32(9, 0, 1, 2), 1, 3), 0x1_0000_0002n);
    assert.equal(
      codeOf(() => readCells(u32(1), 1, 1)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(readString(str("héllo")), "héllo");
    assert.equal(
      codeOf(() => readString(strList("a", "b"))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => readString(bytes([0x61]))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => readString(bytes([0xff, 0]))),
      "FDT_ERR_BADVALUE",
    );
    assert.deepEqual(readStringList(strList("a", "", "bc")), ["a", "", "bc"]);
    assert.equal(
      codeOf(() => readStringList(empty())),
      "FDT_ERR_BADVALUE",
    );
    assert.deepEqual(decodeReg(u32(1, 2, 3, 4, 5, 6), 2, 1), [
      { address: 0x1_0000_0002n, size: 3n },
      { address: 0x4_0000_0005n, size: 6n },
    ]);
    assert.deepEqual(decodeReg(u32(1, 2), 1, 0), [
      { address: 1n, size: 0n },
      { address: 2n, size: 0n },
    ]);
    assert.equal(
      codeOf(() => decodeReg(u32(1, 2, 3), 1, 1)),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => decodeReg(u32(1), 0, 1)),
      "FDT_ERR_BADNCELLS",
    );
  });
});

describe("tree", () => {
  const build = () => {
    const fdt = new Fdt();
    fdt.root.set("#address-cells", u32(1)).set("#size-cells", u32(1));
    fdt.root.subnode("aliases").set("console", str("/soc/uart@1000")).set("relative", str("soc"));
    const soc = fdt.root.subnode("soc").set("#address-cells", u32(1)).set("#size-cells", u32(1));
    soc.subnode("uart@1000").set("reg", u32(0x1000, 0x100)).set("phandle", u32(3));
    soc.subnode("uart").set("reg", u32(0x2000, 0x100));
    soc.subnode("timer@3000").set("reg", u32(0x3000, 0x10)).set("clocks", u32(3, 3));
    return fdt;
  };

  it("looks up paths: exact names first, then base names, aliases, extra slashes", () => {
    const fdt = build();
    assert.equal(fdt.findNode("/"), fdt.root);
    assert.equal(fdt.getNode("/soc/uart").get("reg")?.length, 8);
    assert.deepEqual(fdt.reg("/soc/uart"), [{ address: 0x2000n, size: 0x100n }]);
    assert.deepEqual(fdt.reg("/soc/timer"), [{ address: 0x3000n, size: 0x10n }]);
    assert.equal(fdt.findNode("//soc//uart@1000/"), fdt.getNode("console"));
    assert.equal(fdt.findNode("console/"), fdt.getNode("/soc/uart@1000"));
    assert.equal(fdt.findNode("/soc/uart@1"), undefined);
    assert.equal(fdt.findNode("/nope/uart"), undefined);
    assert.equal(
      codeOf(() => fdt.getNode("/nope")),
      "FDT_ERR_NOTFOUND",
    );
    assert.equal(
      codeOf(() => fdt.findNode("")),
      "FDT_ERR_BADPATH",
    );
    assert.equal(
      codeOf(() => fdt.findNode("serial9")),
      "FDT_ERR_BADPATH",
    );
    assert.equal(
      codeOf(() => fdt.findNode("relative")),
      "FDT_ERR_BADPATH",
    );
    assert.equal(
      codeOf(() => fdt.reg("/")),
      "FDT_ERR_BADPATH",
    );
    assert.equal(
      codeOf(() => fdt.reg("/soc")),
      "FDT_ERR_NOTFOUND",
    );
    assert.equal(fdt.pathOf(fdt.getNode("/soc/timer@3000")), "/soc/timer@3000");
    assert.equal(fdt.parentOf(fdt.getNode("/soc/timer@3000")), fdt.getNode("/soc"));
    assert.equal(fdt.pathOf(new FdtNode("x")), undefined);
    assert.deepEqual(
      [...fdt.walk()].map((e) => `${e.depth}:${e.path}`),
      ["0:/", "1:/aliases", "1:/soc", "2:/soc/uart@1000", "2:/soc/uart", "2:/soc/timer@3000"],
    );
  });

  it("resolves phandles and rejects bad ones", () => {
    const fdt = build();
    const timer = fdt.getNode("/soc/timer@3000");
    assert.deepEqual(fdt.resolvePhandles(timer, "clocks"), [
      fdt.getNode("/soc/uart@1000"),
      fdt.getNode("/soc/uart@1000"),
    ]);
    assert.equal(fdt.nodeByPhandle(4), undefined);
    timer.set("clocks", u32(4));
    assert.equal(
      codeOf(() => fdt.resolvePhandles(timer, "clocks")),
      "FDT_ERR_BADPHANDLE",
    );
    assert.equal(
      codeOf(() => fdt.resolvePhandles(timer, "nope")),
      "FDT_ERR_NOTFOUND",
    );
    timer.set("phandle", u32(3));
    assert.equal(
      codeOf(() => fdt.phandles()),
      "FDT_ERR_BADPHANDLE",
    );
    timer.set("phandle", u32(0xffffffff));
    assert.equal(
      codeOf(() => fdt.phandles()),
      "FDT_ERR_BADPHANDLE",
    );
    timer.set("phandle", u32(5)).set("linux,phandle", u32(6));
    assert.equal(
      codeOf(() => fdt.phandles()),
      "FDT_ERR_BADPHANDLE",
    );
    timer.set("linux,phandle", u32(5));
    assert.equal(fdt.nodeByPhandle(5), timer);
  });

  it("typed getters report the property name on malformed values", () => {
    const n = new FdtNode("n").set("x", u32(1, 2));
    assert.equal(n.getU32("absent"), undefined);
    assert.throws(() => n.getU32("x"), /FDT_ERR_BADVALUE: property x/);
    assert.deepEqual(n.getU32Array("x"), [1, 2]);
    assert.equal(n.getU64("x"), 0x1_0000_0002n);
    assert.equal(n.addressCells(), 2);
    assert.equal(n.sizeCells(), 1);
    n.set("#address-cells", u32(5));
    assert.equal(
      codeOf(() => n.addressCells()),
      "FDT_ERR_BADNCELLS",
    );
  });

  it("checks names and sibling uniqueness", () => {
    const root = new FdtNode("");
    assert.equal(
      codeOf(() => new FdtNode("a/b")),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => new FdtNode("a\0")),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => new FdtNode("π")),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => root.addChild(new FdtNode(""))),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => root.set("", empty())),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => root.set("p".repeat(256), empty())),
      "FDT_ERR_BADNAME",
    );
    root.addChild("a");
    assert.equal(
      codeOf(() => root.addChild("a")),
      "FDT_ERR_EXISTS",
    );
    assert.equal(root.subnode("a"), root.children[0]);
    assert.equal(root.removeChild("a"), true);
    assert.equal(root.removeChild("a"), false);
    assert.equal(
      codeOf(() => new Fdt(new FdtNode("x"))),
      "FDT_ERR_BADNAME",
    );
  });
});

describe("writer", () => {
  it("round-trips through the reader, including latin-1 names, and copies values", () => {
    const fdt = new Fdt(undefined, [{ address: 0xffff_ffff_ffff_f000n, size: 0x1000n }], 7);
    fdt.root.set("caf\u00e9", str("ok")).set("e", empty());
    fdt.root.subnode("n\u00ff@1").set("v", bytes([1, 2, 3, 4, 5]));
    const blob = writeFdt(fdt);
    const { fdt: back, header } = readFdtWithHeader(blob);
    assert.deepEqual(back, fdt);
    assert.equal(header.bootCpuidPhys, 7);
    assert.deepEqual(writeFdt(back), blob);
    // The tree owns its values: scribbling on the blob afterwards changes nothing.
    blob.fill(0);
    assert.deepEqual(back.getNode("/n\u00ff@1").get("v"), bytes([1, 2, 3, 4, 5]));
    // Even when the input is a Buffer (whose slice() would alias).
    const buf = Buffer.from(writeFdt(fdt));
    const fromBuf = readFdt(buf);
    buf.fill(0);
    assert.deepEqual(fromBuf.root.get("caf\u00e9"), str("ok"));
    assert.equal(Object.getPrototypeOf(fromBuf.root.get("e")), Uint8Array.prototype);
  });

  it("shares string-table tails the way dtc does", () => {
    const fdt = new Fdt();
    fdt.root.set("linux,phandle", u32(1)).set("phandle", u32(1)).set("le", empty()).set("ph", empty());
    const blob = writeFdt(fdt);
    const { header } = readFdtWithHeader(blob);
    // "linux,phandle\0" then "ph\0": "phandle" and "le" reuse tails, "ph" is not a tail.
    assert.equal(header.sizeDtStrings, 14 + 3);
    assert.equal(Buffer.from(blob.subarray(header.offDtStrings)).toString("latin1"), "linux,phandle\0ph\0");
  });

  it("guesses boot_cpuid_phys like dtc unless told", () => {
    const fdt = new Fdt();
    const cpus = fdt.root.subnode("cpus");
    assert.equal(readFdtWithHeader(writeFdt(fdt)).header.bootCpuidPhys, 0);
    cpus.subnode("cpu@5").set("reg", u32(5));
    cpus.subnode("cpu@1").set("reg", u32(1));
    assert.equal(readFdtWithHeader(writeFdt(fdt)).header.bootCpuidPhys, 5);
    cpus.children[0]!.set("reg", u32(0, 5));
    assert.equal(readFdtWithHeader(writeFdt(fdt)).header.bootCpuidPhys, 0);
    fdt.bootCpuidPhys = 9;
    assert.equal(readFdtWithHeader(writeFdt(fdt)).header.bootCpuidPhys, 9);
  });

  it("refuses trees it cannot represent", () => {
    const cyclic = new Fdt();
    const a = cyclic.root.subnode("a");
    a.children.push(a);
    assert.equal(
      codeOf(() => writeFdt(cyclic)),
      "FDT_ERR_BADSTRUCTURE",
    );
    const dup = new Fdt();
    dup.root.children.push(new FdtNode("x"), new FdtNode("x"));
    assert.equal(
      codeOf(() => writeFdt(dup)),
      "FDT_ERR_EXISTS",
    );
    const badProp = new Fdt();
    badProp.root.properties.set("", empty());
    assert.equal(
      codeOf(() => writeFdt(badProp)),
      "FDT_ERR_BADNAME",
    );
    assert.equal(
      codeOf(() => writeFdt(new Fdt(undefined, [{ address: 0n, size: 0n }]))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => writeFdt(new Fdt(undefined, [{ address: -1n, size: 1n }]))),
      "FDT_ERR_BADVALUE",
    );
    assert.equal(
      codeOf(() => writeFdt(new Fdt(undefined, [], 2 ** 32))),
      "FDT_ERR_BADVALUE",
    );
  });

  it("writes deep trees without recursion", () => {
    const fdt = new Fdt();
    let n = fdt.root;
    for (let i = 0; i < 20_000; i++) n = n.subnode("d");
    const blob = writeFdt(fdt);
    assert.equal(
      codeOf(() => readFdt(blob)),
      "FDT_ERR_TOODEEP",
    );
    const back = readFdt(blob, { maxDepth: 20_001 });
    assert.equal(back.findNode(`/${"d/".repeat(20_000)}`)?.children.length, 0);
    assert.equal(n.children.length, 0);
  });
});
