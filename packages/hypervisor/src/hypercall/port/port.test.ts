import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MessageChannel } from "node:worker_threads";
import { FrameAllocator, MachineMemory } from "@xenon/hw";
import { p2mPoolPagesFor } from "../../domain_table.js";
import { grantAccess } from "../../grant_table/granter.js";
import { Hypervisor } from "../../hypervisor.js";
import { populateRange } from "../../memory.js";
import { GUEST_RAM_BASE_GFN } from "../../p2m/types.js";
import { Errno } from "../../public/errno.js";
import { HypercallClient } from "./client.js";
import { servePort, watchUpcalls } from "./server.js";

function host() {
  const memory = new MachineMemory({ bytes: 64 << 20 });
  const hv = new Hypervisor({ memory, allocator: new FrameAllocator(memory) });
  const mk = (name: string, pages = 0, privileged = false) => {
    const d = hv.domains.create({
      name,
      maxVcpus: 1,
      maxPages: pages,
      p2mPoolPages: p2mPoolPagesFor(pages),
      ...(privileged ? { flags: { privileged: true } } : {}),
    });
    if (typeof d === "number") throw new Error(`create ${d}`);
    return d;
  };
  return { hv, mk };
}

async function connect(hv: Hypervisor, domid: number): Promise<HypercallClient> {
  const { port1, port2 } = new MessageChannel();
  servePort(hv, domid, port1);
  return HypercallClient.connect(port2);
}

describe("hypercall port", () => {
  it("two TypeScript domains bounce an event over an interdomain channel", async () => {
    const { hv, mk } = host();
    const a = await connect(hv, mk("a").domid);
    const b = await connect(hv, mk("b").domid);
    const pa = await a.evtchnAllocUnbound(b.domid);
    assert.ok(pa > 0, `alloc_unbound gave ${pa}`);
    const pb = await b.evtchnBindInterdomain(a.domid, pa);
    assert.ok(pb > 0, `bind_interdomain gave ${pb}`);
    const rounds = 200;
    let got = 0;
    const done = new Promise<void>((resolve) => {
      const ignoreClosed = () => {};
      b.bind(pb, () => b.evtchnSend(pb).catch(ignoreClosed));
      a.bind(pa, () => {
        if (++got === rounds) resolve();
        else a.evtchnSend(pa).catch(ignoreClosed);
      });
    });
    const loops = [a.eventLoop(), b.eventLoop()];
    const t0 = performance.now();
    await a.evtchnSend(pa);
    await done;
    const rtt = ((performance.now() - t0) / rounds) * 1000;
    assert.ok(rtt > 0 && rtt < 100_000, `round trip ${rtt.toFixed(1)} µs`);
    assert.equal(got, rounds);
    a.close();
    b.close();
    await Promise.all(loops);
  });

  it("the caller is the port's domain, whatever the message says", async () => {
    const { hv, mk } = host();
    const a = await connect(hv, mk("a").domid);
    const victim = mk("victim");
    const pv = hv.hypercalls.evtchnAllocUnbound(victim.domid, 0x7ff0, victim.domid);
    // Closing the victim's port through a's connection must fail: a has no such port.
    assert.ok((await a.evtchnClose(pv)) < 0);
    assert.ok(hv.hypercalls.evtchnStatus(victim.domid, 0x7ff0, pv) !== undefined);
    a.close();
  });

  it("malformed requests get an error reply and the port keeps working", async () => {
    const { hv, mk } = host();
    const a = await connect(hv, mk("a").domid);
    // biome-ignore lint/suspicious/noExplicitAny: deliberately bypassing the typed API
    await assert.rejects(a.call("nonsense" as any), /bad request/);
    await assert.rejects(a.call("evtchnSend", "not a number"), /argument 0 must be an integer/);
    assert.equal(await a.call("xenVersion"), (4 << 16) | 17);
    a.close();
  });

  it("grant copy and thread-mode views reach exactly the granted frame", async () => {
    const { hv, mk } = host();
    const granter = mk("granter", 16);
    assert.equal(populateRange(granter, GUEST_RAM_BASE_GFN, 4), 0);
    const pattern = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
    assert.equal(granter.guest.copyToGuest(GUEST_RAM_BASE_GFN * 4096, pattern), 0);
    const backend = await connect(hv, mk("backend").domid);
    assert.ok(grantAccess(granter.grantTable, 8, backend.domid, GUEST_RAM_BASE_GFN, false));
    const bytes = await backend.copyFromGrant(granter.domid, 8, 100, 16);
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual([...bytes], [...pattern.subarray(100, 116)]);
    assert.equal(await backend.copyToGrant(granter.domid, 8, 0, new Uint8Array([1, 2, 3])), 0);
    const back = granter.guest.copyFromGuest(GUEST_RAM_BASE_GFN * 4096, 3);
    assert.deepEqual(back instanceof Uint8Array ? [...back] : back, [1, 2, 3]);
    const m = await backend.mapGrant(granter.domid, 8, true);
    assert.equal(m.status, 0);
    assert.equal(m.view?.[100], pattern[100]);
    assert.equal(await backend.unmapGrant(m.handle), 0);
    // A ref that was not granted to the backend: refused.
    assert.ok(((await backend.copyFromGrant(granter.domid, 9, 0, 4)) as number) < 0);
    assert.ok(((await backend.copyFromGrant(granter.domid, 8, 4090, 100)) as number) < 0);
    // Segments in one call: each answered on its own (an ungranted ref fails alone).
    const segs = await backend.copyFromGrants(granter.domid, [
      [8, 100, 4],
      [9, 0, 4],
      [8, 0, 3],
    ]);
    assert.deepEqual([...(segs[0] as Uint8Array)], [...pattern.subarray(100, 104)]);
    assert.ok((segs[1] as number) < 0);
    assert.deepEqual([...(segs[2] as Uint8Array)], [1, 2, 3]);
    assert.ok(grantAccess(granter.grantTable, 10, backend.domid, GUEST_RAM_BASE_GFN + 1, true));
    const rcs = await backend.copyToGrants(granter.domid, [
      [8, 8, Uint8Array.of(9)],
      [10, 0, Uint8Array.of(9)],
    ]);
    assert.equal(rcs[0], 0);
    assert.ok(rcs[1]! < 0, "a read-only grant refuses the copy to it");
    // Malformed segment lists are refused whole, the port carries on.
    await assert.rejects(backend.call("gnttabCopyFromSegs", granter.domid, [[8, 0]]), /segment/);
    await assert.rejects(backend.call("gnttabCopyToSegs", granter.domid, [[8, 0, 5]]), /segment/);
    await assert.rejects(
      backend.call(
        "gnttabCopyFromSegs",
        granter.domid,
        Array.from({ length: 129 }, () => [8, 0, 1]),
      ),
      /at most 128/,
    );
    backend.close();
  });

  it("foreign copy by gfn: privileged callers only, the frame's own bytes, writes logged dirty, segments answered alone", async () => {
    const { hv, mk } = host();
    const g = mk("guest", 16);
    assert.equal(populateRange(g, GUEST_RAM_BASE_GFN, 2), 0);
    const pattern = new Uint8Array(4096).map((_, i) => (i * 5) & 0xff);
    assert.equal(g.guest.copyToGuest(GUEST_RAM_BASE_GFN * 4096, pattern), 0);
    const ram = GUEST_RAM_BASE_GFN;
    const plain = await connect(hv, mk("dd").domid);
    const priv = await connect(hv, mk("dom0-like", 0, true).domid);
    // The gmfn_foreign rule: an unprivileged domain gets -EPERM for every segment, both ways.
    assert.deepEqual(await plain.copyFromForeign(g.domid, [[ram, 0, 4]]), [-Errno.EPERM]);
    assert.deepEqual(await plain.copyToForeign(g.domid, [[ram, 0, Uint8Array.of(1)]]), [-Errno.EPERM]);
    const got = await priv.copyFromForeign(g.domid, [
      [ram, 100, 8],
      [ram + 5, 0, 4], // not populated
      [ram, 4090, 10], // past the page
      [0x10, 0, 4], // not RAM
    ]);
    assert.deepEqual([...(got[0] as Uint8Array)], [...pattern.subarray(100, 108)]);
    assert.deepEqual(got.slice(1), [-Errno.EINVAL, -Errno.EINVAL, -Errno.EINVAL]);
    g.p2m.enableLogDirty();
    g.p2m.peekAndClean();
    assert.deepEqual(await priv.copyToForeign(g.domid, [[ram + 1, 8, Uint8Array.of(0xab, 0xcd)]]), [0]);
    assert.deepEqual([...(g.guest.copyFromGuest((ram + 1) * 4096 + 8, 2) as Uint8Array)], [0xab, 0xcd]);
    assert.deepEqual(g.p2m.peekAndClean(), [ram + 1], "a foreign write is seen by migration");
    g.p2m.disableLogDirty();
    assert.deepEqual(await priv.copyFromForeign(999, [[ram, 0, 1]]), [-Errno.ESRCH]);
    assert.deepEqual(await priv.copyFromForeign(priv.domid, [[ram, 0, 1]]), [-Errno.EINVAL], "not its own RAM");
    // No view stays behind: the guest's frames hold no extra reference.
    assert.equal(g.pages.refCount(g.p2m.get(ram)!.mfn), 0);
    await assert.rejects(priv.call("foreignCopyToSegs", g.domid, [[ram, 0, 5]]), /segment/);
    plain.close();
    priv.close();
  });

  it("ports coming and going share one upcall hook; a closed port's watcher is gone", async () => {
    const { hv, mk } = host();
    const d = mk("dd");
    const first = await connect(hv, d.domid);
    const hook = hv.hooks.upcall;
    first.close();
    let seen = 0;
    const unwatch = watchUpcalls(hv, d.domid, () => seen++);
    for (let i = 0; i < 20; i++) (await connect(hv, d.domid)).close();
    assert.equal(hv.hooks.upcall, hook, "no new wrapper per port");
    hv.hooks.upcall?.(d.domid, 0);
    hv.hooks.upcall?.(d.domid + 1, 0);
    assert.equal(seen, 1, "called for its own domain only");
    unwatch();
    hv.hooks.upcall?.(d.domid, 0);
    assert.equal(seen, 1);
  });
});
