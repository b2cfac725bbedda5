/**
 * Test support (not exported): a minimal virtio-mmio driver over an InProcessBus, written from
 * the spec's driver steps, and byte helpers for rings written as literals.
 */
import assert from "node:assert/strict";
import { FlatMemory, InProcessBus } from "./bus_inprocess.js";
import { Feature, Mmio, Status } from "./constants.js";
import type { VirtioDevice } from "./device.js";
import { VirtioMmioTransport } from "./mmio_transport.js";

export const RAM_BASE = 0x8000_0000;
/** Page indexes of the test layout: rings of queue q at pages 4q.., buffers from page 64. */
export const descPage = (q: number) => 4 * q;
export const availPage = (q: number) => 4 * q + 1;
export const usedPage = (q: number) => 4 * q + 2;
export const BUF_PAGE = 64;

/** "00 60 45 …" -> bytes. */
export function hex(s: string): Uint8Array {
  const t = s.trim();
  if (t === "") return new Uint8Array(0);
  return Uint8Array.from(t.split(/\s+/).map((b) => Number.parseInt(b, 16)));
}

/** A descriptor as its 16 little-endian bytes. */
export function descBytes(addrLo: number, addrHi: number, len: number, flags: number, next: number): Uint8Array {
  const b = new Uint8Array(16);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, addrLo, true);
  dv.setUint32(4, addrHi, true);
  dv.setUint32(8, len, true);
  dv.setUint16(12, flags, true);
  dv.setUint16(14, next, true);
  return b;
}

export interface Rig {
  bus: InProcessBus;
  mem: FlatMemory;
  t: VirtioMmioTransport;
  /** Guest-physical (or grant-DMA lo) address of a page. */
  addr(page: number, off?: number): [number, number];
  /** Writes bytes into RAM page `page` at `off`. */
  poke(page: number, off: number, bytes: Uint8Array): void;
  peek(page: number, off: number, len: number): Uint8Array;
  u16(page: number, off: number): number;
  u32(page: number, off: number): number;
  /** Publishes head `head` in queue q's avail ring slot and bumps avail.idx. */
  offer(q: number, ...heads: number[]): void;
  kick(q: number): Promise<void>;
  /** The driver resets the same transport and brings it up again on zeroed rings. */
  restart(): Promise<void>;
}

/**
 * A device brought up the way a driver does it (reset, ACK, DRIVER, features, FEATURES_OK,
 * queues, DRIVER_OK), with the given extra features accepted and queues of `size`.
 */
export async function rig(
  device: VirtioDevice,
  opts: { grants?: boolean; size?: number; features?: number[]; pages?: number } = {},
): Promise<Rig> {
  const grants = opts.grants ?? false;
  const mem = new FlatMemory(RAM_BASE, (opts.pages ?? 256) * 4096, grants);
  const bus = new InProcessBus(7, mem, grants);
  const t = new VirtioMmioTransport(device, bus);
  const addr = (page: number, off = 0): [number, number] => {
    if (!grants) return [0, RAM_BASE + page * 4096 + off];
    const [hi, lo] = mem.grant(1000 + page, page);
    return [hi, lo + off];
  };
  if (grants) for (let p = 0; p < (opts.pages ?? 256); p++) mem.grant(1000 + p, p);
  const size = opts.size ?? 8;
  const up = async (): Promise<void> => {
    assert.equal(t.read(Mmio.MAGIC_VALUE, 4), 0x74726976);
    assert.equal(t.read(Mmio.VERSION, 4), 2);
    t.write(Mmio.STATUS, 4, 0);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER);
    t.write(Mmio.DEVICE_FEATURES_SEL, 4, 1);
    const hiOffered = t.read(Mmio.DEVICE_FEATURES, 4);
    t.write(Mmio.DEVICE_FEATURES_SEL, 4, 0);
    const loOffered = t.read(Mmio.DEVICE_FEATURES, 4);
    let lo = 0;
    let hi = 1 << (Feature.VERSION_1 - 32);
    if (grants) hi |= 1 << (Feature.ACCESS_PLATFORM - 32);
    for (const f of opts.features ?? []) {
      if (f < 32) lo |= 1 << f;
      else hi |= 1 << (f - 32);
    }
    assert.equal(lo & ~loOffered, 0, "driver asks only for offered features");
    assert.equal(hi & ~hiOffered, 0, "driver asks only for offered features");
    t.write(Mmio.DRIVER_FEATURES_SEL, 4, 1);
    t.write(Mmio.DRIVER_FEATURES, 4, hi);
    t.write(Mmio.DRIVER_FEATURES_SEL, 4, 0);
    t.write(Mmio.DRIVER_FEATURES, 4, lo >>> 0);
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK);
    assert.equal(t.read(Mmio.STATUS, 4) & Status.FEATURES_OK, Status.FEATURES_OK, "FEATURES_OK sticks");
    for (let q = 0; q < device.queueMaxSizes.length; q++) {
      t.write(Mmio.QUEUE_SEL, 4, q);
      assert.equal(t.read(Mmio.QUEUE_READY, 4), 0);
      assert.ok(t.read(Mmio.QUEUE_NUM_MAX, 4) >= size);
      t.write(Mmio.QUEUE_NUM, 4, size);
      const [dh, dl] = addr(descPage(q));
      const [ah, al] = addr(availPage(q));
      const [uh, ul] = addr(usedPage(q));
      t.write(Mmio.QUEUE_DESC_LOW, 4, dl);
      t.write(Mmio.QUEUE_DESC_HIGH, 4, dh);
      t.write(Mmio.QUEUE_DRIVER_LOW, 4, al);
      t.write(Mmio.QUEUE_DRIVER_HIGH, 4, ah);
      t.write(Mmio.QUEUE_DEVICE_LOW, 4, ul);
      t.write(Mmio.QUEUE_DEVICE_HIGH, 4, uh);
      t.write(Mmio.QUEUE_READY, 4, 1);
    }
    t.write(Mmio.STATUS, 4, Status.ACKNOWLEDGE | Status.DRIVER | Status.FEATURES_OK | Status.DRIVER_OK);
    await t.idle();
  };
  await up();
  const dv = () => new DataView(mem.ram.buffer);
  const r: Rig = {
    bus,
    mem,
    t,
    addr,
    poke: (page, off, bytes) => mem.ram.set(bytes, page * 4096 + off),
    peek: (page, off, len) => mem.ram.slice(page * 4096 + off, page * 4096 + off + len),
    u16: (page, off) => dv().getUint16(page * 4096 + off, true),
    u32: (page, off) => dv().getUint32(page * 4096 + off, true),
    offer: (q, ...heads) => {
      const base = availPage(q) * 4096;
      let idx = dv().getUint16(base + 2, true);
      for (const h of heads) {
        dv().setUint16(base + 4 + 2 * (idx % size), h, true);
        idx = (idx + 1) & 0xffff;
      }
      dv().setUint16(base + 2, idx, true);
    },
    kick: async (q) => {
      t.write(Mmio.QUEUE_NOTIFY, 4, q);
      await t.idle();
    },
    restart: async () => {
      t.write(Mmio.STATUS, 4, 0);
      await t.idle();
      for (let q = 0; q < device.queueMaxSizes.length; q++)
        for (const p of [descPage(q), availPage(q), usedPage(q)]) mem.ram.fill(0, p * 4096, p * 4096 + 4096);
      await up();
    },
  };
  return r;
}
