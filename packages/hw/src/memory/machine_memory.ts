/**
 * The host's RAM: machine frames (4 KiB, 32-bit MFNs) backed by SharedArrayBuffer chunks that are
 * materialised on first touch, so a host configured with terabytes is addressable while costing
 * only the chunks actually used. Chunks are SharedArrayBuffers so every pCPU worker (and a
 * thread-mode driver domain holding a grant mapping) sees the same bytes.
 *
 * Invariant: a chunk, once materialised, is never replaced; views handed out stay valid.
 */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;
/** MFNs are 32-bit: at most 2^32 frames (16 TiB). */
export const MAX_FRAMES = 2 ** 32;

export interface MemoryChunk {
  readonly index: number;
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly i32: Int32Array;
}

export interface MachineMemoryOptions {
  /** Host RAM size in bytes (a multiple of 4 KiB, at most 16 TiB). */
  bytes: number;
  /** log2 of frames per chunk; default 9 (2 MiB chunks). */
  chunkShift?: number;
  /** Called when this instance materialises a chunk (so it can be handed to other threads). */
  onMaterialise?: (index: number, buffer: SharedArrayBuffer) => void;
  /**
   * For an instance that mirrors another thread's host memory (a pCPU worker): instead of
   * materialising a missing chunk — which would give this thread bytes nobody else sees — ask the
   * owner for it. Returns the owner's buffer for that chunk.
   */
  missingChunk?: (index: number) => SharedArrayBuffer;
}

export class MemoryError extends Error {
  constructor(
    message: string,
    readonly code: "EINVAL" | "ERANGE",
  ) {
    super(message);
    this.name = "MemoryError";
  }
}

function makeChunk(index: number, buffer: SharedArrayBuffer): MemoryChunk {
  return {
    index,
    buffer,
    u8: new Uint8Array(buffer),
    u16: new Uint16Array(buffer),
    i32: new Int32Array(buffer),
  };
}

export class MachineMemory {
  readonly totalFrames: number;
  readonly chunkShift: number;
  readonly chunkFrames: number;
  readonly chunkBytes: number;
  private readonly chunks = new Map<number, MemoryChunk>();
  private readonly onMaterialise: ((index: number, buffer: SharedArrayBuffer) => void) | undefined;
  private readonly missingChunk: ((index: number) => SharedArrayBuffer) | undefined;

  constructor(opts: MachineMemoryOptions) {
    const { bytes } = opts;
    if (!Number.isSafeInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) {
      throw new MemoryError(`host memory size ${bytes} is not a positive multiple of ${PAGE_SIZE}`, "EINVAL");
    }
    if (bytes / PAGE_SIZE > MAX_FRAMES) {
      throw new MemoryError(`host memory size ${bytes} exceeds 2^32 frames of 4 KiB`, "ERANGE");
    }
    this.totalFrames = bytes / PAGE_SIZE;
    this.chunkShift = opts.chunkShift ?? 9;
    if (this.chunkShift < 0 || this.chunkShift > 18) {
      throw new MemoryError(`chunkShift ${this.chunkShift} out of range 0..18`, "EINVAL");
    }
    this.chunkFrames = 1 << this.chunkShift;
    this.chunkBytes = this.chunkFrames * PAGE_SIZE;
    this.onMaterialise = opts.onMaterialise;
    this.missingChunk = opts.missingChunk;
  }

  /** The size in bytes of chunk `index` (the last chunk may be short). */
  chunkSize(index: number): number {
    return Math.min(this.chunkBytes, (this.totalFrames - index * this.chunkFrames) * PAGE_SIZE);
  }

  /** Bytes of host memory actually backed so far. */
  get materialisedBytes(): number {
    return this.chunks.size * this.chunkBytes;
  }

  get materialisedChunks(): number {
    return this.chunks.size;
  }

  isValidMfn(mfn: number): boolean {
    return Number.isInteger(mfn) && mfn >= 0 && mfn < this.totalFrames;
  }

  /** The chunk holding mfn, materialising it on first touch. Throws MemoryError for a bad mfn. */
  chunk(mfn: number): MemoryChunk {
    if (!this.isValidMfn(mfn)) throw new MemoryError(`mfn ${mfn} outside host memory`, "ERANGE");
    const index = mfn >>> this.chunkShift;
    let c = this.chunks.get(index);
    if (c === undefined) {
      if (this.missingChunk !== undefined) {
        const buffer = this.missingChunk(index);
        if (buffer.byteLength !== this.chunkSize(index)) {
          throw new MemoryError(`chunk ${index} from the owner has ${buffer.byteLength} bytes`, "EINVAL");
        }
        c = makeChunk(index, buffer);
        this.chunks.set(index, c);
        return c;
      }
      c = makeChunk(index, new SharedArrayBuffer(this.chunkSize(index)));
      this.chunks.set(index, c);
      this.onMaterialise?.(index, c.buffer);
    }
    return c;
  }

  /** The chunk holding mfn if it is materialised here, without touching it. */
  peekChunk(mfn: number): MemoryChunk | undefined {
    return this.chunks.get(mfn >>> this.chunkShift);
  }

  /** Byte offset of frame mfn inside its chunk. */
  frameOffset(mfn: number): number {
    return (mfn & (this.chunkFrames - 1)) << PAGE_SHIFT;
  }

  /** Installs a chunk materialised by another thread's instance of the same host memory. */
  adoptChunk(index: number, buffer: SharedArrayBuffer): void {
    const existing = this.chunks.get(index);
    if (existing !== undefined) {
      if (existing.buffer !== buffer)
        throw new MemoryError(`chunk ${index} already materialised differently`, "EINVAL");
      return;
    }
    this.chunks.set(index, makeChunk(index, buffer));
  }

  /** Every materialised chunk, for handing to a new worker. */
  exportChunks(): Array<{ index: number; buffer: SharedArrayBuffer }> {
    return [...this.chunks.values()].map((c) => ({ index: c.index, buffer: c.buffer }));
  }

  /** A Uint8Array over exactly one frame (slow path: loaders, hypercall argument copies). */
  frameBytes(mfn: number): Uint8Array {
    const c = this.chunk(mfn);
    return new Uint8Array(c.buffer, this.frameOffset(mfn), PAGE_SIZE);
  }

  /** Zeroes a frame (scrubbing before a frame changes owner). */
  scrub(mfn: number): void {
    const c = this.peekChunk(mfn);
    if (c === undefined) return; // never touched: already zero
    const off = this.frameOffset(mfn);
    c.u8.fill(0, off, off + PAGE_SIZE);
  }
}
