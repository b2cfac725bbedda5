import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { P2M_NONE, P2M_R, P2M_W, p2mEntryFlags, p2mEntryMfn } from "@xenon/hw";
import type { Domain } from "../domain.js";
import type { Hypervisor } from "../hypervisor.js";
import { addToPhysmap, decreaseReservation } from "../memory.js";
import { GUEST_RAM_BASE_GFN } from "../p2m/types.js";
import { Errno } from "../public/errno.js";
import {
  GNTCOPY_dest_gref,
  GNTCOPY_source_gref,
  GNTMAP_application_map,
  GNTMAP_contains_pte,
  GNTMAP_device_map,
  GNTMAP_host_map,
  GNTMAP_readonly,
  Gntst,
  GTF_permit_access,
  GTF_reading,
  GTF_readonly,
  GTF_writing,
} from "../public/grant_table.js";
import { XenMapSpace } from "../public/memory.js";
import { DOMID_SELF } from "../public/xen.js";
import { makeDomain, makeHost, ramGpa } from "../test_support.js";
import { entryFlags } from "./entry.js";
import {
  getVersion,
  gnttabCopy,
  mapGrantRef,
  mapGrantRefView,
  querySize,
  setupTable,
  setVersion,
  unmapGrantRef,
} from "./grant_ops.js";
import { endForeignAccess, foreignAccessInUse, grantAccess } from "./granter.js";

const RAM = GUEST_RAM_BASE_GFN;
/** Where grantees map foreign frames in these tests (outside RAM). */
const MAP_GFN = 0x40000;
const HOST_MAP = GNTMAP_host_map;
const RO_MAP = GNTMAP_host_map | GNTMAP_readonly;

function setup() {
  const host = makeHost();
  const { hv } = host;
  const a = makeDomain(hv, {}, 8); // granter
  const b = makeDomain(hv, {}, 8); // grantee
  return { ...host, hv, a, b };
}

function map(hv: Hypervisor, b: Domain, a: Domain, ref: number, flags = HOST_MAP, gfn = MAP_GFN) {
  return mapGrantRef(hv, b, { hostAddr: gfn * 4096, flags, ref, dom: a.domid });
}

function unmap(hv: Hypervisor, b: Domain, handle: number, gfn = MAP_GFN) {
  return unmapGrantRef(hv, b, { hostAddr: gfn * 4096, devBusAddr: 0, handle });
}

describe("grant tables v1: map and unmap", () => {
  it("maps a granted frame into the grantee's P2M and revokes it on unmap", () => {
    const { hv, a, b } = setup();
    assert.ok(grantAccess(a.grantTable, 8, b.domid, RAM + 3, false));
    assert.equal(a.guest.writeU32(ramGpa(3, 100), 0x11223344), 0);
    const r = map(hv, b, a, 8);
    assert.equal(r.status, Gntst.okay);
    const aMfn = a.p2m.get(RAM + 3)!.mfn;
    const e = b.p2m.lookup(MAP_GFN);
    assert.equal(p2mEntryMfn(e), aMfn);
    assert.equal(p2mEntryFlags(e), P2M_R | P2M_W, "grant mappings are never executable");
    assert.equal(entryFlags(a.grantTable, 8), GTF_permit_access | GTF_reading | GTF_writing);
    // Both domains see the same bytes.
    const dv = new DataView(hv.memory.frameBytes(p2mEntryMfn(e)).buffer, hv.memory.frameOffset(aMfn));
    assert.equal(dv.getUint32(100, true), 0x11223344);
    dv.setUint32(200, 0xcafe, true);
    assert.equal(a.guest.readU32(ramGpa(3, 200)), 0xcafe);
    // The core's copy helpers refuse the foreign frame: a grant is not the grantee's RAM.
    assert.equal(b.guest.readU32(MAP_GFN * 4096), -Errno.EFAULT);

    const gen = Atomics.load(b.p2m.generation, 0);
    assert.equal(unmap(hv, b, r.handle), Gntst.okay);
    assert.equal(b.p2m.lookup(MAP_GFN), P2M_NONE);
    assert.ok(Atomics.load(b.p2m.generation, 0) > gen, "revocation flushes the grantee's TLBs");
    assert.equal(entryFlags(a.grantTable, 8), GTF_permit_access);
    assert.equal(unmap(hv, b, r.handle), Gntst.bad_handle, "the handle is gone");
  });

  it("read-only: a GTF_readonly grant refuses writable maps; read-only maps set only GTF_reading", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 9, b.domid, RAM + 1, true);
    assert.equal(map(hv, b, a, 9).status, Gntst.general_error);
    assert.equal(entryFlags(a.grantTable, 9), GTF_permit_access | GTF_readonly, "nothing left set");
    const r = map(hv, b, a, 9, RO_MAP);
    assert.equal(r.status, Gntst.okay);
    assert.equal(p2mEntryFlags(b.p2m.lookup(MAP_GFN)), P2M_R);
    assert.equal(entryFlags(a.grantTable, 9), GTF_permit_access | GTF_readonly | GTF_reading);
    assert.equal(unmap(hv, b, r.handle), Gntst.okay);
    assert.equal(foreignAccessInUse(a.grantTable, 9), 0);
  });

  it("GTF_reading/GTF_writing stay set until the last pin of each kind goes", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 10, b.domid, RAM + 2, false);
    const ro = map(hv, b, a, 10, RO_MAP, MAP_GFN);
    const rw = map(hv, b, a, 10, HOST_MAP, MAP_GFN + 1);
    assert.equal(ro.status, Gntst.okay);
    assert.equal(rw.status, Gntst.okay);
    assert.equal(foreignAccessInUse(a.grantTable, 10), GTF_reading | GTF_writing);
    assert.equal(endForeignAccess(a.grantTable, 10), false, "in use: cannot revoke");
    assert.equal(unmap(hv, b, rw.handle, MAP_GFN + 1), Gntst.okay);
    assert.equal(foreignAccessInUse(a.grantTable, 10), GTF_reading);
    assert.equal(unmap(hv, b, ro.handle, MAP_GFN), Gntst.okay);
    assert.equal(foreignAccessInUse(a.grantTable, 10), 0);
    assert.equal(endForeignAccess(a.grantTable, 10), true);
    assert.equal(entryFlags(a.grantTable, 10), 0);
    assert.equal(map(hv, b, a, 10).status, Gntst.general_error, "an ended grant cannot be mapped");
  });

  it("the guest's own mapping of its grant frame is the table the core reads", () => {
    const { hv, a, b } = setup();
    assert.equal(addToPhysmap(a, XenMapSpace.grant_table, 0, 0x38000), 0);
    // The guest fills entry 12 through its physmap: frame, then domid|flags.
    assert.equal(a.guest.writeU32(0x38000 * 4096 + 12 * 8 + 4, RAM + 4), 0);
    assert.equal(a.guest.writeU32(0x38000 * 4096 + 12 * 8, (b.domid << 16) | GTF_permit_access), 0);
    const r = map(hv, b, a, 12, RO_MAP);
    assert.equal(r.status, Gntst.okay);
    assert.equal(p2mEntryMfn(b.p2m.lookup(MAP_GFN)), a.p2m.get(RAM + 4)!.mfn);
    assert.equal(a.guest.readU16(0x38000 * 4096 + 12 * 8), GTF_permit_access | GTF_reading);
  });

  it("answers every map error with its GNTST code and leaves no state behind", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 1, false);
    grantAccess(a.grantTable, 11, 999, RAM + 1, false); // for someone else
    grantAccess(a.grantTable, 12, b.domid, 0x30000, false); // not A's RAM
    const mapped = map(hv, b, a, 8, HOST_MAP, MAP_GFN + 5);
    assert.equal(mapped.status, Gntst.okay);
    const cases: Array<[string, number, number, number, number]> = [
      // [what, flags, ref, dom, gfn]
      ["neither host_map nor device_map", GNTMAP_readonly, 8, a.domid, MAP_GFN],
      ["device_map on a translated guest", HOST_MAP | GNTMAP_device_map, 8, a.domid, MAP_GFN],
      ["application_map", HOST_MAP | GNTMAP_application_map, 8, a.domid, MAP_GFN],
      ["contains_pte", HOST_MAP | GNTMAP_contains_pte, 8, a.domid, MAP_GFN],
      ["unknown domain", HOST_MAP, 8, 4242, MAP_GFN],
      ["DOMID_SELF is not accepted", HOST_MAP, 8, DOMID_SELF, MAP_GFN],
      ["ref past the table", HOST_MAP, 512, a.domid, MAP_GFN],
      ["negative ref", HOST_MAP, -1, a.domid, MAP_GFN],
      ["entry granted to another domain", HOST_MAP, 11, a.domid, MAP_GFN],
      ["entry never granted", HOST_MAP, 13, a.domid, MAP_GFN],
      ["granted gfn is not the granter's RAM", HOST_MAP, 12, a.domid, MAP_GFN],
      ["host address already mapped", HOST_MAP, 8, a.domid, RAM],
      ["host address outside guest space", HOST_MAP, 8, a.domid, 2 ** 20],
    ];
    const expected = [
      Gntst.bad_gntref,
      Gntst.general_error,
      Gntst.general_error,
      Gntst.general_error,
      Gntst.bad_domain,
      Gntst.bad_domain,
      Gntst.bad_gntref,
      Gntst.bad_gntref,
      Gntst.general_error,
      Gntst.general_error,
      Gntst.bad_page,
      Gntst.bad_virt_addr,
      Gntst.bad_virt_addr,
    ];
    const gen = Atomics.load(b.p2m.generation, 0);
    cases.forEach(([what, flags, ref, dom, gfn], i) => {
      const r = mapGrantRef(hv, b, { hostAddr: gfn * 4096, flags, ref, dom });
      assert.equal(r.status, expected[i], what);
    });
    assert.equal(b.maptrack.count, 1, "only the good mapping holds a handle");
    assert.equal(b.p2m.lookup(MAP_GFN), P2M_NONE);
    assert.equal(Atomics.load(b.p2m.generation, 0), gen);
    assert.equal(foreignAccessInUse(a.grantTable, 12), 0, "a failed pin clears what it set");
    assert.equal(foreignAccessInUse(a.grantTable, 11), 0);
  });

  it("GNTST_no_space when the maptrack is full", () => {
    const { hv, a } = setup();
    const c = makeDomain(hv, { maxMaptrackFrames: 0 }, 0);
    grantAccess(a.grantTable, 8, c.domid, RAM, false);
    assert.equal(map(hv, c, a, 8).status, Gntst.no_space);
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0);
  });

  it("an exhausted P2M pool fails the map with general_error and unpins", () => {
    const { hv, a } = setup();
    const c = makeDomain(hv, { p2mPoolPages: 4 }, 0);
    grantAccess(a.grantTable, 8, c.domid, RAM, false);
    assert.equal(map(hv, c, a, 8).status, Gntst.general_error);
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0);
    assert.equal(a.grantTable.active.size, 0);
  });

  it("refuses a 256th pin of the same kind (8-bit pin counters)", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM, true);
    for (let i = 0; i < 255; i++) assert.equal(mapGrantRefView(hv, b, a.domid, 8, true).status, Gntst.okay);
    assert.equal(mapGrantRefView(hv, b, a.domid, 8, true).status, Gntst.general_error);
  });

  it("answers every unmap error with its GNTST code", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM, false);
    const r = map(hv, b, a, 8);
    for (const h of [r.handle + 1, -1, 2 ** 31, 1.5, Number.NaN]) assert.equal(unmap(hv, b, h), Gntst.bad_handle);
    assert.equal(
      unmapGrantRef(hv, b, { hostAddr: MAP_GFN * 4096, devBusAddr: 4096, handle: r.handle }),
      Gntst.bad_dev_addr,
    );
    assert.equal(unmap(hv, b, r.handle, MAP_GFN + 1), Gntst.general_error, "host_addr does not match");
    assert.equal(unmap(hv, a, r.handle), Gntst.bad_handle, "handles are per mapping domain");
    assert.notEqual(b.p2m.lookup(MAP_GFN), P2M_NONE, "failed unmaps changed nothing");
    assert.equal(unmap(hv, b, r.handle), Gntst.okay);
  });

  it("view mappings for TypeScript domains: a bounded view of the real frame, revoked by handle", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 5, false);
    a.guest.writeU32(ramGpa(5, 4092), 0xabcdef01);
    const r = mapGrantRefView(hv, b, a.domid, 8, false);
    assert.equal(r.status, Gntst.okay);
    assert.ok(r.view !== null);
    assert.equal(r.view.length, 4096);
    assert.equal(new DataView(r.view.buffer, r.view.byteOffset).getUint32(4092, true), 0xabcdef01);
    r.view[0] = 0x5a;
    assert.equal(a.guest.readU8(ramGpa(5)), 0x5a);
    assert.equal(foreignAccessInUse(a.grantTable, 8), GTF_reading | GTF_writing);
    assert.equal(unmapGrantRef(hv, b, { hostAddr: 0, devBusAddr: 0, handle: r.handle }), Gntst.okay);
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0);
    assert.equal(mapGrantRefView(hv, b, 4242, 8, false).status, Gntst.bad_domain);
  });

  it("unmapping a writable mapping marks the granter's page dirty", () => {
    const { hv, a, b } = setup();
    a.p2m.enableLogDirty();
    grantAccess(a.grantTable, 8, b.domid, RAM + 6, false);
    const r = map(hv, b, a, 8);
    assert.deepEqual(a.p2m.logDirtyPeek(), []);
    unmap(hv, b, r.handle);
    assert.deepEqual(a.p2m.logDirtyPeek(), [RAM + 6]);
  });
});

describe("grant tables v1: copy", () => {
  function copy(
    hv: Hypervisor,
    caller: Domain,
    src: [number, number, number],
    dst: [number, number, number],
    len: number,
    flags: number,
  ) {
    return gnttabCopy(hv, caller, {
      source: { refOrGmfn: src[0], domid: src[1], offset: src[2] },
      dest: { refOrGmfn: dst[0], domid: dst[1], offset: dst[2] },
      len,
      flags,
    });
  }

  it("copies between a grant and the caller's own frames, both ways", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 2, false);
    a.guest.copyToGuest(ramGpa(2, 10), new TextEncoder().encode("hello"));
    // gref -> gmfn
    assert.equal(copy(hv, b, [8, a.domid, 10], [RAM + 1, DOMID_SELF, 20], 5, GNTCOPY_source_gref), Gntst.okay);
    assert.deepEqual(b.guest.copyFromGuest(ramGpa(1, 20), 5), new TextEncoder().encode("hello"));
    // gmfn -> gref
    b.guest.copyToGuest(ramGpa(1, 0), new TextEncoder().encode("world"));
    a.p2m.enableLogDirty();
    assert.equal(copy(hv, b, [RAM + 1, b.domid, 0], [8, a.domid, 4091], 5, GNTCOPY_dest_gref), Gntst.okay);
    assert.deepEqual(a.guest.copyFromGuest(ramGpa(2, 4091), 5), new TextEncoder().encode("world"));
    assert.deepEqual(a.p2m.logDirtyPeek(), [RAM + 2], "the destination is logged dirty");
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0, "copy pins are dropped");
    assert.equal(a.grantTable.active.size, 0);
    // gref -> gref (both in A's table, both granted to B)
    grantAccess(a.grantTable, 9, b.domid, RAM + 3, false);
    assert.equal(
      copy(hv, b, [8, a.domid, 10], [9, a.domid, 0], 5, GNTCOPY_source_gref | GNTCOPY_dest_gref),
      Gntst.okay,
    );
    assert.deepEqual(a.guest.copyFromGuest(ramGpa(3), 5), new TextEncoder().encode("hello"));
    assert.equal(copy(hv, b, [8, a.domid, 0], [RAM + 1, DOMID_SELF, 0], 0, GNTCOPY_source_gref), Gntst.okay, "len 0");
  });

  it("answers every copy error with its GNTST code", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 2, false);
    grantAccess(a.grantTable, 9, b.domid, RAM + 3, true);
    const S = GNTCOPY_source_gref;
    const D = GNTCOPY_dest_gref;
    const self = (gfn: number): [number, number, number] => [gfn, DOMID_SELF, 0];
    const cases: Array<[string, [number, number, number], [number, number, number], number, number, number]> = [
      ["unknown source domain", [8, 4242, 0], self(RAM), 4, S, Gntst.bad_domain],
      ["unknown dest domain", self(RAM), [8, 4242, 0], 4, D, Gntst.bad_domain],
      ["gmfn of another domain", [RAM, a.domid, 0], self(RAM), 4, 0, Gntst.permission_denied],
      ["dest gmfn of another domain", self(RAM), [RAM, a.domid, 0], 4, 0, Gntst.permission_denied],
      ["source ref out of range", [600, a.domid, 0], self(RAM), 4, S, Gntst.bad_gntref],
      ["dest ref out of range", self(RAM), [-3, a.domid, 0], 4, D, Gntst.bad_gntref],
      ["source gmfn not RAM", self(0x30000), self(RAM), 4, 0, Gntst.bad_page],
      ["read-only grant as destination", self(RAM), [9, a.domid, 0], 4, D, Gntst.general_error],
      ["ungranted ref", [20, a.domid, 0], self(RAM), 4, S, Gntst.general_error],
      ["source beyond the page", [8, a.domid, 4000], self(RAM), 97, S, Gntst.bad_copy_arg],
      ["dest beyond the page", [8, a.domid, 0], [RAM, DOMID_SELF, 4095], 2, S, Gntst.bad_copy_arg],
    ];
    for (const [what, src, dst, len, flags, want] of cases) {
      assert.equal(copy(hv, b, src, dst, len, flags), want, what);
    }
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0, "failed copies leave no pins");
    assert.equal(foreignAccessInUse(a.grantTable, 9), 0);
    assert.equal(a.grantTable.active.size, 0);
  });
});

describe("grant tables v1: table management and life cycle", () => {
  it("setup_table grows the table; query_size, set_version and get_version", () => {
    const { a } = setup();
    assert.deepEqual(querySize(a), { nrFrames: 1, maxNrFrames: 64 });
    const r = setupTable(a, 3);
    assert.equal(r.status, Gntst.okay);
    assert.deepEqual(r.frames, [-1, -1, -1], "not mapped in the physmap yet");
    assert.equal(querySize(a).nrFrames, 3);
    assert.equal(setupTable(a, 65).status, Gntst.general_error);
    assert.equal(setupTable(a, -1).status, Gntst.general_error);
    assert.equal(addToPhysmap(a, XenMapSpace.grant_table, 1, 0x38001), 0);
    assert.deepEqual(setupTable(a, 2).frames, [-1, 0x38001]);
    assert.deepEqual(setVersion(a, 1), { rc: 0, version: 1 });
    assert.deepEqual(setVersion(a, 2), { rc: -Errno.ENOSYS, version: 1 });
    assert.deepEqual(setVersion(a, 0), { rc: -Errno.EINVAL, version: 1 });
    assert.equal(getVersion(a), 1);
  });

  it("destroying the grantee drops its mappings and clears the granter's flags", () => {
    const { hv, a, b } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM, false);
    map(hv, b, a, 8);
    hv.domains.destroy(b.domid);
    assert.equal(foreignAccessInUse(a.grantTable, 8), 0);
    assert.equal(a.grantTable.active.size, 0);
  });

  it("a granter destroyed while mapped keeps the frame until the grantee unmaps", () => {
    const host = makeHost();
    const { hv, allocator } = host;
    const b = makeDomain(hv, {}, 8);
    const start = allocator.allocatedFrames;
    const a = makeDomain(hv, {}, 8);
    grantAccess(a.grantTable, 8, b.domid, RAM + 1, false);
    a.guest.writeU32(ramGpa(1), 0x600d);
    const r = map(hv, b, a, 8);
    const mfn = p2mEntryMfn(b.p2m.lookup(MAP_GFN));
    hv.domains.destroy(a.domid);
    assert.equal(hv.domains.get(a.domid)?.dying, true, "a zombie until its last frame goes");
    assert.equal(allocator.allocatedFrames, start + 1);
    assert.equal(new DataView(hv.memory.frameBytes(mfn).buffer, hv.memory.frameOffset(mfn)).getUint32(0, true), 0x600d);
    assert.equal(map(hv, b, a, 8, HOST_MAP, MAP_GFN + 1).status, Gntst.bad_domain, "no new maps of a dying domain");
    assert.equal(unmap(hv, b, r.handle), Gntst.okay);
    assert.equal(allocator.allocatedFrames, start);
    assert.equal(hv.domains.get(a.domid), undefined);
    assert.deepEqual(host.released, [a.domid]);
  });

  it("a granter giving back a mapped page does not free it under the grantee", () => {
    const { hv, a, b, allocator } = setup();
    grantAccess(a.grantTable, 8, b.domid, RAM + 4, false);
    const r = map(hv, b, a, 8);
    const frames = allocator.allocatedFrames;
    assert.equal(decreaseReservation(a, [RAM + 4], 0), 1);
    assert.equal(allocator.allocatedFrames, frames, "still referenced");
    assert.equal(unmap(hv, b, r.handle), Gntst.okay);
    assert.equal(allocator.allocatedFrames, frames - 1);
  });
});
