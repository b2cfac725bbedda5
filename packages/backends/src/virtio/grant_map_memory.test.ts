import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GrantView } from "@xenon/hypervisor";
import { grantDmaAddr } from "./dma.js";
import { GrantMapMemory, type GrantMapper } from "./grant_map_memory.js";

/** A grant table of `granted` refs (writable unless listed read-only), counting calls and live handles. */
function mapper(granted: number[], readOnly: number[] = []) {
  const live = new Set<number>();
  const views = new Map<number, { view: Uint8Array; ro: boolean }>();
  let next = 1;
  const calls = { map: 0, mapMany: 0, unmap: 0, unmapMany: 0, publish: 0 };
  /** What the core did for unmapPublishSend, in order. */
  const steps: string[] = [];
  const one = (ref: number, ro: boolean): GrantView => {
    if (!granted.includes(ref)) return { status: -1, handle: 0, view: null };
    // Xen refuses write-pinning a read-only entry with GNTST_general_error.
    if (!ro && readOnly.includes(ref)) return { status: -1, handle: 0, view: null };
    const h = next++;
    live.add(h);
    const view = new Uint8Array(4096).fill(ref & 0xff);
    views.set(h, { view, ro });
    return { status: 0, handle: h, view };
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
    // As the core's unmap_publish.ts: unmaps, then the store through a live writable view, then the send.
    unmapPublishSend: async (hs, at, port, when) => {
      calls.publish++;
      for (const h of hs) steps.push(`unmap ${h}: ${live.delete(h) ? 0 : -4}`);
      let published = 0;
      if (at !== null) {
        const v = live.has(at[0]) ? views.get(at[0]) : undefined;
        if (v === undefined) published = -4;
        else if (v.ro) published = -8;
        else new DataView(v.view.buffer).setUint16(at[1], at[2], true);
        steps.push(`store ${at[2]} at ${at[1]}: ${published}`);
      }
      if (port < 0 || published !== 0) return { published, sent: port < 0 ? 0 : -22 };
      if (when !== null && at !== null) {
        const e = new DataView(views.get(when[0])!.view.buffer).getUint16(when[1], true);
        steps.push(`event ${e}`);
        if (((at[2] - e - 1) & 0xffff) >= ((at[2] - when[2]) & 0xffff)) return { published, sent: 0 };
      }
      steps.push(`send ${port}`);
      return { published, sent: 1 };
    },
  };
  return { m, live, calls, steps };
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

  it("releasePublish: the chain's unmaps, the index store through the ring's mapping, the send: one call, in that order", async () => {
    const { m, live, calls, steps } = mapper([10, 20, 40]);
    const mem = new GrantMapMemory(m, 5);
    const [rh, rl] = grantDmaAddr(40, 0);
    const ring = await mem.map(rh, rl, 4096, true);
    assert.ok(typeof ring !== "string");
    const [h1, l1] = grantDmaAddr(10);
    const [h2, l2] = grantDmaAddr(20);
    const rs = await mem.mapMany([
      { hi: h1, lo: l1, len: 4, writable: false },
      { hi: h2, lo: l2, len: 4, writable: true },
    ]);
    assert.ok(Array.isArray(rs));
    // The driver's used_event (here at offset 100 of the ring page) is read after the store.
    ring.setU16(100, 0x1233);
    const when = { region: ring, off: 100, old: 0x1233 };
    assert.equal(await mem.releasePublish(rs, ring, 2, 0x1234, 7, when), true);
    assert.equal(calls.publish, 1);
    assert.equal(calls.unmapMany + calls.unmap, 0);
    assert.deepEqual(steps, ["unmap 2: 0", "unmap 3: 0", "store 4660 at 2: 0", "event 4659", "send 7"]);
    assert.equal(ring.u16(2), 0x1234);
    assert.equal(live.size, 1, "only the ring stays mapped");
    // The driver did not ask (used_event behind the window): stored, not sent.
    steps.length = 0;
    assert.equal(await mem.releasePublish([], ring, 2, 0x1235, 7, { region: ring, off: 100, old: 0x1234 }), false);
    assert.deepEqual(steps, ["store 4661 at 2: 0", "event 4659"]);
    // A refused store (the ring's mapping is gone) is an error, and nothing is sent.
    await mem.release(ring);
    await assert.rejects(mem.releasePublish([], ring, 2, 1, 7, null));
    // Without the call: unmap, store through the view, and the caller decides (null).
    const plain = new GrantMapMemory({ mapGrant: m.mapGrant, unmapGrant: m.unmapGrant }, 5);
    const ring2 = await plain.map(rh, rl, 4096, true);
    assert.ok(typeof ring2 !== "string");
    assert.equal(await plain.releasePublish([], ring2, 4, 9, 7, null), null);
    assert.equal(ring2.u16(4), 9);
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
