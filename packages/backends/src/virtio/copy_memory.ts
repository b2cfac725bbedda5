/**
 * Guest memory by copy, for a driver domain that shares no memory with the core (process mode),
 * or any domain that prefers it: a region is a local copy of the guest's pages, fetched at
 * map/refresh and pushed back at flush/release. Two addressings share it: grant references
 * (grant_copy_memory.ts, GNTTABOP_copy) and guest-physical frames of a privileged backend
 * (foreign_copy_memory.ts). Both name page i of a range `base + i`.
 *
 * Invariants: the copy never reaches a byte outside the range asked; a writable map is refused
 * at map time if any of its pages is not writable (so a write-only buffer fails where a mapped
 * one would).
 */
import { MAX_COPY_SEGMENTS } from "@xenon/hypervisor";
import { type GuestMemory, type MapRange, type MemoryRegion, PageRegion, type RegionRange } from "./guest_memory.js";
import { GuestGoneError } from "./queue_error.js";

/** [page number, offset in page, len] and [page number, offset in page, bytes] segments. */
export type CopyFromSeg = readonly [number, number, number];
export type CopyToSeg = readonly [number, number, Uint8Array];

/** How one addressing reaches the guest: page numbers, segment copies and their statuses. */
export interface CopyAccess {
  readonly domid: number;
  /** First page number, offset in it and page count of (hi, lo, len), or why it is refused. */
  range(hi: number, lo: number, len: number): { base: number; first: number; pages: number } | string;
  copyFrom(segs: readonly CopyFromSeg[]): Promise<Array<Uint8Array | number>>;
  copyTo(segs: readonly CopyToSeg[]): Promise<number[]>;
  /** The status that says the guest is gone (its device stops quietly). */
  readonly goneStatus: number;
  /** A refusal for the log: "grant 7 of d1: copy status -1 (GNTST_general_error)". */
  refusal(page: number, status: number): string;
  /** The same for a page that is readable but not writable. */
  notWritable(page: number, status: number): string;
}

/** The bytes of a writability check (a copy of nothing). */
const NOTHING = new Uint8Array(0);

class CopiedRegion extends PageRegion {
  /** [from, to) of what was written since the map (a blank region gives back only that). */
  from = Number.POSITIVE_INFINITY;
  to = 0;

  constructor(
    frames: Uint8Array[],
    first: number,
    length: number,
    writable: boolean,
    readonly base: number,
    /**
     * Not fetched: a chain's device-writable buffer, whose old bytes the device has no business
     * reading. It starts zeroed and gives back only the span written (so the copy of a read moves
     * the data once, not there and back, and bytes never written stay the guest's).
     */
    readonly blank = false,
  ) {
    super(frames, first, length, writable);
  }

  private wrote(off: number, len: number): void {
    if (len <= 0) return;
    if (off < this.from) this.from = off;
    if (off + len > this.to) this.to = off + len;
  }
  override setU16(off: number, v: number): void {
    super.setU16(off, v);
    this.wrote(off, 2);
  }
  override setU32(off: number, v: number): void {
    super.setU32(off, v);
    this.wrote(off, 4);
  }
  override copyIn(off: number, src: Uint8Array, srcOff: number, len: number): void {
    super.copyIn(off, src, srcOff, len);
    this.wrote(off, len);
  }
  override fill(off: number, len: number, value: number): void {
    super.fill(off, len, value);
    this.wrote(off, len);
  }
  /** Pieces handed out of a writable region count as written (file reads land in them). */
  override forEachPiece(off: number, len: number, fn: (piece: Uint8Array, at: number) => void): void {
    super.forEachPiece(off, len, fn);
    if (this.writable) this.wrote(off, len);
  }

  /** What release gives back: all of it, or for a blank region the span written. */
  get giveBack(): readonly [number, number] {
    if (!this.blank) return [0, this.length];
    return this.to > this.from ? [this.from, this.to - this.from] : [0, 0];
  }
}

export class CopyMemory implements GuestMemory {
  constructor(private readonly access: CopyAccess) {}

  get domid(): number {
    return this.access.domid;
  }

  async map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string> {
    const range = this.access.range(hi, lo, len);
    if (typeof range === "string") return range;
    const { base, first, pages: n } = range;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) frames.push(new Uint8Array(4096));
    const r = new CopiedRegion(frames, first, len, writable, base);
    return (await this.fill([r])) ?? r;
  }

  /** A whole chain: its regions filled together (see fill). */
  async mapMany(ranges: readonly MapRange[]): Promise<MemoryRegion[] | string> {
    const regions: CopiedRegion[] = [];
    for (const [i, x] of ranges.entries()) {
      const g = this.access.range(x.hi, x.lo, x.len);
      if (typeof g === "string") return `buffer ${i}: ${g}`;
      const frames: Uint8Array[] = [];
      for (let p = 0; p < g.pages; p++) frames.push(new Uint8Array(4096));
      regions.push(new CopiedRegion(frames, g.first, x.len, x.writable, g.base, x.writable));
    }
    return (await this.fill(regions)) ?? regions;
  }

  /**
   * One copy-from of every page of the regions and, in the same round trip, one copy-to of
   * nothing per page of the writable ones: a copy to a page checks that it is writable before it
   * copies (GNTTABOP_copy acquires the destination grant for writing whatever the length; the
   * foreign copy maps the page writable), so a read-only page is refused at map time and a
   * write-only buffer fails where a mapped one would. Null, or why not.
   */
  private async fill(regions: readonly CopiedRegion[]): Promise<string | null> {
    const checks: CopyToSeg[] = [];
    for (const r of regions)
      if (r.writable)
        for (let i = 0; i < r.frames.length; i++) checks.push([r.base + i, i === 0 ? r.first : 0, NOTHING]);
    const [why, ws] = await Promise.all([
      this.pullMany(regions.filter((r) => !r.blank).map((r) => [r, 0, r.length] as const)),
      checks.length > 0 ? this.copyTo(checks) : [],
    ]);
    if (why !== null) return why;
    const bad = ws.findIndex((w) => w !== 0);
    return bad >= 0 ? this.access.notWritable(checks[bad]![0], ws[bad]!) : null;
  }

  refresh(r: MemoryRegion, off: number, len: number): Promise<void> {
    return this.refreshMany([[r, off, len]]);
  }

  /** Several ranges re-read with one call (segments in order: earlier ranges are read first). */
  async refreshMany(parts: ReadonlyArray<RegionRange>): Promise<void> {
    const why = await this.pullMany(parts.map(([r, off, len]) => [r as CopiedRegion, off, len] as const));
    if (why !== null) throw new Error(why);
  }

  flush(r: MemoryRegion, off: number, len: number): Promise<void> {
    return this.flushMany([[r, off, len]]);
  }

  /** Several ranges written back with one call, in the order given. */
  async flushMany(parts: ReadonlyArray<RegionRange>): Promise<void> {
    const segs: CopyToSeg[] = [];
    for (const [r, off, len] of parts) {
      const c = r as CopiedRegion;
      if (!c.writable) throw new Error("flush of a read-only region");
      for (const [a, inPage, n] of pieces(c.first + off, len))
        segs.push([c.base + (a >>> 12), inPage, c.frames[a >>> 12]!.subarray(inPage, inPage + n)]);
    }
    if (segs.length === 0) return;
    const rcs = await this.copyTo(segs);
    if (rcs.includes(this.access.goneStatus)) throw new GuestGoneError(this.domid);
    const bad = rcs.findIndex((rc) => rc !== 0);
    if (bad >= 0) throw new Error(this.access.refusal(segs[bad]![0], rcs[bad]!));
  }

  async release(r: MemoryRegion): Promise<void> {
    await this.releaseMany([r]);
  }

  /** Every writable region's bytes (a blank one's span written) back to the guest with one call. */
  async releaseMany(regions: readonly MemoryRegion[]): Promise<void> {
    const parts: Array<readonly [MemoryRegion, number, number]> = [];
    for (const r of regions) {
      if (!r.writable) continue;
      const [off, len] = (r as CopiedRegion).giveBack;
      if (len > 0) parts.push([r, off, len]);
    }
    await this.flushMany(parts);
  }

  private copyTo(segs: readonly CopyToSeg[]): Promise<number[]> {
    return chunked(segs, (c) => this.access.copyTo(c));
  }

  /** Fetches [off, off+len) of each region: every page of them in one call (cut at the port's limit). */
  private async pullMany(parts: ReadonlyArray<readonly [CopiedRegion, number, number]>): Promise<string | null> {
    const where: Array<readonly [CopiedRegion, number, number]> = [];
    const segs: CopyFromSeg[] = [];
    for (const [r, off, len] of parts)
      for (const [a, inPage, n] of pieces(r.first + off, len)) {
        where.push([r, a, inPage]);
        segs.push([r.base + (a >>> 12), inPage, n]);
      }
    const got = await chunked(segs, (c) => this.access.copyFrom(c));
    for (const [i, g] of got.entries()) {
      const [r, a, inPage] = where[i]!;
      if (g === this.access.goneStatus) throw new GuestGoneError(this.domid);
      if (typeof g === "number") return this.access.refusal(r.base + (a >>> 12), g);
      r.frames[a >>> 12]!.set(g, inPage);
    }
    return null;
  }
}

/** Segment lists cut to the port's limit, the calls in flight together (the port keeps their order). */
async function chunked<S, R>(segs: readonly S[], call: (c: readonly S[]) => Promise<R[]>): Promise<R[]> {
  if (segs.length <= MAX_COPY_SEGMENTS) return call(segs);
  const calls: Promise<R[]>[] = [];
  for (let i = 0; i < segs.length; i += MAX_COPY_SEGMENTS) calls.push(call(segs.slice(i, i + MAX_COPY_SEGMENTS)));
  return (await Promise.all(calls)).flat();
}

/** [address in the region, offset in its page, bytes] of each page-sized piece of [a, a+len). */
function pieces(a: number, len: number): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  for (let done = 0; done < len; ) {
    const inPage = a & 0xfff;
    const n = Math.min(len - done, 4096 - inPage);
    out.push([a, inPage, n]);
    done += n;
    a += n;
  }
  return out;
}
