import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { layout } from "@xenon/hypervisor";
import { parseMac } from "../../vswitch/ethernet.js";
import { inProcessVif } from "../../vswitch/in_process.js";
import { VirtualSwitch } from "../../vswitch/switch.js";
import { Mmio } from "../constants.js";
import { availPage, BUF_PAGE, descBytes, descPage, hex, type Rig, rig, usedPage } from "../testkit.js";
import { NetConfigOffset, NetFeature, NetStatus } from "./config.js";
import { NET_RX_QUEUE, NET_TX_QUEUE, NetDevice } from "./device.js";
import { NET_HDR_SIZE, VirtioNetHdr } from "./header.js";
import type { NetLink } from "./link.js";

const W = 2;
const N = 1;
const PAGE = (p: number) => 0x8000_0000 + p * 4096;
const MAC = parseMac("00:16:3e:00:00:07")!;
const FEATURES = [NetFeature.MAC, NetFeature.STATUS, NetFeature.MTU];

/** A link that records what the device sent and lets the test push frames in. */
function recorder(): NetLink & { sent: Uint8Array[]; push(f: Uint8Array): void } {
  let fn: (f: Uint8Array) => void = () => {};
  const sent: Uint8Array[] = [];
  return {
    sent,
    transmit: (f) => sent.push(f),
    onReceive: (f) => {
      fn = f;
    },
    push: (f) => fn(f),
  };
}

function frame(dst: string, src: string, payload: string): Uint8Array {
  return Uint8Array.from([...hex(dst), ...hex(src), 0x88, 0xb5, ...hex(payload)]);
}
const F1 = frame("00 16 3e 00 00 08", "00 16 3e 00 00 07", "01 02 03 04");

/** Transmits header + frame as two descriptors (header, then frame) on the transmit queue. */
async function transmit(r: Rig, hdr: Uint8Array, f: Uint8Array): Promise<void> {
  const q = NET_TX_QUEUE;
  r.poke(BUF_PAGE, 0, hdr);
  r.poke(BUF_PAGE + 1, 0, f);
  r.poke(descPage(q), 0, descBytes(r.addr(BUF_PAGE)[1], r.addr(BUF_PAGE)[0], hdr.length, N, 1));
  r.poke(descPage(q), 16, descBytes(r.addr(BUF_PAGE + 1)[1], r.addr(BUF_PAGE + 1)[0], f.length, 0, 0));
  r.offer(q, 0);
  await r.kick(q);
}

/** Posts `n` receive buffers of `len` bytes (descriptor i at page BUF_PAGE + 8 + i). */
async function postRx(r: Rig, n: number, len = 2048): Promise<void> {
  const q = NET_RX_QUEUE;
  const heads: number[] = [];
  for (let i = 0; i < n; i++) {
    const [hi, lo] = r.addr(BUF_PAGE + 8 + i);
    r.poke(descPage(q), 16 * i, descBytes(lo, hi, len, W, 0));
    heads.push(i);
  }
  r.offer(q, ...heads);
  await r.kick(q);
}

const hdr0 = () => new Uint8Array(NET_HDR_SIZE);

describe("virtio-net", () => {
  it("config: mac, status LINK_UP with a link, mtu; features MAC, STATUS, MTU", async () => {
    const dev = new NetDevice({ mac: MAC, mtu: 1400, link: recorder() });
    for (const f of FEATURES) assert.ok(dev.features[0] & (1 << f));
    const r = await rig(dev, { features: FEATURES });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5].map((i) => r.t.read(Mmio.CONFIG + i, 1)),
      [0x00, 0x16, 0x3e, 0, 0, 7],
    );
    assert.equal(r.t.read(Mmio.CONFIG + NetConfigOffset.STATUS, 2), NetStatus.LINK_UP);
    assert.equal(r.t.read(Mmio.CONFIG + NetConfigOffset.MTU, 2), 1400);
    assert.equal(r.t.read(Mmio.CONFIG + 12, 4), 0, "past the config space");
    assert.equal(new NetDevice({ mac: MAC }).configRead(NetConfigOffset.STATUS, 2), 0, "no link: link down");
    assert.throws(() => new NetDevice({ mac: MAC, mtu: 20 }), /MTU/);
  });

  it("virtio_net_hdr is 12 bytes, num_buffers last (byte literal)", () => {
    const b = layout.encode(VirtioNetHdr, {
      flags: 1,
      gso_type: 3,
      hdr_len: 0x0102,
      gso_size: 0x0304,
      csum_start: 0x0506,
      csum_offset: 0x0708,
      num_buffers: 0x090a,
    });
    assert.deepEqual(b, hex("01 03 02 01 04 03 06 05 08 07 0a 09"));
  });

  it("transmit: the frame after the header goes to the link; the chain completes with length 0", async () => {
    const link = recorder();
    const dev = new NetDevice({ mac: MAC, link });
    const r = await rig(dev, { features: FEATURES, grants: true });
    await transmit(r, hdr0(), F1);
    assert.equal(link.sent.length, 1);
    assert.deepEqual(link.sent[0], F1);
    assert.equal(r.u16(usedPage(NET_TX_QUEUE), 2), 1);
    assert.equal(r.u32(usedPage(NET_TX_QUEUE), 8), 0);
    assert.equal(dev.tx.stats.packets, 1);
    assert.ok(r.bus.interrupts > 0);
    assert.equal(r.mem.mapped, 6, "only the rings stay mapped");
  });

  it("receive: a frame that arrived before buffers waits, then fills a posted chain; later frames wake the queue", async () => {
    const link = recorder();
    const dev = new NetDevice({ mac: MAC, link });
    const r = await rig(dev, { features: FEATURES });
    link.push(F1.slice());
    await r.t.idle();
    assert.equal(r.u16(usedPage(NET_RX_QUEUE), 2), 0, "no buffers yet");
    await postRx(r, 2);
    assert.equal(r.u16(usedPage(NET_RX_QUEUE), 2), 1);
    assert.equal(r.u32(usedPage(NET_RX_QUEUE), 4), 0, "head 0");
    assert.equal(r.u32(usedPage(NET_RX_QUEUE), 8), NET_HDR_SIZE + F1.length);
    assert.deepEqual(r.peek(BUF_PAGE + 8, 0, NET_HDR_SIZE), hex("00 00 00 00 00 00 00 00 00 00 01 00"));
    assert.deepEqual(r.peek(BUF_PAGE + 8, NET_HDR_SIZE, F1.length), F1);
    const before = r.bus.interrupts;
    const f2 = frame("00 16 3e 00 00 07", "00 16 3e 00 00 09", "aa");
    link.push(f2.slice());
    await r.t.idle();
    assert.equal(r.u16(usedPage(NET_RX_QUEUE), 2), 2, "no kick needed: the frame woke the queue");
    assert.deepEqual(r.peek(BUF_PAGE + 9, NET_HDR_SIZE, f2.length), f2);
    assert.ok(r.bus.interrupts > before);
    // Buffers posted and nothing to receive: the transport does not spin on them.
    await postRx(r, 0);
    assert.equal(dev.rx.stats.packets, 2);
  });

  it("bad transmit requests: offloads and runts are dropped and counted; the queue goes on", async () => {
    const link = recorder();
    const dev = new NetDevice({ mac: MAC, link });
    const r = await rig(dev, { features: FEATURES });
    const gso = hdr0();
    gso[1] = 1;
    await transmit(r, gso, F1);
    await transmit(r, hdr0(), F1.subarray(0, 10));
    const csum = hdr0();
    csum[0] = 1;
    await transmit(r, csum, F1);
    await transmit(r, hdr0(), new Uint8Array(1515));
    assert.equal(link.sent.length, 0);
    assert.equal(dev.tx.stats.errors, 4);
    assert.equal(r.u16(usedPage(NET_TX_QUEUE), 2), 4, "each chain completed");
    assert.equal(r.t.read(Mmio.STATUS, 4) & 0x40, 0);
    await transmit(r, hdr0(), F1);
    assert.equal(link.sent.length, 1);
    assert.ok(
      r.bus.lines.some((l) => /transmit dropped: gso_type 1/.test(l)),
      r.bus.lines.join(),
    );
  });

  it("a transmit chain shorter than a header, or with a writable buffer, breaks the queue (rule named)", async () => {
    // [header bytes, flags of the header descriptor, a second descriptor's flags or null]
    for (const [hdrLen, flags, second] of [
      [8, 0, null],
      [NET_HDR_SIZE, 0, W],
      [NET_HDR_SIZE + 60, W, null],
    ] as const) {
      const dev = new NetDevice({ mac: MAC, link: recorder() });
      const r = await rig(dev, { features: FEATURES });
      const q = NET_TX_QUEUE;
      r.poke(descPage(q), 0, descBytes(PAGE(BUF_PAGE), 0, hdrLen, flags | (second === null ? 0 : N), 1));
      r.poke(descPage(q), 16, descBytes(PAGE(BUF_PAGE + 1), 0, 60, second ?? 0, 0));
      r.offer(q, 0);
      await r.kick(q);
      assert.equal(r.t.read(Mmio.STATUS, 4) & 0x40, 0x40);
      assert.ok(
        r.bus.lines.some((l) => l.startsWith("virtio-net d7: request-malformed: queue 1: transmit chain 0")),
        r.bus.lines.join(),
      );
    }
  });

  it("receive chains: a device-readable buffer breaks the queue; one too small drops the frame", async () => {
    const link = recorder();
    const dev = new NetDevice({ mac: MAC, link });
    const r = await rig(dev, { features: FEATURES });
    await postRx(r, 1, 16);
    link.push(F1.slice());
    await r.t.idle();
    assert.equal(r.u16(usedPage(NET_RX_QUEUE), 2), 1);
    assert.equal(r.u32(usedPage(NET_RX_QUEUE), 8), 0, "returned unused");
    assert.equal(dev.rx.stats.dropped, 1);
    r.poke(descPage(NET_RX_QUEUE), 0, descBytes(PAGE(BUF_PAGE + 8), 0, 2048, 0, 0));
    r.offer(NET_RX_QUEUE, 0);
    link.push(F1.slice());
    await r.kick(NET_RX_QUEUE);
    assert.equal(r.t.read(Mmio.STATUS, 4) & 0x40, 0x40);
    assert.ok(
      r.bus.lines.some((l) => /write-to-readable-buffer/.test(l)),
      r.bus.lines.join(),
    );
  });

  it("the receive backlog is bounded: a guest that never reads loses frames, counted", async () => {
    const link = recorder();
    const dev = new NetDevice({ mac: MAC, link });
    await rig(dev, { features: FEATURES });
    for (let i = 0; i < 300; i++) link.push(F1.slice());
    assert.equal(dev.rx.pending, 256);
    assert.equal(dev.rx.stats.dropped, 44);
    dev.reset();
    assert.equal(dev.rx.pending, 0);
    link.push(F1.slice());
    assert.equal(dev.rx.pending, 0, "before FEATURES_OK nothing is queued");
  });

  it("two devices on one switch exchange frames through their queues", async () => {
    const sw = new VirtualSwitch();
    const a = inProcessVif("vif1.0");
    const b = inProcessVif("vif2.0");
    sw.plug(a.port);
    sw.plug(b.port);
    const devA = new NetDevice({ mac: MAC, link: a.link });
    const devB = new NetDevice({ mac: parseMac("00:16:3e:00:00:08")!, link: b.link });
    const ra = await rig(devA, { features: FEATURES });
    const rb = await rig(devB, { features: FEATURES });
    await postRx(rb, 4);
    await transmit(ra, hdr0(), F1);
    await rb.t.idle();
    assert.equal(rb.u16(usedPage(NET_RX_QUEUE), 2), 1);
    assert.deepEqual(rb.peek(BUF_PAGE + 8, NET_HDR_SIZE, F1.length), F1);
    assert.equal(sw.counters("vif1.0")!.rxPackets, 1);
    assert.equal(sw.counters("vif2.0")!.txPackets, 1);
    assert.equal(ra.u16(availPage(NET_RX_QUEUE), 2), 0);
  });
});
