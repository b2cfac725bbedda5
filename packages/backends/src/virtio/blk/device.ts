/**
 * virtio-blk (device id 2, VirtIO 1.2 §5.2) on a raw image file: IN and OUT straight between the
 * file and the mapped guest pages, FLUSH with fsync, GET_ID, DISCARD and WRITE_ZEROES (both
 * zero the range), read-only disks (VIRTIO_BLK_F_RO; writes fail with IOERR). Config: capacity,
 * seg_max, blk_size and the discard / write-zeroes limits.
 *
 * Bad requests from the driver's data (out of range, a length that is not whole sectors, an
 * unknown type) get a status byte, as the spec says; a chain without a header or status byte
 * breaks the queue (QueueError).
 */
import { closeSync, fstatSync, fsyncSync, openSync, readvSync, writeSync, writevSync } from "node:fs";
import { ioTrace, ioTraceOn } from "@xenon/hypervisor";
import { DeviceId } from "../constants.js";
import type { QueueIo, VirtioDevice } from "../device.js";
import { MappedChain } from "../mapped_chain.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";
import { BLK_HEADER_SIZE, BLK_ID_BYTES, BlkStatus, BlkType, parseHeader, SECTOR_SIZE } from "./request.js";

export const BlkFeature = { SEG_MAX: 2, RO: 5, BLK_SIZE: 6, FLUSH: 9, DISCARD: 13, WRITE_ZEROES: 14 } as const;
const SEG_MAX = 126;
const MAX_DISCARD_SECTORS = 1 << 22;
/** Chains taken from the ring before any is waited on. */
const BATCH = 32;
const ZEROES = new Uint8Array(64 * 1024);
/** Pieces per readv/writev (Linux's IOV_MAX is 1024). */
const IOV_BATCH = 512;

export interface BlkOptions {
  readonly path: string;
  readonly readOnly?: boolean;
  /** GET_ID answer (at most 20 bytes; default "xenon-<file size>"). */
  readonly serial?: string;
}

export class BlkDevice implements VirtioDevice {
  readonly name = "blk";
  readonly deviceId = DeviceId.BLOCK;
  readonly features: readonly [number, number];
  readonly queueMaxSizes = [128];
  readonly capacity: number;
  private readonly fd: number;
  private readonly readOnly: boolean;
  private readonly id = new Uint8Array(BLK_ID_BYTES);
  private readonly scratch = new Uint8Array(BLK_HEADER_SIZE);
  private readonly status = new Uint8Array(1);
  private readonly seg = new Uint8Array(16);
  stats = { reads: 0, writes: 0, flushes: 0, errors: 0 };

  constructor(o: BlkOptions) {
    this.readOnly = o.readOnly ?? false;
    this.fd = openSync(o.path, this.readOnly ? "r" : "r+");
    const size = fstatSync(this.fd).size;
    this.capacity = Math.floor(size / SECTOR_SIZE);
    this.id.set(new TextEncoder().encode((o.serial ?? `xenon-${size}`).slice(0, BLK_ID_BYTES)));
    let lo = (1 << BlkFeature.SEG_MAX) | (1 << BlkFeature.BLK_SIZE) | (1 << BlkFeature.FLUSH);
    if (this.readOnly) lo |= 1 << BlkFeature.RO;
    else lo |= (1 << BlkFeature.DISCARD) | (1 << BlkFeature.WRITE_ZEROES);
    this.features = [lo >>> 0, 0];
  }

  close(): void {
    closeSync(this.fd);
  }

  configRead(off: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.configByte(off + i);
    return v >>> 0;
  }

  private configByte(off: number): number {
    const u32 = (x: number, at: number) => (x >>> (8 * (off - at))) & 0xff;
    if (off < 4) return u32(this.capacity >>> 0, 0);
    if (off < 8) return u32(Math.floor(this.capacity / 2 ** 32), 4);
    if (off >= 0x0c && off < 0x10) return u32(SEG_MAX, 0x0c);
    if (off >= 0x14 && off < 0x18) return u32(SECTOR_SIZE, 0x14);
    if (off >= 0x24 && off < 0x28) return u32(MAX_DISCARD_SECTORS, 0x24);
    if (off >= 0x28 && off < 0x2c) return u32(1, 0x28);
    if (off >= 0x2c && off < 0x30) return u32(1, 0x2c);
    if (off >= 0x30 && off < 0x34) return u32(MAX_DISCARD_SECTORS, 0x30);
    if (off >= 0x34 && off < 0x38) return u32(1, 0x34);
    return 0;
  }

  /**
   * Takes every available chain (up to BATCH) before waiting on any: their buffers are mapped
   * together (a driver domain's map calls share round trips), then the requests run in ring order,
   * the buffers go back together and the chains complete in order. A broken rule stops the batch
   * there: the chains before it complete, then the error stands.
   */
  async processQueue(q: SplitQueue, io: QueueIo): Promise<void> {
    for (;;) {
      const batch: Array<{ head: number; mapped: Promise<MappedChain> }> = [];
      // A rule broken at pop stands after the chains popped before it; one broken at map or run
      // time skips the rest of the batch.
      let popError: unknown = null;
      let broken: unknown = null;
      try {
        while (batch.length < BATCH && (await q.pop())) {
          const c = q.chain;
          if (c.readableBytes < BLK_HEADER_SIZE || c.writableBytes < 1)
            throw new QueueError(
              "request-malformed",
              `queue ${q.index}: chain ${c.head} has ${c.readableBytes} readable / ${c.writableBytes} writable bytes`,
            );
          // map() reads the chain before its first await: the next pop may reuse it.
          batch.push({ head: c.head, mapped: MappedChain.map(q, io) });
        }
      } catch (e) {
        popError = e;
      }
      if (batch.length === 0) {
        if (popError !== null) throw popError;
        return;
      }
      if (ioTraceOn) ioTrace("dd.blk.popped", batch.length);
      const maps = await Promise.allSettled(batch.map((b) => b.mapped));
      if (ioTraceOn) ioTrace("dd.blk.mapped", batch.length);
      const done: Array<{ head: number; m: MappedChain; written: number }> = [];
      for (const [i, r] of maps.entries()) {
        if (r.status === "rejected") {
          broken ??= r.reason;
          continue;
        }
        if (broken !== null) {
          await r.value.release(io);
          continue;
        }
        const m = r.value;
        let written = 1;
        try {
          const h = parseHeader(m, q, this.scratch);
          const [st, n] = this.execute(h.type, h.sector, m);
          if (st !== BlkStatus.OK) this.stats.errors++;
          written = n + 1;
          this.status[0] = st;
          m.writeBytes(m.writableBytes - 1, this.status);
        } catch (e) {
          broken = e;
          await m.release(io);
          continue;
        }
        done.push({ head: batch[i]!.head, m, written });
      }
      if (ioTraceOn) ioTrace("dd.blk.done", done.length);
      // Buffers back, chains used, the interrupt: one call to the core where the memory can.
      await io.complete(
        q,
        done.flatMap((d) => d.m.regions.splice(0)),
        done.map((d) => d.head),
        done.map((d) => d.written),
      );
      if (ioTraceOn) ioTrace("dd.blk.pushed", done.length);
      if (broken !== null) throw broken;
      if (popError !== null) throw popError;
    }
  }

  /** Runs one request: [status, data bytes written to the guest]. */
  private execute(type: number, sector: number, m: MappedChain): [number, number] {
    switch (type) {
      case BlkType.IN: {
        const len = m.writableBytes - 1;
        if (!this.inRange(sector, len)) return [BlkStatus.IOERR, 0];
        const bad = this.vectored(m, true, 0, len, sector);
        this.stats.reads++;
        return bad ? [BlkStatus.IOERR, 0] : [BlkStatus.OK, len];
      }
      case BlkType.OUT: {
        const len = m.readableBytes - BLK_HEADER_SIZE;
        if (this.readOnly || !this.inRange(sector, len)) return [BlkStatus.IOERR, 0];
        const bad = this.vectored(m, false, BLK_HEADER_SIZE, len, sector);
        this.stats.writes++;
        return bad ? [BlkStatus.IOERR, 0] : [BlkStatus.OK, 0];
      }
      case BlkType.FLUSH:
        if (!this.readOnly) fsyncSync(this.fd);
        this.stats.flushes++;
        return [BlkStatus.OK, 0];
      case BlkType.GET_ID: {
        if (m.writableBytes - 1 < BLK_ID_BYTES) return [BlkStatus.IOERR, 0];
        m.writeBytes(0, this.id);
        return [BlkStatus.OK, BLK_ID_BYTES];
      }
      case BlkType.DISCARD:
      case BlkType.WRITE_ZEROES: {
        if (this.readOnly) return [BlkStatus.IOERR, 0];
        const len = m.readableBytes - BLK_HEADER_SIZE;
        if (len === 0 || len % 16 !== 0 || len / 16 > 1) return [BlkStatus.UNSUPP, 0];
        m.readBytes(BLK_HEADER_SIZE, this.seg);
        const dv = new DataView(this.seg.buffer);
        const start = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
        const count = dv.getUint32(8, true);
        const flags = dv.getUint32(12, true);
        if ((flags & ~1) !== 0 || count > MAX_DISCARD_SECTORS || !this.inRange(start, count * SECTOR_SIZE))
          return [BlkStatus.IOERR, 0];
        for (let done = 0; done < count * SECTOR_SIZE; ) {
          const n = Math.min(ZEROES.length, count * SECTOR_SIZE - done);
          writeSync(this.fd, ZEROES, 0, n, start * SECTOR_SIZE + done);
          done += n;
        }
        return [BlkStatus.OK, 0];
      }
      default:
        return [BlkStatus.UNSUPP, 0];
    }
  }

  /**
   * Reads the file into (into: true) or writes it from the chain's stream bytes [off, off+len),
   * straight from the guest's pages, one readv/writev per IOV_BATCH pieces (a page each) instead
   * of a syscall per page. True if the file moved fewer bytes than asked.
   */
  private vectored(m: MappedChain, into: boolean, off: number, len: number, sector: number): boolean {
    const pieces = this.pieces;
    pieces.length = 0;
    m.each(into, off, len, (r, at, n) => r.forEachPiece(at, n, (piece) => pieces.push(piece)));
    let pos = sector * SECTOR_SIZE;
    let short = false;
    for (let i = 0; i < pieces.length && !short; i += IOV_BATCH) {
      const part = pieces.length <= IOV_BATCH ? pieces : pieces.slice(i, i + IOV_BATCH);
      let want = 0;
      for (const p of part) want += p.length;
      const got = into ? readvSync(this.fd, part, pos) : writevSync(this.fd, part, pos);
      short = got !== want;
      pos += want;
    }
    pieces.length = 0; // no guest views kept past the request
    return short;
  }
  private readonly pieces: Uint8Array[] = [];

  /** Whole sectors, inside the disk. */
  private inRange(sector: number, len: number): boolean {
    return len % SECTOR_SIZE === 0 && sector + len / SECTOR_SIZE <= this.capacity;
  }

  reset(): void {}
}
