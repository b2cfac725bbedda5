import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FlatMemory, InProcessBus } from "./bus_inprocess.js";
import { Mmio, Status } from "./constants.js";
import { VirtioMmioTransport } from "./mmio_transport.js";
import { GuestGoneError } from "./queue_error.js";
import { RngDevice } from "./rng/device.js";

function make(restricted: boolean) {
  const bus = new InProcessBus(3, new FlatMemory(0x8000_0000, 16 * 4096, restricted), restricted);
  return { bus, t: new VirtioMmioTransport(new RngDevice(), bus) };
}
const features = (t: VirtioMmioTransport, sel: number) => {
  t.write(Mmio.DEVICE_FEATURES_SEL, 4, sel);
  return t.read(Mmio.DEVICE_FEATURES, 4);
};
function negotiate(t: VirtioMmioTransport, lo: number, hi: number): number {
  t.write(Mmio.STATUS, 4, 0);
  t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE);
  t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER);
  t.write(Mmio.DRIVER_FEATURES_SEL, 4, 1);
  t.write(Mmio.DRIVER_FEATURES, 4, hi);
  t.write(Mmio.DRIVER_FEATURES_SEL, 4, 0);
  t.write(Mmio.DRIVER_FEATURES, 4, lo);
  t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
  return t.read(Mmio.STATUS, 4);
}

describe("virtio-mmio v2 transport", () => {
  it("identifies itself: magic, version 2, device id, no vendor, queue sizes, no shared memory", () => {
    const { t } = make(false);
    assert.equal(t.read(Mmio.MAGIC_VALUE, 4), 0x74726976);
    assert.equal(t.read(Mmio.VERSION, 4), 2);
    assert.equal(t.read(Mmio.DEVICE_ID, 4), 4);
    assert.equal(t.read(Mmio.VENDOR_ID, 4), 0);
    assert.equal(t.read(Mmio.QUEUE_NUM_MAX, 4), 256);
    t.write(Mmio.QUEUE_SEL, 4, 1);
    assert.equal(t.read(Mmio.QUEUE_NUM_MAX, 4), 0, "no queue 1");
    assert.equal(t.read(Mmio.SHM_LEN_LOW, 4), 0xffff_ffff);
    assert.equal(t.read(Mmio.MAGIC_VALUE, 2), 0, "control registers are 32-bit only");
  });

  it("offers VERSION_1, EVENT_IDX, INDIRECT_DESC, and ACCESS_PLATFORM only on a restricted (grant) bus", () => {
    const { t } = make(false);
    assert.equal(features(t, 0), (1 << 28) | (1 << 29));
    assert.equal(features(t, 1), 1);
    assert.equal(features(t, 2), 0);
    const g = make(true).t;
    assert.equal(features(g, 1), 3);
  });

  it("FEATURES_OK sticks only for a valid subset with VERSION_1 (and ACCESS_PLATFORM under grants)", () => {
    const { t } = make(false);
    assert.equal(negotiate(t, 0, 0) & Status.FEATURES_OK, 0, "no VERSION_1");
    assert.equal(negotiate(t, 1 << 5, 1) & Status.FEATURES_OK, 0, "not offered");
    assert.equal(negotiate(t, 1 << 29, 1) & Status.FEATURES_OK, Status.FEATURES_OK);
    const g = make(true).t;
    assert.equal(negotiate(g, 0, 1) & Status.FEATURES_OK, 0, "grants need ACCESS_PLATFORM");
    assert.equal(negotiate(g, 0, 3) & Status.FEATURES_OK, Status.FEATURES_OK);
  });

  it("status moves only forward in the spec's order; FAILED always; 0 resets", () => {
    const { t, bus } = make(false);
    t.write(Mmio.STATUS, 4, Status.DRIVER_OK);
    assert.equal(t.read(Mmio.STATUS, 4), 0);
    assert.match(bus.lines[0] ?? "", /^virtio-rng d3: status write 0x4 after 0x0 ignored$/);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    assert.equal(t.read(Mmio.STATUS, 4), Status.ACKNOWLEDGE, "skipping DRIVER is refused");
    t.write(Mmio.STATUS, 4, Status.FAILED);
    assert.equal(t.read(Mmio.STATUS, 4), Status.ACKNOWLEDGE | Status.FAILED);
    t.write(Mmio.STATUS, 4, 0);
    assert.equal(t.read(Mmio.STATUS, 4), 0);
  });

  it("queue registers are honoured only between FEATURES_OK and DRIVER_OK, and not while ready", () => {
    const { t } = make(false);
    t.write(Mmio.QUEUE_NUM, 4, 4);
    t.write(Mmio.QUEUE_READY, 4, 1);
    assert.equal(t.read(Mmio.QUEUE_READY, 4), 0, "before FEATURES_OK");
    negotiate(t, 0, 1);
    t.write(Mmio.QUEUE_NUM, 4, 4);
    t.write(Mmio.QUEUE_READY, 4, 1);
    assert.equal(t.read(Mmio.QUEUE_READY, 4), 1);
    t.write(Mmio.QUEUE_NUM, 4, 64);
    assert.equal(t.queues[0]!.size, 4, "QueueNum ignored while ready");
    t.write(Mmio.QUEUE_READY, 4, 0);
    assert.equal(t.read(Mmio.QUEUE_READY, 4), 0);
  });

  it("a reset while DRIVER_OK is still mapping the rings gives every mapping back", async () => {
    // The driver's reset lands while the used ring's map is under way (after the addresses were read).
    let t: VirtioMmioTransport | null = null;
    class ResetDuringMap extends FlatMemory {
      calls = 0;
      override async map(hi: number, lo: number, len: number, writable: boolean) {
        const r = await super.map(hi, lo, len, writable);
        if (++this.calls === 3) t!.write(Mmio.STATUS, 4, 0);
        return r;
      }
    }
    const mem = new ResetDuringMap(0x8000_0000, 16 * 4096, false);
    t = new VirtioMmioTransport(new RngDevice(), new InProcessBus(3, mem, false));
    negotiate(t, 0, 1);
    t.write(Mmio.QUEUE_NUM, 4, 4);
    t.write(Mmio.QUEUE_DESC_LOW, 4, 0x8000_0000);
    t.write(Mmio.QUEUE_DRIVER_LOW, 4, 0x8000_1000);
    t.write(Mmio.QUEUE_DEVICE_LOW, 4, 0x8000_2000);
    t.write(Mmio.QUEUE_READY, 4, 1);
    t.write(Mmio.STATUS, 4, 15);
    await t.idle();
    assert.equal(mem.calls, 3);
    assert.equal(t.read(Mmio.STATUS, 4), 0);
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    assert.equal(mem.mapped, 0, "no ring stays mapped");
    assert.equal(t.queues[0]!.active, false);
  });

  it("a guest that is gone (GNTST_bad_domain) stops the device quietly: no broken rule logged", async () => {
    class Gone extends FlatMemory {
      override async map(): Promise<string> {
        throw new GuestGoneError(3);
      }
    }
    const bus = new InProcessBus(3, new Gone(0x8000_0000, 16 * 4096, false), false);
    const t = new VirtioMmioTransport(new RngDevice(), bus);
    negotiate(t, 0, 1);
    t.write(Mmio.QUEUE_NUM, 4, 4);
    t.write(Mmio.QUEUE_READY, 4, 1);
    t.write(Mmio.STATUS, 4, 15);
    await t.idle();
    assert.deepEqual(bus.lines, []);
    assert.equal(t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, 0);
  });

  it("a config change bumps ConfigGeneration and, once live, raises the config interrupt", () => {
    const { t, bus } = make(false);
    const g0 = t.read(Mmio.CONFIG_GENERATION, 4);
    t.configChanged();
    assert.notEqual(t.read(Mmio.CONFIG_GENERATION, 4), g0);
    assert.equal(bus.interrupts, 0);
    negotiate(t, 0, 1);
    t.write(Mmio.STATUS, 4, 15);
    t.configChanged();
    assert.equal(t.read(Mmio.INTERRUPT_STATUS, 4), 2);
    assert.equal(bus.interrupts, 1);
  });

  it("a config interrupt is raised again until the driver acknowledges it (a level on an edge)", async () => {
    const { t, bus } = make(false);
    negotiate(t, 0, 1);
    t.write(Mmio.STATUS, 4, 15);
    t.configChanged();
    assert.equal(bus.interrupts, 1);
    const until = performance.now() + 5000;
    while (bus.interrupts < 3 && performance.now() < until) await new Promise((r) => setTimeout(r, 5));
    assert.ok(bus.interrupts >= 3, `raised ${bus.interrupts} times`);
    t.write(Mmio.INTERRUPT_ACK, 4, 2);
    const acked = bus.interrupts;
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(bus.interrupts, acked, "none after the ACK");
  });

  it("a QueueNotify for a queue that does not exist, or a huge index, is ignored", () => {
    const { t, bus } = make(false);
    negotiate(t, 0, 1);
    t.write(Mmio.STATUS, 4, 15);
    t.write(Mmio.QUEUE_NOTIFY, 4, 0xffff_ffff);
    t.write(Mmio.QUEUE_NOTIFY, 4, 1);
    assert.equal(bus.lines.length, 0);
    assert.equal(t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, 0);
  });

  it("a QueueNotify for an existing queue the driver never made ready breaks the device once live", () => {
    const { t, bus } = make(false);
    negotiate(t, 0, 1);
    t.write(Mmio.QUEUE_NOTIFY, 4, 0);
    assert.equal(bus.lines.length, 0, "before DRIVER_OK it is ignored");
    t.write(Mmio.STATUS, 4, 15);
    t.write(Mmio.QUEUE_NOTIFY, 4, 0);
    assert.equal(t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET);
    assert.match(bus.lines.join(), /^virtio-rng d3: queue-not-ready: notify for queue 0/);
  });
});
