/**
 * virtio-console (device id 3, VirtIO 1.2 §5.3), one port (MULTIPORT not offered): queue 0 is
 * port 0's receiveq (host to guest, device-writable buffers), queue 1 its transmitq (guest to
 * host, device-readable buffers). Config: cols and rows (VIRTIO_CONSOLE_F_SIZE), max_nr_ports
 * (read as 1) and emerg_wr (VIRTIO_CONSOLE_F_EMERG_WRITE: a config write of one byte to offset 8
 * prints it before any queue is up).
 *
 * Transmitted bytes go to `output` (the launcher hands them to the host's console stream of the
 * guest). Host input waits in a bounded buffer until the driver offers receive buffers; past
 * INPUT_MAX_BYTES the oldest bytes are dropped (a keyboard that nobody reads does not grow the
 * host's memory). A device-writable buffer in the transmitq, or a device-readable one in the
 * receiveq, breaks the queue (§5.3.6.1).
 */
import { DeviceId } from "../constants.js";
import { QUEUE_WAIT, type QueueIo, type VirtioDevice } from "../device.js";
import { QueueError } from "../queue_error.js";
import type { SplitQueue } from "../split_queue.js";

export const ConsoleFeature = { SIZE: 0, MULTIPORT: 1, EMERG_WRITE: 2 } as const;
/** Config space offsets (§5.3.4). */
export const ConsoleConfig = { COLS: 0, ROWS: 2, MAX_NR_PORTS: 4, EMERG_WR: 8 } as const;
export const CONSOLE_RECEIVEQ = 0;
export const CONSOLE_TRANSMITQ = 1;
/** Host input kept while the guest offers no receive buffer. */
export const INPUT_MAX_BYTES = 64 * 1024;
/** Largest transmit chain read at once (larger chains are read in pieces of this size). */
const TX_PIECE = 4096;

export interface ConsoleOptions {
  readonly cols?: number;
  readonly rows?: number;
  /** Receives the bytes the guest transmits (and emergency writes), in order. */
  readonly output: (bytes: Uint8Array) => void;
}

export class ConsoleDevice implements VirtioDevice {
  readonly name = "console";
  readonly deviceId = DeviceId.CONSOLE;
  readonly features: readonly [number, number] = [
    ((1 << ConsoleFeature.SIZE) | (1 << ConsoleFeature.EMERG_WRITE)) >>> 0,
    0,
  ];
  readonly queueMaxSizes = [64, 64];
  private cols: number;
  private rows: number;
  private readonly output: (bytes: Uint8Array) => void;
  /** Pending host input (oldest first), as chunks; `inputBytes` in total, `inputHead` consumed of the first. */
  private readonly input: Uint8Array[] = [];
  private inputBytes = 0;
  private inputHead = 0;
  private wake: ((q: number) => void) | null = null;
  private changed: (() => void) | null = null;
  private readonly piece = new Uint8Array(TX_PIECE);
  stats = { transmitted: 0, received: 0, dropped: 0 };

  constructor(o: ConsoleOptions) {
    this.cols = checkDim(o.cols ?? 80, "cols");
    this.rows = checkDim(o.rows ?? 25, "rows");
    this.output = o.output;
  }

  bindWake(wake: (q: number) => void): void {
    this.wake = wake;
  }

  bindConfigChanged(changed: () => void): void {
    this.changed = changed;
  }

  configRead(off: number, size: number): number {
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + this.configByte(off + i);
    return v >>> 0;
  }

  private configByte(off: number): number {
    if (off < 2) return (this.cols >>> (8 * off)) & 0xff;
    if (off < 4) return (this.rows >>> (8 * (off - 2))) & 0xff;
    if (off === ConsoleConfig.MAX_NR_PORTS) return 1;
    return 0;
  }

  configWrite(off: number, size: number, value: number): void {
    // emerg_wr: the low byte is a character to print (§5.3.4); other fields are read-only.
    if (off === ConsoleConfig.EMERG_WR && size >= 1) this.emit(Uint8Array.of(value & 0xff));
  }

  /** A new terminal size: config changes, the driver gets a config interrupt. */
  resize(cols: number, rows: number): void {
    this.cols = checkDim(cols, "cols");
    this.rows = checkDim(rows, "rows");
    this.changed?.();
  }

  /** Host input for the guest: buffered, delivered as the driver offers receive buffers. */
  pushInput(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.input.push(bytes.slice());
    this.inputBytes += bytes.length;
    while (this.inputBytes - this.inputHead > INPUT_MAX_BYTES) {
      const first = this.input[0]!;
      const over = this.inputBytes - this.inputHead - INPUT_MAX_BYTES;
      const left = first.length - this.inputHead;
      const drop = Math.min(over, left);
      this.stats.dropped += drop;
      this.inputHead += drop;
      if (this.inputHead === first.length) {
        this.input.shift();
        this.inputBytes -= first.length;
        this.inputHead = 0;
      }
    }
    this.wake?.(CONSOLE_RECEIVEQ);
  }

  /** Input bytes not yet delivered. */
  get pendingInput(): number {
    return this.inputBytes - this.inputHead;
  }

  async processQueue(q: SplitQueue, io: QueueIo): Promise<unknown> {
    if (q.index === CONSOLE_RECEIVEQ) return this.receive(q, io);
    return this.transmit(q, io);
  }

  /**
   * Fills receive buffers with pending input; pops a chain only when there is input for it, and
   * says QUEUE_WAIT when it leaves buffers posted (pushInput wakes the queue).
   */
  private async receive(q: SplitQueue, io: QueueIo): Promise<unknown> {
    while (this.pendingInput > 0 && (await q.pop())) {
      const c = q.chain;
      if (c.readable !== 0)
        throw new QueueError("write-to-readable-buffer", `receiveq: chain ${c.head} has device-readable buffers`);
      let written = 0;
      for (let i = 0; i < c.count && this.pendingInput > 0; i++) {
        const want = Math.min(c.len[i]!, this.pendingInput);
        if (want === 0) continue;
        const r = await io.mapBuffer(q, i, want);
        try {
          for (let done = 0; done < want; ) {
            const first = this.input[0]!;
            const n = Math.min(want - done, first.length - this.inputHead);
            r.copyIn(done, first, this.inputHead, n);
            done += n;
            this.inputHead += n;
            if (this.inputHead === first.length) {
              this.input.shift();
              this.inputBytes -= first.length;
              this.inputHead = 0;
            }
          }
        } finally {
          await io.release(r);
        }
        written += want;
      }
      this.stats.received += written;
      await q.push(c.head, written);
    }
    return this.pendingInput === 0 ? QUEUE_WAIT : undefined;
  }

  private async transmit(q: SplitQueue, io: QueueIo): Promise<void> {
    while (await q.pop()) {
      const c = q.chain;
      if (c.readable !== c.count)
        throw new QueueError("read-from-writable-buffer", `transmitq: chain ${c.head} has device-writable buffers`);
      for (let i = 0; i < c.count; i++) {
        const len = c.len[i]!;
        if (len === 0) continue;
        const r = await io.mapBuffer(q, i, len);
        try {
          for (let at = 0; at < len; at += TX_PIECE) {
            const n = Math.min(TX_PIECE, len - at);
            r.copyOut(at, this.piece, 0, n);
            this.emit(this.piece.slice(0, n));
          }
        } finally {
          await io.release(r);
        }
      }
      await q.push(c.head, 0);
    }
  }

  private emit(bytes: Uint8Array): void {
    this.stats.transmitted += bytes.length;
    this.output(bytes);
  }

  /** Reset keeps pending host input: it was typed for whichever driver comes next. */
  reset(): void {}
}

function checkDim(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`console ${what} ${n} out of range 0..65535`);
  return n;
}
