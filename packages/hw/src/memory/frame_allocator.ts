import { type MachineMemory, MemoryError } from "./machine_memory.js";

/**
 * Hands out machine frames. Freed frames are scrubbed and reused first (they are already
 * materialised); fresh frames come from a bump pointer, so an untouched 12 TiB host costs nothing.
 * Ranges can be reserved up front (static memory, the static heap) so the allocator never hands
 * them out.
 */
export class FrameAllocator {
  private next = 0;
  private readonly freeList: number[] = [];
  /** Sorted, non-overlapping reserved ranges [start, end). */
  private readonly reserved: Array<[number, number]> = [];
  private allocated = 0;

  constructor(private readonly memory: MachineMemory) {}

  get allocatedFrames(): number {
    return this.allocated;
  }

  get freeFrames(): number {
    return this.memory.totalFrames - this.next - this.reservedAhead() + this.freeList.length;
  }

  /**
   * Takes [start, start+count) out of circulation. Fails if any frame in it was already handed out
   * or overlaps another reservation.
   */
  reserve(start: number, count: number): void {
    const end = start + count;
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(count) ||
      count <= 0 ||
      start < 0 ||
      end > this.memory.totalFrames
    ) {
      throw new MemoryError(`reserve [${start}, ${end}) outside host memory`, "ERANGE");
    }
    if (start < this.next) throw new MemoryError(`reserve [${start}, ${end}) overlaps allocated frames`, "EINVAL");
    for (const [s, e] of this.reserved) {
      if (start < e && s < end)
        throw new MemoryError(`reserve [${start}, ${end}) overlaps reserved [${s}, ${e})`, "EINVAL");
    }
    this.reserved.push([start, end]);
    this.reserved.sort((a, b) => a[0] - b[0]);
  }

  /** One frame, or -1 when the host is out of memory. */
  alloc(): number {
    const reused = this.freeList.pop();
    if (reused !== undefined) {
      this.allocated++;
      return reused;
    }
    this.skipReserved();
    if (this.next >= this.memory.totalFrames) return -1;
    this.allocated++;
    return this.next++;
  }

  /** `count` frames (not necessarily contiguous), all or nothing. */
  allocMany(count: number): number[] | null {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const f = this.alloc();
      if (f < 0) {
        for (const g of out) this.free(g);
        return null;
      }
      out.push(f);
    }
    return out;
  }

  /** Returns a frame; it is scrubbed so the next owner cannot read the last one's data. */
  free(mfn: number): void {
    if (!this.memory.isValidMfn(mfn) || mfn >= this.next) {
      throw new MemoryError(`free of mfn ${mfn} that was never allocated`, "EINVAL");
    }
    this.memory.scrub(mfn);
    this.freeList.push(mfn);
    this.allocated--;
  }

  private skipReserved(): void {
    for (const [s, e] of this.reserved) if (this.next >= s && this.next < e) this.next = e;
  }

  private reservedAhead(): number {
    let n = 0;
    for (const [s, e] of this.reserved) if (e > this.next) n += e - Math.max(s, this.next);
    return n;
  }
}
