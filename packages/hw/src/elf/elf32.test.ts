import assert from "node:assert/strict";
import { test } from "node:test";
import { ElfError, parseElf32 } from "./elf32.js";

/** A minimal valid RV32 ET_EXEC with one PT_LOAD holding 8 bytes at 0x80000000, memsz 16. */
function tinyElf(): Uint8Array {
  const f = new Uint8Array(52 + 32 + 8);
  const dv = new DataView(f.buffer);
  f.set([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1], 0);
  dv.setUint16(16, 2, true); // ET_EXEC
  dv.setUint16(18, 243, true); // EM_RISCV
  dv.setUint32(20, 1, true);
  dv.setUint32(24, 0x80000004, true); // entry
  dv.setUint32(28, 52, true); // phoff
  dv.setUint32(36, 1, true); // e_flags RVC
  dv.setUint16(40, 52, true);
  dv.setUint16(42, 32, true);
  dv.setUint16(44, 1, true);
  dv.setUint32(52, 1, true); // PT_LOAD
  dv.setUint32(56, 84, true); // offset
  dv.setUint32(60, 0x80000000, true);
  dv.setUint32(64, 0x80000000, true);
  dv.setUint32(68, 8, true); // filesz
  dv.setUint32(72, 16, true); // memsz
  dv.setUint32(76, 5, true); // R|X
  f.set([1, 2, 3, 4, 5, 6, 7, 8], 84);
  return f;
}

test("parses a minimal RV32 executable", () => {
  const img = parseElf32(tinyElf());
  assert.equal(img.entry, 0x80000004);
  assert.equal(img.flags, 1);
  assert.equal(img.segments.length, 1);
  const s = img.segments[0]!;
  assert.equal(s.vaddr, 0x80000000);
  assert.equal(s.memsz, 16);
  assert.deepEqual([...s.data], [1, 2, 3, 4, 5, 6, 7, 8]);
});

test("every truncated prefix is refused with an ElfError", () => {
  const f = tinyElf();
  for (let n = 0; n < f.length; n++) {
    assert.throws(() => parseElf32(f.subarray(0, n)), ElfError, `prefix ${n}`);
  }
});

test("each malformed header field is named", () => {
  const cases: Array<[string, (dv: DataView, f: Uint8Array) => void, RegExp]> = [
    [
      "magic",
      (_dv, f) => {
        f[1] = 0;
      },
      /magic/,
    ],
    [
      "class",
      (_dv, f) => {
        f[4] = 2;
      },
      /32-bit/,
    ],
    [
      "endianness",
      (_dv, f) => {
        f[5] = 2;
      },
      /little-endian/,
    ],
    ["type", (dv) => dv.setUint16(16, 3, true), /ET_EXEC/],
    ["machine", (dv) => dv.setUint16(18, 62, true), /RISC-V/],
    ["filesz > memsz", (dv) => dv.setUint32(68, 32, true), /p_filesz/],
    ["data past end", (dv) => dv.setUint32(56, 1000, true), /past the end/],
    ["wrap", (dv) => dv.setUint32(60, 0xfffffffc, true), /wraps/],
    ["phnum", (dv) => dv.setUint16(44, 1000, true), /e_phnum/],
  ];
  for (const [name, mutate, re] of cases) {
    const f = tinyElf();
    mutate(new DataView(f.buffer), f);
    assert.throws(() => parseElf32(f), re, name);
  }
});
