import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { P2M_LOGDIRTY, P2M_NONE, P2M_R, P2M_W, P2M_X, p2mEntryFlags, p2mEntryMfn } from "@xenon/hw";
import { populatePhysmap, populateRange } from "../memory.js";
import { Errno } from "../public/errno.js";
import { makeDomain, makeHost, ramGpa, rng } from "../test_support.js";
import { P2M_ROOT_PAGES, P2mReader } from "./p2m.js";
import { GUEST_RAM_BASE_GFN, MAX_GFN, P2mType } from "./types.js";

const RAM = GUEST_RAM_BASE_GFN;

describe("P2M radix table", () => {
  it("maps each type with its rights; holes and bad gfns are P2M_NONE", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 0);
    const cases: Array<[number, number]> = [
      [P2mType.ram_rw, P2M_R | P2M_W | P2M_X],
      [P2mType.ram_ro, P2M_R | P2M_X],
      [P2mType.mmio_direct, P2M_R | P2M_W],
      [P2mType.grant_map_rw, P2M_R | P2M_W],
      [P2mType.grant_map_ro, P2M_R],
      [P2mType.foreign_rw, P2M_R | P2M_W],
      [P2mType.foreign_ro, P2M_R],
      [P2mType.static_shared_rw, P2M_R | P2M_W | P2M_X],
      [P2mType.static_shared_ro, P2M_R | P2M_X],
    ];
    cases.forEach(([type, rights], i) => {
      assert.equal(d.p2m.set(RAM + i, 1000 + i, type as P2mType), 0);
      const e = d.p2m.lookup(RAM + i);
      assert.equal(p2mEntryMfn(e), 1000 + i);
      assert.equal(p2mEntryFlags(e), rights, `type ${type}`);
    });
    for (const gfn of [RAM + 100, 0, -1, MAX_GFN + 1, 1.5, Number.NaN, 2 ** 40, Number.POSITIVE_INFINITY]) {
      assert.equal(d.p2m.lookup(gfn), P2M_NONE, String(gfn));
    }
    assert.equal(d.p2m.set(-1, 5, P2mType.ram_rw), -Errno.EINVAL);
    assert.equal(d.p2m.set(RAM, -5, P2mType.ram_rw), -Errno.EINVAL);
    assert.equal(d.p2m.set(RAM, 5, 0 as P2mType), -Errno.EINVAL);
    assert.equal(d.p2m.set(RAM, 5, 77 as P2mType), -Errno.EINVAL);
  });

  it("covers the whole 20-bit gfn space with a 4-page root", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, { p2mPoolPages: P2M_ROOT_PAGES + 5 }, 0);
    for (const gfn of [0, 511, 512, 0x7ffff, 0x80000, MAX_GFN]) {
      assert.equal(d.p2m.set(gfn, 7, P2mType.ram_rw), 0);
      assert.equal(p2mEntryMfn(d.p2m.lookup(gfn)), 7);
    }
    assert.equal(d.p2m.tablePages, P2M_ROOT_PAGES + 5);
    assert.equal(d.p2mPool.freePages, 0);
    const seen: number[] = [];
    d.p2m.forEach((gfn) => {
      seen.push(gfn);
    });
    assert.deepEqual(seen, [0, 511, 512, 0x7ffff, 0x80000, MAX_GFN]);
  });

  it("pool exhaustion fails only that domain's operation, with -ENOMEM", () => {
    const { hv } = makeHost();
    // Root (4) + one leaf: room for exactly one 512-gfn block.
    const a = makeDomain(hv, { p2mPoolPages: P2M_ROOT_PAGES + 1, maxPages: 2048 }, 0);
    const b = makeDomain(hv, { p2mPoolPages: 16, maxPages: 2048 }, 0);
    assert.equal(populateRange(a, RAM, 512), 0);
    const before = a.pages.totPages;
    assert.equal(a.p2m.set(RAM + 512, 1, P2mType.ram_rw), -Errno.ENOMEM);
    assert.equal(populateRange(a, RAM + 512, 1), -Errno.ENOMEM);
    assert.equal(populatePhysmap(a, [RAM + 1024], 0), 0);
    assert.equal(a.pages.totPages, before, "the failed populate gave its frame back");
    assert.equal(a.p2m.lookup(RAM + 512), P2M_NONE);
    // Entries in the existing leaf still work, and the other domain is unaffected.
    assert.notEqual(a.p2m.lookup(RAM + 5), P2M_NONE);
    assert.equal(populateRange(b, RAM + 512, 3), 0);
    assert.equal(populateRange(b, RAM + 4096, 3), 0);
  });

  it("unmapping and downgrading bump the generation; upgrading does not", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 2);
    const g = () => Atomics.load(d.p2m.generation, 0);
    const g0 = g();
    assert.equal(d.p2m.setType(RAM, P2mType.ram_ro), 0);
    assert.equal(g(), g0 + 1);
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM)), P2M_R | P2M_X);
    assert.equal(d.p2m.setType(RAM, P2mType.ram_rw), 0);
    assert.equal(g(), g0 + 1);
    assert.notEqual(d.p2m.clear(RAM + 1), null);
    assert.equal(g(), g0 + 2);
    assert.equal(d.p2m.lookup(RAM + 1), P2M_NONE);
    assert.equal(d.p2m.clear(RAM + 1), null);
    assert.equal(g(), g0 + 2, "clearing a hole changes nothing");
    assert.equal(d.p2m.setType(RAM + 1, P2mType.ram_ro), -Errno.ENOENT);
    // Replacing a mapping is an invalidation too.
    d.p2m.set(RAM, 99, P2mType.ram_rw);
    assert.equal(g(), g0 + 3);
  });

  it("changeCount counts every set, clear and retype, and nothing else (migration's rescan check)", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 2);
    const c0 = d.p2m.changeCount;
    d.p2m.forEach(() => {});
    d.p2m.enableLogDirty();
    d.p2m.peekAndClean();
    assert.equal(d.p2m.changeCount, c0, "reads and log-dirty rounds are no change");
    assert.equal(d.p2m.setType(RAM, P2mType.ram_ro), 0);
    assert.equal(d.p2m.changeCount, c0 + 1);
    assert.notEqual(d.p2m.clear(RAM + 1), null);
    assert.equal(d.p2m.changeCount, c0 + 2);
    assert.equal(d.p2m.clear(RAM + 1), null);
    assert.equal(d.p2m.changeCount, c0 + 2, "clearing a hole is no change");
    d.p2m.set(RAM + 1, 99, P2mType.ram_rw);
    assert.equal(d.p2m.changeCount, c0 + 3);
  });

  it("entries live in machine frames: a reader rebuilt from the descriptor sees the same map", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 8);
    const reader = new P2mReader(hv.memory, d.p2m.descriptor());
    for (let gfn = RAM - 2; gfn < RAM + 10; gfn++) assert.equal(reader.lookup(gfn), d.p2m.lookup(gfn));
    d.p2m.clear(RAM + 3);
    assert.equal(reader.lookup(RAM + 3), P2M_NONE);
    assert.equal(reader.generation[0], d.p2m.generation[0]);
  });
});

describe("log-dirty", () => {
  it("reports the first write per round and collects dirty gfns", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 4);
    d.p2m.set(RAM + 10, 4000, P2mType.grant_map_rw);
    d.p2m.setType(RAM + 3, P2mType.ram_ro);
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM)) & P2M_LOGDIRTY, 0);
    const g0 = Atomics.load(d.p2m.generation, 0);
    d.p2m.enableLogDirty();
    assert.equal(Atomics.load(d.p2m.generation, 0), g0 + 1, "enabling flushes TLBs");
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM)), P2M_R | P2M_W | P2M_X | P2M_LOGDIRTY);
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM + 3)) & P2M_LOGDIRTY, 0, "read-only RAM is never logged");
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM + 10)) & P2M_LOGDIRTY, 0, "foreign frames are not ours to log");
    assert.equal(p2mEntryFlags(d.p2m.markDirty(RAM)), P2M_R | P2M_W | P2M_X);
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM)), P2M_R | P2M_W | P2M_X);
    assert.equal(d.guest.writeU32(ramGpa(2, 8), 0xdeadbeef), 0, "core writes are logged too");
    assert.deepEqual(d.p2m.logDirtyPeek(), [RAM, RAM + 2]);
    const g1 = Atomics.load(d.p2m.generation, 0);
    assert.deepEqual(d.p2m.peekAndClean(), [RAM, RAM + 2]);
    assert.ok(Atomics.load(d.p2m.generation, 0) > g1, "cleaning flushes TLBs");
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM)) & P2M_LOGDIRTY, P2M_LOGDIRTY, "logged again next round");
    assert.deepEqual(d.p2m.peekAndClean(), []);
    d.p2m.markDirty(RAM + 1);
    d.p2m.disableLogDirty();
    assert.equal(p2mEntryFlags(d.p2m.lookup(RAM + 2)) & P2M_LOGDIRTY, 0);
  });

  it("two-phase rounds keep writes made through entries filled in the old round", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 4);
    d.p2m.enableLogDirty();
    d.p2m.markDirty(RAM + 1); // a vCPU now holds a writable TLB entry for RAM+1
    const mustSee = d.p2m.logDirtyNewRound();
    assert.equal(Atomics.load(d.p2m.generation, 0), mustSee);
    // Before the vCPU flushes it writes through its stale entry: RAM+1 was marked in the old
    // round, so the collect still reports it.
    d.p2m.markDirty(RAM + 2); // and a fresh fault lands in the new round
    assert.deepEqual(d.p2m.logDirtyCollect(), [RAM + 1]);
    assert.deepEqual(d.p2m.peekAndClean(), [RAM + 2]);
  });
});

describe("guest memory accessors", () => {
  it("copies across pages and round-trips integers", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 4);
    const bytes = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    assert.equal(d.guest.copyToGuest(ramGpa(0, 4000), bytes), 0);
    const back = d.guest.copyFromGuest(ramGpa(0, 4000), 300);
    assert.ok(back instanceof Uint8Array);
    assert.deepEqual(back, bytes);
    assert.equal(d.guest.writeU64(ramGpa(1, 16), 2 ** 40 + 5), 0);
    assert.equal(d.guest.readU64(ramGpa(1, 16)), 2 ** 40 + 5);
    assert.equal(d.guest.writeU32(ramGpa(1, 0), -2), 0);
    assert.equal(d.guest.readU32(ramGpa(1, 0)), 0xfffffffe);
    assert.equal(d.guest.writeU16(ramGpa(1, 4094), 0x1234), 0);
    assert.equal(d.guest.readU16(ramGpa(1, 4094)), 0x1234);
    assert.equal(d.guest.readU8(ramGpa(1, 4095)), 0x12);
  });

  it("refuses anything that is not the domain's RAM with -EFAULT and never throws", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 2);
    d.p2m.set(RAM + 5, 3000, P2mType.grant_map_rw);
    d.p2m.set(RAM + 6, 3001, P2mType.mmio_direct);
    d.p2m.setType(RAM + 1, P2mType.ram_ro);
    const E = -Errno.EFAULT;
    assert.equal(d.guest.copyFromGuest(ramGpa(2), 1), E, "unmapped");
    assert.equal(d.guest.copyFromGuest(ramGpa(1, 4090), 10), E, "runs into a hole");
    assert.equal(d.guest.readU32(ramGpa(5)), E, "grant-mapped frames are not RAM");
    assert.equal(d.guest.readU32(ramGpa(6)), E, "MMIO");
    assert.equal(d.guest.writeU32(ramGpa(1), 1), E, "read-only RAM");
    assert.notEqual(d.guest.readU32(ramGpa(1)), E, "but readable");
    const before = d.guest.readU32(ramGpa(0, 4092));
    assert.equal(d.guest.copyToGuest(ramGpa(0, 4092), new Uint8Array(8).fill(9)), E);
    assert.equal(d.guest.readU32(ramGpa(0, 4092)), before, "a failed copy writes nothing");
    const r = rng(7);
    const weird = [-1, -4096, 2 ** 32, 2 ** 32 - 2, 2 ** 53, Number.NaN, 1.5, Number.NEGATIVE_INFINITY];
    for (let i = 0; i < 500; i++) weird.push(r(), r() * 4096 + r(), -r());
    for (const gpa of weird) {
      assert.equal(d.guest.readU32(gpa), E, String(gpa));
      assert.equal(d.guest.writeU64(gpa, 1), E, String(gpa));
      assert.equal(d.guest.copyFromGuest(gpa, 16), E, String(gpa));
    }
    for (const len of [-1, 2 ** 31, Number.NaN, 0.5]) assert.equal(d.guest.copyFromGuest(ramGpa(0), len), E);
  });

  it("a domain cannot reach a frame it was not given", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 32);
    const b = makeDomain(hv, {}, 32);
    const secret = new TextEncoder().encode("domain b secret");
    assert.equal(b.guest.copyToGuest(ramGpa(3), secret), 0);
    const bFrames = new Set<number>();
    b.p2m.forEach((_g, mfn) => {
      bFrames.add(mfn);
    });
    bFrames.add(b.sharedInfoMfn);
    for (const f of b.grantTable.frames) bFrames.add(f);
    // No gfn of A's whole address space resolves to one of B's frames.
    for (let gfn = 0; gfn <= MAX_GFN; gfn++) {
      const e = a.p2m.lookup(gfn);
      if (e !== P2M_NONE) assert.ok(!bFrames.has(p2mEntryMfn(e)), `gfn ${gfn}`);
    }
    // A reading "the same" guest address gets its own (zeroed) page.
    const mine = a.guest.copyFromGuest(ramGpa(3), secret.length);
    assert.ok(mine instanceof Uint8Array);
    assert.ok(mine.every((x) => x === 0));
  });
});
