/**
 * The receive queue (receiveq1, queue 0; VirtIO 1.2 §5.1.6.3-4): the driver posts device-writable
 * buffers; each frame from the switch fills one chain with a virtio_net_hdr then the frame, and
 * completes it with the bytes written. Without MRG_RXBUF a frame never spans chains, so a chain
 * too small for header + frame gets the frame dropped (counted) and is returned unused (length 0).
 *
 * Frames wait in a bounded backlog while the driver has no buffers posted (a NIC's FIFO): when it
 * is full, new frames are dropped and counted, so a guest that never reads cannot make the
 * driver domain hold an unbounded amount of memory.
 */
import { QUEUE_WAIT, type QueueIo } from "../device.js";
import { MappedChain, settleChains } from "../mapped_chain.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";
import { NET_HDR_SIZE, RX_HDR } from "./header.js";

export const RX_BACKLOG_FRAMES = 256;
/** Chains taken from the ring before any is waited on. */
const RX_BATCH = 32;

export interface RxStats {
  packets: number;
  bytes: number;
  /** Dropped: backlog full, driver not live, or a posted chain too small. */
  dropped: number;
}

export class NetRx {
  readonly stats: RxStats = { packets: 0, bytes: 0, dropped: 0 };
  private backlog: Uint8Array[] = [];
  private head = 0;

  /** Queues a frame from the switch; false when it was dropped (backlog full). */
  enqueue(frame: Uint8Array): boolean {
    if (this.pending >= RX_BACKLOG_FRAMES) {
      this.stats.dropped++;
      return false;
    }
    this.backlog.push(frame);
    return true;
  }

  get pending(): number {
    return this.backlog.length - this.head;
  }

  /** Forgets queued frames (device reset: they were for the old driver). */
  clear(): void {
    this.stats.dropped += this.pending;
    this.backlog = [];
    this.head = 0;
  }

  /**
   * Fills posted chains with queued frames. "wait" when buffers are left and nothing is queued
   * (the device wakes the queue when a frame arrives); undefined when the ring ran dry or both
   * are empty. Every chain a frame waits for (up to RX_BATCH) is taken before any is waited on:
   * their maps share round trips and they end together (QueueIo.complete). A chain that cannot be
   * mapped stops the batch there (the chains before it complete; its frame is lost).
   */
  async process(q: SplitQueue, io: QueueIo): Promise<typeof QUEUE_WAIT | undefined> {
    while (this.pending > 0) {
      const batch: Array<{ head: number; frame: Uint8Array | null; mapped: Promise<MappedChain> | null }> = [];
      let popError: unknown = null;
      let dry = false;
      try {
        while (batch.length < RX_BATCH && this.pending > 0) {
          if (!(await q.pop())) {
            dry = true;
            break;
          }
          const c = q.chain;
          if (c.readable !== 0)
            throw new QueueError(
              "write-to-readable-buffer",
              `queue ${q.index}: receive chain ${c.head} has device-readable buffers`,
            );
          const frame = this.take();
          if (c.writableBytes < NET_HDR_SIZE + frame.length) {
            this.stats.dropped++;
            batch.push({ head: c.head, frame: null, mapped: null });
          } else batch.push({ head: c.head, frame, mapped: MappedChain.map(q, io) });
        }
      } catch (e) {
        popError = e;
      }
      const { regions, heads, lens, broken } = await settleChains(batch, (b, m) => {
        if (m === null || b.frame === null) return 0;
        m.writeBytes(0, RX_HDR);
        m.writeBytes(NET_HDR_SIZE, b.frame);
        this.stats.packets++;
        this.stats.bytes += b.frame.length;
        return NET_HDR_SIZE + b.frame.length;
      });
      if (heads.length > 0 || regions.length > 0) await io.complete(q, regions, heads, lens);
      if (broken !== null) throw broken;
      if (popError !== null) throw popError;
      if (dry) return undefined;
    }
    return QUEUE_WAIT;
  }

  /** The oldest queued frame, taken off the backlog. */
  private take(): Uint8Array {
    const frame = this.backlog[this.head]!;
    this.backlog[this.head++] = EMPTY;
    if (this.head > 64 && this.head * 2 > this.backlog.length) {
      this.backlog = this.backlog.slice(this.head);
      this.head = 0;
    }
    return frame;
  }
}

const EMPTY = new Uint8Array(0);
