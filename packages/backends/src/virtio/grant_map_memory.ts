/**
 * Guest memory through grant mappings (thread mode): every page of a grant-DMA range is mapped
 * with GNTTABOP_map_grant_ref as a view of the guest's frame, so the device works in place (no
 * copy). Read-only unless the device must write, so a read-only grant serves a device-readable
 * buffer. Plain guest-physical addresses (no bit 63) would need foreign mapping, which this
 * backend does not have: they are refused.
 */
import type { GrantView } from "@xenon/hypervisor";
import { fmtGntst, grantRange } from "./dma.js";
import { type GuestMemory, type MemoryRegion, PageRegion } from "./guest_memory.js";

/** What this needs of a HypercallClient. */
export interface GrantMapper {
  mapGrant(dom: number, ref: number, readonly: boolean): Promise<GrantView>;
  unmapGrant(handle: number): Promise<number>;
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
