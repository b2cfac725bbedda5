import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createVcpuState, VcpuSlot } from "@xenon/hw";
import type { Domain } from "../domain.js";
import {
  evtchnAllocUnbound,
  evtchnBindIpi,
  evtchnBindStatic,
  evtchnBindVcpu,
  evtchnClose,
  evtchnSend,
  evtchnUnmask,
} from "../event_channel/event_channel.js";
import type { Hypervisor } from "../hypervisor.js";
import { P2mReader } from "../p2m/p2m.js";
import { EvtchnOp } from "../public/event_channel.js";
import { SHARED_INFO_EVTCHN_MASK_OFFSET, SHARED_INFO_EVTCHN_PENDING_OFFSET } from "../public/layout.js";
import { Hypercall, SchedOp } from "../public/xen.js";
import { makeDomain, makeHost, ramGpa, rng } from "../test_support.js";
import {
  bellSlot,
  DomainCtlSlot,
  type DomainShare,
  domainCtlWords,
  onPcpuSlot,
  ringBell,
  sleepSlot,
} from "./contract.js";
import { FastEvents } from "./fast_events.js";

/** A domain as the machine shares it: LIVE, vCPU 0's line on shared_info, vCPU 1 without one. */
function share(d: Domain): { share: DomainShare; ctl: Int32Array; states: Int32Array[] } {
  const ctl = new Int32Array(new SharedArrayBuffer(domainCtlWords(d.vcpus.length) * 4));
  Atomics.store(ctl, DomainCtlSlot.LIVE, 1);
  const states = d.vcpus.map((v) => {
    const st = createVcpuState();
    if (v.id === 0) {
      st[VcpuSlot.UPCALL_LINE_MFN] = d.sharedInfoMfn;
      st[VcpuSlot.UPCALL_LINE_OFF] = 0;
    }
    return st;
  });
  return {
    share: {
      domid: d.domid,
      ports: d.evtchn.buffer,
      maxPort: d.evtchn.maxPort,
      sharedInfoMfn: d.sharedInfoMfn,
      ctl: ctl.buffer as SharedArrayBuffer,
      vcpuStates: states.map((s) => s.buffer as SharedArrayBuffer),
      console: false,
    },
    ctl,
    states,
  };
}

interface Rig {
  hv: Hypervisor;
  a: Domain;
  b: Domain;
  fast: FastEvents;
  wakes: Array<[number, number]>;
  /** What the core's hooks.upcall was told. */
  upcalls: Array<[number, number]>;
  ctlA: Int32Array;
  ctlB: Int32Array;
  /** Runs an ECALL of a's vCPU 0 through the fast path; the result, or null when declined. */
  call(d: Domain, cmd: number, port: number): number | null;
}

/** Two domains joined by a static channel a:5 <-> b:7, both known to a FastEvents. */
function rig(): Rig {
  const { hv, memory, upcalls } = makeHost();
  const a = makeDomain(hv, { name: "a" });
  const b = makeDomain(hv, { name: "b" });
  assert.equal(evtchnBindStatic(a, 5, b, 7), 0);
  const wakes: Array<[number, number]> = [];
  const fast = new FastEvents(memory, (d, v) => wakes.push([d, v]));
  const sa = share(a);
  const sb = share(b);
  fast.addDomain(sa.share);
  fast.addDomain(sb.share);
  const readers = new Map([a, b].map((d) => [d.domid, new P2mReader(memory, d.p2m.descriptor())]));
  const call = (d: Domain, cmd: number, port: number): number | null => {
    assert.equal(d.guest.writeU32(ramGpa(0), port), 0);
    const st = createVcpuState();
    st[17] = Hypercall.event_channel_op;
    st[10] = cmd;
    st[11] = ramGpa(0) | 0;
    return fast.hypercall(d.domid, 0, st, readers.get(d.domid)!) ? st[10]! : null;
  };
  return { hv, a, b, fast, wakes, upcalls, ctlA: sa.ctl, ctlB: sb.ctl, call };
}

const frame = (d: Domain): Uint8Array => d.memory.frameBytes(d.sharedInfoMfn).slice();

describe("pCPU fast event path", () => {
  it("send on an interdomain port sets the peer's bits like the core, and wakes a vCPU not on a pCPU", () => {
    const r = rig();
    const ref = rig();
    assert.equal(r.call(r.a, EvtchnOp.send, 5), 0);
    assert.equal(evtchnSend(ref.hv, ref.a, 5), 0);
    assert.deepEqual(frame(r.b), frame(ref.b));
    assert.deepEqual(r.wakes, [[r.b.domid, 0]]);
    assert.deepEqual(ref.upcalls, [[ref.b.domid, 0]]);
    // The edge was delivered: a second send changes nothing and wakes no one.
    assert.equal(r.call(r.a, EvtchnOp.send, 5), 0);
    assert.equal(r.wakes.length, 1);
    assert.equal(r.fast.served, 2);
  });

  it("rings the bell instead of posting a wake when the peer vCPU is on a pCPU", () => {
    const r = rig();
    Atomics.store(r.ctlB, onPcpuSlot(0), 1);
    assert.equal(r.call(r.a, EvtchnOp.send, 5), 0);
    assert.deepEqual(r.wakes, []);
    assert.equal(Atomics.load(r.ctlB, bellSlot(0)), 1);
  });

  it("matches the core over a random mix of sends, unmasks and guest mask / clear", () => {
    const r = rig();
    const ref = rig();
    const next = rng(7);
    for (let i = 0; i < 400; i++) {
      const op = next() % 4;
      const [fd, cd, port] = next() % 2 ? [r.a, ref.a, 5] : [r.b, ref.b, 7];
      if (op === 0) {
        // A send to a masked peer port is left to the core (it must tell pollers): do as the
        // worker's caller does and hand it over.
        const fast = r.call(fd, EvtchnOp.send, port);
        if (fast === null) assert.equal(evtchnSend(r.hv, fd, port), 0);
        else assert.equal(fast, 0);
        assert.equal(evtchnSend(ref.hv, cd, port), 0);
      } else if (op === 1) {
        assert.equal(r.call(fd, EvtchnOp.unmask, port), 0);
        assert.equal(evtchnUnmask(ref.hv, cd, port), 0);
      } else {
        // The guest's side: mask the port, or take everything (clear upcall, selector, pending).
        for (const d of [fd, cd]) {
          const u8 = d.memory.frameBytes(d.sharedInfoMfn);
          if (op === 2) u8[SHARED_INFO_EVTCHN_MASK_OFFSET + (port >> 3)]! ^= 1 << (port & 7);
          else {
            u8.fill(0, 0, 16);
            u8.fill(0, SHARED_INFO_EVTCHN_PENDING_OFFSET, SHARED_INFO_EVTCHN_PENDING_OFFSET + 512);
          }
        }
      }
      assert.deepEqual(frame(r.a), frame(ref.a), `step ${i}`);
      assert.deepEqual(frame(r.b), frame(ref.b), `step ${i}`);
    }
  });

  it("leaves a send to a masked peer port to the core, which tells a poller (portPending)", () => {
    const r = rig();
    const u8 = r.b.memory.frameBytes(r.b.sharedInfoMfn);
    u8[SHARED_INFO_EVTCHN_MASK_OFFSET + (7 >> 3)]! |= 1 << (7 & 7);
    const before = frame(r.b);
    assert.equal(r.call(r.a, EvtchnOp.send, 5), null, "declined");
    assert.deepEqual(frame(r.b), before, "touched nothing");
  });

  it("leaves everything not plainly safe to the core and touches nothing", () => {
    const r = rig();
    const before = [frame(r.a), frame(r.b)];
    const declined = (d: Domain, cmd: number, port: number, why: string) =>
      assert.equal(r.call(d, cmd, port), null, why);
    declined(r.a, EvtchnOp.send, 0, "reserved port 0");
    declined(r.a, EvtchnOp.send, 6, "free port");
    declined(r.a, EvtchnOp.send, 4096, "out of range");
    declined(r.a, EvtchnOp.send, 0xffffffff, "huge");
    declined(r.a, EvtchnOp.unmask, 5000, "unmask out of range");
    const ub = evtchnAllocUnbound(r.a, r.b.domid);
    declined(r.a, EvtchnOp.send, ub, "unbound");
    const ipi = evtchnBindIpi(r.a, 0);
    declined(r.a, EvtchnOp.send, ipi, "IPI");
    declined(r.a, EvtchnOp.close, 5, "not a fast op");
    // Notify vCPU 1 has no reachable vcpu_info (the core's dummy).
    assert.equal(evtchnBindVcpu(r.b, 7, 1), 0);
    declined(r.a, EvtchnOp.send, 5, "peer vCPU without a line");
    assert.equal(evtchnBindVcpu(r.b, 7, 0), 0);
    Atomics.store(r.ctlB, DomainCtlSlot.LIVE, 0);
    declined(r.a, EvtchnOp.send, 5, "peer not live");
    Atomics.store(r.ctlB, DomainCtlSlot.LIVE, 1);
    Atomics.store(r.ctlA, DomainCtlSlot.LIVE, 0);
    declined(r.a, EvtchnOp.send, 5, "caller not live");
    Atomics.store(r.ctlA, DomainCtlSlot.LIVE, 1);
    r.fast.removeDomain(r.b.domid);
    declined(r.a, EvtchnOp.send, 5, "peer unknown to the worker");
    assert.deepEqual([frame(r.a), frame(r.b)], before);
    assert.deepEqual(r.wakes, []);
  });

  it("re-reads the shared port table: a closed or rebound channel is never used stale", () => {
    const r = rig();
    assert.equal(r.call(r.a, EvtchnOp.send, 5), 0);
    assert.equal(evtchnClose(r.hv, r.b, 7), 0);
    const before = frame(r.b);
    assert.equal(r.call(r.a, EvtchnOp.send, 5), null, "a:5 is now unbound: the core answers");
    assert.deepEqual(frame(r.b), before);
    // a:5 (unbound, reserved for b) is re-bound by b to a new port 9; the fast path follows.
    assert.equal(evtchnClose(r.hv, r.a, 5), 0);
    assert.equal(evtchnBindStatic(r.a, 5, r.b, 9), 0);
    assert.equal(r.call(r.a, EvtchnOp.send, 5), 0);
    assert.equal(
      r.b.memory.frameBytes(r.b.sharedInfoMfn)[SHARED_INFO_EVTCHN_PENDING_OFFSET + 1]! & 2,
      2,
      "b:9 pending",
    );
  });

  it("a change between snapshot and pin is seen (seqlock)", () => {
    const r = rig();
    const s = r.b.evtchn.seq();
    assert.equal(s & 1, 0);
    assert.equal(r.b.evtchn.pin(s), true);
    r.b.evtchn.unpin();
    evtchnAllocUnbound(r.b, r.a.domid);
    assert.equal(r.b.evtchn.pin(s), false);
    assert.equal(r.b.evtchn.pin(r.b.evtchn.seq()), true);
    r.b.evtchn.unpin();
  });

  it("reads the argument only from the caller's RAM", () => {
    const r = rig();
    const st = createVcpuState();
    st[17] = Hypercall.event_channel_op;
    st[10] = EvtchnOp.send;
    const p2m = new P2mReader(r.a.memory, r.a.p2m.descriptor());
    for (const gpa of [0, 0x1000, ramGpa(0, 4094), ramGpa(200), 0xfffffffc]) {
      st[11] = gpa | 0;
      assert.equal(r.fast.hypercall(r.a.domid, 0, st, p2m), false, `gpa 0x${gpa.toString(16)}`);
    }
  });

  it("domain control slots are distinct per vCPU, and a ring always moves the bell", () => {
    const ctl = new Int32Array(new SharedArrayBuffer(domainCtlWords(3) * 4));
    const slots: number[] = [DomainCtlSlot.LIVE];
    for (let v = 0; v < 3; v++) slots.push(onPcpuSlot(v), bellSlot(v), sleepSlot(v));
    assert.equal(new Set(slots).size, slots.length);
    assert.ok(Math.max(...slots) < ctl.length);
    ringBell(ctl, 1);
    Atomics.store(ctl, sleepSlot(1), 1);
    ringBell(ctl, 1);
    assert.equal(Atomics.load(ctl, bellSlot(1)), 2);
    // A sleeper that read the bell before a ring returns at once.
    assert.equal(Atomics.wait(ctl, bellSlot(1), 1, 1000), "not-equal");
    ringBell(ctl, 7); // no such vCPU: ignored
    assert.equal(Atomics.load(ctl, bellSlot(0)), 0);
  });
});

describe("SCHEDOP_poll on the pCPU worker", () => {
  /** Writes a sched_poll for `ports` into b's RAM and runs it through the fast path. */
  function poll(r: Rig, ports: number[], nr = ports.length, handleHi = 0): { fast: number | null; core: number } {
    const list = ramGpa(1);
    ports.forEach((p, i) => {
      assert.equal(r.b.guest.writeU32(list + 4 * i, p), 0);
    });
    const arg = ramGpa(2);
    assert.equal(r.b.guest.writeU32(arg, list), 0);
    assert.equal(r.b.guest.writeU32(arg + 4, handleHi), 0);
    assert.equal(r.b.guest.writeU32(arg + 8, nr), 0);
    const st = createVcpuState();
    st[17] = Hypercall.sched_op;
    st[10] = SchedOp.poll;
    st[11] = arg | 0;
    const fast = r.fast.hypercall(r.b.domid, 0, st, new P2mReader(r.hv.memory, r.b.p2m.descriptor())) ? st[10]! : null;
    // What the core answers for the same ports (with nothing pending it would block: 0 + a request).
    const core = r.hv.hypercalls.schedPoll(r.b.domid, 0, ports.slice(0, nr), 0);
    r.b.vcpu(0)!.takeSchedRequest();
    return { fast, core };
  }

  it("returns 0 at once when a listed port is pending, as the core does", () => {
    const r = rig();
    assert.equal(evtchnSend(r.hv, r.a, 5), 0);
    assert.deepEqual(poll(r, [3, 7]), { fast: 0, core: 0 });
  });

  it("goes to the core when it must sleep, or for a bad port, list or count", () => {
    const r = rig();
    assert.deepEqual(poll(r, [7]), { fast: null, core: 0 }, "nothing pending: the core blocks it");
    assert.equal(evtchnSend(r.hv, r.a, 5), 0);
    assert.deepEqual(poll(r, [7, 4000]), { fast: null, core: -22 }, "invalid port");
    assert.equal(poll(r, [7], 129).fast, null, "too many ports (guest_abi answers -EINVAL)");
    assert.equal(poll(r, [7], 1, 1).fast, null, "a handle above 4 GiB");
  });
});
