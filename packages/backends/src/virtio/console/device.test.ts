import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Feature, Mmio, Status } from "../constants.js";
import { availPage, BUF_PAGE, descBytes, descPage, type Rig, rig, usedPage } from "../testkit.js";
import { CONSOLE_RECEIVEQ, CONSOLE_TRANSMITQ, ConsoleDevice, ConsoleFeature, INPUT_MAX_BYTES } from "./device.js";

const W = 2;
const N = 1;
const page = (p: number) => 0x8000_0000 + p * 4096;
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

function console_(o: { cols?: number; rows?: number } = {}): { dev: ConsoleDevice; out: Uint8Array[] } {
  const out: Uint8Array[] = [];
  return { dev: new ConsoleDevice({ ...o, output: (b) => out.push(b) }), out };
}
const joined = (out: Uint8Array[]) => dec(Buffer.concat(out));

/** Transmits `text` from buffer page `p` as descriptor `d` of the transmitq (split into two buffers when asked). */
async function transmit(r: Rig, d: number, p: number, text: string, split = false): Promise<void> {
  const b = enc(text);
  r.poke(p, 0, b);
  if (split && b.length > 1) {
    const h = b.length >> 1;
    r.poke(descPage(CONSOLE_TRANSMITQ), 16 * d, descBytes(page(p), 0, h, N, d + 1));
    r.poke(descPage(CONSOLE_TRANSMITQ), 16 * (d + 1), descBytes(page(p) + h, 0, b.length - h, 0, 0));
  } else r.poke(descPage(CONSOLE_TRANSMITQ), 16 * d, descBytes(page(p), 0, b.length, 0, 0));
  r.offer(CONSOLE_TRANSMITQ, d);
  await r.kick(CONSOLE_TRANSMITQ);
}

/** Offers receive buffer descriptor `d` (page p, `len` bytes). */
async function offerRx(r: Rig, d: number, p: number, len: number): Promise<void> {
  r.poke(descPage(CONSOLE_RECEIVEQ), 16 * d, descBytes(page(p), 0, len, W, 0));
  r.offer(CONSOLE_RECEIVEQ, d);
  await r.kick(CONSOLE_RECEIVEQ);
}

function assertBroken(r: Rig, rule: string): void {
  assert.equal(r.t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, Status.DEVICE_NEEDS_RESET, r.bus.lines.join("\n"));
  assert.ok(
    r.bus.lines.some((l) => l.startsWith("virtio-console d7: ") && l.includes(`${rule}:`)),
    `log names d7 and ${rule}: ${r.bus.lines.join(" | ")}`,
  );
}

describe("virtio-console (one port, no MULTIPORT)", () => {
  it("identifies as device 3 with SIZE and EMERG_WRITE (not MULTIPORT); config cols, rows, max_nr_ports", async () => {
    const { dev } = console_({ cols: 132, rows: 43 });
    const r = await rig(dev);
    assert.equal(r.t.read(Mmio.DEVICE_ID, 4), 3);
    r.t.write(Mmio.DEVICE_FEATURES_SEL, 4, 0);
    const lo = r.t.read(Mmio.DEVICE_FEATURES, 4);
    assert.equal(lo & (1 << ConsoleFeature.SIZE), 1 << ConsoleFeature.SIZE);
    assert.equal(lo & (1 << ConsoleFeature.EMERG_WRITE), 1 << ConsoleFeature.EMERG_WRITE);
    assert.equal(lo & (1 << ConsoleFeature.MULTIPORT), 0);
    // Config bytes: cols 132 (84 00), rows 43 (2b 00), max_nr_ports 1, emerg_wr 0.
    assert.equal(r.t.read(Mmio.CONFIG, 4), 0x002b_0084);
    assert.equal(r.t.read(Mmio.CONFIG, 2), 132);
    assert.equal(r.t.read(Mmio.CONFIG + 2, 2), 43);
    assert.equal(r.t.read(Mmio.CONFIG + 1, 1), 0);
    assert.equal(r.t.read(Mmio.CONFIG + 4, 4), 1);
    assert.equal(r.t.read(Mmio.CONFIG + 8, 4), 0);
    assert.equal(r.t.read(Mmio.QUEUE_SEL, 4), 0);
    for (const q of [0, 1]) {
      r.t.write(Mmio.QUEUE_SEL, 4, q);
      assert.equal(r.t.read(Mmio.QUEUE_NUM_MAX, 4), 64);
    }
    r.t.write(Mmio.QUEUE_SEL, 4, 2);
    assert.equal(r.t.read(Mmio.QUEUE_NUM_MAX, 4), 0, "no control queues without MULTIPORT");
    assert.throws(() => new ConsoleDevice({ cols: 70000, output: () => {} }), /cols 70000/);
  });

  it("transmitq: bytes of one- and two-buffer chains reach the host in order, used length 0", async () => {
    const { dev, out } = console_();
    const r = await rig(dev);
    await transmit(r, 0, BUF_PAGE, "hello ");
    await transmit(r, 2, BUF_PAGE + 1, "world\n", true);
    assert.equal(joined(out), "hello world\n");
    assert.equal(r.u16(usedPage(CONSOLE_TRANSMITQ), 2), 2);
    assert.equal(r.u32(usedPage(CONSOLE_TRANSMITQ), 4), 0, "id 0");
    assert.equal(r.u32(usedPage(CONSOLE_TRANSMITQ), 8), 0, "len 0");
    assert.equal(r.u32(usedPage(CONSOLE_TRANSMITQ), 12), 2, "id 2");
    assert.equal(dev.stats.transmitted, 12);
    assert.equal(r.mem.mapped, 6, "only the rings stay mapped");
  });

  it("receiveq: input typed before the driver offered buffers waits, then fills them; a buffer takes what fits", async () => {
    const { dev } = console_();
    const r = await rig(dev);
    dev.pushInput(enc("abcdefgh"));
    await r.t.idle();
    assert.equal(r.u16(usedPage(CONSOLE_RECEIVEQ), 2), 0, "no buffer yet");
    await offerRx(r, 0, BUF_PAGE, 5);
    assert.equal(r.u16(usedPage(CONSOLE_RECEIVEQ), 2), 1);
    assert.equal(r.u32(usedPage(CONSOLE_RECEIVEQ), 8), 5);
    assert.equal(dec(r.peek(BUF_PAGE, 0, 5)), "abcde");
    assert.equal(r.bus.interrupts, 1);
    await offerRx(r, 1, BUF_PAGE + 1, 64);
    assert.equal(r.u32(usedPage(CONSOLE_RECEIVEQ), 16), 3);
    assert.equal(dec(r.peek(BUF_PAGE + 1, 0, 3)), "fgh");
    assert.equal(dev.pendingInput, 0);
  });

  it("receiveq: buffers offered with no input stay unused (no busy loop, with or without EVENT_IDX) until input arrives", async () => {
    for (const features of [[], [Feature.EVENT_IDX]]) {
      const { dev } = console_();
      const r = await rig(dev, { features });
      await offerRx(r, 0, BUF_PAGE, 16);
      await offerRx(r, 1, BUF_PAGE + 1, 16);
      assert.equal(r.u16(usedPage(CONSOLE_RECEIVEQ), 2), 0);
      dev.pushInput(enc("x"));
      await r.t.idle();
      assert.equal(r.u16(usedPage(CONSOLE_RECEIVEQ), 2), 1);
      assert.equal(dec(r.peek(BUF_PAGE, 0, 1)), "x");
      dev.pushInput(enc("yz"));
      await r.t.idle();
      assert.equal(r.u16(usedPage(CONSOLE_RECEIVEQ), 2), 2);
      assert.equal(dec(r.peek(BUF_PAGE + 1, 0, 2)), "yz");
      assert.equal(r.u32(usedPage(CONSOLE_RECEIVEQ), 16), 2);
      assert.deepEqual(r.bus.lines, []);
    }
  });

  it("host input past INPUT_MAX_BYTES drops the oldest bytes", async () => {
    const { dev } = console_();
    const r = await rig(dev);
    dev.pushInput(new Uint8Array(INPUT_MAX_BYTES).fill(0x61));
    dev.pushInput(enc("tail"));
    assert.equal(dev.pendingInput, INPUT_MAX_BYTES);
    assert.equal(dev.stats.dropped, 4);
    await offerRx(r, 0, BUF_PAGE, 4096);
    for (let i = 1; i < 16; i++) {
      r.poke(descPage(CONSOLE_RECEIVEQ), 0, descBytes(page(BUF_PAGE), 0, 4096, W, 0));
      r.offer(CONSOLE_RECEIVEQ, 0);
      await r.kick(CONSOLE_RECEIVEQ);
    }
    assert.equal(dec(r.peek(BUF_PAGE, 4092, 4)), "tail");
    assert.equal(dev.pendingInput, 0);
  });

  it("a resize bumps the config generation and raises the config interrupt", async () => {
    const { dev } = console_();
    const r = await rig(dev);
    const g = r.t.read(Mmio.CONFIG_GENERATION, 4);
    dev.resize(100, 30);
    assert.equal(r.t.read(Mmio.CONFIG_GENERATION, 4), g + 1);
    assert.equal(r.t.read(Mmio.INTERRUPT_STATUS, 4) & 2, 2);
    assert.equal(r.t.read(Mmio.CONFIG, 4), (30 << 16) | 100);
  });

  it("emerg_wr prints a byte once the driver is known; reads of it are 0", async () => {
    const { dev, out } = console_();
    const r = await rig(dev);
    r.t.write(Mmio.CONFIG + 8, 4, 0x41);
    r.t.write(Mmio.CONFIG + 0, 2, 0x99); // cols are read-only
    assert.equal(joined(out), "A");
    assert.equal(r.t.read(Mmio.CONFIG, 2), 80);
  });

  it("a device-writable buffer in the transmitq, or a readable one in the receiveq, needs reset; after reset it works", async () => {
    const { dev, out } = console_();
    const r = await rig(dev);
    r.poke(descPage(CONSOLE_TRANSMITQ), 0, descBytes(page(BUF_PAGE), 0, 4, W, 0));
    r.offer(CONSOLE_TRANSMITQ, 0);
    await r.kick(CONSOLE_TRANSMITQ);
    assertBroken(r, "read-from-writable-buffer");
    assert.equal(out.length, 0);

    const b = console_();
    const s = await rig(b.dev);
    b.dev.pushInput(enc("q"));
    s.poke(descPage(CONSOLE_RECEIVEQ), 0, descBytes(page(BUF_PAGE), 0, 4, 0, 0));
    s.offer(CONSOLE_RECEIVEQ, 0);
    await s.kick(CONSOLE_RECEIVEQ);
    assertBroken(s, "write-to-readable-buffer");
    assert.equal(s.peek(BUF_PAGE, 0, 1)[0], 0, "the readable buffer was not written");

    // Both drivers reset their device and start again on fresh rings: it works.
    await r.restart();
    assert.equal(r.t.read(Mmio.STATUS, 4) & Status.DEVICE_NEEDS_RESET, 0);
    await transmit(r, 0, BUF_PAGE, "ok");
    assert.equal(joined(out), "ok");
    assert.equal(r.u16(availPage(CONSOLE_TRANSMITQ), 2), 1);
    await s.restart();
    await offerRx(s, 0, BUF_PAGE, 4);
    assert.equal(dec(s.peek(BUF_PAGE, 0, 1)), "q", "the input waited across the reset");
  });
});
