/**
 * virtio-rng (device id 4, §5.4): one request queue of device-writable buffers, filled from the
 * host's CSPRNG straight into the mapped guest pages. At most 64 KiB per request (Firecracker's
 * cap): the used length says how much was filled, as the spec allows.
 */
import { randomFillSync } from "node:crypto";
import { DeviceId } from "../constants.js";
import type { QueueIo, VirtioDevice } from "../device.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";

export const RNG_MAX_REQUEST_BYTES = 64 * 1024;
const fill = (piece: Uint8Array): void => {
  randomFillSync(piece);
};

export class RngDevice implements VirtioDevice {
  readonly name = "rng";
  readonly deviceId = DeviceId.ENTROPY;
  readonly features: readonly [number, number] = [0, 0];
  readonly queueMaxSizes = [256];
  /** Bytes handed out since creation (stats, tests). */
  bytes = 0;

  configRead(): number {
    return 0;
  }

  async processQueue(q: SplitQueue, io: QueueIo): Promise<void> {
    while (await q.pop()) {
      const c = q.chain;
      if (c.readable !== 0)
        throw new QueueError(
          "write-to-readable-buffer",
          `queue ${q.index}: chain ${c.head} has device-readable buffers`,
        );
      let left = RNG_MAX_REQUEST_BYTES;
      let written = 0;
      for (let i = 0; i < c.count && left > 0; i++) {
        const want = Math.min(c.len[i]!, left);
        if (want === 0) continue;
        const r = await io.mapBuffer(q, i, want);
        try {
          r.forEachPiece(0, want, fill);
        } finally {
          await io.release(r);
        }
        written += want;
        left -= want;
      }
      this.bytes += written;
      await q.push(c.head, written);
    }
  }

  reset(): void {}
}
