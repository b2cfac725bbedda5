import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FrameAllocator } from "../memory/frame_allocator.js";
import { MachineMemory } from "../memory/machine_memory.js";
import { IOMMU_PAGE_1G, IOMMU_PAGE_2M, IOMMU_PAGE_4K, Iommu, IommuContext, IommuError } from "./iommu.js";

/** A 2 GiB host (lazily materialised); tables come from the allocator's low frames. */
function setup() {
  const memory = new MachineMemory({ bytes: 2 ** 31 });
  const allocator = new FrameAllocator(memory);
  allocator.reserve(0x40000, 0x40000); // 1 GiB at 1 GiB, for the superpage targets
  const ctx = new IommuContext(
    memory,
    () => allocator.alloc(),
    (mfn) => allocator.free(mfn),
  );
  const iommu = new Iommu(memory, 4);
  iommu.attach(7, ctx);
  return { memory, allocator, ctx, iommu };
}

describe("IOMMU", () => {
  it("walks 4 KiB, 2 MiB and 1 GiB mappings to the right frame and offset", () => {
    const { ctx } = setup();
    ctx.map(0x1000, 0x345, IOMMU_PAGE_4K, { read: true, write: true });
    ctx.map(0x40200000, 0x40200, IOMMU_PAGE_2M, { read: true, write: false });
    ctx.map(0x80000000, 0x40000, IOMMU_PAGE_1G, { read: true, write: true });
    assert.deepEqual(ctx.translate(0x1abc, "write"), { mfn: 0x345, offset: 0xabc, pageSize: IOMMU_PAGE_4K });
    assert.deepEqual(ctx.translate(0x40200000 + 0x12345, "read"), {
      mfn: 0x40200 + 0x12,
      offset: 0x345,
      pageSize: IOMMU_PAGE_2M,
    });
    assert.deepEqual(ctx.translate(0x80000000 + 0x3fffffff, "read"), {
      mfn: 0x40000 + 0x3ffff,
      offset: 0xfff,
      pageSize: IOMMU_PAGE_1G,
    });
    assert.equal(ctx.translate(0x2000, "read"), "not-mapped");
    assert.equal(ctx.translate(0x40200000, "write"), "permission", "read-only superpage");
    assert.equal(ctx.translate(2 ** 39, "read"), "not-mapped", "outside the 39-bit space");
    // root + L1 + L0 for the 4 KiB page, + L1 for the 2 MiB one; the 1 GiB page needs no table.
    assert.equal(ctx.tableFrames, 4);
  });

  it("the PTEs are Sv39's: V/R/W low bits, frame number from bit 10, 512 entries per level", () => {
    const { ctx, memory } = setup();
    ctx.map(0x80000000, 0x40000, IOMMU_PAGE_1G, { read: true, write: true });
    const root = memory.frameBytes(ctx.root);
    const pte = new DataView(root.buffer, root.byteOffset + 2 * 8, 8); // IOVA bits 38..30 = 2
    assert.equal(pte.getBigUint64(0, true), (0x40000n << 10n) | 0b111n);
  });

  it("refuses misaligned, overlapping and write-only mappings", () => {
    const { ctx } = setup();
    assert.throws(() => ctx.map(0x1800, 1, IOMMU_PAGE_4K, { read: true, write: true }), IommuError);
    assert.throws(
      () => ctx.map(0x200000, 0x40001, IOMMU_PAGE_2M, { read: true, write: true }),
      /not a 2097152-aligned/,
    );
    assert.throws(() => ctx.map(0x1000, 1, IOMMU_PAGE_4K, { read: false, write: true }), /write-only/);
    ctx.map(0x200000, 0x40200, IOMMU_PAGE_2M, { read: true, write: true });
    assert.throws(
      () => ctx.map(0x201000, 5, IOMMU_PAGE_4K, { read: true, write: true }),
      /inside an existing superpage/,
    );
    assert.throws(() => ctx.map(0x200000, 0x40400, IOMMU_PAGE_2M, { read: true, write: true }), /already mapped/);
    assert.throws(() => ctx.map(0, 0, 8192 as never, { read: true, write: true }), /page size/);
  });

  it("unmap revokes at once and frees the tables it emptied", () => {
    const { ctx, allocator } = setup();
    const before = allocator.allocatedFrames;
    ctx.map(0x5000, 0x99, IOMMU_PAGE_4K, { read: true, write: true });
    assert.equal(allocator.allocatedFrames, before + 2);
    assert.equal(ctx.unmap(0x5000, IOMMU_PAGE_4K), true);
    assert.equal(ctx.translate(0x5000, "read"), "not-mapped");
    assert.equal(allocator.allocatedFrames, before, "L1 and L0 freed, root kept");
    assert.equal(ctx.unmap(0x5000, IOMMU_PAGE_4K), false);
  });

  it("DMA crosses pages through the tables; a fault anywhere moves nothing and is logged", () => {
    const { iommu, ctx, memory } = setup();
    ctx.map(0x10000, 0x200, IOMMU_PAGE_4K, { read: true, write: true });
    ctx.map(0x11000, 0x300, IOMMU_PAGE_4K, { read: true, write: true }); // not contiguous in mfns
    const data = Uint8Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(iommu.dmaWrite(7, 0x10fd0, data), true);
    assert.deepEqual(memory.frameBytes(0x200).subarray(0xfd0, 0x1000), data.subarray(0, 48));
    assert.deepEqual(memory.frameBytes(0x300).subarray(0, 52), data.subarray(48));
    assert.deepEqual(iommu.dmaRead(7, 0x10fd0, 100), data);

    assert.equal(iommu.dmaWrite(7, 0x11ff0, new Uint8Array(32).fill(0xee)), false, "runs into an unmapped page");
    assert.ok(
      memory
        .frameBytes(0x300)
        .subarray(0xff0)
        .every((b) => b === 0),
      "nothing written",
    );
    assert.deepEqual(iommu.faults.at(-1), { device: 7, iova: 0x12000, access: "write", reason: "not-mapped" });
    assert.equal(iommu.dmaRead(9, 0x10000, 4), null);
    assert.equal(iommu.faults.at(-1)!.reason, "no-context");
    for (let i = 0; i < 5; i++) iommu.dmaRead(7, 0x900000, 1);
    assert.equal(iommu.faults.length, 4, "the log is bounded");
    assert.equal(iommu.faultCount, 7);
  });
});
