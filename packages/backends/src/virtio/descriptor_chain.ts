/**
 * One descriptor chain popped from a split virtqueue, already walked and validated: its buffers
 * in order (readable ones, then writable ones), each as a 64-bit address and a length. The
 * arrays are sized once per queue and reused for every chain (no allocation per descriptor).
 */
export class DescriptorChain {
  /** Head descriptor index: the id the used element carries. */
  head = 0;
  count = 0;
  /** How many of the first `count` buffers are device-readable. */
  readable = 0;
  readableBytes = 0;
  writableBytes = 0;
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
  readonly len: Uint32Array;

  constructor(readonly capacity: number) {
    this.hi = new Uint32Array(capacity);
    this.lo = new Uint32Array(capacity);
    this.len = new Uint32Array(capacity);
  }

  reset(head: number): void {
    this.head = head;
    this.count = 0;
    this.readable = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
  }

  push(hi: number, lo: number, len: number, writable: boolean): void {
    const i = this.count++;
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.len[i] = len;
    if (writable) this.writableBytes += len;
    else {
      this.readable++;
      this.readableBytes += len;
    }
  }

  isWritable(i: number): boolean {
    return i >= this.readable;
  }
}
