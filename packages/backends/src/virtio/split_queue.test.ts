import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Feature, Mmio, Status } from "./constants.js";
import { RngDevice } from "./rng/device.js";
import { availPage, BUF_PAGE, descBytes, descPage, hex, type Rig, rig, usedPage } from "./testkit.js";

const W = 2; // VIRTQ_DESC_F_WRITE
const N = 1; // NEXT
const I = 4; // INDIRECT
const B = 0x8000_0000 + BUF_PAGE * 4096;

/** Asserts the device broke down on `rule` and logged it with the guest's domid. */
function assertBroken(r: Rig, rule: string): void {
  assert.equal(r.t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET, r.bus.lines.join("\n"));
  assert.equal(r.t.read(Mmio.INTERRUPT_STATUS, 4) & 2, 2, "config interrupt");
  assert.ok(
    r.bus.lines.some((l) => l.startsWith("virtio-rng d7: ") && l.includes(`${rule}:`)),
    `log names d7 and ${rule}: ${r.bus.lines.join(" | ")}`,
  );
  assert.equal(r.u16(usedPage(0), 2), 0, "nothing used");
}

describe("split virtqueue (device side) with byte-literal rings", () => {
  it("serves one writable buffer: used element {id, len} and used.idx, then an interrupt", async () => {
    const r = await rig(new RngDevice());
    // desc[0] = { addr 0x80040000, len 16, flags WRITE, next 0 }
    r.poke(descPage(0), 0, hex("00 00 04 80 00 00 00 00  10 00 00 00  02 00  00 00"));
    r.offer(0, 0);
    await r.kick(0);
    assert.deepEqual(r.peek(usedPage(0), 0, 12), hex("00 00 01 00  00 00 00 00  10 00 00 00"));
    assert.equal(r.bus.interrupts, 1);
    assert.equal(r.t.read(Mmio.INTERRUPT_STATUS, 4), 1);
    assert.notDeepEqual(r.peek(BUF_PAGE, 0, 16), new Uint8Array(16), "random bytes arrived");
    assert.deepEqual(r.peek(BUF_PAGE, 16, 16), new Uint8Array(16), "nothing past len");
    r.t.write(Mmio.INTERRUPT_ACK, 4, 1);
    assert.equal(r.t.read(Mmio.INTERRUPT_STATUS, 4), 0);
    assert.equal(r.mem.mapped, 3, "only the three ring areas stay mapped");
  });

  it("walks a chain of two writable buffers across a page boundary", async () => {
    const r = await rig(new RngDevice());
    r.poke(descPage(0), 0, descBytes(B + 4096 - 8, 0, 16, W | N, 3));
    r.poke(descPage(0), 48, descBytes(B + 8192, 0, 4, W, 0));
    r.offer(0, 0);
    await r.kick(0);
    assert.equal(r.u32(usedPage(0), 8), 20);
    assert.notDeepEqual(r.peek(BUF_PAGE + 1, 0, 8), new Uint8Array(8));
  });

  it("honours VIRTQ_AVAIL_F_NO_INTERRUPT, and EVENT_IDX's used_event", async () => {
    const r = await rig(new RngDevice());
    r.poke(availPage(0), 0, hex("01 00"));
    r.poke(descPage(0), 0, descBytes(B, 0, 4, W, 0));
    r.offer(0, 0);
    await r.kick(0);
    assert.equal(r.u16(usedPage(0), 2), 1);
    assert.equal(r.bus.interrupts, 0);

    const e = await rig(new RngDevice(), { features: [Feature.EVENT_IDX] });
    e.poke(descPage(0), 0, descBytes(B, 0, 4, W, 0));
    // used_event (after the 8 ring slots) = 1: no interrupt for used.idx 1, one for 2.
    e.poke(availPage(0), 4 + 2 * 8, hex("01 00"));
    e.offer(0, 0);
    await e.kick(0);
    assert.equal(e.bus.interrupts, 0);
    assert.equal(e.u16(usedPage(0), 4 + 8 * 8), 1, "avail_event = next avail");
    e.offer(0, 0);
    await e.kick(0);
    assert.equal(e.bus.interrupts, 1);
  });

  it("works through grant-DMA addresses (bit 63 | gref << 12) when the bus is restricted", async () => {
    const r = await rig(new RngDevice(), { grants: true });
    const [hi, lo] = r.mem.grant(42, BUF_PAGE + 9);
    assert.equal(hi, 0x8000_0000);
    assert.equal(lo, 42 << 12);
    r.poke(descPage(0), 0, descBytes(lo + 100, hi, 32, W, 0));
    r.offer(0, 0);
    await r.kick(0);
    assert.equal(r.u32(usedPage(0), 8), 32);
    assert.notDeepEqual(r.peek(BUF_PAGE + 9, 100, 32), new Uint8Array(32));
  });

  it("follows an indirect table (not 16-aligned) when INDIRECT_DESC was negotiated", async () => {
    const r = await rig(new RngDevice(), { features: [Feature.INDIRECT_DESC] });
    const table = B + 3 * 4096 + 8;
    r.poke(BUF_PAGE + 3, 8, descBytes(B, 0, 8, W | N, 1));
    r.poke(BUF_PAGE + 3, 24, descBytes(B + 64, 0, 8, W, 0));
    r.poke(descPage(0), 0, descBytes(table, 0, 32, I, 0));
    r.offer(0, 0);
    await r.kick(0);
    assert.equal(r.u32(usedPage(0), 8), 16);
    assert.equal(r.mem.mapped, 3, "the table was released");
  });

  describe("hostile rings: DEVICE_NEEDS_RESET, a config interrupt and a log line naming the rule", () => {
    it("avail.idx jumps past the queue size", async () => {
      const r = await rig(new RngDevice());
      r.poke(availPage(0), 2, hex("09 00"));
      await r.kick(0);
      assertBroken(r, "avail-index-jump");
    });
    it("head index out of range", async () => {
      const r = await rig(new RngDevice());
      r.offer(0, 8);
      await r.kick(0);
      assertBroken(r, "head-out-of-range");
    });
    it("next index out of range", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 4, W | N, 200));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "next-out-of-range");
    });
    it("a descriptor loop", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 4, W | N, 1));
      r.poke(descPage(0), 16, descBytes(B, 0, 4, W | N, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "chain-too-long");
    });
    it("a self-loop inside an indirect table", async () => {
      const r = await rig(new RngDevice(), { features: [Feature.INDIRECT_DESC] });
      r.poke(BUF_PAGE + 3, 0, descBytes(B, 0, 4, W | N, 0));
      r.poke(descPage(0), 0, descBytes(B + 3 * 4096, 0, 16, I, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "chain-too-long");
    });
    it("unknown flag bits", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 4, W | 0x80, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "unknown-flags");
    });
    it("indirect without the feature", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 16, I, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "indirect-not-negotiated");
    });
    it("nested indirect", async () => {
      const r = await rig(new RngDevice(), { features: [Feature.INDIRECT_DESC] });
      r.poke(BUF_PAGE + 3, 0, descBytes(B + 3 * 4096, 0, 16, I, 0));
      r.poke(descPage(0), 0, descBytes(B + 3 * 4096, 0, 16, I, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "nested-indirect");
    });
    it("indirect table length not a multiple of 16", async () => {
      const r = await rig(new RngDevice(), { features: [Feature.INDIRECT_DESC] });
      r.poke(descPage(0), 0, descBytes(B + 3 * 4096, 0, 24, I, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "indirect-table-size");
    });
    it("INDIRECT together with NEXT", async () => {
      const r = await rig(new RngDevice(), { features: [Feature.INDIRECT_DESC] });
      r.poke(descPage(0), 0, descBytes(B + 3 * 4096, 0, 16, I | N, 1));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "indirect-with-next");
    });
    it("a readable descriptor after a writable one", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 4, W | N, 1));
      r.poke(descPage(0), 16, descBytes(B, 0, 4, 0, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "readable-after-writable");
    });
    it("lengths that overflow 32 bits in total", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 0xffff_fff0, W | N, 1));
      r.poke(descPage(0), 16, descBytes(B, 0, 0x20, W, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "length-overflow");
    });
    it("a buffer longer than guest memory", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B + 4096 * 190, 0, 0x100000, W, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "buffer-unreachable");
    });
    it("a device-readable buffer where the device must write", async () => {
      const r = await rig(new RngDevice());
      r.poke(descPage(0), 0, descBytes(B, 0, 4, 0, 0));
      r.offer(0, 0);
      await r.kick(0);
      assertBroken(r, "write-to-readable-buffer");
      assert.deepEqual(r.peek(BUF_PAGE, 0, 4), new Uint8Array(4), "the readable buffer was not written");
    });
    it("a ring that is not in guest memory, and a misaligned ring", async () => {
      for (const [usedLo, rule] of [
        [0x9000_0000, "ring-unreachable"],
        [0x8000_0000 + usedPage(0) * 4096 + 2, "ring-alignment"],
      ] as const) {
        const r = await rig(new RngDevice());
        r.t.write(Mmio.STATUS, 4, 0);
        r.t.write(Mmio.STATUS, 4, 1);
        r.t.write(Mmio.STATUS, 4, 3);
        r.t.write(Mmio.DRIVER_FEATURES_SEL, 4, 1);
        r.t.write(Mmio.DRIVER_FEATURES, 4, 1);
        r.t.write(Mmio.STATUS, 4, 11);
        r.t.write(Mmio.QUEUE_NUM, 4, 8);
        r.t.write(Mmio.QUEUE_DESC_LOW, 4, 0x8000_0000);
        r.t.write(Mmio.QUEUE_DRIVER_LOW, 4, 0x8000_1000);
        r.t.write(Mmio.QUEUE_DEVICE_LOW, 4, usedLo);
        r.t.write(Mmio.QUEUE_READY, 4, 1);
        r.t.write(Mmio.STATUS, 4, 15);
        await r.t.idle();
        assertBroken(r, rule);
      }
    });
    it("grants: a read-only grant cannot back a device-writable buffer; ungranted pages are unreachable", async () => {
      const r = await rig(new RngDevice(), { grants: true });
      const [hi, lo] = r.mem.grant(5, BUF_PAGE, true);
      r.poke(descPage(0), 0, descBytes(lo, hi, 4, W, 0));
      r.offer(0, 0);
      await r.kick(0);
      assert.ok(
        r.bus.lines.some((l) => l.includes("buffer-unreachable") && l.includes("read-only")),
        r.bus.lines.join(),
      );
      const u = await rig(new RngDevice(), { grants: true });
      u.poke(descPage(0), 0, descBytes(0x0000_0000 | (999_999 << 12), 0x8000_0000, 4, W, 0));
      u.offer(0, 0);
      await u.kick(0);
      assert.ok(
        u.bus.lines.some((l) => l.includes("buffer-unreachable") && l.includes("not granted")),
        u.bus.lines.join(),
      );
      // Plain guest-physical addresses are refused outright under grants.
      const p = await rig(new RngDevice(), { grants: true });
      p.poke(descPage(0), 0, descBytes(B, 0, 4, W, 0));
      p.offer(0, 0);
      await p.kick(0);
      assert.ok(
        p.bus.lines.some((l) => l.includes("not a grant address")),
        p.bus.lines.join(),
      );
    });
    it("after NEEDS_RESET the device ignores kicks until the driver resets it, then works again", async () => {
      const r = await rig(new RngDevice());
      r.offer(0, 8);
      await r.kick(0);
      assertBroken(r, "head-out-of-range");
      const lines = r.bus.lines.length;
      await r.kick(0);
      assert.equal(r.bus.lines.length, lines, "no work, no new log line");
      r.t.write(Mmio.STATUS, 4, 0);
      assert.equal(r.t.read(Mmio.STATUS, 4), 0);
      assert.equal(r.t.read(Mmio.INTERRUPT_STATUS, 4), 0);
      r.t.write(Mmio.QUEUE_SEL, 4, 0);
      assert.equal(r.t.read(Mmio.QUEUE_READY, 4), 0, "reset clears QueueReady");
    });
  });
});
