import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clearPending2l } from "../event_channel/event_2l.js";
import {
  BUF_IOREQ_BASE,
  HVM_IOREQSRV_BUFIOREQ_ATOMIC,
  HVM_IOREQSRV_BUFIOREQ_OFF,
  IOREQ_STATE_MASK,
  Ioreq,
  IoreqState,
  parseBufIoreqWord,
  XEN_DMOP_IO_RANGE_MEMORY,
  XENON_DMOP_IO_RANGE_MEMORY_POSTED,
} from "../public/ioreq.js";
import { decode } from "../public/layout.js";
import { makeDomain, makeHost } from "../test_support.js";

const WIN = 0x0200_0000;

function setup(opts: { buffered?: boolean; privileged?: boolean } = {}) {
  const host = makeHost();
  const done: Array<[number, number, number]> = [];
  host.hv.hooks.ioreqDone = (d, v, value) => done.push([d, v, value]);
  const guest = makeDomain(host.hv, { name: "guest" });
  const dm = makeDomain(host.hv, { name: "dm", flags: { privileged: opts.privileged ?? false } }, 0);
  const ctl = makeDomain(host.hv, { name: "ctl", flags: { privileged: true } }, 0);
  const s = host.hv.hypercalls;
  if (!(opts.privileged ?? false)) {
    assert.equal(s.dmopCreateIoreqServer(dm.domid, guest.domid, 0), -1, "no dm privilege before set_target");
    assert.equal(s.domctlSetTarget(ctl.domid, dm.domid, guest.domid), 0);
  }
  const id = s.dmopCreateIoreqServer(
    dm.domid,
    guest.domid,
    opts.buffered ? HVM_IOREQSRV_BUFIOREQ_ATOMIC : HVM_IOREQSRV_BUFIOREQ_OFF,
  );
  assert.ok(id >= 0, `create gave ${id}`);
  const info = s.dmopGetIoreqServerInfo(dm.domid, guest.domid, id);
  assert.ok(typeof info === "object");
  // The emulator binds one port per guest vCPU (and the buffered one).
  const local = info.vcpuPorts.map((p) => s.evtchnBindInterdomain(dm.domid, guest.domid, p));
  for (const p of local) assert.ok(p > 0);
  const bufLocal = info.bufioreqPort !== 0 ? s.evtchnBindInterdomain(dm.domid, guest.domid, info.bufioreqPort) : 0;
  // Binding leaves the new local ports pending (as Xen does); start from clean bits.
  for (const p of [...local, bufLocal]) if (p > 0) clearPending2l(dm, p);
  const page = host.memory.frameBytes(s.acquireIoreqServerFrame(dm.domid, guest.domid, id, 1));
  return { ...host, s, guest, dm, ctl, id, info, local, bufLocal, page, done };
}

const slot = (page: Uint8Array, v: number) => decode(Ioreq, page, v * 32);

describe("IOREQ servers", () => {
  it("a read in a mapped, enabled range becomes a READY ioreq; the answer resumes the vCPU with its data", () => {
    const t = setup();
    assert.equal(
      t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, XEN_DMOP_IO_RANGE_MEMORY, WIN, WIN + 0x1ff),
      0,
    );
    assert.deepEqual(t.hv.ioreq.mmioRanges(t.guest.domid), [], "nothing served until enabled");
    assert.equal(t.hv.ioreq.send(t.guest, 1, WIN + 0x70, 4, false, 0), "unclaimed");
    const g0 = t.hv.ioreq.generation(t.guest.domid);
    assert.equal(t.s.dmopSetIoreqServerState(t.dm.domid, t.guest.domid, t.id, true), 0);
    assert.notEqual(t.hv.ioreq.generation(t.guest.domid), g0);
    assert.deepEqual(t.hv.ioreq.mmioRanges(t.guest.domid), [[WIN, WIN + 0x200]]);
    // Straddling the end of the range: not claimed (a request must fit entirely).
    assert.equal(t.hv.ioreq.send(t.guest, 1, WIN + 0x1fe, 4, false, 0), "unclaimed");

    t.pendingPorts.length = 0;
    assert.equal(t.hv.ioreq.send(t.guest, 1, WIN + 0x70, 4, false, 0), "wait");
    assert.ok(t.hv.ioreq.isWaiting(t.guest.domid, 1));
    const r = slot(t.page, 1);
    assert.equal(r.addr, WIN + 0x70);
    assert.equal(r.size, 4);
    assert.equal(r.count, 1);
    assert.equal(r.type, 1);
    assert.equal(r.vp_eport, t.info.vcpuPorts[1]);
    assert.equal(r.flags & IOREQ_STATE_MASK, IoreqState.READY);
    assert.equal((r.flags >> 5) & 1, 1, "dir = read");
    // The emulator's port for vCPU 1 went pending (not the guest's).
    assert.ok(t.pendingPorts.some(([d, , p]) => d === t.dm.domid && p === t.local[1]));
    assert.ok(!t.pendingPorts.some(([d]) => d === t.guest.domid));
    // A second access from the same vCPU cannot be posted while its slot is busy.
    assert.equal(t.hv.ioreq.send(t.guest, 1, WIN + 0x70, 4, false, 0), "unclaimed");

    // A send before the answer is ready is spurious: nothing resumes.
    assert.equal(t.s.evtchnSend(t.dm.domid, t.local[1]!), 0);
    assert.deepEqual(t.done, []);
    // Answer: data, then IORESP_READY, then a send on the bound port.
    t.page[8] = 0x02;
    t.page[32 + 8] = 0x02;
    t.page[32 + 30] = (t.page[32 + 30]! & ~IOREQ_STATE_MASK) | IoreqState.IORESP_READY;
    assert.equal(t.s.evtchnSend(t.dm.domid, t.local[1]!), 0);
    assert.deepEqual(t.done, [[t.guest.domid, 1, 2]]);
    assert.equal(slot(t.page, 1).flags & IOREQ_STATE_MASK, IoreqState.NONE);
    assert.ok(!t.hv.ioreq.isWaiting(t.guest.domid, 1));
  });

  it("a write carries its value masked to the access size", () => {
    const t = setup();
    t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, XEN_DMOP_IO_RANGE_MEMORY, WIN, WIN + 0x1ff);
    t.s.dmopSetIoreqServerState(t.dm.domid, t.guest.domid, t.id, true);
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN + 0x100, 1, true, 0x1234), "wait");
    const r = slot(t.page, 0);
    assert.equal(r.data, 0x34);
    assert.equal((r.flags >> 5) & 1, 0, "dir = write");
  });

  it("writes in a posted range go to the buffered ring and do not wait; reads there stay synchronous", () => {
    const t = setup({ buffered: true });
    const { s, dm, guest, id } = t;
    assert.equal(
      s.dmopMapIoRangeToIoreqServer(dm.domid, guest.domid, id, XEN_DMOP_IO_RANGE_MEMORY, WIN, WIN + 0x1ff),
      0,
    );
    assert.equal(
      s.dmopMapIoRangeToIoreqServer(
        dm.domid,
        guest.domid,
        id,
        XENON_DMOP_IO_RANGE_MEMORY_POSTED,
        WIN + 0x50,
        WIN + 0x53,
      ),
      0,
    );
    // A posted range may not straddle a 1 MiB boundary (buf_ioreq has addr:20).
    assert.equal(
      s.dmopMapIoRangeToIoreqServer(
        dm.domid,
        guest.domid,
        id,
        XENON_DMOP_IO_RANGE_MEMORY_POSTED,
        0x2ff_fffc,
        0x300_0003,
      ),
      -22,
    );
    s.dmopSetIoreqServerState(dm.domid, guest.domid, id, true);
    const buf = t.memory.frameBytes(s.acquireIoreqServerFrame(dm.domid, guest.domid, id, 0));
    const dv = new DataView(buf.buffer, buf.byteOffset, 4096);
    t.pendingPorts.length = 0;
    for (let i = 0; i < 3; i++) assert.equal(t.hv.ioreq.send(guest, 0, WIN + 0x50, 4, true, i), "posted");
    assert.equal(dv.getUint32(4, true), 3, "write_pointer");
    assert.deepEqual(parseBufIoreqWord(dv.getUint32(BUF_IOREQ_BASE + 16, true)), {
      type: 1,
      dir: 0,
      size: 4,
      addr20: 0x50,
    });
    assert.equal(dv.getUint32(BUF_IOREQ_BASE + 20, true), 2);
    assert.ok(t.pendingPorts.some(([d, , p]) => d === dm.domid && p === t.bufLocal));
    assert.ok(!t.hv.ioreq.isWaiting(guest.domid, 0));
    assert.equal(t.hv.ioreq.send(guest, 0, WIN + 0x50, 4, false, 0), "wait");
    // A full ring falls back to a synchronous request.
    dv.setUint32(0, 3, true);
    const t2 = setup({ buffered: true });
    t2.s.dmopMapIoRangeToIoreqServer(
      t2.dm.domid,
      t2.guest.domid,
      t2.id,
      XENON_DMOP_IO_RANGE_MEMORY_POSTED,
      WIN + 0x50,
      WIN + 0x53,
    );
    t2.s.dmopSetIoreqServerState(t2.dm.domid, t2.guest.domid, t2.id, true);
    for (let i = 0; i < 511; i++) assert.equal(t2.hv.ioreq.send(t2.guest, 0, WIN + 0x50, 4, true, i), "posted");
    assert.equal(t2.hv.ioreq.send(t2.guest, 0, WIN + 0x50, 4, true, 511), "wait");
  });

  it("only the server's emulator may drive it; overlapping ranges and unknown types are refused", () => {
    const t = setup();
    const other = makeDomain(t.hv, { name: "other" }, 0);
    assert.equal(t.s.dmopMapIoRangeToIoreqServer(other.domid, t.guest.domid, t.id, 1, WIN, WIN + 0xff), -1);
    assert.equal(t.s.dmopSetIoreqServerState(t.guest.domid, t.guest.domid, t.id, true), -1, "the target itself");
    assert.equal(t.s.acquireIoreqServerFrame(other.domid, t.guest.domid, t.id, 1), -1);
    assert.equal(t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 1, WIN, WIN + 0xff), 0);
    assert.equal(t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 1, WIN + 0x80, WIN + 0x17f), -17);
    assert.equal(t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 0, 0x60, 0x64), -22);
    assert.equal(t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 1, 10, 5), -22);
    assert.equal(t.s.dmopGetIoreqServerInfo(t.dm.domid, t.guest.domid, 7), -2);
    // The guest cannot send on or close the hypervisor-consumed ports.
    assert.equal(t.s.evtchnSend(t.guest.domid, t.info.vcpuPorts[0]!), -22);
    assert.equal(t.s.evtchnClose(t.guest.domid, t.info.vcpuPorts[0]!), -22);
  });

  it("disabling or destroying a server resumes waiting vCPUs with all-ones and frees its frames", () => {
    const t = setup();
    t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 1, WIN, WIN + 0xff);
    t.s.dmopSetIoreqServerState(t.dm.domid, t.guest.domid, t.id, true);
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN, 4, false, 0), "wait");
    t.s.dmopSetIoreqServerState(t.dm.domid, t.guest.domid, t.id, false);
    assert.deepEqual(t.done, [[t.guest.domid, 0, 0xffff_ffff]]);
    const before = t.allocator.freeFrames;
    assert.equal(t.s.dmopDestroyIoreqServer(t.dm.domid, t.guest.domid, t.id), 0);
    assert.equal(t.allocator.freeFrames, before + 1);
    assert.equal(t.s.dmopGetIoreqServerInfo(t.dm.domid, t.guest.domid, t.id), -2);
    // The emulator's bound ports fell back to unbound peers: a send is harmless.
    assert.equal(t.s.evtchnSend(t.dm.domid, t.local[0]!), 0);
  });

  it("destroying the emulator domain tears its servers down and parks their windows", () => {
    const t = setup({ buffered: true });
    t.s.dmopMapIoRangeToIoreqServer(t.dm.domid, t.guest.domid, t.id, 1, WIN, WIN + 0xff);
    t.s.dmopSetIoreqServerState(t.dm.domid, t.guest.domid, t.id, true);
    assert.equal(t.hv.domains.destroy(t.dm.domid), 0);
    assert.equal(t.s.dmopGetIoreqServerInfo(t.dm.domid, t.guest.domid, t.id), -3); // ESRCH: no such caller
    // The window stays the guest's: reads all-ones, writes dropped, nothing outside it.
    assert.deepEqual(t.hv.ioreq.mmioRanges(t.guest.domid), [[WIN, WIN + 0x100]]);
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN, 4, false, 0), "dropped");
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN + 0xfc, 4, true, 1), "dropped");
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN + 0xfe, 4, false, 0), "unclaimed");
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN + 0x100, 4, false, 0), "unclaimed");
    // A new device model claims it again; the guest's death forgets it.
    const dm2 = t.hv.domains.create({ name: "dm2", maxVcpus: 1, maxPages: 0, p2mPoolPages: 16 });
    assert.ok(typeof dm2 === "object");
    t.hv.ioreq.setDmTarget(dm2.domid, t.guest.domid, true);
    const id = t.s.dmopCreateIoreqServer(dm2.domid, t.guest.domid, 0);
    assert.ok(id >= 0);
    t.s.dmopMapIoRangeToIoreqServer(dm2.domid, t.guest.domid, id, 1, WIN, WIN + 0xff);
    t.s.dmopSetIoreqServerState(dm2.domid, t.guest.domid, id, true);
    assert.equal(t.hv.ioreq.send(t.guest, 0, WIN, 4, false, 0), "wait");
    assert.equal(t.hv.domains.destroy(t.guest.domid), 0);
    assert.deepEqual(t.hv.ioreq.mmioRanges(t.guest.domid), []);
  });
});
