import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IOMMU_PAGE_2M, IOMMU_PAGE_4K, Iommu, IommuContext } from "../iommu/iommu.js";
import { FrameAllocator } from "../memory/frame_allocator.js";
import { MachineMemory } from "../memory/machine_memory.js";
import { DMA_ENGINE_ID, DMA_MAX_LEN, DmaCtrl, DmaEngine, DmaReg, DmaStatus } from "./dma_engine.js";

function setup() {
  const memory = new MachineMemory({ bytes: 64 * 2 ** 20 });
  const allocator = new FrameAllocator(memory);
  allocator.reserve(0x1000, 0x400); // 4 MiB at 16 MiB: the "guest's" frames
  const ctx = new IommuContext(
    memory,
    () => allocator.alloc(),
    (mfn) => allocator.free(mfn),
  );
  const iommu = new Iommu(memory);
  iommu.attach(3, ctx);
  let irqs = 0;
  const dma = new DmaEngine(iommu, 3, () => irqs++);
  // IOVA 0x80000000.. = mfn 0x1000.. (2 MiB superpage), and one 4 KiB page at 0x80400000.
  ctx.map(0x8000_0000, 0x1000, IOMMU_PAGE_2M, { read: true, write: true });
  ctx.map(0x8040_0000, 0x1200, IOMMU_PAGE_4K, { read: true, write: false });
  const start = (src: number, dst: number, len: number, irq = true) => {
    dma.write(DmaReg.SRC_LO, 4, src);
    dma.write(DmaReg.SRC_HI, 4, 0);
    dma.write(DmaReg.DST_LO, 4, dst);
    dma.write(DmaReg.DST_HI, 4, 0);
    dma.write(DmaReg.LEN, 4, len);
    dma.write(DmaReg.CTRL, 4, DmaCtrl.START | (irq ? DmaCtrl.IRQ_EN : 0));
    return dma.read(DmaReg.STATUS, 4);
  };
  return { memory, iommu, dma, start, irqs: () => irqs };
}

describe("DMA engine (xenon,dma-engine) behind the IOMMU", () => {
  it("identifies itself and copies through the IOMMU, raising its interrupt", () => {
    const { memory, dma, start, irqs } = setup();
    assert.equal(dma.read(DmaReg.ID, 4), DMA_ENGINE_ID);
    memory.frameBytes(0x1000).set([1, 2], 0xffe); // the source crosses into the next frame
    memory.frameBytes(0x1001).set([3, 4, 5, 6], 0);
    assert.equal(start(0x8000_0ffe, 0x8010_0000, 8), DmaStatus.DONE);
    assert.deepEqual([...memory.frameBytes(0x1100).subarray(0, 8)], [1, 2, 3, 4, 5, 6, 0, 0]);
    assert.equal(dma.read(DmaReg.DONE, 4), 1);
    assert.equal(irqs(), 1);
    dma.write(DmaReg.STATUS, 4, 0);
    assert.equal(dma.read(DmaReg.STATUS, 4), DmaStatus.IDLE);
  });

  it("a transfer touching anything unmapped or read-only moves nothing and latches the IOVA", () => {
    const { memory, iommu, dma, start } = setup();
    memory.frameBytes(0x1000).fill(0xaa, 0, 16);
    assert.equal(start(0x8000_0000, 0x0000_1000, 16), DmaStatus.FAULT, "destination not mapped");
    assert.equal(dma.read(DmaReg.FAULT_LO, 4), 0x1000);
    assert.equal(start(0x8000_0000, 0x8040_0000, 16), DmaStatus.FAULT, "destination read-only");
    assert.equal(dma.read(DmaReg.FAULT_LO, 4), 0x8040_0000);
    assert.deepEqual([...memory.frameBytes(0x1200).subarray(0, 16)], new Array(16).fill(0));
    assert.equal(start(0x801f_ff00, 0x8000_0000, 64), DmaStatus.DONE, "inside the superpage");
    assert.equal(start(0x801f_fff0, 0x8000_0000, 64), DmaStatus.FAULT, "past the superpage's end");
    assert.equal(dma.read(DmaReg.FAULT_LO, 4) >>> 0, 0x8020_0000);
    assert.equal(start(0x8040_0000, 0x8000_0000, 64), DmaStatus.DONE, "a read-only page is readable");
    assert.equal(start(0x8040_0ff0, 0x8000_0000, 64), DmaStatus.FAULT, "runs past the 4 KiB page");
    assert.equal(dma.read(DmaReg.FAULT_LO, 4) >>> 0, 0x8040_1000, "the first byte refused");
    assert.ok(iommu.faultCount >= 3);
  });

  it("refuses empty and oversized lengths; IRQ_EN off means no interrupt", () => {
    const { start, irqs } = setup();
    assert.equal(start(0x8000_0000, 0x8010_0000, 0, false), DmaStatus.BAD_LENGTH);
    assert.equal(start(0x8000_0000, 0x8010_0000, DMA_MAX_LEN + 1, false), DmaStatus.BAD_LENGTH);
    assert.equal(irqs(), 0);
  });

  it("getState / setState / reset round-trip the registers", () => {
    const { dma, start } = setup();
    start(0x8000_0000, 0x8010_0000, 32);
    const s = dma.getState();
    const { dma: other } = setup();
    other.setState(structuredClone(s));
    for (const r of Object.values(DmaReg))
      assert.equal(other.read(r, 4), dma.read(r, 4), `register 0x${r.toString(16)}`);
    other.reset();
    assert.equal(other.read(DmaReg.DONE, 4), 0);
    assert.throws(() => other.setState({ ...s, version: 2 as 1 }), /version 2/);
  });
});
