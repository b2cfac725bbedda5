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
import { MappedChain } from "../mapped_chain.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";
import { NET_HDR_SIZE, txHeaderProblem } from "./header.js";
import type { NetLink } from "./link.js";

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

  async process(q: SplitQueue, io: QueueIo, link: NetLink | null): Promise<void> {
    while (await q.pop()) {
      const c = q.chain;
      if (c.readable !== c.count || c.readableBytes < NET_HDR_SIZE)
        throw new QueueError(
          "request-malformed",
          `queue ${q.index}: transmit chain ${c.head} has ${c.readableBytes} readable bytes and ${c.count - c.readable} writable buffers`,
        );
      const len = c.readableBytes - NET_HDR_SIZE;
      let why: string | null = null;
      if (len < ETH_HLEN || len > this.maxFrame) why = `frame of ${len} bytes (${ETH_HLEN}..${this.maxFrame})`;
      let frame: Uint8Array | null = null;
      if (why === null) {
        const m = await MappedChain.map(q, io);
        try {
          m.readBytes(0, this.hdr);
          why = txHeaderProblem(this.hdr);
          if (why === null) {
            frame = new Uint8Array(len);
            m.readBytes(NET_HDR_SIZE, frame);
          }
        } finally {
          await m.release(io);
        }
      }
      if (frame !== null && link !== null) {
        this.stats.packets++;
        this.stats.bytes += len;
        link.transmit(frame);
      } else {
        this.stats.errors++;
        this.complain(io, why ?? "no link");
      }
      await q.push(c.head, 0);
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
