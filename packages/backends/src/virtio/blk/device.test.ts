import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Mmio } from "../constants.js";
import { BUF_PAGE, descBytes, descPage, hex, type Rig, rig, usedPage } from "../testkit.js";
import { BlkDevice, BlkFeature } from "./device.js";

const W = 2;
const N = 1;
const B = 0x8000_0000 + BUF_PAGE * 4096;
// Buffer pages: header at page 64, data at 65.., status at 70.
const HDR = B;
const DATA = B + 4096;
const STATUS = B + 6 * 4096;

function image(bytes: number): string {
  const dir = mkdtempSync(join(tmpdir(), "xenon-blk-"));
  const path = join(dir, "disk.img");
  writeFileSync(
    path,
    new Uint8Array(bytes).map((_, i) => (i >> 9) & 0xff),
  );
  return path;
}

/** One request: header (type, sector), a data buffer of `len` (device-writable for IN), status. */
async function request(r: Rig, type: number, sector: number, len: number, dataWritable: boolean): Promise<number> {
  const h = new Uint8Array(16);
  const dv = new DataView(h.buffer);
  dv.setUint32(0, type, true);
  dv.setUint32(8, sector, true);
  r.poke(BUF_PAGE, 0, h);
  r.poke(BUF_PAGE + 6, 0, hex("ff"));
  if (len > 0) {
    r.poke(descPage(0), 0, descBytes(HDR, 0, 16, N, 1));
    r.poke(descPage(0), 16, descBytes(DATA, 0, len, (dataWritable ? W : 0) | N, 2));
    r.poke(descPage(0), 32, descBytes(STATUS, 0, 1, W, 0));
  } else {
    r.poke(descPage(0), 0, descBytes(HDR, 0, 16, N, 2));
    r.poke(descPage(0), 32, descBytes(STATUS, 0, 1, W, 0));
  }
  const before = r.u16(usedPage(0), 2);
  r.offer(0, 0);
  await r.kick(0);
  assert.equal(r.u16(usedPage(0), 2), (before + 1) & 0xffff, r.bus.lines.join());
  return r.peek(BUF_PAGE + 6, 0, 1)[0]!;
}

describe("virtio-blk on a raw image", () => {
  it("chains offered together run as one batch, in ring order; a broken one stops the batch after the earlier complete", async () => {
    const path = image(64 * 1024);
    const dev = new BlkDevice({ path });
    const r = await rig(dev);
    const hdr = (page: number, type: number, sector: number) => {
      const h = new Uint8Array(16);
      new DataView(h.buffer).setUint32(0, type, true);
      new DataView(h.buffer).setUint32(8, sector, true);
      r.poke(page, 0, h);
    };
    const pattern = new Uint8Array(512).map((_, i) => (i * 7 + 3) & 0xff);
    // Chain 0: OUT sector 2 from page +1; chain 3: IN sector 2 into page +2 (sees chain 0's data).
    hdr(BUF_PAGE, 1, 2);
    r.poke(BUF_PAGE + 1, 0, pattern);
    hdr(BUF_PAGE + 3, 0, 2);
    r.poke(BUF_PAGE + 6, 0, Uint8Array.of(0xff, 0xff));
    r.poke(descPage(0), 0, descBytes(HDR, 0, 16, N, 1));
    r.poke(descPage(0), 16, descBytes(B + 4096, 0, 512, N, 2));
    r.poke(descPage(0), 32, descBytes(STATUS, 0, 1, W, 0));
    r.poke(descPage(0), 48, descBytes(B + 3 * 4096, 0, 16, N, 4));
    r.poke(descPage(0), 64, descBytes(B + 2 * 4096, 0, 512, W | N, 5));
    r.poke(descPage(0), 80, descBytes(STATUS + 1, 0, 1, W, 0));
    r.offer(0, 0, 3);
    await r.kick(0);
    assert.equal(r.u16(usedPage(0), 2), 2, r.bus.lines.join());
    assert.deepEqual([r.u32(usedPage(0), 4), r.u32(usedPage(0), 12)], [0, 3], "used in ring order");
    assert.deepEqual(r.peek(BUF_PAGE + 6, 0, 2), Uint8Array.of(0, 0));
    assert.deepEqual(r.peek(BUF_PAGE + 2, 0, 512), pattern, "the read saw the write before it");
    // Chain 6 (FLUSH) then chain 0 again, now with no status byte: 6 completes, then the queue breaks.
    hdr(BUF_PAGE + 4, 4, 0);
    r.poke(descPage(0), 96, descBytes(B + 4 * 4096, 0, 16, N, 7));
    r.poke(descPage(0), 112, descBytes(STATUS + 2, 0, 1, W, 0));
    r.poke(descPage(0), 0, descBytes(B + 4 * 4096, 0, 16, 0, 0));
    r.offer(0, 6, 0);
    await r.kick(0);
    assert.equal(r.u16(usedPage(0), 2), 3, `the FLUSH before the broken chain completed: ${r.bus.lines.join()}`);
    assert.equal(r.u32(usedPage(0), 4 + 16), 6);
    assert.match(r.bus.lines.join(), /request-malformed: queue 0: chain 0 has 16 readable \/ 0 writable bytes/);
    dev.close();
  });

  it("config: capacity in sectors, seg_max, blk_size; features: FLUSH, DISCARD, WRITE_ZEROES", async () => {
    const dev = new BlkDevice({ path: image(1 << 20) });
    assert.equal(dev.configRead(0, 4), 2048);
    assert.equal(dev.configRead(4, 4), 0);
    assert.equal(dev.configRead(0x14, 4), 512);
    assert.ok(dev.configRead(0x0c, 4) > 0);
    assert.ok(dev.features[0] & (1 << BlkFeature.FLUSH));
    const r = await rig(dev);
    assert.equal(r.t.read(Mmio.CONFIG, 4), 2048);
    assert.equal(r.t.read(Mmio.CONFIG + 0x14, 2), 512);
    dev.close();
  });

  it("OUT then IN round-trips through the file; FLUSH and GET_ID answer OK", async () => {
    const path = image(64 * 1024);
    const dev = new BlkDevice({ path, serial: "disk-7" });
    const r = await rig(dev);
    const pattern = new Uint8Array(1024).map((_, i) => (i * 13 + 7) & 0xff);
    r.poke(BUF_PAGE + 1, 0, pattern);
    assert.equal(await request(r, 1, 4, 1024, false), 0);
    assert.deepEqual(readFileSync(path).subarray(4 * 512, 4 * 512 + 1024), Buffer.from(pattern));
    r.poke(BUF_PAGE + 1, 0, new Uint8Array(1024));
    assert.equal(await request(r, 0, 4, 1024, true), 0);
    assert.deepEqual(r.peek(BUF_PAGE + 1, 0, 1024), pattern);
    assert.equal(r.u32(usedPage(0), 8 + 8), 1025, "IN: data + status written");
    assert.equal(await request(r, 4, 0, 0, false), 0);
    assert.equal(await request(r, 8, 0, 20, true), 0);
    assert.deepEqual(r.peek(BUF_PAGE + 1, 0, 6), new TextEncoder().encode("disk-7"));
    assert.equal(dev.stats.flushes, 1);
    dev.close();
  });

  it("out of range, partial sectors and unknown types get IOERR / UNSUPP, not a broken queue", async () => {
    const dev = new BlkDevice({ path: image(8192) });
    const r = await rig(dev);
    assert.equal(await request(r, 0, 16, 512, true), 1);
    assert.equal(await request(r, 0, 15, 1024, true), 1);
    assert.equal(await request(r, 0, 0, 100, true), 1);
    assert.equal(await request(r, 99, 0, 0, false), 2);
    assert.equal(r.t.read(Mmio.STATUS, 4) & 0x40, 0);
    dev.close();
  });

  it("a read-only disk refuses writes with IOERR and offers VIRTIO_BLK_F_RO", async () => {
    const path = image(8192);
    const dev = new BlkDevice({ path, readOnly: true });
    assert.ok(dev.features[0] & (1 << BlkFeature.RO));
    const r = await rig(dev);
    assert.equal(await request(r, 1, 0, 512, false), 1);
    assert.equal(readFileSync(path)[0], 0);
    assert.equal(await request(r, 0, 1, 512, true), 0);
    assert.equal(r.peek(BUF_PAGE + 1, 0, 1)[0], 1, "sector 1's pattern");
    dev.close();
  });

  it("DISCARD and WRITE_ZEROES zero the range", async () => {
    const path = image(16 * 512);
    const dev = new BlkDevice({ path });
    const r = await rig(dev);
    const seg = new Uint8Array(16);
    const dv = new DataView(seg.buffer);
    dv.setUint32(0, 2, true);
    dv.setUint32(8, 3, true);
    r.poke(BUF_PAGE + 1, 0, seg);
    assert.equal(await request(r, 13, 0, 16, false), 0);
    const f = readFileSync(path);
    assert.deepEqual([f[1 * 512], f[2 * 512], f[4 * 512], f[5 * 512]], [1, 0, 0, 5]);
    dev.close();
  });

  it("a chain with no header or no status byte breaks the queue (DEVICE_NEEDS_RESET, rule named)", async () => {
    const dev = new BlkDevice({ path: image(8192) });
    const r = await rig(dev);
    r.poke(descPage(0), 0, descBytes(HDR, 0, 8, N, 1));
    r.poke(descPage(0), 16, descBytes(STATUS, 0, 1, W, 0));
    r.offer(0, 0);
    await r.kick(0);
    assert.equal(r.t.read(Mmio.STATUS, 4) & 0x40, 0x40);
    assert.ok(
      r.bus.lines.some((l) => l.startsWith("virtio-blk d7: request-malformed:")),
      r.bus.lines.join(),
    );
    dev.close();
  });
});
