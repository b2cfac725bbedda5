import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { P2M_NONE } from "@xenon/hw";
import { Domain } from "./domain.js";
import { isPending2l } from "./event_channel/event_2l.js";
import { evtchnBindVirq } from "./event_channel/event_channel.js";
import { addToPhysmap } from "./memory.js";
import { P2mReader } from "./p2m/p2m.js";
import { P2mType } from "./p2m/types.js";
import { Errno } from "./public/errno.js";
import { XenMapSpace } from "./public/memory.js";
import { DOMID_MAX, DomInf, Shutdown, Virq, XEN_DOMINF_SHUTDOWNSHIFT } from "./public/xen.js";
import { makeDomain, makeHost } from "./test_support.js";

describe("domain table", () => {
  it("allocates domids like Xen: 0 only on request, then a rover over 1..0x7FEF", () => {
    const { hv } = makeHost();
    const d0 = makeDomain(hv, { domid: 0 }, 0);
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    assert.deepEqual([d0.domid, a.domid, b.domid], [0, 1, 2]);
    assert.equal(hv.domains.create({ domid: 1, maxVcpus: 1, p2mPoolPages: 8 }), -Errno.EEXIST);
    assert.equal(hv.domains.create({ domid: DOMID_MAX + 1, maxVcpus: 1, p2mPoolPages: 8 }), -Errno.EINVAL);
    assert.equal(hv.domains.create({ domid: -1, maxVcpus: 1, p2mPoolPages: 8 }), -Errno.EINVAL);
    // The rover keeps going past a destroyed id rather than reusing it at once.
    assert.equal(hv.domains.destroy(a.domid), 0);
    const c = makeDomain(hv, {}, 0);
    assert.equal(c.domid, 3);
    const top = makeDomain(hv, { domid: DOMID_MAX }, 0);
    assert.equal(top.domid, DOMID_MAX);
  });

  it("skips ids in use when allocating", () => {
    const { hv } = makeHost();
    for (let i = 1; i <= 3; i++) makeDomain(hv, { domid: i }, 0);
    assert.equal(makeDomain(hv, {}, 0).domid, 4);
  });

  it("rejects bad configuration with -EINVAL and allocates nothing", () => {
    const { hv, allocator } = makeHost();
    const start = allocator.allocatedFrames;
    const bad: object[] = [
      { maxVcpus: 0, p2mPoolPages: 8 },
      { maxVcpus: 129, p2mPoolPages: 8 },
      { maxVcpus: 1.5, p2mPoolPages: 8 },
      { maxVcpus: 1, p2mPoolPages: 3 },
      { maxVcpus: 1, p2mPoolPages: 8, maxPages: -1 },
      { maxVcpus: 1, p2mPoolPages: 8, maxEvtchnPort: 4096 },
      { maxVcpus: 1, p2mPoolPages: 8, maxGrantFrames: 0 },
      { maxVcpus: 1, p2mPoolPages: 8, actions: { onCrash: "explode" } },
    ];
    for (const cfg of bad) assert.equal(hv.domains.create(cfg as never), -Errno.EINVAL, JSON.stringify(cfg));
    assert.equal(allocator.allocatedFrames, start);
  });

  it("fails with -ENOMEM and leaks nothing when the host is short of frames", () => {
    const { hv, allocator } = makeHost(64);
    const start = allocator.allocatedFrames;
    assert.equal(hv.domains.create({ maxVcpus: 1, p2mPoolPages: 100 }), -Errno.ENOMEM);
    // Pool fits, but shared_info or the first grant frame does not.
    assert.equal(hv.domains.create({ maxVcpus: 1, p2mPoolPages: 63 }), -Errno.ENOMEM);
    assert.equal(hv.domains.create({ maxVcpus: 1, p2mPoolPages: 64 }), -Errno.ENOMEM);
    assert.equal(allocator.allocatedFrames, start);
    assert.equal(hv.domains.count, 0);
  });

  it("pause is counted; unpause below zero is -EINVAL", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 0);
    assert.equal(d.paused, true, "created paused once");
    assert.equal(hv.domains.unpause(d.domid), 0);
    assert.equal(d.paused, false);
    assert.equal(hv.domains.unpause(d.domid), -Errno.EINVAL);
    assert.equal(hv.domains.pause(d.domid), 0);
    assert.equal(hv.domains.pause(d.domid), 0);
    assert.equal(hv.domains.unpause(d.domid), 0);
    assert.equal(d.paused, true);
    assert.equal(hv.domains.unpause(d.domid), 0);
    assert.equal(d.paused, false);
    assert.equal(hv.domains.pause(999), -Errno.ESRCH);
  });

  it("shutdown records the reason and the configured action; a second shutdown is a no-op", () => {
    const host = makeHost();
    const { hv } = host;
    const d = makeDomain(hv, { actions: { onCrash: "coredump-restart", onReboot: "rename-restart" } }, 0);
    hv.domains.unpause(d.domid);
    assert.equal(hv.domains.shutdown(d.domid, 99), -Errno.EINVAL);
    assert.equal(hv.domains.shutdown(d.domid, Shutdown.crash), 0);
    assert.equal(d.shutdownAction(), "coredump-restart");
    assert.equal(hv.domains.shutdown(d.domid, Shutdown.poweroff), 0);
    assert.equal(d.shutdownCode, Shutdown.crash);
    assert.deepEqual(host.shutdowns, [[d.domid, Shutdown.crash, "coredump-restart"]]);
    assert.deepEqual(d.vcpus[0]!.takeSchedRequest(), { op: "shutdown" });
    const info = d.info();
    assert.equal(info.shutdown, true);
    assert.equal(info.running, false);
    assert.equal(info.flags & DomInf.shutdown, DomInf.shutdown);
    assert.equal((info.flags >>> XEN_DOMINF_SHUTDOWNSHIFT) & 0xff, Shutdown.crash);
    assert.equal(d.resume(), 0);
    assert.equal(d.isShutdown, false);
  });

  it("default actions follow xl and a latched shutdown code wins", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 0);
    d.latchShutdownCode(Shutdown.reboot);
    hv.domains.shutdown(d.domid, Shutdown.poweroff);
    assert.equal(d.shutdownCode, Shutdown.reboot);
    assert.equal(d.shutdownAction(), "restart");
    const e = makeDomain(hv, {}, 0);
    hv.domains.shutdown(e.domid, Shutdown.suspend);
    assert.equal(e.shutdownAction(), null);
    const w = makeDomain(hv, {}, 0);
    hv.domains.shutdown(w.domid, Shutdown.watchdog);
    assert.equal(w.shutdownAction(), "destroy");
  });

  it("lists domain info like getdomaininfo", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, { maxVcpus: 3, maxPages: 100, flags: { xenstore: true } }, 10);
    makeDomain(hv, {}, 0);
    hv.domains.unpause(a.domid);
    const list = hv.domains.infoList();
    assert.equal(list.length, 2);
    const ia = list[0]!;
    assert.equal(ia.domid, a.domid);
    assert.equal(ia.totPages, 10);
    assert.equal(ia.maxPages, 100);
    assert.equal(ia.nrVcpus, 3);
    assert.equal(ia.maxVcpuId, 2);
    assert.equal(ia.running, true);
    assert.equal(
      ia.flags & (DomInf.running | DomInf.xs_domain | DomInf.hvm_guest | DomInf.hap),
      DomInf.running | DomInf.xs_domain | DomInf.hvm_guest | DomInf.hap,
    );
    assert.equal(list[1]!.paused, true);
    assert.equal(hv.domains.infoList(a.domid + 1).length, 1);
    assert.equal(hv.domains.setMaxPages(a.domid, 5), 0);
    assert.equal(a.info().maxPages, 5);
  });

  it("maxMemKb sets max_pages", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, { maxPages: undefined, maxMemKb: 1024 }, 0);
    assert.equal(d.pages.maxPages, 256);
  });

  it("destroy returns every frame: RAM, P2M pool, shared_info, grant frames", () => {
    const host = makeHost();
    const { hv, allocator } = host;
    const start = allocator.allocatedFrames;
    const d = makeDomain(hv, { p2mPoolPages: 20, maxGrantFrames: 8 }, 40);
    assert.ok(d instanceof Domain);
    assert.equal(addToPhysmap(d, XenMapSpace.shared_info, 0, 0x38000), 0);
    assert.equal(addToPhysmap(d, XenMapSpace.grant_table, 3, 0x38001), 0);
    assert.equal(d.grantTable.nrFrames, 4);
    assert.equal(allocator.allocatedFrames - start, 20 + 1 + 4 + 40);
    assert.equal(hv.domains.destroy(d.domid), 0);
    assert.equal(allocator.allocatedFrames, start);
    assert.equal(hv.domains.get(d.domid), undefined);
    assert.deepEqual(host.released, [d.domid]);
    assert.equal(hv.domains.destroy(d.domid), -Errno.ESRCH);
  });

  it("a destroyed domain's P2M is dead on every thread: no walk of frames now reused", () => {
    const { hv } = makeHost();
    const d = makeDomain(hv, {}, 4);
    const reader = new P2mReader(hv.memory, d.p2m.descriptor());
    const gen = d.p2m.generation[0]!;
    hv.domains.destroy(d.domid);
    assert.ok(d.p2m.generation[0]! > gen, "vCPUs flush");
    assert.equal(d.dying, true);
    assert.equal(reader.lookup(0x80000), P2M_NONE);
    assert.equal(d.p2m.lookup(0x80000), P2M_NONE);
    assert.equal(d.guest.readU32(0x80000000), -Errno.EFAULT);
    assert.equal(d.guest.writeU32(0x80000000, 1), -Errno.EFAULT);
    assert.equal(d.p2m.set(0x80000, 1, P2mType.ram_rw), -Errno.EINVAL);
    // A new domain reuses the frames; the dead one still cannot see them.
    const e = makeDomain(hv, {}, 4);
    assert.equal(e.guest.writeU32(0x80000000, 0x1234), 0);
    assert.equal(d.guest.readU32(0x80000000), -Errno.EFAULT);
  });

  it("VIRQ_DOM_EXC fires when a domain is destroyed", () => {
    const { hv } = makeHost();
    const dom0 = makeDomain(hv, { domid: 0, flags: { hardware: true } }, 0);
    const port = evtchnBindVirq(dom0, Virq.DOM_EXC, 0);
    const u = makeDomain(hv, {}, 0);
    hv.domains.destroy(u.domid);
    assert.equal(isPending2l(dom0, port), true);
  });
});
