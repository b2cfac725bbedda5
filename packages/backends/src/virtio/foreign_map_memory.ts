/**
 * Guest memory through foreign mapping, for a device without grants (grant_usage=0) in thread
 * mode (foreign_copy_memory.ts is the same without shared memory): ring and
 * buffer addresses are the guest's own guest-physical addresses, and each page is mapped as a
 * view of the guest's frame (XENMAPSPACE_gmfn_foreign for a TypeScript domain). The core allows
 * that only to a privileged backend (a dom0-like driver domain); an unprivileged one gets -EPERM
 * for every page, so the device can reach nothing and the refusal names the rule.
 */
import { Errno, type GrantView } from "@xenon/hypervisor";
import { isGrantAddr, MAX_MAP_BYTES } from "./dma.js";
import { type GuestMemory, type MemoryRegion, PageRegion, pagesSpanned } from "./guest_memory.js";

/** What this needs of a HypercallClient. */
export interface ForeignMapper {
  mapForeignView(dom: number, gfn: number, writable: boolean): Promise<GrantView>;
  unmapForeignView(handle: number): Promise<number>;
}

class ForeignRegion extends PageRegion {
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

/** "-EPERM" for -1. */
export function errnoName(rc: number): string {
  const name = Object.entries(Errno).find(([, v]) => v === -rc)?.[0];
  return name === undefined ? String(rc) : `-${name}`;
}

/**
 * A guest-physical range (hi, lo, len) as first gfn, offset in its page and page count; refused
 * when it is a grant address or its length is out of range.
 */
export function foreignRange(
  hi: number,
  lo: number,
  len: number,
): { base: number; first: number; pages: number } | string {
  if (isGrantAddr(hi)) return "a grant address on a device without grants";
  if (len <= 0 || len > MAX_MAP_BYTES) return `length ${len} out of range`;
  const first = lo & 0xfff;
  return { base: hi * 2 ** 20 + (lo >>> 12), first, pages: pagesSpanned(first, len) };
}

export class ForeignMapMemory implements GuestMemory {
  constructor(
    private readonly client: ForeignMapper,
    /** The frontend (guest) domain whose RAM this is. */
    readonly domid: number,
  ) {}

  async map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string> {
    const range = foreignRange(hi, lo, len);
    if (typeof range === "string") return range;
    const { base: gfn, first, pages } = range;
    const frames: Uint8Array[] = [];
    const handles: number[] = [];
    for (let i = 0; i < pages; i++) {
      const r = await this.client.mapForeignView(this.domid, gfn + i, writable);
      if (r.status !== 0 || r.view === null) {
        for (const h of handles) await this.client.unmapForeignView(h);
        const why = r.status === -Errno.EPERM ? " (this backend is not privileged)" : "";
        return `foreign map of d${this.domid} gfn 0x${(gfn + i).toString(16)} refused: ${errnoName(r.status)}${why}`;
      }
      frames.push(r.view);
      handles.push(r.handle);
    }
    return new ForeignRegion(frames, first, len, writable, handles);
  }

  refresh(): undefined {
    return undefined;
  }
  flush(): undefined {
    return undefined;
  }

  async release(r: MemoryRegion): Promise<void> {
    if (!(r instanceof ForeignRegion)) throw new TypeError("region of another memory");
    for (const h of r.handles.splice(0)) await this.client.unmapForeignView(h);
  }
}
