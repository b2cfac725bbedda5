import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DmaCtrl, DmaReg, DmaStatus } from "@xenon/hw";
import { P2mType } from "../p2m/types.js";
import { err } from "../public/errno.js";
import { makeDomain, makeHost, ramGpa } from "../test_support.js";

const WIN = 0x1000_0000;
const PORT = 30;

/** A host with one DMA engine and a domain owning, besides 16 ordinary pages, 2 MiB of contiguous, aligned RAM. */
function setup() {
  const host = makeHost(4096 * 4); // 64 MiB
  const { hv, allocator } = host;
  hv.passthrough.addDevice("/soc/dma@10000000", "xenon,dma-engine", 0x1000_0000, 0x1000);
  const d = makeDomain(hv, { maxPages: 1024, p2mPoolPages: 32 }, 16);
  const other = makeDomain(hv, {}, 4);
  allocator.reserve(0x2000, 512); // mfns 0x2000.. (2 MiB aligned) for d's superpage
  const SUPER_GFN = 0xa0000; // gpa 0xa0000000
  for (let i = 0; i < 512; i++) assert.equal(d.p2m.set(SUPER_GFN + i, 0x2000 + i, P2mType.ram_rw), 0);
  const reg = (off: number, v?: number) =>
    v === undefined
      ? hv.passthrough.access(d.domid, WIN + off, 4, false, 0)
      : hv.passthrough.access(d.domid, WIN + off, 4, true, v);
  const copy = (src: number, dst: number, len: number) => {
    reg(DmaReg.SRC_LO, src);
    reg(DmaReg.DST_LO, dst);
    reg(DmaReg.LEN, len);
    reg(DmaReg.CTRL, DmaCtrl.START | DmaCtrl.IRQ_EN);
    return reg(DmaReg.STATUS);
  };
  const frameOf = (dom: typeof d, gpa: number) => host.memory.frameBytes(dom.p2m.get(Math.floor(gpa / 4096))!.mfn);
  return { ...host, d, other, SUPER_GFN, reg, copy, frameOf };
}

describe("device passthrough behind the IOMMU", () => {
  it("maps the domain's RAM with superpages where it can, and 4 KiB pages elsewhere", () => {
    const { hv, d } = setup();
    assert.equal(hv.passthrough.iommuPages(d.domid), null, "no tables before a device is assigned");
    assert.equal(hv.passthrough.assign(d.domid, "/soc/dma@10000000", WIN, PORT), 0);
    assert.deepEqual(hv.passthrough.iommuPages(d.domid), { pages4k: 16, pages2m: 1, pages1g: 0 });
    assert.deepEqual(hv.ioreq.mmioRanges(d.domid), [[WIN, WIN + 0x1000]], "its registers exit to the core");
  });

  it("the device's DMA reaches the domain's own RAM, raises its pirq port, and nothing else", () => {
    const { hv, d, other, copy, frameOf, pendingPorts, SUPER_GFN } = setup();
    assert.equal(hv.passthrough.assign(d.domid, "/soc/dma@10000000", WIN, PORT), 0);
    frameOf(d, ramGpa(1)).set([9, 8, 7, 6], 0x10);
    const superGpa = SUPER_GFN * 4096 + 0x1234;
    assert.equal(copy(ramGpa(1, 0x10), superGpa, 4), DmaStatus.DONE);
    assert.deepEqual([...frameOf(d, superGpa).subarray(0x234, 0x238)], [9, 8, 7, 6]);
    assert.ok(
      pendingPorts.some(([dom, , port]) => dom === d.domid && port === PORT),
      "interrupt on its port",
    );
    // The other domain's RAM is at the same guest-physical addresses in its own space: the
    // device's IOVAs are d's, so it reaches d's page, never other's.
    frameOf(other, ramGpa(0)).fill(0x55, 0, 64);
    assert.equal(copy(ramGpa(1, 0x10), 0x4000_0000, 4), DmaStatus.FAULT, "a hole in d's space");
    assert.equal(hv.passthrough.access(d.domid, WIN + DmaReg.FAULT_LO, 4, false, 0), 0x4000_0000);
    assert.deepEqual([...frameOf(other, ramGpa(0)).subarray(0, 64)], new Array(64).fill(0x55));
    assert.equal(hv.passthrough.list()[0]!.dmaFaults, 1);
  });

  it("follows the P2M: a page given back splits its superpage and stops being reachable", () => {
    const { hv, d, copy, SUPER_GFN } = setup();
    assert.equal(hv.passthrough.assign(d.domid, "/soc/dma@10000000", WIN, PORT), 0);
    const gone = SUPER_GFN + 7;
    assert.notEqual(d.p2m.clear(gone), null);
    assert.deepEqual(hv.passthrough.iommuPages(d.domid), { pages4k: 16 + 511, pages2m: 0, pages1g: 0 });
    assert.equal(copy(ramGpa(0), gone * 4096, 16), DmaStatus.FAULT);
    assert.equal(copy(ramGpa(0), (gone + 1) * 4096, 16), DmaStatus.DONE, "its neighbours stay mapped");
    assert.equal(d.p2m.set(gone, 0x2007, P2mType.ram_ro), 0);
    assert.equal(copy(ramGpa(0), gone * 4096, 16), DmaStatus.FAULT, "read-only RAM is not a DMA target");
    assert.equal(copy(gone * 4096, ramGpa(0), 16), DmaStatus.DONE, "but it can be read");
  });

  it("refuses what cannot be assigned, and destruction takes the device back", () => {
    const { hv, d, other } = setup();
    const path = "/soc/dma@10000000";
    assert.equal(hv.passthrough.assign(d.domid, "/soc/none", WIN, PORT), err("ENODEV"));
    assert.equal(hv.passthrough.assign(d.domid, path, ramGpa(0), PORT), err("EINVAL"), "window over RAM");
    assert.equal(hv.passthrough.assign(d.domid, path, WIN + 1, PORT), err("EINVAL"), "unaligned window");
    assert.equal(hv.passthrough.assign(999, path, WIN, PORT), err("ESRCH"));
    assert.equal(hv.passthrough.assign(d.domid, path, WIN, PORT), 0);
    assert.equal(hv.passthrough.assign(other.domid, path, WIN, PORT), err("EBUSY"), "one domain at a time");
    assert.throws(() => hv.passthrough.addDevice(path, "xenon,dma-engine", 0, 0x1000), /already/);
    assert.throws(() => hv.passthrough.addDevice("/soc/x", "acme,frobnicator", 0, 0x1000), /no device model/);
    hv.domains.destroy(d.domid);
    assert.equal(hv.passthrough.list()[0]!.domid, null);
    assert.equal(hv.passthrough.iommuPages(d.domid), null);
    assert.equal(hv.passthrough.assign(other.domid, path, WIN, PORT), 0, "free again");
  });
});
