import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import { p2mPoolPagesFor } from "../../domain_table.js";
import { foreignAccessInUse, grantAccess } from "../../grant_table/granter.js";
import { Hypervisor } from "../../hypervisor.js";
import { populateRange } from "../../memory.js";
import { GUEST_RAM_BASE_GFN } from "../../p2m/types.js";
import { Gntst } from "../../public/grant_table.js";
import { evtchnPending } from "../../shared_info.js";
import { HypercallClient } from "./client.js";
import { servePort } from "./server.js";

const RING = 8;
const DATA = 9;
const RO = 10;

async function setup() {
  const memory = new MachineMemory({ bytes: 64 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const mk = (name: string, pages = 0) => {
    const d = hv.domains.create({ name, maxVcpus: 1, maxPages: pages, p2mPoolPages: p2mPoolPagesFor(pages) });
    if (typeof d === "number") throw new Error(`create ${d}`);
    return d;
  };
  const guest = mk("guest", 16);
  assert.equal(populateRange(guest, GUEST_RAM_BASE_GFN, 4), 0);
  const { port1, port2 } = new MessageChannel();
  servePort(hv, mk("backend").domid, port1);
  const backend = await HypercallClient.connect(port2);
  assert.ok(grantAccess(guest.grantTable, RING, backend.domid, GUEST_RAM_BASE_GFN, false));
  assert.ok(grantAccess(guest.grantTable, DATA, backend.domid, GUEST_RAM_BASE_GFN + 1, false));
  assert.ok(grantAccess(guest.grantTable, RO, backend.domid, GUEST_RAM_BASE_GFN + 2, true));
  const guestPort = hv.hypercalls.evtchnAllocUnbound(guest.domid, 0x7ff0, backend.domid);
  const port = await backend.evtchnBindInterdomain(guest.domid, guestPort);
  assert.ok(port > 0);
  const ring = await backend.mapGrant(guest.domid, RING, false);
  assert.equal(ring.status, 0);
  const u16At = (off: number) => {
    const b = guest.guest.copyFromGuest(GUEST_RAM_BASE_GFN * 4096 + off, 2);
    assert.ok(b instanceof Uint8Array);
    return b[0]! | (b[1]! << 8);
  };
  return { hv, guest, guestPort, backend, port, ring, u16At };
}

describe("gnttabUnmapPublishSend: a request's end in one port message", () => {
  it("unmaps, then stores the index through the ring's mapping, then sends: the guest sees them in that order", async () => {
    const { hv, guest, backend, port, ring, u16At } = await setup();
    const data = await backend.mapGrant(guest.domid, DATA, false);
    assert.equal(data.status, 0);
    assert.ok(foreignAccessInUse(guest.grantTable, DATA) !== 0);
    // What the guest could see when its interrupt is raised.
    const atSend: Array<{ inUse: number; idx: number }> = [];
    const prev = hv.hooks.upcall;
    hv.hooks.upcall = (d, v) => {
      prev?.(d, v);
      if (d === guest.domid) atSend.push({ inUse: foreignAccessInUse(guest.grantTable, DATA), idx: u16At(2) });
    };
    const r = await backend.unmapPublishSend([data.handle], [ring.handle, 2, 0xbeef], port);
    assert.deepEqual(r, { unmapped: [Gntst.okay], published: 0, sent: 1 });
    assert.equal(u16At(2), 0xbeef);
    assert.deepEqual(
      atSend,
      [{ inUse: 0, idx: 0xbeef }],
      "the data grant was free and the index stored before the send",
    );
    // No index, no port: only the unmaps.
    const again = await backend.unmapPublishSend([data.handle], null, -1);
    assert.deepEqual(again, { unmapped: [Gntst.bad_handle], published: 0, sent: 0 });
    assert.equal(atSend.length, 1);
    backend.close();
  });

  it("sends only when the word `when` names, read after the store, asks for it (EVENT_IDX, or the flags)", async () => {
    const { guest, guestPort, backend, port, ring, u16At } = await setup();
    const pending = () => evtchnPending.test(guest.sharedInfo, guestPort);
    const setU16 = (off: number, v: number) =>
      assert.equal(guest.guest.copyToGuest(GUEST_RAM_BASE_GFN * 4096 + off, Uint8Array.of(v & 0xff, v >> 8)), 0);
    // used_event 4 (offset 100): an interrupt when the index passes 4, i.e. in [old, new) = [4, 6).
    setU16(100, 4);
    let r = await backend.unmapPublishSend([], [ring.handle, 2, 4], port, [ring.handle, 100, 3]);
    assert.equal(r.sent, 0, "4 passed nothing: used_event 4 is not below 4");
    r = await backend.unmapPublishSend([], [ring.handle, 2, 6], port, [ring.handle, 100, 4]);
    assert.equal(r.sent, 1);
    assert.equal(u16At(2), 6);
    assert.ok(pending());
    // The flags rule (old -1): NO_INTERRUPT set, no send; clear, a send.
    setU16(100, 1);
    assert.equal((await backend.unmapPublishSend([], [ring.handle, 2, 7], port, [ring.handle, 100, -1])).sent, 0);
    setU16(100, 0);
    assert.equal((await backend.unmapPublishSend([], [ring.handle, 2, 8], port, [ring.handle, 100, -1])).sent, 1);
    // A `when` through no mapping of ours: refused, not sent.
    assert.ok((await backend.unmapPublishSend([], [ring.handle, 2, 9], port, [999, 100, 0])).sent < 0);
    backend.close();
  });

  it("refuses a store through anything but a live writable view of the caller's, and then sends nothing", async () => {
    const { guest, backend, port, ring, u16At } = await setup();
    const ro = await backend.mapGrant(guest.domid, RO, true);
    assert.equal(ro.status, 0);
    const refused = async (at: [number, number, number], status: number) => {
      const r = await backend.unmapPublishSend([], at, port);
      assert.equal(r.published, status, JSON.stringify(at));
      assert.ok(r.sent < 0, "no interrupt for an index that is not there");
    };
    await refused([ro.handle, 2, 7], Gntst.permission_denied);
    await refused([ring.handle + 100, 2, 7], Gntst.bad_handle);
    await refused([ring.handle, 3, 7], Gntst.general_error);
    await refused([ring.handle, 4096, 7], Gntst.general_error);
    assert.equal(u16At(2), 0);
    // Malformed arguments: an error reply, the port carries on.
    await assert.rejects(backend.call("gnttabUnmapPublishSend", "x", null, -1), /list of handles/);
    await assert.rejects(backend.call("gnttabUnmapPublishSend", [], [1, 2], -1), /publish is null/);
    assert.equal((await backend.unmapPublishSend([], [ring.handle, 6, 5], -1)).published, 0);
    assert.equal(u16At(6), 5);
    backend.close();
  });
});
