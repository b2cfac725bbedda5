/**
 * A virtio-blk request as the device sees it (VirtIO 1.2 §5.2.6): a 16-byte header (type u32,
 * reserved u32, sector u64) at the start of the device-readable bytes, data after it (OUT) or at
 * the start of the device-writable bytes (IN, GET_ID), and the status byte as the last writable
 * byte. The split into descriptors is the driver's business (§2.7.4.1): offsets here are in the
 * readable or writable byte stream, whatever descriptors carry them.
 */
import type { QueueIo } from "../device.js";
import type { MemoryRegion } from "../guest_memory.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";

export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
export const BLK_HEADER_SIZE = 16;
export const SECTOR_SIZE = 512;
export const BLK_ID_BYTES = 20;

/** The chain's buffers, mapped once; readable ones first. Released together. */
export class MappedChain {
  readonly regions: MemoryRegion[] = [];
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;

  static async map(q: SplitQueue, io: QueueIo): Promise<MappedChain> {
    const m = new MappedChain();
    const c = q.chain;
    m.readable = c.readable;
    m.readableBytes = c.readableBytes;
    m.writableBytes = c.writableBytes;
    try {
      for (let i = 0; i < c.count; i++) m.regions.push(await io.mapBuffer(q, i));
    } catch (e) {
      await m.release(io);
      throw e;
    }
    return m;
  }

  async release(io: QueueIo): Promise<void> {
    for (const r of this.regions.splice(0)) await io.release(r);
  }

  /** Calls fn for each piece of stream bytes [off, off+len) (readable or writable stream). */
  each(
    writable: boolean,
    off: number,
    len: number,
    fn: (r: MemoryRegion, at: number, n: number, streamOff: number) => void,
  ): void {
    const from = writable ? this.readable : 0;
    const to = writable ? this.regions.length : this.readable;
    let pos = 0;
    let done = 0;
    for (let i = from; i < to && done < len; i++) {
      const r = this.regions[i]!;
      const start = Math.max(off + done - pos, 0);
      if (start < r.length) {
        const n = Math.min(r.length - start, len - done);
        fn(r, start, n, done);
        done += n;
      }
      pos += r.length;
    }
  }

  readBytes(off: number, dst: Uint8Array): void {
    this.each(false, off, dst.length, (r, at, n, s) => r.copyOut(at, dst, s, n));
  }
  writeBytes(off: number, src: Uint8Array): void {
    this.each(true, off, src.length, (r, at, n, s) => r.copyIn(at, src, s, n));
  }
}

export interface BlkHeader {
  type: number;
  sector: number;
}

/** Reads the header; a chain without 16 readable bytes and a writable status byte is malformed. */
export function parseHeader(m: MappedChain, q: SplitQueue, scratch: Uint8Array): BlkHeader {
  if (m.readableBytes < BLK_HEADER_SIZE || m.writableBytes < 1)
    throw new QueueError(
      "request-malformed",
      `queue ${q.index}: chain ${q.chain.head} has ${m.readableBytes} readable / ${m.writableBytes} writable bytes`,
    );
  const h = scratch.subarray(0, BLK_HEADER_SIZE);
  m.readBytes(0, h);
  const dv = new DataView(h.buffer, h.byteOffset, BLK_HEADER_SIZE);
  return { type: dv.getUint32(0, true), sector: dv.getUint32(8, true) + dv.getUint32(12, true) * 2 ** 32 };
}
