import type { FrameAllocator, MachineMemory } from "@xenon/hw";
import { err } from "../public/errno.js";
import { GRANT_ENTRIES_PER_FRAME, GRANT_ENTRY_V1_SIZE } from "../public/grant_table.js";

/**
 * Xen's active_grant_entry: what the core knows about a grant in use. `frame` in the shared
 * entry can change under us (the granter owns it), so a pinned grant's gfn/mfn are recorded here
 * at first pin and used until the last pin drops.
 */
export interface ActiveGrant {
  /** The domain allowed to use it (the shared entry's domid when first pinned). */
  domid: number;
  gfn: number;
  mfn: number;
  /** Host-read and host-write pin counts (Xen's GNTPIN_hstr/hstw, 8 bits each). */
  readPins: number;
  writePins: number;
}

/** Xen refuses a pin that would overflow its 8-bit counter. */
export const MAX_PINS = 255;

/**
 * A domain's v1 grant table: frames of 8-byte grant_entry_v1 that belong to the granting domain
 * (not counted in tot_pages, like Xen's xenheap pages) and that the guest maps into its own
 * physmap with XENMEM_add_to_physmap(XENMAPSPACE_grant_table). The guest writes the entries; the
 * core only flips GTF_reading/GTF_writing, with compare-exchange on the 32-bit word that holds
 * flags (low half) and domid (high half).
 *
 * The table starts with one frame and grows on demand (setup_table, add_to_physmap) up to
 * maxFrames; it never shrinks while the domain lives.
 */
export class GrantTable {
  readonly frames: number[] = [];
  /** gfn each frame is mapped at in the owner's physmap, or -1. */
  readonly frameGfn: number[] = [];
  readonly active = new Map<number, ActiveGrant>();
  version = 1;

  constructor(
    private readonly memory: MachineMemory,
    private readonly allocator: FrameAllocator,
    readonly maxFrames: number,
  ) {}

  get nrFrames(): number {
    return this.frames.length;
  }

  get nrEntries(): number {
    return this.frames.length * GRANT_ENTRIES_PER_FRAME;
  }

  /** Grows to `n` frames. 0, -EINVAL (beyond maxFrames) or -ENOMEM (host out of memory). */
  grow(n: number): number {
    if (!Number.isInteger(n) || n > this.maxFrames || n < 0) return err("EINVAL");
    while (this.frames.length < n) {
      const mfn = this.allocator.alloc();
      if (mfn < 0) return err("ENOMEM");
      this.memory.scrub(mfn);
      this.frames.push(mfn);
      this.frameGfn.push(-1);
    }
    return 0;
  }

  isValidRef(ref: number): boolean {
    return Number.isInteger(ref) && ref >= 0 && ref < this.nrEntries;
  }

  /** Int32 view and index of the flags+domid word of `ref` (ref must be valid). */
  entryWord(ref: number): { i32: Int32Array; index: number } {
    const mfn = this.frames[Math.floor(ref / GRANT_ENTRIES_PER_FRAME)]!;
    const c = this.memory.chunk(mfn);
    const byte = this.memory.frameOffset(mfn) + (ref % GRANT_ENTRIES_PER_FRAME) * GRANT_ENTRY_V1_SIZE;
    return { i32: c.i32, index: byte >>> 2 };
  }

  /** The entry's `frame` field (the granted gfn), read atomically. */
  entryFrame(ref: number): number {
    const { i32, index } = this.entryWord(ref);
    return Atomics.load(i32, index + 1) >>> 0;
  }

  /** Gives every frame back to the host (domain destruction). */
  destroy(): void {
    for (const mfn of this.frames) this.allocator.free(mfn);
    this.frames.length = 0;
    this.frameGfn.length = 0;
    this.active.clear();
  }
}
