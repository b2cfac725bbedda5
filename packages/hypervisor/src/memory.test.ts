import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { P2M_NONE, p2mEntryMfn } from "@xenon/hw";
import {
  addToPhysmap,
  currentReservation,
  decreaseReservation,
  maximumReservation,
  populatePhysmap,
  removeFromPhysmap,
} from "./memory.js";
import { GUEST_RAM_BASE_GFN, P2mType } from "./p2m/types.js";
import { Errno } from "./public/errno.js";
import { XenMapSpace } from "./public/memory.js";
import { makeDomain, makeHost } from "./test_support.js";

const RAM = GUEST_RAM_BASE_GFN;

describe("memory_op semantics", () => {
  it("populate_physmap maps fresh zeroed RAM, order 0 and small orders", () => {
    const { hv, allocator } = makeHost();
    const d = makeDomain(hv, { maxPages: 64 }, 0);
    const start = allocator.allocatedFrames;
    assert.equal(populatePhysmap(d, [RAM, RAM + 1, RAM + 7], 0), 3);
    assert.equal(populatePhysmap(d, [RAM + 16, RAM + 32], 2), 2);
    assert.equal(currentReservation(d), 11);
    assert.equal(allocator.allocatedFrames - start, 11);
    for (const gfn of [RAM + 16, RAM + 17, RAM + 18, RAM + 19, RAM + 35]) assert.notEqual(d.p2m.lookup(gfn), P2M_NONE);
    assert.equal(d.p2m.lookup(RAM + 20), P2M_NONE);
    assert.equal(d.p2m.get(RAM)!.type, P2mType.ram_rw);
    const page = d.guest.copyFromGuest(RAM * 4096, 4096);
    assert.ok(page instanceof Uint8Array && page.every((b) => b === 0));
  });

  it("stops at the first bad extent and reports the count so far", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, { maxPages: 6 }, 0);
    assert.equal(populatePhysmap(d, [RAM, RAM + 1, RAM + 1, RAM + 2], 0), 2, "occupied gfn");
    assert.equal(populatePhysmap(d, [RAM + 8, RAM + 9], 1), 1, "misaligned extent");
    assert.equal(populatePhysmap(d, [RAM + 12, RAM + 16], 1), 1, "past max_pages (4 + 2 = 6, then 8 > 6)");
    assert.equal(currentReservation(d), 6);
    assert.equal(maximumReservation(d), 6);
    assert.equal(populatePhysmap(d, [RAM + 20], 0), 0);
    for (const order of [-1, 10, 1.5, Number.NaN]) assert.equal(populatePhysmap(d, [RAM + 64], order), 0);
    for (const gpfn of [-1, 2 ** 20, 2 ** 40, Number.NaN]) assert.equal(populatePhysmap(d, [gpfn], 0), 0);
  });

  it("decrease_reservation frees frames back to the host", () => {
    const { hv, allocator } = makeHost();
    const d = makeDomain(hv, {}, 8);
    const start = allocator.allocatedFrames;
    assert.equal(decreaseReservation(d, [RAM + 2, RAM + 3], 0), 2);
    assert.equal(allocator.allocatedFrames, start - 2);
    assert.equal(d.p2m.lookup(RAM + 2), P2M_NONE);
    assert.equal(decreaseReservation(d, [RAM + 4, RAM + 2, RAM + 5], 0), 1, "stops at a hole");
    assert.equal(decreaseReservation(d, [RAM + 6], 1), 1, "order 1: RAM+6, RAM+7");
    assert.equal(decreaseReservation(d, [RAM], 2), 0, "extent not entirely RAM");
    assert.equal(currentReservation(d), 3);
  });

  it("add_to_physmap places shared_info and grant frames, moving them on a second call", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, { maxGrantFrames: 4 }, 4);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x38000), 0);
    assert.equal(p2mEntryMfn(d.p2m.lookup(0x38000)), d.sharedInfoMfn);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x38000), 0, "idempotent");
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x39000), 0);
    assert.equal(d.p2m.lookup(0x38000), P2M_NONE, "old location removed");
    assert.equal(d.sharedInfoGfn, 0x39000);
    // Over a RAM page (what Linux on Arm does): the RAM page is released.
    const tot = currentReservation(d);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, RAM + 1), 0);
    assert.equal(currentReservation(d), tot - 1);
    assert.equal(p2mEntryMfn(d.p2m.lookup(RAM + 1)), d.sharedInfoMfn);
    // shared_info is not RAM the guest can give back.
    assert.equal(decreaseReservation(d, [RAM + 1], 0), 0);

    assert.equal(addToPhysmap(d, XenMapSpace.grant_table, 2, 0x38010), 0);
    assert.equal(d.grantTable.nrFrames, 3, "grew to idx + 1");
    assert.equal(p2mEntryMfn(d.p2m.lookup(0x38010)), d.grantTable.frames[2]);
    assert.equal(addToPhysmap(d, XenMapSpace.grant_table, 2, 0x38011), 0);
    assert.equal(d.p2m.lookup(0x38010), P2M_NONE);
    assert.equal(addToPhysmap(d, XenMapSpace.grant_table, 4, 0x38012), -Errno.EINVAL, "beyond max frames");
    assert.equal(addToPhysmap(d, XenMapSpace.grant_table, 0x80000000, 0x38012), -Errno.EINVAL, "v2 status frame");
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 1, 0x38012), -Errno.EINVAL);
    assert.equal(addToPhysmap(d, XenMapSpace.gmfn, 0, 0x38012), -Errno.ENOSYS);
    assert.equal(addToPhysmap(d, 99, 0, 0x38012), -Errno.ENOSYS);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 2 ** 20), -Errno.EINVAL);
    d.p2m.set(0x38020, 5000, P2mType.grant_map_rw);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x38020), -Errno.EBUSY);

    assert.equal(removeFromPhysmap(d, 0x38011), 0);
    assert.equal(d.grantTable.frameGfn[2], -1);
    assert.equal(removeFromPhysmap(d, 0x38011), -Errno.ENOENT);
    assert.equal(removeFromPhysmap(d, 0x38020), -Errno.EINVAL);
    assert.equal(removeFromPhysmap(d, RAM + 2), 0);
    assert.equal(currentReservation(d), tot - 2);
  });

  it("add_to_physmap with an exhausted P2M pool is -ENOMEM and leaves the old mapping", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, { p2mPoolPages: 5 }, 4);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, RAM + 8), 0);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x38000), -Errno.ENOMEM);
    assert.equal(p2mEntryMfn(d.p2m.lookup(RAM + 8)), d.sharedInfoMfn);
  });
});

describe("static memory (xen,static-mem)", () => {
  it("a static domain's RAM comes only from its frames, and freed frames go back to it", () => {
    const { hv, allocator } = makeHost();
    const frames = [4000, 4001, 4002, 4003];
    allocator.reserve(4000, 4);
    const d = makeDomain(hv, { maxPages: 16 }, 0);
    d.pages.assignStatic(frames, (mfn) => hv.memory.scrub(mfn));
    const heapBefore = allocator.allocatedFrames;
    assert.equal(populatePhysmap(d, [RAM, RAM + 1, RAM + 2, RAM + 3, RAM + 4], 0), 4, "four frames, no more");
    assert.equal(allocator.allocatedFrames, heapBefore, "nothing from the heap");
    for (let i = 0; i < 4; i++) assert.ok(frames.includes(d.p2m.get(RAM + i)!.mfn));
    assert.ok(d.guest.copyToGuest(RAM * 4096, new Uint8Array([1, 2, 3])) === 0);
    const mfn0 = d.p2m.get(RAM)!.mfn;
    assert.equal(decreaseReservation(d, [RAM], 0), 1);
    assert.equal(d.pages.staticFreePages, 1);
    assert.equal(populatePhysmap(d, [RAM + 9], 0), 1, "the freed frame is reused");
    assert.equal(d.p2m.get(RAM + 9)!.mfn, mfn0);
    assert.deepEqual(d.guest.copyFromGuest((RAM + 9) * 4096, 3), new Uint8Array(3), "scrubbed");
  });

  it("a direct-mapped domain gets gfn == mfn and nothing else", () => {
    const { hv, allocator } = makeHost(RAM + 16);
    allocator.reserve(RAM, 4);
    const d = makeDomain(hv, { maxPages: 16, flags: { directMap: true } }, 0);
    d.pages.assignStatic([RAM, RAM + 1, RAM + 2, RAM + 3], (mfn) => hv.memory.scrub(mfn));
    assert.equal(populatePhysmap(d, [RAM + 4], 0), 0, "not one of its frames");
    assert.equal(populatePhysmap(d, [RAM, RAM + 2], 1), 2);
    for (let i = 0; i < 4; i++) assert.equal(d.p2m.get(RAM + i)!.mfn, RAM + i);
  });
});

describe("foreign mappings (XENMAPSPACE_gmfn_foreign)", () => {
  const HOLE = 0x60000;

  it("a privileged domain maps another's RAM, writes through it, and unmapping drops the reference", () => {
    const { hv } = makeHost();
    const ctl = makeDomain(hv, { flags: { privileged: true } }, 4);
    const d = makeDomain(hv, {}, 4);
    const res = hv.hypercalls.addToPhysmapBatch(
      ctl.domid,
      0x7ff0,
      XenMapSpace.gmfn_foreign,
      d.domid,
      [RAM, RAM + 1],
      [HOLE, HOLE + 1],
    );
    assert.deepEqual(res, [0, 0]);
    const mfn = d.p2m.get(RAM)!.mfn;
    assert.equal(ctl.p2m.get(HOLE)!.mfn, mfn);
    assert.equal(ctl.p2m.get(HOLE)!.type, P2mType.foreign_rw);
    assert.equal(d.pages.refCount(mfn), 1);
    // Hypercall buffers never live in foreign pages (Xen's p2m_is_ram rule): check the frame itself.
    assert.equal(ctl.guest.writeU32(HOLE * 4096 + 8, 0xfeedbeef), -Errno.EFAULT);
    assert.equal(d.guest.writeU32(RAM * 4096 + 8, 0xfeedbeef), 0);
    const c = hv.memory.chunk(ctl.p2m.get(HOLE)!.mfn);
    assert.equal(c.u8[hv.memory.frameOffset(mfn) + 8], 0xef);
    assert.equal(removeFromPhysmap(ctl, HOLE), 0);
    assert.equal(ctl.p2m.get(HOLE), null);
    assert.equal(d.pages.refCount(mfn), 0);
    assert.equal(ctl.foreignMaps.size, 1);
  });

  it("per-entry errors: not RAM, own domain, busy gpfn; whole-call errors: unprivileged, no such domain, other spaces", () => {
    const { hv } = makeHost();
    const ctl = makeDomain(hv, { flags: { privileged: true } }, 4);
    const d = makeDomain(hv, {}, 4);
    const call = (
      caller: number,
      fd: number,
      idxs: number[],
      gpfns: number[],
      space: number = XenMapSpace.gmfn_foreign,
    ) => hv.hypercalls.addToPhysmapBatch(caller, 0x7ff0, space, fd, idxs, gpfns);
    assert.deepEqual(call(ctl.domid, d.domid, [RAM + 100, RAM, -1], [HOLE, RAM, HOLE + 2]), [
      -Errno.EINVAL,
      0,
      -Errno.EINVAL,
    ]);
    assert.equal(ctl.p2m.get(RAM)!.type, P2mType.foreign_rw, "it replaced ctl's own RAM page there");
    assert.deepEqual(call(ctl.domid, ctl.domid, [RAM], [HOLE]), [-Errno.EINVAL]);
    assert.equal(addToPhysmap(ctl, XenMapSpace.shared_info, 0, HOLE + 5), 0);
    assert.deepEqual(call(ctl.domid, d.domid, [RAM + 1], [HOLE + 5]), [-Errno.EBUSY]);
    assert.equal(call(d.domid, ctl.domid, [RAM], [HOLE]), -Errno.EPERM);
    assert.equal(call(ctl.domid, 999, [RAM], [HOLE]), -Errno.ESRCH);
    assert.equal(call(ctl.domid, d.domid, [RAM], [HOLE], XenMapSpace.gmfn), -Errno.ENOSYS);
    assert.equal(call(ctl.domid, d.domid, [RAM], []), -Errno.EINVAL);
  });

  it("a mapped frame outlives its owner's destruction until the mapper lets go", () => {
    const { hv, allocator } = makeHost();
    const ctl = makeDomain(hv, { flags: { privileged: true } }, 4);
    const d = makeDomain(hv, {}, 4);
    assert.deepEqual(
      hv.hypercalls.addToPhysmapBatch(ctl.domid, 0x7ff0, XenMapSpace.gmfn_foreign, d.domid, [RAM], [HOLE]),
      [0],
    );
    const mfn = d.p2m.get(RAM)!.mfn;
    assert.equal(d.guest.writeU32(RAM * 4096, 0x1234), 0);
    assert.equal(hv.domains.destroy(d.domid), 0);
    assert.notEqual(hv.domains.get(d.domid), undefined, "held back by the foreign reference");
    const c = hv.memory.chunk(mfn);
    assert.equal(c.u8[hv.memory.frameOffset(mfn)], 0x34, "the frame was not scrubbed or reused");
    const free = allocator.freeFrames;
    assert.equal(removeFromPhysmap(ctl, HOLE), 0);
    assert.equal(hv.domains.get(d.domid), undefined, "its last frame went: the domain is released");
    assert.equal(allocator.freeFrames, free + 1);
    assert.equal(ctl.p2m.get(HOLE), null);
  });

  it("destroying the mapper drops its references", () => {
    const { hv } = makeHost();
    const ctl = makeDomain(hv, { flags: { privileged: true } }, 4);
    const d = makeDomain(hv, {}, 4);
    hv.hypercalls.addToPhysmapBatch(
      ctl.domid,
      0x7ff0,
      XenMapSpace.gmfn_foreign,
      d.domid,
      [RAM, RAM + 1],
      [HOLE, HOLE + 1],
    );
    const mfn = d.p2m.get(RAM)!.mfn;
    assert.equal(hv.domains.destroy(ctl.domid), 0);
    assert.equal(d.pages.refCount(mfn), 0);
  });
});

describe("foreign views (a TypeScript domain's gmfn_foreign map)", () => {
  it("only a privileged domain may map another's RAM; the view is the frame, referenced until unmapped or the mapper dies", () => {
    const { hv } = makeHost();
    const dd = makeDomain(hv, {}, 4);
    const priv = makeDomain(hv, { flags: { privileged: true } }, 4);
    const g = makeDomain(hv, {}, 4);
    assert.equal(hv.hypercalls.mapForeignView(dd.domid, g.domid, RAM, true), -Errno.EPERM);
    const r = hv.hypercalls.mapForeignView(priv.domid, g.domid, RAM + 1, true);
    assert.ok(typeof r === "object");
    const mfn = g.p2m.get(RAM + 1)!.mfn;
    assert.equal(g.pages.refCount(mfn), 1);
    r.view[8] = 0xab;
    assert.equal(g.guest.readU8((RAM + 1) * 4096 + 8), 0xab, "the view is the guest's frame");
    assert.equal(hv.hypercalls.mapForeignView(priv.domid, g.domid, 0x10, false), -Errno.EINVAL, "not RAM");
    assert.equal(hv.hypercalls.mapForeignView(priv.domid, priv.domid, RAM, false), -Errno.EINVAL, "own RAM");
    assert.equal(hv.hypercalls.mapForeignView(priv.domid, 999, RAM, false), -Errno.ESRCH);
    assert.equal(hv.hypercalls.unmapForeignView(priv.domid, r.handle), 0);
    assert.equal(g.pages.refCount(mfn), 0);
    assert.equal(hv.hypercalls.unmapForeignView(priv.domid, r.handle), -Errno.EINVAL, "handle gone");
    const again = hv.hypercalls.mapForeignView(priv.domid, g.domid, RAM, false);
    assert.ok(typeof again === "object");
    hv.domains.destroy(priv.domid);
    assert.equal(g.pages.refCount(g.p2m.get(RAM)!.mfn), 0, "the mapper's death drops its views");
  });
});
