import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { addrAdd, fmtAddr, grantDmaAddr, grantRefOf, isGrantAddr, pageOffsetOf } from "./dma.js";

describe("grant-DMA addresses", () => {
  it("encode bit 63 | gref << 12 | offset and decode back", () => {
    assert.deepEqual(grantDmaAddr(0x123, 0x45), [0x8000_0000, 0x0012_3045]);
    assert.equal(fmtAddr(...grantDmaAddr(0x123, 0x45)), "0x8000000000123045");
    // A gref above 20 bits spills into the high word.
    const [hi, lo] = grantDmaAddr(0x0abc_def1, 0xfff);
    assert.equal(hi, 0x8000_00ab);
    assert.equal(lo, 0xcdef_1fff);
    assert.ok(isGrantAddr(hi));
    assert.equal(grantRefOf(hi, lo), 0x0abc_def1);
    assert.equal(pageOffsetOf(lo), 0xfff);
    assert.ok(!isGrantAddr(0));
    // A reference that cannot fit 32 bits is no grant at all.
    assert.equal(grantRefOf(0x8010_0000, 0), -1);
  });
  it("64-bit address addition carries and refuses to wrap", () => {
    assert.deepEqual(addrAdd(0, 0xffff_fff0, 0x20), [1, 0x10]);
    assert.equal(addrAdd(0xffff_ffff, 0xffff_fff0, 0x20), null);
  });
});
