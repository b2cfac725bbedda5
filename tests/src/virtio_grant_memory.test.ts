import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import {
  ForeignCopyMemory,
  ForeignMapMemory,
  GrantCopyMemory,
  GrantMapMemory,
  type GuestMemory,
  grantDmaAddr,
} from "@xenon/backends";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import {
  type Domain,
  endForeignAccess,
  GUEST_RAM_BASE_GFN,
  grantAccess,
  HypercallClient,
  Hypervisor,
  p2mPoolPagesFor,
  populateRange,
  servePort,
} from "@xenon/hypervisor";

async function setup() {
  const memory = new MachineMemory({ bytes: 64 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const mk = (name: string, pages: number) => {
    const d = hv.domains.create({ name, maxVcpus: 1, maxPages: pages, p2mPoolPages: p2mPoolPagesFor(pages) });
    if (typeof d === "number") throw new Error(`create ${d}`);
    return d;
  };
  const guest = mk("guest", 16);
  assert.equal(populateRange(guest, GUEST_RAM_BASE_GFN, 4), 0);
  const backend = mk("backend", 0);
  const { port1, port2 } = new MessageChannel();
  servePort(hv, backend.domid, port1);
  const client = await HypercallClient.connect(port2);
  // Pages 0 and 1 of guest RAM as consecutive refs 20, 21 (rw); page 2 as ref 22 (ro).
  assert.ok(grantAccess(guest.grantTable, 20, backend.domid, GUEST_RAM_BASE_GFN, false));
  assert.ok(grantAccess(guest.grantTable, 21, backend.domid, GUEST_RAM_BASE_GFN + 1, false));
  assert.ok(grantAccess(guest.grantTable, 22, backend.domid, GUEST_RAM_BASE_GFN + 2, true));
  const gpa = (page: number, off: number) => (GUEST_RAM_BASE_GFN + page) * 4096 + off;
  return { hv, guest, backend, client, gpa };
}

/**
 * Ten bytes across a page boundary at guest-physical `gpa`, reached as (hi, lo): read through the
 * region, three written back and flushed; the guest sees them. The region, still held.
 */
async function readThenWrite(guest: Domain, mem: GuestMemory, gpa: number, hi: number, lo: number) {
  assert.equal(guest.guest.copyToGuest(gpa, Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])), 0);
  const r = await mem.map(hi, lo, 10, true);
  assert.ok(typeof r !== "string", String(r));
  const out = new Uint8Array(10);
  r.copyOut(0, out, 0, 10);
  assert.deepEqual([...out], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  r.copyIn(4, Uint8Array.from([0xaa, 0xbb, 0xcc]), 0, 3);
  await mem.flush(r, 4, 3);
  const seen = guest.guest.copyFromGuest(gpa + 4, 3);
  assert.deepEqual(seen instanceof Uint8Array ? [...seen] : seen, [0xaa, 0xbb, 0xcc]);
  return r;
}

/**
 * One batch of two ranges: 200 writable bytes from ref 20 offset 4000 (into ref 21) and 3
 * read-only bytes of ref 22 (the guest put 7, 8, 9 there; read back). Byte 190 of the first is
 * set to 0x11 (page 1, offset 94 of the guest's RAM). The regions, still held.
 */
async function twoRanges(guest: Domain, mem: GuestMemory, gpa: (page: number, off: number) => number) {
  assert.equal(guest.guest.copyToGuest(gpa(2, 0), Uint8Array.from([7, 8, 9])), 0);
  const [h1, l1] = grantDmaAddr(20, 4000);
  const [h2, l2] = grantDmaAddr(22);
  const rs = await mem.mapMany!([
    { hi: h1, lo: l1, len: 200, writable: true },
    { hi: h2, lo: l2, len: 3, writable: false },
  ]);
  assert.ok(Array.isArray(rs), String(rs));
  const b = new Uint8Array(3);
  rs[1]!.copyOut(0, b, 0, 3);
  assert.deepEqual([...b], [7, 8, 9]);
  rs[0]!.copyIn(190, Uint8Array.from([0x11]), 0, 1);
  return rs;
}

for (const kind of ["map", "copy"] as const) {
  describe(`guest memory through grant ${kind}`, () => {
    it("reaches a two-page range of consecutive refs, reads and writes it, and gives it back", async () => {
      const { guest, client, gpa } = await setup();
      const mem: GuestMemory =
        kind === "map" ? new GrantMapMemory(client, guest.domid) : new GrantCopyMemory(client, guest.domid);
      const r = await readThenWrite(guest, mem, gpa(0, 4090), ...grantDmaAddr(20, 4090));
      // While mapped (map mode) the guest cannot end access; after release it can.
      if (kind === "map") assert.equal(endForeignAccess(guest.grantTable, 20), false);
      await mem.release(r);
      assert.equal(endForeignAccess(guest.grantTable, 20), true);
      client.close();
    });

    it("refuses a writable map of a read-only grant, an ungranted ref and a plain address", async () => {
      const { guest, client } = await setup();
      const mem: GuestMemory =
        kind === "map" ? new GrantMapMemory(client, guest.domid) : new GrantCopyMemory(client, guest.domid);
      const ro = await mem.map(...grantDmaAddr(22), 16, true);
      assert.equal(typeof ro, "string");
      const ok = await mem.map(...grantDmaAddr(22), 16, false);
      assert.notEqual(typeof ok, "string");
      if (typeof ok !== "string") await mem.release(ok);
      assert.match(String(await mem.map(...grantDmaAddr(23), 16, false)), /grant 23/);
      // A range running from ref 21 into ungranted ref 22+... (22 is ro: a write map must fail whole).
      assert.equal(typeof (await mem.map(...grantDmaAddr(21, 4000), 200, true)), "string");
      assert.match(String(await mem.map(0, 0x8000_0000, 16, false)), /not a grant address/);
      // Nothing stayed mapped: every ref can be ended.
      for (const ref of [20, 21, 22]) assert.equal(endForeignAccess(guest.grantTable, ref), true);
      client.close();
    });
  });
}

describe("guest memory through grant copy, a whole chain at once (process mode)", () => {
  it("reads the readable buffers in one round trip, checks the writable ones with copies of nothing (a read-only grant is refused) and gives back only what the device wrote", async () => {
    const { guest, client, gpa } = await setup();
    try {
      const mem = new GrantCopyMemory(client, guest.domid);
      assert.equal(guest.guest.copyToGuest(gpa(0, 4010), Uint8Array.from([0x5a])), 0);
      const rs = await twoRanges(guest, mem, gpa);
      const [h1, l1] = grantDmaAddr(20, 4000);
      const [h2, l2] = grantDmaAddr(22);
      await mem.releaseMany!(rs);
      assert.deepEqual(
        [...(guest.guest.copyFromGuest(gpa(1, 94), 1) as Uint8Array)],
        [0x11],
        "written back through ref 21",
      );
      // A device-writable buffer is not fetched: bytes the device did not write stay the guest's.
      assert.deepEqual([...(guest.guest.copyFromGuest(gpa(0, 4010), 1) as Uint8Array)], [0x5a]);
      const bad = await mem.mapMany([
        { hi: h1, lo: l1, len: 200, writable: true },
        { hi: h2, lo: l2, len: 3, writable: true },
      ]);
      assert.match(String(bad), /^grant 22 of d1: not writable/);
      assert.deepEqual(
        [...(guest.guest.copyFromGuest(gpa(2, 0), 3) as Uint8Array)],
        [7, 8, 9],
        "the read-only page is untouched",
      );
      for (const ref of [20, 21, 22]) assert.equal(endForeignAccess(guest.grantTable, ref), true);
    } finally {
      client.close();
    }
  });
});

describe("guest memory through one batched grant map per chain (thread mode)", () => {
  it("maps three ranges over four refs with one GNTTABOP_map_grant_ref; a refused entry leaves nothing mapped", async () => {
    const { guest, client, gpa } = await setup();
    try {
      const mem = new GrantMapMemory(client, guest.domid);
      const rs = await twoRanges(guest, mem, gpa);
      const [h1, l1] = grantDmaAddr(20, 4000);
      const [h2, l2] = grantDmaAddr(22);
      assert.deepEqual([...(guest.guest.copyFromGuest(gpa(1, 94), 1) as Uint8Array)], [0x11], "written through ref 21");
      assert.equal(endForeignAccess(guest.grantTable, 21), false, "mapped while the chain is");
      await mem.releaseMany(rs);
      // The second range asks a read-only grant for writing: the whole batch is refused.
      const bad = await mem.mapMany([
        { hi: h1, lo: l1, len: 200, writable: true },
        { hi: h2, lo: l2, len: 3, writable: true },
      ]);
      // Xen refuses write-pinning a read-only entry with GNTST_general_error.
      assert.equal(bad, "grant 22 of d1: map status -1 (GNTST_general_error)");
      for (const ref of [20, 21, 22]) assert.equal(endForeignAccess(guest.grantTable, ref), true);
    } finally {
      client.close();
    }
  });
});

for (const kind of ["map", "copy"] as const) {
  describe(`guest memory without grants: foreign ${kind} (privileged backends only)`, () => {
    async function foreign(privileged: boolean) {
      const memory = new MachineMemory({ bytes: 64 << 20 });
      const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
      const guest = hv.domains.create({ name: "g", maxVcpus: 1, maxPages: 16, p2mPoolPages: p2mPoolPagesFor(16) });
      const backend = hv.domains.create({
        name: "dd",
        maxVcpus: 1,
        maxPages: 0,
        p2mPoolPages: p2mPoolPagesFor(0),
        flags: { privileged },
      });
      assert.ok(typeof guest === "object" && typeof backend === "object");
      assert.equal(populateRange(guest, GUEST_RAM_BASE_GFN, 2), 0);
      const { port1, port2 } = new MessageChannel();
      servePort(hv, backend.domid, port1);
      const client = await HypercallClient.connect(port2);
      const mem: GuestMemory =
        kind === "map" ? new ForeignMapMemory(client, guest.domid) : new ForeignCopyMemory(client, guest.domid);
      return { guest, client, mem };
    }

    it("a privileged backend reads and writes a range across two guest-physical pages; the guest sees the writes", async () => {
      const { guest, client, mem } = await foreign(true);
      const at = GUEST_RAM_BASE_GFN * 4096 + 4090;
      await mem.release(await readThenWrite(guest, mem, at, 0, at));
      // A range running into an unpopulated page fails whole; a grant address is not a plain one.
      assert.match(String(await mem.map(0, (GUEST_RAM_BASE_GFN + 1) * 4096 + 4000, 200, false)), /-EINVAL/);
      assert.match(String(await mem.map(...grantDmaAddr(20), 16, false)), /grant address on a device without grants/);
      client.close();
    });

    it("an unprivileged backend is refused with -EPERM, named in the reason", async () => {
      const { client, mem } = await foreign(false);
      const why = await mem.map(0, GUEST_RAM_BASE_GFN * 4096, 16, false);
      assert.match(
        String(why),
        new RegExp(
          `^foreign ${kind} of d1 gfn 0x${GUEST_RAM_BASE_GFN.toString(16)} refused: -EPERM \\(this backend is not privileged\\)$`,
        ),
      );
      client.close();
    });
  });
}
