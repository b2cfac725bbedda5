/**
 * The transmit queue (transmitq1, queue 1; VirtIO 1.2 §5.1.6.2): each chain is a virtio_net_hdr
 * followed by one Ethernet frame, all device-readable. The frame is copied out of the guest's
 * pages into a fresh buffer that goes to the switch (the guest may reuse its pages as soon as the
 * chain is used), and the chain completes with length 0 (the device wrote nothing).
 *
 * A chain that is not a transmit request at all (fewer readable bytes than a header, or
 * device-writable buffers) breaks the queue. A well-formed request the device will not send (an
 * offload that was not negotiated, a frame shorter than an Ethernet header or longer than the
 * MTU allows) is dropped and counted, as a NIC drops a bad frame: the queue goes on.
 */
import { ETH_HLEN } from "../../vswitch/ethernet.js";
import type { QueueIo } from "../device.js";
import { MappedChain, settleChains } from "../mapped_chain.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";
import { NET_HDR_SIZE, txHeaderProblem } from "./header.js";
import type { NetLink } from "./link.js";

/** Chains taken from the ring before any is waited on. */
const TX_BATCH = 32;

export interface TxStats {
  packets: number;
  bytes: number;
  /** Dropped: bad header, runt or oversized frame, or no link. */
  errors: number;
}

export class NetTx {
  readonly stats: TxStats = { packets: 0, bytes: 0, errors: 0 };
  private readonly hdr = new Uint8Array(NET_HDR_SIZE);
  private lastComplaint = "";

  constructor(
    /** Largest frame: MTU + Ethernet header. */
    private readonly maxFrame: number,
  ) {}

  /**
   * Takes every available chain (up to TX_BATCH) before waiting on any: their maps share round
   * trips, the frames go out in ring order, and the chains end together (QueueIo.complete: one
   * call to the core where the memory can). A rule broken at pop stands after the chains popped
   * before it; a chain that cannot be mapped stops the batch there (the chains before it complete).
   */
  async process(q: SplitQueue, io: QueueIo, link: NetLink | null): Promise<void> {
    for (;;) {
      const batch: Array<{ head: number; len: number; why: string | null; mapped: Promise<MappedChain> | null }> = [];
      let popError: unknown = null;
      try {
        while (batch.length < TX_BATCH && (await q.pop())) {
          const c = q.chain;
          if (c.readable !== c.count || c.readableBytes < NET_HDR_SIZE)
            throw new QueueError(
              "request-malformed",
              `queue ${q.index}: transmit chain ${c.head} has ${c.readableBytes} readable bytes and ${c.count - c.readable} writable buffers`,
            );
          const len = c.readableBytes - NET_HDR_SIZE;
          const why =
            len < ETH_HLEN || len > this.maxFrame ? `frame of ${len} bytes (${ETH_HLEN}..${this.maxFrame})` : null;
          // map() reads the chain before its first await: the next pop may reuse it.
          batch.push({ head: c.head, len, why, mapped: why === null ? MappedChain.map(q, io) : null });
        }
      } catch (e) {
        popError = e;
      }
      if (batch.length === 0) {
        if (popError !== null) throw popError;
        return;
      }
      const { regions, heads, lens, broken } = await settleChains(batch, (b, m) => {
        let why = b.why;
        let frame: Uint8Array | null = null;
        if (m !== null) {
          m.readBytes(0, this.hdr);
          why = txHeaderProblem(this.hdr);
          if (why === null) {
            frame = new Uint8Array(b.len);
            m.readBytes(NET_HDR_SIZE, frame);
          }
        }
        if (frame !== null && link !== null) {
          this.stats.packets++;
          this.stats.bytes += b.len;
          link.transmit(frame);
        } else {
          this.stats.errors++;
          this.complain(io, why ?? "no link");
        }
        return 0;
      });
      await io.complete(q, regions, heads, lens);
      if (broken !== null) throw broken;
      if (popError !== null) throw popError;
    }
  }

  /** One log line per kind of drop in a row (a hostile guest must not flood the log). */
  private complain(io: QueueIo, why: string): void {
    const kind = why.replace(/\d+/g, "#");
    if (kind === this.lastComplaint) return;
    this.lastComplaint = kind;
    io.log(`virtio-net d${io.guest}: transmit dropped: ${why}`);
  }
}
