import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameAllocator } from "./frame_allocator.js";
import { MachineMemory, MemoryError, PAGE_SIZE } from "./machine_memory.js";

const TiB = 2 ** 40;

test("a 12 TiB host costs only the frames it touches", () => {
  const before = process.memoryUsage().arrayBuffers;
  const mem = new MachineMemory({ bytes: 12 * TiB });
  assert.equal(mem.totalFrames, 3 * 2 ** 30);
  assert.equal(mem.materialisedBytes, 0);
  // Touch ten frames spread across the whole range, including the very last one.
  const touched = [0, 1, 2 ** 20, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 12345, 3 * 2 ** 30 - 1];
  for (const mfn of touched) {
    const c = mem.chunk(mfn);
    c.u8[mem.frameOffset(mfn)] = 0xa5;
  }
  // Frames 0 and 1 share a chunk.
  assert.equal(mem.materialisedChunks, touched.length - 1);
  assert.equal(mem.materialisedBytes, (touched.length - 1) * mem.chunkBytes);
  const grown = process.memoryUsage().arrayBuffers - before;
  assert.ok(grown < 64 * 2 ** 20, `grew by ${grown} bytes`);
  for (const mfn of touched) assert.equal(mem.chunk(mfn).u8[mem.frameOffset(mfn)], 0xa5);
});

test("MFNs beyond the host or beyond 32 bits are refused", () => {
  assert.throws(() => new MachineMemory({ bytes: 17 * TiB }), MemoryError);
  assert.throws(() => new MachineMemory({ bytes: 4095 }), MemoryError);
  const mem = new MachineMemory({ bytes: 1 << 20 });
  assert.throws(() => mem.chunk(256), /outside host memory/);
  assert.throws(() => mem.chunk(-1), /outside host memory/);
  assert.throws(() => mem.chunk(1.5), /outside host memory/);
});

test("adopted chunks alias the same bytes (how workers share RAM)", () => {
  const a = new MachineMemory({ bytes: 16 << 20 });
  const b = new MachineMemory({ bytes: 16 << 20 });
  a.chunk(700).i32[a.frameOffset(700) >> 2] = 42;
  for (const { index, buffer } of a.exportChunks()) b.adoptChunk(index, buffer);
  assert.equal(b.peekChunk(700)?.i32[b.frameOffset(700) >> 2], 42);
  assert.throws(() => b.adoptChunk(1, new SharedArrayBuffer(a.chunkBytes)), /already materialised/);
});

test("the allocator hands out each frame once, scrubs freed frames and respects reservations", () => {
  const mem = new MachineMemory({ bytes: 64 * PAGE_SIZE, chunkShift: 2 });
  const alloc = new FrameAllocator(mem);
  alloc.reserve(8, 8);
  const got = alloc.allocMany(56);
  assert.ok(got);
  assert.equal(new Set(got).size, 56);
  assert.ok(got.every((f) => f < 8 || f >= 16));
  assert.equal(alloc.alloc(), -1);
  assert.equal(alloc.allocMany(1), null);
  const f = got[20]!;
  mem.frameBytes(f).fill(0xee);
  alloc.free(f);
  assert.equal(alloc.alloc(), f);
  assert.ok(
    mem.frameBytes(f).every((b) => b === 0),
    "freed frame was scrubbed",
  );
  assert.throws(() => alloc.reserve(30, 4), /overlaps allocated/);
  assert.throws(() => alloc.free(10_000), /never allocated/);
});

test("a mirror asks the owner for chunks it lacks instead of inventing them", () => {
  const owner = new MachineMemory({ bytes: 16 << 20 });
  const asked: number[] = [];
  const mirror = new MachineMemory({
    bytes: 16 << 20,
    missingChunk: (index) => {
      asked.push(index);
      return owner.chunk(index << owner.chunkShift).buffer;
    },
  });
  owner.chunk(1000).u8[owner.frameOffset(1000)] = 7;
  assert.equal(mirror.chunk(1000).u8[mirror.frameOffset(1000)], 7);
  assert.equal(mirror.chunk(1001).u8[mirror.frameOffset(1001)], 0);
  assert.deepEqual(asked, [1000 >> 9]);
  const liar = new MachineMemory({ bytes: 16 << 20, missingChunk: () => new SharedArrayBuffer(8) });
  assert.throws(() => liar.chunk(0), /from the owner has 8 bytes/);
});
