import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InProcessBus } from "./bus_inprocess.js";
import { Mmio, Status } from "./constants.js";
import { VIRTIO_MMIO_STATE_VERSION, type VirtioMmioState, VirtioMmioTransport } from "./mmio_transport.js";
import { RngDevice } from "./rng/device.js";
import { BUF_PAGE, descBytes, descPage, type Rig, rig, usedPage } from "./testkit.js";

const W = 2;
const LIVE = Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK;

/** One rng request through `t`: head 0 asks for 16 bytes at the buffer page. */
async function entropy(r: Rig, t: VirtioMmioTransport): Promise<void> {
  const [hi, lo] = r.addr(BUF_PAGE);
  r.poke(descPage(0), 0, descBytes(lo, hi, 16, W, 0));
  const before = r.u16(usedPage(0), 2);
  r.offer(0, 0);
  t.write(Mmio.QUEUE_NOTIFY, 4, 0);
  await t.idle();
  assert.equal(r.u16(usedPage(0), 2), (before + 1) & 0xffff, r.bus.lines.join("\n"));
}

describe("virtio-mmio device snapshots (getState / setState)", () => {
  it("a device taken over by a new transport continues at the same ring positions", async () => {
    const r = await rig(new RngDevice(), { grants: true });
    for (let i = 0; i < 3; i++) await entropy(r, r.t);
    const s = await r.t.snapshot();
    assert.equal(s.version, VIRTIO_MMIO_STATE_VERSION);
    assert.equal(s.status, LIVE);
    assert.equal(s.queues[0]!.nextAvail, 3);
    assert.equal(s.queues[0]!.nextUsed, 3);
    // Plain data: it survives a structured clone (the way it crosses threads and hosts).
    const copy = structuredClone(s);
    const t2 = new VirtioMmioTransport(new RngDevice(), r.bus);
    await t2.setState(copy);
    assert.equal(t2.read(Mmio.STATUS, 4), LIVE);
    assert.equal(t2.read(Mmio.QUEUE_READY, 4), 1);
    assert.deepEqual(t2.acked, r.t.acked);
    await entropy(r, t2);
    assert.equal(r.u32(usedPage(0), 4 + 8 * 3 + 4), 16, "the 4th completion went to slot 3, not slot 0");
    assert.deepEqual(t2.getState().queues[0]!.nextUsed, 4);
  });

  it("a snapshot of a device the driver never started restores as it was", async () => {
    const bus = new InProcessBus(2, (await rig(new RngDevice())).mem, false);
    const t = new VirtioMmioTransport(new RngDevice(), bus);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE);
    const t2 = new VirtioMmioTransport(new RngDevice(), bus);
    await t2.setState(t.getState());
    assert.equal(t2.read(Mmio.STATUS, 4), Status.ACKNOWLEDGE);
    assert.equal(t2.read(Mmio.QUEUE_READY, 4), 0);
  });

  it("rings that are no longer reachable give DEVICE_NEEDS_RESET and a log line, not a throw", async () => {
    const r = await rig(new RngDevice(), { grants: true });
    await entropy(r, r.t);
    const s = await r.t.snapshot();
    r.mem.revoke(1000 + usedPage(0));
    const t2 = new VirtioMmioTransport(new RngDevice(), r.bus);
    await t2.setState(s);
    assert.equal(t2.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
    assert.match(r.bus.lines.at(-1) ?? "", /virtio-rng d7: .*used ring.*device needs reset/);
  });

  it("refuses snapshots that are not a state this device can be in, and stays reset", async () => {
    const r = await rig(new RngDevice(), { grants: true });
    const good = await r.t.snapshot();
    const q0 = good.queues[0]!;
    const cases: [string, unknown, RegExp][] = [
      ["version", { ...good, version: 2 }, /version 2/],
      ["device id", { ...good, deviceId: 2 }, /device id 2, this device is 4/],
      ["status", { ...good, status: Status.ACKNOWLEDGE | Status.DRIVER_OK }, /status 0x5/],
      ["queue count", { ...good, queues: [] }, /0 queues, the device has 1/],
      ["queue size", { ...good, queues: [{ ...q0, size: 3 }] }, /size 3/],
      ["queue size 0", { ...good, queues: [{ ...q0, size: 0 }] }, /size 0/],
      ["in flight", { ...good, queues: [{ ...q0, nextAvail: 5, nextUsed: 4 }] }, /in flight/],
      ["index", { ...good, queues: [{ ...q0, nextUsed: 70000, nextAvail: 70000 }] }, /16-bit/],
      ["addresses", { ...good, queues: [{ ...q0, desc: [1] }] }, /ring addresses/],
      ["features", { ...good, driverFeatures: [1, -1] }, /driverFeatures/],
      ["not an object", null, /not an object/],
    ];
    for (const [what, s, re] of cases) {
      const t2 = new VirtioMmioTransport(new RngDevice(), r.bus);
      t2.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE);
      await assert.rejects(t2.setState(s as VirtioMmioState), re, what);
      assert.equal(t2.read(Mmio.STATUS, 4), Status.ACKNOWLEDGE, `${what}: nothing changed`);
    }
  });

  it("getState refuses while a chain is in flight", async () => {
    const r = await rig(new RngDevice());
    r.t.queues[0]!.inFlight = 1;
    assert.throws(() => r.t.getState(), /in flight/);
  });
});
