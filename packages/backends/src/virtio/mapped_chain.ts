/**
 * A popped chain with all its buffers mapped, addressed as two byte streams: the device-readable
 * bytes and the device-writable bytes, whatever descriptors carry them (§2.7.4.1: the split into
 * descriptors is the driver's business). Shared by the devices (blk, net).
 */
import type { QueueIo } from "./device.js";
import type { MemoryRegion } from "./guest_memory.js";
import type { SplitQueue } from "./split_queue.js";

/** A batch's chains as they end: the regions to give back, the heads and lengths to complete. */
export interface SettledChains {
  readonly regions: MemoryRegion[];
  readonly heads: number[];
  readonly lens: number[];
  /** The first map that failed (the device is broken from that chain on), or null. */
  readonly broken: unknown;
}

/**
 * Settles a batch of chains popped together, in ring order: each chain's map (null: not mapped,
 * on purpose) goes to `use` with the chain, which returns the bytes it wrote; its regions are
 * then given back and the chain completed. From the first map that failed on, chains are given
 * back but not completed.
 */
export async function settleChains<B extends { readonly head: number; readonly mapped: Promise<MappedChain> | null }>(
  batch: readonly B[],
  use: (b: B, m: MappedChain | null) => number,
): Promise<SettledChains> {
  const maps = await Promise.allSettled(batch.map((b) => b.mapped));
  const regions: MemoryRegion[] = [];
  const heads: number[] = [];
  const lens: number[] = [];
  let broken: unknown = null;
  for (const [i, r] of maps.entries()) {
    if (r.status === "rejected") {
      broken ??= r.reason;
      continue;
    }
    const m = r.value;
    if (broken === null) {
      const b = batch[i]!;
      lens.push(use(b, m));
      heads.push(b.head);
    }
    if (m !== null) regions.push(...m.regions.splice(0));
  }
  return { regions, heads, lens, broken };
}

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
    m.regions.push(...(await io.mapChain(q)));
    return m;
  }

  async release(io: QueueIo): Promise<void> {
    await io.releaseAll(this.regions.splice(0));
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
