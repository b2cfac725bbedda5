/**
 * Guest memory through grant mappings (thread mode): every page of a grant-DMA range is mapped
 * with GNTTABOP_map_grant_ref as a view of the guest's frame, so the device works in place (no
 * copy). Read-only unless the device must write, so a read-only grant serves a device-readable
 * buffer. Plain guest-physical addresses (no bit 63) would need foreign mapping, which this
 * backend does not have: they are refused.
 */
import type { GrantView } from "@xenon/hypervisor";
import { fmtGntst, grantRange } from "./dma.js";
import { type GuestMemory, type MapRange, type MemoryRegion, PageRegion, type SendWhen } from "./guest_memory.js";

/** What this needs of a HypercallClient (the batched pair is optional: one call per page without it). */
export interface GrantMapper {
  mapGrant(dom: number, ref: number, readonly: boolean): Promise<GrantView>;
  unmapGrant(handle: number): Promise<number>;
  mapGrants?(dom: number, refs: readonly number[], readonly: readonly boolean[]): Promise<GrantView[]>;
  unmapGrants?(handles: readonly number[]): Promise<number[]>;
  unmapPublishSend?(
    handles: readonly number[],
    at: readonly [number, number, number] | null,
    port: number,
    when: readonly [number, number, number] | null,
  ): Promise<{ readonly published: number; readonly sent: number }>;
}

class MappedRegion extends PageRegion {
  constructor(
    frames: Uint8Array[],
    first: number,
    length: number,
    writable: boolean,
    readonly handles: number[],
  ) {
    super(frames, first, length, writable);
  }
}

export { MAX_MAP_BYTES } from "./dma.js";

/** Entries of one batched grant map (the port's limit). */
export const MAP_BATCH_MAX = 256;

export class GrantMapMemory implements GuestMemory {
  constructor(
    private readonly client: GrantMapper,
    /** The frontend (guest) domain whose grants these are. */
    readonly domid: number,
  ) {}

  async map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string> {
    const range = grantRange(hi, lo, len);
    if (typeof range === "string") return range;
    const { gref, first, pages: n } = range;
    // All pages at once: the port carries the calls in order, so n maps cost one round trip.
    const got = await Promise.all(
      Array.from({ length: n }, (_, i) => this.client.mapGrant(this.domid, gref + i, !writable)),
    );
    const bad = got.findIndex((r) => r.status !== 0 || r.view === null);
    if (bad >= 0) {
      await Promise.all(got.filter((r) => r.status === 0).map((r) => this.client.unmapGrant(r.handle)));
      return `grant ${gref + bad} of d${this.domid}: map status ${fmtGntst(got[bad]!.status)}`;
    }
    return new MappedRegion(
      got.map((r) => r.view!),
      first,
      len,
      writable,
      got.map((r) => r.handle),
    );
  }

  /**
   * A whole chain with one batched map (every page of every range in one call): regions in
   * order, or the first refusal, with every successful entry unmapped again.
   */
  async mapMany(ranges: readonly MapRange[]): Promise<MemoryRegion[] | string> {
    const mapGrants = this.client.mapGrants;
    if (mapGrants === undefined) return this.mapEach(ranges);
    const refs: number[] = [];
    const ro: boolean[] = [];
    const shapes: Array<{ first: number; pages: number; len: number; writable: boolean }> = [];
    for (const [i, x] of ranges.entries()) {
      const g = grantRange(x.hi, x.lo, x.len);
      if (typeof g === "string") return `buffer ${i}: ${g}`;
      for (let p = 0; p < g.pages; p++) {
        refs.push(g.gref + p);
        ro.push(!x.writable);
      }
      shapes.push({ first: g.first, pages: g.pages, len: x.len, writable: x.writable });
    }
    if (refs.length > MAP_BATCH_MAX) return this.mapEach(ranges);
    const got = await mapGrants.call(this.client, this.domid, refs, ro);
    const bad = got.findIndex((r) => r.status !== 0 || r.view === null);
    if (bad >= 0) {
      await this.unmapHandles(got.filter((r) => r.status === 0).map((r) => r.handle));
      return `grant ${refs[bad]} of d${this.domid}: map status ${fmtGntst(got[bad]!.status)}`;
    }
    const out: MemoryRegion[] = [];
    let at = 0;
    for (const s of shapes) {
      const part = got.slice(at, at + s.pages);
      at += s.pages;
      out.push(
        new MappedRegion(
          part.map((r) => r.view!),
          s.first,
          s.len,
          s.writable,
          part.map((r) => r.handle),
        ),
      );
    }
    return out;
  }

  async releaseMany(regions: readonly MemoryRegion[]): Promise<void> {
    const hs: number[] = [];
    for (const r of regions) {
      if (!(r instanceof MappedRegion)) throw new TypeError("region of another memory");
      hs.push(...r.handles.splice(0));
    }
    await this.unmapHandles(hs);
  }

  /**
   * The end of a request: the regions' grants unmapped, then the index stored through the ring's
   * own mapping, then the send, as one core call (HypercallClient.unmapPublishSend). Without that
   * call (or with more handles than one call takes): unmap, store through the view, no send.
   */
  async releasePublish(
    regions: readonly MemoryRegion[],
    ring: MemoryRegion,
    off: number,
    value: number,
    port: number,
    when: SendWhen | null,
  ): Promise<boolean | null> {
    if (!(ring instanceof MappedRegion)) throw new TypeError("region of another memory");
    if (when !== null && !(when.region instanceof MappedRegion)) throw new TypeError("region of another memory");
    const hs: number[] = [];
    for (const r of regions) {
      if (!(r instanceof MappedRegion)) throw new TypeError("region of another memory");
      hs.push(...r.handles.splice(0));
    }
    const a = ring.first + off;
    const handle = ring.handles[a >>> 12];
    if (handle === undefined) {
      await this.unmapHandles(hs);
      throw new Error("used ring index store refused: the ring is not mapped");
    }
    const call = this.client.unmapPublishSend;
    const w = when === null ? undefined : (when.region as MappedRegion);
    const wa = when === null ? 0 : w!.first + when.off;
    const wh = w?.handles[wa >>> 12];
    if (call === undefined || (a & 1) !== 0 || (w !== undefined && wh === undefined)) {
      await this.unmapHandles(hs);
      ring.setU16(off, value);
      return null;
    }
    // More handles than one call takes: the first ones go in batched unmaps ahead of it (the port
    // keeps the order, so they are done before the index is stored), the last ones with it.
    const last = Math.max(0, hs.length - MAP_BATCH_MAX);
    const ahead = last > 0 ? this.unmapHandles(hs.slice(0, last)) : undefined;
    const cond = when === null || wh === undefined ? null : ([wh, wa & 0xfff, when.old] as const);
    const pr = call.call(this.client, last > 0 ? hs.slice(last) : hs, [handle, a & 0xfff, value], port, cond);
    if (ahead !== undefined) await ahead;
    const r = await pr;
    if (r.published !== 0) throw new Error(`used ring index store refused: ${fmtGntst(r.published)}`);
    if (port < 0) return false;
    return r.sent === 1 ? true : r.sent === 0 ? false : null;
  }

  /** Batched unmaps of at most MAP_BATCH_MAX each, all in flight together (one round trip). */
  private async unmapHandles(hs: readonly number[]): Promise<void> {
    if (hs.length === 0) return;
    const many = this.client.unmapGrants;
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < hs.length; i += many === undefined ? hs.length : MAP_BATCH_MAX)
      calls.push(
        many !== undefined
          ? many.call(this.client, hs.slice(i, i + MAP_BATCH_MAX))
          : Promise.all(hs.map((h) => this.client.unmapGrant(h))),
      );
    await Promise.all(calls);
  }

  /** One range at a time (no batched calls, or too many pages for one). */
  private async mapEach(ranges: readonly MapRange[]): Promise<MemoryRegion[] | string> {
    const out: MemoryRegion[] = [];
    for (const [i, x] of ranges.entries()) {
      const r = await this.map(x.hi, x.lo, x.len, x.writable);
      if (typeof r === "string") {
        for (const m of out) await this.release(m);
        return `buffer ${i}: ${r}`;
      }
      out.push(r);
    }
    return out;
  }

  refresh(): undefined {
    return undefined;
  }
  flush(): undefined {
    return undefined;
  }

  async release(r: MemoryRegion): Promise<void> {
    if (!(r instanceof MappedRegion)) throw new TypeError("region of another memory");
    await Promise.all(r.handles.splice(0).map((h) => this.client.unmapGrant(h)));
  }
}
