/**
 * Guest memory through grant copy (any mode, and the only one a process-mode driver domain has):
 * a region is a local copy of the granted bytes, fetched at map/refresh and pushed back at
 * flush/release. Same interface and same checks as the map implementation.
 */
import { Gntst, MAX_COPY_SEGMENTS } from "@xenon/hypervisor";
import { fmtGntst, grantRange } from "./dma.js";
import { type GuestMemory, type MemoryRegion, PageRegion } from "./guest_memory.js";
import { GuestGoneError } from "./queue_error.js";

/** What this needs of a HypercallClient. */
export interface GrantCopier {
  copyFromGrant(dom: number, ref: number, offset: number, len: number): Promise<Uint8Array | number>;
  copyToGrant(dom: number, ref: number, offset: number, bytes: Uint8Array): Promise<number>;
  /** Several segments in one call, when the copier has it (one message instead of one per page). */
  copyFromGrants?(
    dom: number,
    segs: ReadonlyArray<readonly [number, number, number]>,
  ): Promise<Array<Uint8Array | number>>;
  copyToGrants?(dom: number, segs: ReadonlyArray<readonly [number, number, Uint8Array]>): Promise<number[]>;
}

class CopiedRegion extends PageRegion {
  constructor(
    frames: Uint8Array[],
    first: number,
    length: number,
    writable: boolean,
    readonly gref: number,
  ) {
    super(frames, first, length, writable);
  }
}

export class GrantCopyMemory implements GuestMemory {
  constructor(
    private readonly client: GrantCopier,
    readonly domid: number,
  ) {}

  async map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string> {
    const range = grantRange(hi, lo, len);
    if (typeof range === "string") return range;
    const { gref, first, pages: n } = range;
    const frames: Uint8Array[] = [];
    for (let i = 0; i < n; i++) frames.push(new Uint8Array(4096));
    const r = new CopiedRegion(frames, first, len, writable, gref);
    // A write-only use still needs the grant to be writable: a copy-to of nothing would not tell.
    const why = await this.pull(r, 0, len);
    if (why !== null) return why;
    if (writable) {
      // Each page: write back one byte just read, so a read-only grant is refused at map time.
      const ws = await this.copyTo(
        frames.map((f, i) => {
          const at = i === 0 ? first : 0;
          return [gref + i, at, f.subarray(at, at + 1)] as const;
        }),
      );
      const bad = ws.findIndex((w) => w !== 0);
      if (bad >= 0) return `grant ${gref + bad} of d${this.domid}: not writable (${ws[bad]})`;
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
    const rcs = await this.copyTo(
      pieces(c.first + off, len).map(
        ([a, inPage, n]) => [c.gref + (a >>> 12), inPage, c.frames[a >>> 12]!.subarray(inPage, inPage + n)] as const,
      ),
    );
    if (rcs.includes(Gntst.bad_domain)) throw new GuestGoneError(this.domid);
    const bad = rcs.findIndex((rc) => rc !== 0);
    if (bad >= 0) {
      const a = pieces(c.first + off, len)[bad]![0];
      throw new Error(`grant ${c.gref + (a >>> 12)} of d${this.domid}: copy status ${fmtGntst(rcs[bad]!)}`);
    }
  }

  async release(r: MemoryRegion): Promise<void> {
    if (r.writable) await this.flush(r, 0, r.length);
  }

  /** Copies to the guest: one call with every segment when the copier can, else one per segment (pipelined). */
  private copyTo(segs: ReadonlyArray<readonly [number, number, Uint8Array]>): Promise<number[]> {
    const many = this.client.copyToGrants?.bind(this.client);
    if (many !== undefined && segs.length > 1) return chunked(segs, (c) => many(this.domid, c));
    return Promise.all(segs.map(([ref, at, b]) => this.client.copyToGrant(this.domid, ref, at, b)));
  }

  private async pull(r: CopiedRegion, off: number, len: number): Promise<string | null> {
    const ps = pieces(r.first + off, len);
    const segs = ps.map(([a, inPage, n]) => [r.gref + (a >>> 12), inPage, n] as const);
    const many = this.client.copyFromGrants?.bind(this.client);
    const got =
      many !== undefined && segs.length > 1
        ? await chunked(segs, (c) => many(this.domid, c))
        : await Promise.all(segs.map(([ref, at, n]) => this.client.copyFromGrant(this.domid, ref, at, n)));
    for (const [i, g] of got.entries()) {
      const [a, inPage] = ps[i]!;
      if (g === Gntst.bad_domain) throw new GuestGoneError(this.domid);
      if (typeof g === "number") return `grant ${r.gref + (a >>> 12)} of d${this.domid}: copy status ${fmtGntst(g)}`;
      r.frames[a >>> 12]!.set(g, inPage);
    }
    return null;
  }
}

/** Segment lists cut to the port's limit, the calls in flight together. */
async function chunked<S, R>(segs: readonly S[], call: (c: readonly S[]) => Promise<R[]>): Promise<R[]> {
  const calls: Promise<R[]>[] = [];
  for (let i = 0; i < segs.length; i += MAX_COPY_SEGMENTS) calls.push(call(segs.slice(i, i + MAX_COPY_SEGMENTS)));
  return (await Promise.all(calls)).flat();
}

/**
 * [address in the region, offset in its page, bytes] of each page-sized piece of [a, a+len): the
 * copies of one range go out together (the port keeps their order; they share round trips).
 */
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
