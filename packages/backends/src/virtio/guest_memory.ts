/**
 * How a device reaches the guest's memory: one interface, several implementations (grant map
 * views in thread mode, grant copy anywhere, a flat RAM for unit tests). A device asks for a
 * region [addr, addr+len) with the access it needs; what it gets is a MemoryRegion whose bytes
 * are frames of guest memory (map), or a local copy pushed back on flush/release (copy).
 *
 * Invariants: a region never reaches a byte outside what was asked; a failed map leaves nothing
 * mapped; every successful map is released exactly once.
 */

/** A reachable range of guest memory, made of page-bounded pieces. */
export interface MemoryRegion {
  readonly length: number;
  readonly writable: boolean;
  u8(off: number): number;
  /** Naturally aligned offsets only (ring fields are). Atomic where the memory is shared. */
  u16(off: number): number;
  u32(off: number): number;
  setU16(off: number, v: number): void;
  setU32(off: number, v: number): void;
  copyOut(off: number, dst: Uint8Array, dstOff: number, len: number): void;
  copyIn(off: number, src: Uint8Array, srcOff: number, len: number): void;
  fill(off: number, len: number, value: number): void;
  /** Calls fn with each page-bounded piece of [off, off+len) (for zero-copy file I/O). */
  forEachPiece(off: number, len: number, fn: (piece: Uint8Array, at: number) => void): void;
}

export interface GuestMemory {
  /** Makes [addr, addr+len) reachable: a region, or why not (a short reason for the log). */
  map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string>;
  /**
   * Copy implementations re-read guest-written bytes [off, off+len); views have nothing to do
   * and return undefined, so the hot path awaits only when it must.
   */
  refresh(r: MemoryRegion, off: number, len: number): Promise<void> | undefined;
  /** Copy implementations push device-written bytes to the guest; views return undefined. */
  flush(r: MemoryRegion, off: number, len: number): Promise<void> | undefined;
  release(r: MemoryRegion): Promise<void> | undefined;
  /**
   * Optional: several ranges in one go (a whole chain: one batched hypercall instead of one per
   * page). All regions, in order, or why not; on failure nothing stays mapped.
   */
  mapMany?(ranges: readonly MapRange[]): Promise<MemoryRegion[] | string>;
  /** Optional: gives several regions back in one go. */
  releaseMany?(regions: readonly MemoryRegion[]): Promise<void>;
  /**
   * Copy implementations: re-reads several ranges with one call, in order (so a ring index read
   * first is older than the slots and table read after it). Views have no such method.
   */
  refreshMany?(parts: ReadonlyArray<RegionRange>): Promise<void>;
  /** Copy implementations: pushes several ranges with one call, written in the order given. */
  flushMany?(parts: ReadonlyArray<RegionRange>): Promise<void>;
  /**
   * Views: gives `regions` back, then stores the 16-bit `value` at `off` of `ring` (a used ring's
   * index), then sends on event channel `port` (none if negative) if `when` (read after the
   * store) says the driver asked for it, in that order and in one call to the core (see
   * HypercallClient.unmapPublishSend). Resolves to true (sent), false (the driver did not ask)
   * or null (nothing was decided: no such call here, or the send failed; the caller decides);
   * rejects if the store was refused.
   */
  releasePublish?(
    regions: readonly MemoryRegion[],
    ring: MemoryRegion,
    off: number,
    value: number,
    port: number,
    when: SendWhen | null,
  ): Promise<boolean | null>;
}

/**
 * What decides a releasePublish send: the 16-bit word at `off` of `region`, with `old` >= 0 the
 * driver's used_event (sent iff it lies in [old, new)), with `old` = -1 the avail flags (sent
 * unless NO_INTERRUPT).
 */
export interface SendWhen {
  readonly region: MemoryRegion;
  readonly off: number;
  readonly old: number;
}

/** [region, offset, length] of a refreshMany / flushMany. */
export type RegionRange = readonly [MemoryRegion, number, number];

/** One range of a batched map. */
export interface MapRange {
  readonly hi: number;
  readonly lo: number;
  readonly len: number;
  readonly writable: boolean;
}

const PAGE = 4096;

/**
 * A region over whole 4 KiB frames (views or local copies): `frames[i]` is page i, the region
 * starts at `first` in frames[0]. Typed views over each frame are made once, at map time.
 */
export class PageRegion implements MemoryRegion {
  private readonly f16: Uint16Array[];
  private readonly f32: Uint32Array[];

  constructor(
    readonly frames: readonly Uint8Array[],
    readonly first: number,
    readonly length: number,
    readonly writable: boolean,
  ) {
    this.f16 = frames.map((f) => new Uint16Array(f.buffer, f.byteOffset, PAGE / 2));
    this.f32 = frames.map((f) => new Uint32Array(f.buffer, f.byteOffset, PAGE / 4));
  }

  u8(off: number): number {
    const a = this.first + off;
    return this.frames[a >>> 12]![a & 0xfff]!;
  }
  u16(off: number): number {
    const a = this.first + off;
    return Atomics.load(this.f16[a >>> 12]!, (a & 0xfff) >>> 1);
  }
  u32(off: number): number {
    const a = this.first + off;
    return Atomics.load(this.f32[a >>> 12]!, (a & 0xfff) >>> 2);
  }
  setU16(off: number, v: number): void {
    const a = this.first + off;
    Atomics.store(this.f16[a >>> 12]!, (a & 0xfff) >>> 1, v);
  }
  setU32(off: number, v: number): void {
    const a = this.first + off;
    Atomics.store(this.f32[a >>> 12]!, (a & 0xfff) >>> 2, v);
  }

  // copyOut/copyIn/fill walk the pages inline: no closure per call on the hot path.
  copyOut(off: number, dst: Uint8Array, dstOff: number, len: number): void {
    this.check(off, len);
    let a = this.first + off;
    for (let done = 0; done < len; ) {
      const inPage = a & 0xfff;
      const n = Math.min(len - done, PAGE - inPage);
      dst.set(this.frames[a >>> 12]!.subarray(inPage, inPage + n), dstOff + done);
      done += n;
      a += n;
    }
  }
  copyIn(off: number, src: Uint8Array, srcOff: number, len: number): void {
    this.check(off, len);
    let a = this.first + off;
    for (let done = 0; done < len; ) {
      const inPage = a & 0xfff;
      const n = Math.min(len - done, PAGE - inPage);
      this.frames[a >>> 12]!.set(src.subarray(srcOff + done, srcOff + done + n), inPage);
      done += n;
      a += n;
    }
  }
  fill(off: number, len: number, value: number): void {
    this.check(off, len);
    let a = this.first + off;
    for (let done = 0; done < len; ) {
      const inPage = a & 0xfff;
      const n = Math.min(len - done, PAGE - inPage);
      this.frames[a >>> 12]!.fill(value, inPage, inPage + n);
      done += n;
      a += n;
    }
  }
  forEachPiece(off: number, len: number, fn: (piece: Uint8Array, at: number) => void): void {
    this.check(off, len);
    let a = this.first + off;
    for (let done = 0; done < len; ) {
      const inPage = a & 0xfff;
      const n = Math.min(len - done, PAGE - inPage);
      fn(this.frames[a >>> 12]!.subarray(inPage, inPage + n), done);
      done += n;
      a += n;
    }
  }
  private check(off: number, len: number): void {
    if (off < 0 || len < 0 || off + len > this.length) throw new RangeError("outside the region");
  }
}

/** Pages spanned by [offset, offset+len) where offset is inside the first page. */
export function pagesSpanned(offset: number, len: number): number {
  return Math.max(1, Math.ceil((offset + len) / PAGE));
}
