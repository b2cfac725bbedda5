import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GrantView } from "@xenon/hypervisor";
import { grantDmaAddr } from "./dma.js";
import { GrantMapMemory, type GrantMapper } from "./grant_map_memory.js";

/** A grant table of `granted` refs (writable unless listed read-only), counting calls and live handles. */
function mapper(granted: number[], readOnly: number[] = []) {
  const live = new Set<number>();
  let next = 1;
  const calls = { map: 0, mapMany: 0, unmap: 0, unmapMany: 0 };
  const one = (ref: number, ro: boolean): GrantView => {
    if (!granted.includes(ref)) return { status: -1, handle: 0, view: null };
    // Xen refuses write-pinning a read-only entry with GNTST_general_error.
    if (!ro && readOnly.includes(ref)) return { status: -1, handle: 0, view: null };
    const h = next++;
    live.add(h);
    return { status: 0, handle: h, view: new Uint8Array(4096).fill(ref & 0xff) };
  };
  const m: Required<GrantMapper> = {
    mapGrant: async (_d, ref, ro) => {
      calls.map++;
      return one(ref, ro);
    },
    unmapGrant: async (h) => {
      calls.unmap++;
      return live.delete(h) ? 0 : -4;
    },
    mapGrants: async (_d, refs, ro) => {
      calls.mapMany++;
      return refs.map((r, i) => one(r, ro[i]!));
    },
    unmapGrants: async (hs) => {
      calls.unmapMany++;
      return hs.map((h) => (live.delete(h) ? 0 : -4));
    },
  };
  return { m, live, calls };
}

describe("GrantMapMemory.mapMany: a whole chain in one batched map", () => {
  it("maps three buffers (four pages) with one call and gives them back with one", async () => {
    const { m, live, calls } = mapper([10, 11, 20, 30]);
    const mem = new GrantMapMemory(m, 5);
    const [h1, l1] = grantDmaAddr(10, 4000);
    const [h2, l2] = grantDmaAddr(20);
    const [h3, l3] = grantDmaAddr(30, 7);
    const rs = await mem.mapMany([
      { hi: h1, lo: l1, len: 200, writable: false },
      { hi: h2, lo: l2, len: 4096, writable: false },
      { hi: h3, lo: l3, len: 1, writable: true },
    ]);
    assert.ok(Array.isArray(rs));
    assert.equal(calls.mapMany, 1);
    assert.equal(calls.map, 0);
    assert.equal(live.size, 4);
    assert.deepEqual(
      rs.map((r) => r.length),
      [200, 4096, 1],
    );
    assert.equal(rs[0]!.u8(0), 10);
    assert.equal(rs[0]!.u8(199), 11, "the range runs on into the next ref");
    assert.equal(rs[2]!.writable, true);
    await mem.releaseMany(rs);
    assert.equal(calls.unmapMany, 1);
    assert.equal(live.size, 0);
  });

  it("a refused entry (ungranted, or read-only for a writable buffer) fails the whole chain and unmaps the rest", async () => {
    const { m, live } = mapper([10, 20], [20]);
    const mem = new GrantMapMemory(m, 5);
    const [h1, l1] = grantDmaAddr(10);
    const [h2, l2] = grantDmaAddr(20);
    const ungranted = await mem.mapMany([
      { hi: h1, lo: l1, len: 8192, writable: false },
      { hi: h2, lo: l2, len: 4, writable: false },
    ]);
    assert.equal(ungranted, "grant 11 of d5: map status -1 (GNTST_general_error)");
    assert.equal(live.size, 0);
    const ro = await mem.mapMany([
      { hi: h1, lo: l1, len: 4, writable: false },
      { hi: h2, lo: l2, len: 4, writable: true },
    ]);
    assert.equal(ro, "grant 20 of d5: map status -1 (GNTST_general_error)");
    assert.equal(live.size, 0);
    assert.equal(
      await mem.mapMany([{ hi: 0, lo: 0x8000_0000, len: 4, writable: false }]),
      "buffer 0: not a grant address (foreign mapping is not allowed)",
    );
  });

  it("without the batched calls it maps range by range", async () => {
    const { m, live, calls } = mapper([10, 20]);
    const mem = new GrantMapMemory({ mapGrant: m.mapGrant, unmapGrant: m.unmapGrant }, 5);
    const [h1, l1] = grantDmaAddr(10);
    const [h2, l2] = grantDmaAddr(20);
    const rs = await mem.mapMany([
      { hi: h1, lo: l1, len: 4, writable: false },
      { hi: h2, lo: l2, len: 4, writable: true },
    ]);
    assert.ok(Array.isArray(rs));
    assert.equal(calls.map, 2);
    await mem.releaseMany(rs);
    assert.equal(live.size, 0);
  });
});
