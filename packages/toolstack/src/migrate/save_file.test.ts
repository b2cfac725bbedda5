import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MigrationStreamError } from "@xenon/hypervisor";
import {
  EmulatorId,
  encodeEmulatorContext,
  encodeLibxlHeader,
  encodeLibxlRecord,
  encodeXlHeader,
  LibxlRec,
  type OuterItem,
  OuterReader,
} from "./save_file.js";

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/), (b) => Number.parseInt(b, 16));
const cat = (...p: Uint8Array[]) => Uint8Array.from(p.flatMap((x) => [...x]));

// xl header: magic, byte order 0x01020304 (LE), mandatory = JSON config | stream v2, optional 0,
// optional data 4 + 2 bytes: u32 length 2, "{}".
const XL =
  "58 65 6e 20 73 61 76 65 64 20 64 6f 6d 61 69 6e 2c 20 78 6c 20 66 6f 72 6d 61 74 0a 20 00 20 0d" +
  " 04 03 02 01 03 00 00 00 00 00 00 00 06 00 00 00 02 00 00 00 7b 7d";
const LIBXL = "4c 69 62 78 6c 46 6d 74 00 00 00 02 00 00 00 00";
const LIBXC_CTX = "01 00 00 00 00 00 00 00";
const END = "00 00 00 00 00 00 00 00";

/** Drives a reader over `chunks`, standing in for the inner stream with `inner` bytes. */
function drive(chunks: readonly Uint8Array[], innerLen: number): { items: OuterItem[]; inner: number } {
  const r = new OuterReader();
  const items: OuterItem[] = [];
  let inner = -1;
  const take = (got: OuterItem[]) => {
    for (const it of got) {
      items.push(it);
      if (it.kind === "libxc") inner = 0;
    }
  };
  for (const c of chunks) {
    let rest = c;
    if (inner < 0) {
      take(r.push(rest));
      if (inner < 0) continue;
      rest = r.takeRest();
    }
    if (inner >= 0 && inner < innerLen) {
      const n = Math.min(innerLen - inner, rest.length);
      inner += n;
      rest = rest.subarray(n);
      if (inner === innerLen) take(r.resume(rest));
    } else if (rest.length > 0) take(r.push(rest));
  }
  r.finish();
  return { items, inner };
}

describe("xl save file and libxl stream (outer layers)", () => {
  const whole = cat(hex(XL), hex(LIBXL), hex(LIBXC_CTX), hex("aa bb cc"), hex(END));

  it("writes the xl header, libxl header and records byte for byte", () => {
    assert.deepEqual(encodeXlHeader("{}"), hex(XL));
    assert.deepEqual(encodeLibxlHeader(), hex(LIBXL));
    assert.deepEqual(encodeLibxlRecord(LibxlRec.LIBXC_CONTEXT), hex(LIBXC_CTX));
  });

  it("reads every split the same way", () => {
    const want = [{ kind: "config", json: "{}" }, { kind: "libxc" }, { kind: "end" }];
    assert.deepEqual(drive([whole], 3).items, want);
    for (let cut = 0; cut <= whole.length; cut++)
      assert.deepEqual(drive([whole.subarray(0, cut), whole.subarray(cut)], 3).items, want, `split ${cut}`);
  });

  it("refuses every truncated prefix", () => {
    for (let n = 0; n < whole.length; n++)
      assert.throws(() => drive([whole.subarray(0, n)], 3), MigrationStreamError, `prefix ${n}`);
  });

  it("refuses malformed outer layers with clear errors", () => {
    const bad = (b: Uint8Array, re: RegExp) => assert.throws(() => drive([b], 3), re);
    const mut = (at: number, v: number) => {
      const b = whole.slice();
      b[at] = v;
      return b;
    };
    bad(mut(0, 0x59), /bad magic/);
    bad(mut(32, 0x01), /byte order/);
    bad(mut(36, 0x07), /unknown mandatory flags 0x7/);
    bad(mut(36, 0x01), /legacy/);
    bad(mut(47, 0x01), /optional data of 16777222 bytes/);
    bad(mut(44, 0x02), /optional data of 2 bytes/);
    bad(mut(44, 0xff), /truncated/);
    bad(mut(48, 0x09), /config of 9 bytes/);
    bad(mut(54, 0x4d), /LibxlFmt/);
    bad(mut(65, 0x03), /version 3/);
    bad(mut(69, 0x01), /options 0x1/);
    bad(mut(70, 0x02), /libxl record type 2 .* not supported/);
    bad(mut(74, 0x01), /body/);
    bad(cat(whole, hex("00")), /after libxl's END/);
  });

  // EMULATOR_CONTEXT type 3, body 8 + 3 bytes: id 0x10, index 1, state "a b c", padded to 16.
  const EMU = "03 00 00 00 0b 00 00 00 10 00 00 00 01 00 00 00 61 62 63 00 00 00 00 00";

  it("carries a device model's state in EMULATOR_CONTEXT after the domain, in every split", () => {
    assert.deepEqual(encodeEmulatorContext(EmulatorId.XENON_VIRTIO, 1, hex("61 62 63")), hex(EMU));
    const withEmu = cat(hex(XL), hex(LIBXL), hex(LIBXC_CTX), hex("aa bb cc"), hex(EMU), hex(END));
    const want = [
      { kind: "config", json: "{}" },
      { kind: "libxc" },
      { kind: "emulator", id: 0x10, index: 1, data: hex("61 62 63") },
      { kind: "end" },
    ];
    for (let cut = 0; cut <= withEmu.length; cut++)
      assert.deepEqual(drive([withEmu.subarray(0, cut), withEmu.subarray(cut)], 3).items, want, `split ${cut}`);
    for (let n = 0; n < withEmu.length; n++)
      assert.throws(() => drive([withEmu.subarray(0, n)], 3), MigrationStreamError, `prefix ${n}`);
  });

  it("refuses an EMULATOR_CONTEXT before the domain or with a body that cannot hold its header", () => {
    assert.throws(
      () => drive([cat(hex(XL), hex(LIBXL), hex(EMU), hex(LIBXC_CTX), hex("aa bb cc"), hex(END))], 3),
      /EMULATOR_CONTEXT at offset 70 before the domain's LIBXC_CONTEXT/,
    );
    const short = hex("03 00 00 00 04 00 00 00 10 00 00 00 00 00 00 00");
    assert.throws(
      () => drive([cat(hex(XL), hex(LIBXL), hex(LIBXC_CTX), hex("aa bb cc"), short, hex(END))], 3),
      /EMULATOR_CONTEXT at offset 78 has a 4-byte body/,
    );
  });
});
