import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Domain } from "../domain.js";
import { decreaseReservation } from "../memory.js";
import { Errno } from "../public/errno.js";
import { EvtchnStat } from "../public/event_channel.js";
import { SHARED_INFO_EVTCHN_MASK_OFFSET, SHARED_INFO_EVTCHN_PENDING_OFFSET, VcpuInfo } from "../public/layout.js";
import { Shutdown, Virq } from "../public/xen.js";
import { makeDomain, makeHost, ramGpa } from "../test_support.js";
import { registerVcpuInfo } from "../vcpu_op.js";
import {
  evtchnAllocUnbound,
  evtchnBindInterdomain,
  evtchnBindIpi,
  evtchnBindStatic,
  evtchnBindVcpu,
  evtchnBindVirq,
  evtchnClose,
  evtchnSend,
  evtchnStatus,
  evtchnUnmask,
  sendGuestVirq,
} from "./event_channel.js";

/** What the guest sees, read with plain byte arithmetic from the layout's offsets. */
function guestView(d: Domain) {
  const u8 = d.memory.frameBytes(d.sharedInfoMfn);
  const bit = (base: number, port: number) => (u8[base + (port >> 3)]! >> (port & 7)) & 1;
  return {
    pending: (port: number) => bit(SHARED_INFO_EVTCHN_PENDING_OFFSET, port),
    masked: (port: number) => bit(SHARED_INFO_EVTCHN_MASK_OFFSET, port),
    setMask: (port: number) => {
      u8[SHARED_INFO_EVTCHN_MASK_OFFSET + (port >> 3)]! |= 1 << (port & 7);
    },
    clearPending: (port: number) => {
      u8[SHARED_INFO_EVTCHN_PENDING_OFFSET + (port >> 3)]! &= ~(1 << (port & 7));
    },
    upcall: () => u8[VcpuInfo.fields.evtchn_upcall_pending.offset]!,
    clearUpcall: () => {
      u8[VcpuInfo.fields.evtchn_upcall_pending.offset] = 0;
    },
    sel: () => {
      const o = VcpuInfo.fields.evtchn_pending_sel.offset;
      let v = 0n;
      for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(u8[o + i]!);
      return v;
    },
  };
}

function connect(hv: ReturnType<typeof makeHost>["hv"], a: Domain, b: Domain): [number, number] {
  const pb = evtchnAllocUnbound(b, a.domid);
  assert.ok(pb > 0);
  const pa = evtchnBindInterdomain(hv, a, b, pb);
  assert.ok(pa > 0);
  return [pa, pb];
}

describe("event channels (2-level)", () => {
  it("alloc_unbound + bind_interdomain connect two domains; status reports both ends", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const pb = evtchnAllocUnbound(b, a.domid);
    assert.equal(pb, 1, "port 0 is reserved; first port is 1");
    assert.deepEqual(evtchnStatus(b, pb), { status: EvtchnStat.unbound, vcpu: 0, dom: a.domid });
    const pa = evtchnBindInterdomain(hv, a, b, pb);
    assert.equal(pa, 1);
    assert.deepEqual(evtchnStatus(a, pa), { status: EvtchnStat.interdomain, vcpu: 0, dom: b.domid, port: pb });
    assert.deepEqual(evtchnStatus(b, pb), { status: EvtchnStat.interdomain, vcpu: 0, dom: a.domid, port: pa });
    assert.equal(guestView(a).pending(pa), 1, "Xen sets the new local port pending");
    assert.deepEqual(evtchnStatus(a, 0), { status: EvtchnStat.closed, vcpu: 0 });
    assert.equal(evtchnStatus(a, 5000), -Errno.EINVAL);
  });

  it("bind_interdomain refuses ports not reserved for the caller or not unbound", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const c = makeDomain(hv, {}, 0);
    const forC = evtchnAllocUnbound(b, c.domid);
    assert.equal(evtchnBindInterdomain(hv, a, b, forC), -Errno.EINVAL);
    assert.equal(evtchnBindInterdomain(hv, a, b, 77), -Errno.EINVAL);
    assert.equal(evtchnBindInterdomain(hv, a, b, -1), -Errno.EINVAL);
    assert.equal(evtchnBindInterdomain(hv, a, b, 0), -Errno.EINVAL);
    const [, pb] = connect(hv, a, b);
    assert.equal(evtchnBindInterdomain(hv, a, b, pb), -Errno.EINVAL, "already bound");
  });

  it("send sets the peer's pending bit, selector and upcall, once per edge", () => {
    const host = makeHost();
    const { hv } = host;
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const [pa, pb] = connect(hv, a, b);
    host.upcalls.length = 0;
    const g = guestView(b);
    assert.equal(evtchnSend(hv, a, pa), 0);
    assert.equal(g.pending(pb), 1);
    assert.equal(g.sel(), 1n << BigInt(pb >> 6));
    assert.equal(g.upcall(), 1);
    assert.deepEqual(host.upcalls, [[b.domid, 0]]);
    assert.equal(evtchnSend(hv, a, pa), 0);
    assert.deepEqual(host.upcalls, [[b.domid, 0]], "still pending: no second upcall");
    assert.ok(host.pendingPorts.some(([d, , p]) => d === b.domid && p === pb));
    // The reverse direction.
    g.clearPending(pb);
    assert.equal(evtchnSend(hv, b, pb), 0);
    assert.equal(guestView(a).pending(pa), 1);
  });

  it("a high port lands in the upper half of a 64-bit word", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    let pb = 0;
    for (let i = 0; i < 100; i++) pb = evtchnAllocUnbound(b, a.domid);
    assert.equal(pb, 100);
    const pa = evtchnBindInterdomain(hv, a, b, pb);
    evtchnSend(hv, a, pa);
    const g = guestView(b);
    assert.equal(g.pending(100), 1);
    // Port 100 = word 1, bit 36: byte 48 + 8 + 4, bit 4.
    const u8 = b.memory.frameBytes(b.sharedInfoMfn);
    assert.equal(u8[48 + 8 + 4], 1 << 4);
    assert.equal(g.sel(), 2n);
  });

  it("a masked port goes pending without an upcall; unmask re-raises it", () => {
    const host = makeHost();
    const { hv } = host;
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const [pa, pb] = connect(hv, a, b);
    const g = guestView(b);
    g.setMask(pb);
    host.upcalls.length = 0;
    evtchnSend(hv, a, pa);
    assert.equal(g.pending(pb), 1);
    assert.equal(g.upcall(), 0);
    assert.equal(g.sel(), 0n);
    assert.deepEqual(host.upcalls, []);
    assert.equal(evtchnUnmask(hv, b, pb), 0);
    assert.equal(g.masked(pb), 0);
    assert.equal(g.upcall(), 1);
    assert.deepEqual(host.upcalls, [[b.domid, 0]]);
    // Unmasking a port that is not pending raises nothing.
    g.clearUpcall();
    g.clearPending(pb);
    g.setMask(pb);
    assert.equal(evtchnUnmask(hv, b, pb), 0);
    assert.equal(g.upcall(), 0);
    assert.equal(evtchnUnmask(hv, b, 9999), -Errno.EINVAL);
  });

  it("send: unbound drops silently, VIRQ ports and bad ports are -EINVAL", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const p = evtchnAllocUnbound(a, 7);
    assert.equal(evtchnSend(hv, a, p), 0);
    const virq = evtchnBindVirq(a, Virq.TIMER, 0);
    assert.equal(evtchnSend(hv, a, virq), -Errno.EINVAL);
    for (const bad of [0, 500, 1024, -1, 1.5, Number.NaN, 2 ** 32]) assert.equal(evtchnSend(hv, a, bad), -Errno.EINVAL);
  });

  it("IPIs notify the bound vCPU; vCPU 1 needs a registered vcpu_info to see them", () => {
    const host = makeHost();
    const { hv } = host;
    const d = makeDomain(hv, { maxVcpus: 2 }, 4);
    assert.equal(evtchnBindIpi(d, 2), -Errno.ENOENT);
    const p = evtchnBindIpi(d, 1);
    assert.deepEqual(evtchnStatus(d, p), { status: EvtchnStat.ipi, vcpu: 1 });
    assert.equal(registerVcpuInfo(hv, d, 1, 0x80000 + 2, 64), 0);
    assert.equal(registerVcpuInfo(hv, d, 1, 0x80000 + 2, 128), -Errno.EINVAL, "once per vCPU");
    host.upcalls.length = 0;
    // Clear what registration raised, as the guest's first upcall would.
    d.guest.writeU8(ramGpa(2, 64), 0);
    d.guest.writeU64(ramGpa(2, 72), 0);
    assert.equal(evtchnSend(hv, d, p), 0);
    assert.deepEqual(host.upcalls, [[d.domid, 1]]);
    assert.equal(d.guest.readU8(ramGpa(2, 64)), 1, "upcall_pending in the registered block");
    assert.equal(d.guest.readU64(ramGpa(2, 72)), 1, "selector bit 0");
    assert.equal(guestView(d).upcall(), 0, "vCPU 0's block is untouched");
  });

  it("register_vcpu_info validates its arguments and pins the page", () => {
    const { hv, allocator } = makeHost();
    const start = allocator.allocatedFrames;
    const d = makeDomain(hv, { maxVcpus: 2 }, 4);
    assert.equal(registerVcpuInfo(hv, d, 5, 0x80000, 0), -Errno.ENOENT);
    assert.equal(registerVcpuInfo(hv, d, 1, 0x80000, 4), -Errno.EINVAL, "misaligned");
    assert.equal(registerVcpuInfo(hv, d, 1, 0x80000, 4056), -Errno.EINVAL, "crosses the page");
    assert.equal(registerVcpuInfo(hv, d, 1, 0x90000, 0), -Errno.EINVAL, "not RAM");
    assert.equal(registerVcpuInfo(hv, d, 1, 0x80000, 4048), 0);
    const before = allocator.allocatedFrames;
    // The guest gives the page back: it leaves the physmap but stays allocated for the core.
    assert.equal(decreaseReservation(d, [0x80000], 0), 1);
    assert.equal(allocator.allocatedFrames, before);
    assert.equal(d.pages.releasedPages, 1);
    hv.domains.destroy(d.domid);
    assert.equal(allocator.allocatedFrames, start);
  });

  it("VIRQs: per-vCPU and global binding rules", () => {
    const host = makeHost();
    const { hv } = host;
    const d = makeDomain(hv, { maxVcpus: 2 }, 0);
    const t0 = evtchnBindVirq(d, Virq.TIMER, 0);
    const t1 = evtchnBindVirq(d, Virq.TIMER, 1);
    assert.ok(t0 > 0 && t1 > 0 && t0 !== t1);
    assert.equal(evtchnBindVirq(d, Virq.TIMER, 0), -Errno.EEXIST);
    assert.equal(evtchnBindVirq(d, Virq.TIMER, 2), -Errno.ENOENT);
    assert.equal(evtchnBindVirq(d, Virq.CONSOLE, 1), -Errno.EINVAL, "global VIRQs bind on vCPU 0");
    assert.equal(evtchnBindVirq(d, 24, 0), -Errno.EINVAL);
    assert.equal(evtchnBindVirq(d, -1, 0), -Errno.EINVAL);
    const con = evtchnBindVirq(d, Virq.CONSOLE, 0);
    assert.deepEqual(evtchnStatus(d, con), { status: EvtchnStat.virq, vcpu: 0, virq: Virq.CONSOLE });
    assert.equal(evtchnBindVcpu(d, con, 1), 0, "a global VIRQ may move");
    assert.equal(evtchnBindVcpu(d, t0, 1), -Errno.EINVAL, "a per-vCPU VIRQ may not");
    assert.equal(evtchnBindVcpu(d, con, 9), -Errno.ENOENT);
    host.upcalls.length = 0;
    sendGuestVirq(hv, d, d.vcpus[0]!, Virq.TIMER);
    assert.equal(guestView(d).pending(t0), 1);
    assert.deepEqual(host.upcalls, [[d.domid, 0]]);
    // Close frees the VIRQ so it can be bound again.
    assert.equal(evtchnClose(hv, d, t0), 0);
    assert.equal(guestView(d).pending(t0), 0, "a freed port loses its pending bit");
    assert.equal(evtchnBindVirq(d, Virq.TIMER, 0), t0);
  });

  it("VIRQ_DOM_EXC reaches the hardware domain when a domain shuts down", () => {
    const { hv } = makeHost();
    const dom0 = makeDomain(hv, { domid: 0, flags: { hardware: true, privileged: true } }, 0);
    const port = evtchnBindVirq(dom0, Virq.DOM_EXC, 0);
    const u = makeDomain(hv, {}, 0);
    hv.domains.shutdown(u.domid, Shutdown.crash);
    assert.equal(guestView(dom0).pending(port), 1);
  });

  it("close: the interdomain peer reverts to unbound and can be re-bound", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const [pa, pb] = connect(hv, a, b);
    assert.equal(evtchnClose(hv, a, pa), 0);
    assert.deepEqual(evtchnStatus(a, pa), { status: EvtchnStat.closed, vcpu: 0 });
    assert.deepEqual(evtchnStatus(b, pb), { status: EvtchnStat.unbound, vcpu: 0, dom: a.domid });
    assert.equal(evtchnSend(hv, b, pb), 0, "sending on the now-unbound end is dropped");
    assert.equal(evtchnClose(hv, a, pa), -Errno.EINVAL, "already closed");
    assert.equal(evtchnClose(hv, a, 0), -Errno.EINVAL, "reserved");
    assert.equal(evtchnClose(hv, a, 4096), -Errno.EINVAL);
    const again = evtchnBindInterdomain(hv, a, b, pb);
    assert.ok(again > 0);
  });

  it("destroying a domain closes its channels and leaves peers unbound", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    const [pa, pb] = connect(hv, a, b);
    hv.domains.destroy(b.domid);
    assert.deepEqual(evtchnStatus(a, pa), { status: EvtchnStat.unbound, vcpu: 0, dom: b.domid });
    assert.equal(evtchnSend(hv, a, pa), 0);
    assert.ok(pb > 0);
  });

  it("ports are limited by max_evtchn_port (-ENOSPC); static ports can be chosen", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, { maxEvtchnPort: 3 }, 0);
    assert.deepEqual(
      [1, 2, 3].map(() => evtchnAllocUnbound(a, 0)),
      [1, 2, 3],
    );
    assert.equal(evtchnAllocUnbound(a, 0), -Errno.ENOSPC);
    assert.equal(evtchnBindIpi(a, 0), -Errno.ENOSPC);
    const b = makeDomain(hv, {}, 0);
    assert.equal(evtchnAllocUnbound(b, a.domid, 10), 10);
    assert.equal(evtchnAllocUnbound(b, a.domid, 10), -Errno.EBUSY);
    assert.equal(evtchnAllocUnbound(b, a.domid, 0), -Errno.EINVAL);
    assert.equal(evtchnAllocUnbound(b, a.domid, 1024), -Errno.EINVAL);
    evtchnClose(hv, a, 1);
    assert.equal(evtchnBindInterdomain(hv, a, b, 10, 1), 1);
  });

  it("static channels (dom0less) connect chosen port numbers without raising anything", () => {
    const { hv } = makeHost();
    const a = makeDomain(hv, {}, 0);
    const b = makeDomain(hv, {}, 0);
    assert.equal(evtchnBindStatic(a, 10, b, 20), 0);
    assert.deepEqual(evtchnStatus(a, 10), { status: EvtchnStat.interdomain, vcpu: 0, dom: b.domid, port: 20 });
    assert.deepEqual(evtchnStatus(b, 20), { status: EvtchnStat.interdomain, vcpu: 0, dom: a.domid, port: 10 });
    assert.equal(guestView(a).pending(10), 0);
    assert.equal(evtchnBindStatic(a, 11, b, 20), -Errno.EBUSY);
    assert.deepEqual(evtchnStatus(a, 11), { status: EvtchnStat.closed, vcpu: 0 }, "nothing half-bound");
    assert.equal(evtchnBindStatic(a, 0, b, 21), -Errno.EINVAL);
    assert.equal(evtchnBindStatic(a, 12, a, 12), -Errno.EINVAL);
    assert.equal(evtchnSend(hv, a, 10), 0);
    assert.equal(guestView(b).pending(20), 1);
  });
});
