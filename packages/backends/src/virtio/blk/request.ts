/**
 * A virtio-blk request as the device sees it (VirtIO 1.2 §5.2.6): a 16-byte header (type u32,
 * reserved u32, sector u64) at the start of the device-readable bytes, data after it (OUT) or at
 * the start of the device-writable bytes (IN, GET_ID), and the status byte as the last writable
 * byte. The split into descriptors is the driver's business (§2.7.4.1): offsets here are in the
 * readable or writable byte stream, whatever descriptors carry them.
 */
import type { MappedChain } from "../mapped_chain.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";

export const BlkType = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
export const BlkStatus = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
export const BLK_HEADER_SIZE = 16;
export const SECTOR_SIZE = 512;
export const BLK_ID_BYTES = 20;

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
