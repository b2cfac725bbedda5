import type { FrameAllocator, MachineMemory } from "@xenon/hw";

/**
 * A domain's P2M pool (Xen/Arm's paging mempool): machine frames taken from the host allocator
 * once, at domain creation, and used only for this domain's P2M table pages. Running dry fails the
 * one P2M update that needed a page (-ENOMEM); it never reaches into the host allocator, so one
 * domain exhausting its pool cannot take memory from anyone else.
 *
 * Invariant: every frame in `all` is either on the free list (zeroed) or in use as a table page.
 */
export class P2mPool {
  private readonly free: number[];
  private destroyed = false;

  private constructor(
    private readonly memory: MachineMemory,
    private readonly all: readonly number[],
  ) {
    // Hand frames out lowest-first so tests and dumps are predictable.
    this.free = [...all].reverse();
  }

  /** Takes `pages` frames from the host, or returns null (nothing taken) if the host is short. */
  static create(allocator: FrameAllocator, memory: MachineMemory, pages: number): P2mPool | null {
    if (!Number.isInteger(pages) || pages < 0) return null;
    const frames = pages === 0 ? [] : allocator.allocMany(pages);
    if (frames === null) return null;
    for (const mfn of frames) memory.scrub(mfn);
    return new P2mPool(memory, frames);
  }

  get totalPages(): number {
    return this.all.length;
  }

  get freePages(): number {
    return this.free.length;
  }

  /** A zeroed frame for a table page, or -1 when the pool is empty. */
  alloc(): number {
    return this.free.pop() ?? -1;
  }

  /** Returns a table page to the pool (scrubbed, so a reused table starts empty). */
  release(mfn: number): void {
    this.memory.scrub(mfn);
    this.free.push(mfn);
  }

  /** Gives every frame back to the host allocator (domain destruction). Idempotent. */
  destroy(allocator: FrameAllocator): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const mfn of this.all) allocator.free(mfn);
    this.free.length = 0;
  }
}
