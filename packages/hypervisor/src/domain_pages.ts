import type { FrameAllocator } from "@xenon/hw";

/**
 * The RAM a domain owns (Xen's d->page_list and tot_pages), with reference counts for the
 * frames other parties still use. A RAM frame belongs to exactly one domain; the domain's P2M
 * maps it, and a foreign grant mapping or a registered vcpu_info takes an extra reference.
 * A frame removed from the physmap while referenced is only "released": it stays allocated (and
 * counted in tot_pages, as in Xen) until its last reference goes, so no one ever reads or writes
 * a frame that has been handed to another domain.
 *
 * Invariant: released ⊆ owned; refs only for owned frames; a freed frame is in neither.
 */
export class DomainPages {
  private readonly owned = new Set<number>();
  private readonly released = new Set<number>();
  private readonly refs = new Map<number, number>();
  /** Called when the last released-but-referenced frame is freed (a dying domain can then go). */
  onDrained: (() => void) | null = null;
  /**
   * Static memory (dom0less `xen,static-mem`): when set, this domain's RAM comes only from these
   * frames, reserved for it before any domain ran; a freed one is scrubbed and comes back here,
   * never to the host allocator. `staticFree` ⊆ `staticFrames`, disjoint from `owned`.
   */
  private staticFrames: ReadonlySet<number> | null = null;
  private readonly staticFree = new Set<number>();
  private scrubStatic: (mfn: number) => void = () => {};

  constructor(
    private readonly allocator: FrameAllocator,
    public maxPages: number,
  ) {}

  /** tot_pages: frames owned, including released frames still referenced. */
  get totPages(): number {
    return this.owned.size;
  }

  /** Frames removed from the physmap but still referenced by someone. */
  get releasedPages(): number {
    return this.released.size;
  }

  /**
   * Gives the domain its static memory (once, before it has any RAM): from now on alloc() takes
   * only these frames. `scrub` clears a frame the domain hands back.
   */
  assignStatic(mfns: readonly number[], scrub: (mfn: number) => void): void {
    if (this.staticFrames !== null || this.owned.size > 0) throw new Error("static memory assigned twice or late");
    this.staticFrames = new Set(mfns);
    for (const mfn of mfns) this.staticFree.add(mfn);
    this.scrubStatic = scrub;
  }

  get isStatic(): boolean {
    return this.staticFrames !== null;
  }

  /** Static frames not in use (0 for a heap-backed domain). */
  get staticFreePages(): number {
    return this.staticFree.size;
  }

  /**
   * Exactly `mfn`, which must be one of our free static frames (a direct-mapped domain's gfn ==
   * mfn). -1 otherwise, or past max_pages.
   */
  takeStatic(mfn: number): number {
    if (this.owned.size >= this.maxPages || !this.staticFree.delete(mfn)) return -1;
    this.owned.add(mfn);
    return mfn;
  }

  /**
   * A frame from the host heap even for a static domain: Xen's special (magic) pages such as the
   * XenStore ring are not RAM and do not come from the static banks. -1 past max_pages or when
   * the host is out of memory.
   */
  allocHeap(): number {
    if (this.owned.size >= this.maxPages) return -1;
    const mfn = this.allocator.alloc();
    if (mfn < 0) return -1;
    this.owned.add(mfn);
    return mfn;
  }

  /** A fresh frame for this domain, or -1 if that would pass max_pages or the host is out of memory. */
  alloc(): number {
    if (this.owned.size >= this.maxPages) return -1;
    if (this.staticFrames !== null) {
      const next = this.staticFree.values().next();
      if (next.done === true) return -1;
      return this.takeStatic(next.value);
    }
    const mfn = this.allocator.alloc();
    if (mfn < 0) return -1;
    this.owned.add(mfn);
    return mfn;
  }

  /** True when mfn is this domain's RAM and still in its physmap (not released). */
  ownsLive(mfn: number): boolean {
    return this.owned.has(mfn) && !this.released.has(mfn);
  }

  /**
   * Takes a reference on one of our frames (a foreign mapping of it). Released frames may gain
   * references too (a grant pinned before the release maps the frame it recorded). False if the
   * frame is not ours.
   */
  get(mfn: number): boolean {
    if (!this.owned.has(mfn)) return false;
    this.refs.set(mfn, (this.refs.get(mfn) ?? 0) + 1);
    return true;
  }

  /** Drops a reference; frees the frame if it was released and this was the last one. */
  put(mfn: number): void {
    const n = this.refs.get(mfn);
    if (n === undefined) return;
    if (n > 1) {
      this.refs.set(mfn, n - 1);
      return;
    }
    this.refs.delete(mfn);
    if (this.released.has(mfn)) this.freeNow(mfn);
  }

  /** The frame has left the physmap: free it now, or when its last reference goes. */
  release(mfn: number): void {
    if (!this.owned.has(mfn) || this.released.has(mfn)) return;
    if (this.refs.has(mfn)) this.released.add(mfn);
    else this.freeNow(mfn);
  }

  /** Releases every frame (domain destruction). Returns how many stay alive for their references. */
  releaseAll(): number {
    for (const mfn of [...this.owned]) this.release(mfn);
    return this.released.size;
  }

  refCount(mfn: number): number {
    return this.refs.get(mfn) ?? 0;
  }

  private freeNow(mfn: number): void {
    this.owned.delete(mfn);
    const wasReleased = this.released.delete(mfn);
    if (this.staticFrames?.has(mfn) === true) {
      this.scrubStatic(mfn);
      this.staticFree.add(mfn);
    } else this.allocator.free(mfn);
    // Only the last *deferred* free drains; releaseAll() reports an immediate drain itself.
    if (wasReleased && this.released.size === 0) this.onDrained?.();
  }
}
