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
import { type GuestMemory, type MemoryRegion, PageRegion } from "./guest_memory.js";
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

class CopiedRegion extends PageRegion {
  constructor(
    frames: Uint8Array[],
    first: number,
    length: number,
    writable: boolean,
    readonly base: number,
  ) {
    super(frames, first, length, writable);
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
    const why = await this.pull(r, 0, len);
    if (why !== null) return why;
    if (writable) {
      // Each page: write back one byte just read, so a read-only page is refused at map time.
      const ws = await this.copyTo(
        frames.map((f, i) => {
          const at = i === 0 ? first : 0;
          return [base + i, at, f.subarray(at, at + 1)] as const;
        }),
      );
      const bad = ws.findIndex((w) => w !== 0);
      if (bad >= 0) return this.access.notWritable(base + bad, ws[bad]!);
    }
    return r;
  }

  refresh(r: MemoryRegion, off: number, len: number): Promise<void> {
    return this.pull(r as CopiedRegion, off, len).then((why) => {
      if (why !== null) throw new Error(why);
    });
  }

  async flush(r: MemoryRegion, off: number, len: number): Promise<void> {
    const c = r as CopiedRegion;
    if (!c.writable) throw new Error("flush of a read-only region");
    const ps = pieces(c.first + off, len);
    const rcs = await this.copyTo(
      ps.map(
        ([a, inPage, n]) => [c.base + (a >>> 12), inPage, c.frames[a >>> 12]!.subarray(inPage, inPage + n)] as const,
      ),
    );
    if (rcs.includes(this.access.goneStatus)) throw new GuestGoneError(this.domid);
    const bad = rcs.findIndex((rc) => rc !== 0);
    if (bad >= 0) throw new Error(this.access.refusal(c.base + (ps[bad]![0] >>> 12), rcs[bad]!));
  }

  async release(r: MemoryRegion): Promise<void> {
    if (r.writable) await this.flush(r, 0, r.length);
  }

  private copyTo(segs: readonly CopyToSeg[]): Promise<number[]> {
    return chunked(segs, (c) => this.access.copyTo(c));
  }

  private async pull(r: CopiedRegion, off: number, len: number): Promise<string | null> {
    const ps = pieces(r.first + off, len);
    const got = await chunked(
      ps.map(([a, inPage, n]) => [r.base + (a >>> 12), inPage, n] as const),
      (c) => this.access.copyFrom(c),
    );
    for (const [i, g] of got.entries()) {
      const [a, inPage] = ps[i]!;
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
