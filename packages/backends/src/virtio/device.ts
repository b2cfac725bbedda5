/**
 * What a VirtIO device is to the transport (Firecracker's VirtioDevice, in spirit): an id, its
 * feature bits and queues, a config space, and a function that works through a queue. A new
 * device is a folder with this file's interface implemented; it never sees registers.
 */
import type { MemoryRegion } from "./guest_memory.js";
import type { SplitQueue } from "./split_queue.js";

/** What the transport gives a device while it works on a queue. */
export interface QueueIo {
  /** The frontend's domid (for logs). */
  readonly guest: number;
  /**
   * Maps buffer `i` of the queue's current chain (its first `len` bytes; all by default) for the
   * access its descriptor allows. Throws
   * QueueError("buffer-unreachable") when the guest did not make it reachable (bad address, not
   * granted, read-only grant for a writable buffer).
   */
  mapBuffer(q: SplitQueue, i: number, len?: number): Promise<MemoryRegion>;
  /**
   * Maps every buffer of the queue's current chain (whole lengths), in one batched call where the
   * guest memory can batch. Throws QueueError("buffer-unreachable") naming the buffer.
   */
  mapChain(q: SplitQueue): Promise<MemoryRegion[]>;
  /** Gives a chain's regions back (batched where it can). */
  releaseAll(rs: readonly MemoryRegion[]): Promise<void>;
  /** Gives a mapped buffer back (copy mode writes it to the guest here). */
  release(r: MemoryRegion): Promise<void>;
  /**
   * Interrupts the driver now if it asked to be for what was pushed so far (EVENT_IDX /
   * NO_INTERRUPT), instead of when processQueue returns: a device that looks for more work after
   * completing some does not make the driver wait for that look.
   */
  signalUsed(q: SplitQueue): Promise<void>;
  /**
   * Gives the regions of completed chains back and completes the chains (heads[i] with lens[i]
   * bytes written) in order, then interrupts the driver if it asked to be: where the guest memory
   * can, all of it is one call to the core (SplitQueue.releasePushMany).
   */
  complete(
    q: SplitQueue,
    regions: readonly MemoryRegion[],
    heads: readonly number[],
    lens: readonly number[],
  ): Promise<void>;
  log(line: string): void;
}

/** What processQueue resolves to when it left buffers posted on purpose (see below). */
export const QUEUE_WAIT = "wait";

export interface VirtioDevice {
  /** Short name for logs: "rng", "blk". */
  readonly name: string;
  /** VirtIO device id (§5). */
  readonly deviceId: number;
  /** Device-specific feature bits, word 0 (bits 0..31) and word 1 (32..63). */
  readonly features: readonly [number, number];
  /** QueueNumMax of each queue. */
  readonly queueMaxSizes: readonly number[];
  /** Reads `size` bytes (1, 2, 4) of config space at `off`, little-endian; bytes past its end read 0. */
  configRead(off: number, size: number): number;
  configWrite?(off: number, size: number, value: number): void;
  /** Features the driver accepted, at FEATURES_OK; false refuses them. */
  negotiated?(lo: number, hi: number): boolean;
  /**
   * Pops and completes chains of queue q until it is empty (or the device must wait). A broken
   * rule is a thrown QueueError. Resolving to QUEUE_WAIT says the device left buffers on the ring
   * on purpose (a receive queue with nothing to receive): the transport then does not spin on
   * them, and the device calls its wake function when it has work. Anything else: done.
   */
  processQueue(q: SplitQueue, io: QueueIo): Promise<unknown>;
  /**
   * Called once by the transport: `wake(q)` runs queue q as a notification would (ignored until
   * the driver is live). For devices with work that does not start with the driver (received frames).
   */
  bindWake?(wake: (queue: number) => void): void;
  /** Called once by the transport: `changed()` bumps the config generation and raises the config interrupt. */
  bindConfigChanged?(changed: () => void): void;
  /**
   * Device-model state that must move with the guest beyond the transport's registers and rings
   * (plain data); devices whose state is all in the transport and their spec leave these out.
   */
  getState?(): unknown;
  setState?(s: unknown): void;
  /** Device reset: forget per-driver state. */
  reset(): void;
  /** The driver domain stops: give back host resources (files, sockets). */
  close?(): void;
}
