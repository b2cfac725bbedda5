/**
 * A domain's I/O address space (Xen's per-domain IOMMU page tables, kept separate from the P2M as
 * with iommu_hap_pt_share off): IOVA = guest-physical address, mapping the domain's own RAM —
 * read/write RAM read/write, read-only RAM read-only, nothing else (no grant or foreign mappings,
 * no MMIO). Built from the P2M with the largest pages that fit — 1 GiB or 2 MiB where the gfns and
 * mfns are both aligned and contiguous with one type (static memory, direct-mapped domains), 4 KiB
 * elsewhere — and kept in step with it: every P2M change of a gfn reaches sync(), which splits a
 * superpage covering it into 4 KiB pages first. Invariant: after sync(gfn), the IOMMU maps gfn
 * exactly as the P2M's entry allows.
 */
import { IOMMU_PAGE_1G, IOMMU_PAGE_2M, IOMMU_PAGE_4K, IommuContext, type IommuPageSize } from "@xenon/hw";
import type { Hypervisor } from "../hypervisor.js";
import type { P2m } from "../p2m/p2m.js";
import { P2mType } from "../p2m/types.js";

const FRAMES_2M = 512;
const FRAMES_1G = 512 * 512;

const rightsOf = (type: number): { read: boolean; write: boolean } | null =>
  type === P2mType.ram_rw ? { read: true, write: true } : type === P2mType.ram_ro ? { read: true, write: false } : null;

export class IommuDomain {
  readonly ctx: IommuContext;
  /** First gfn -> frames of each superpage mapped (so a change inside one can split it). */
  private readonly supers = new Map<number, number>();
  /** 4 KiB leaves mapped. */
  private readonly small = new Set<number>();

  constructor(
    hv: Hypervisor,
    private readonly p2m: P2m,
  ) {
    this.ctx = new IommuContext(
      hv.memory,
      () => hv.allocator.alloc(),
      (mfn) => hv.allocator.free(mfn),
    );
    this.build();
  }

  /** Pages mapped, by size (tests; `xl` could show it). */
  get counts(): { readonly pages4k: number; readonly pages2m: number; readonly pages1g: number } {
    let pages2m = 0;
    let pages1g = 0;
    for (const n of this.supers.values())
      if (n === FRAMES_1G) pages1g++;
      else pages2m++;
    return { pages4k: this.small.size, pages2m, pages1g };
  }

  private build(): void {
    const entries: Array<[number, number, number]> = [];
    this.p2m.forEach((gfn, mfn, type) => {
      if (rightsOf(type) !== null) entries.push([gfn, mfn, type]);
    });
    let i = 0;
    while (i < entries.length) {
      const [gfn, mfn, type] = entries[i]!;
      const run = (frames: number): boolean => {
        if (gfn % frames !== 0 || mfn % frames !== 0 || i + frames > entries.length) return false;
        const last = entries[i + frames - 1]!;
        // Sorted and distinct gfns: the run is contiguous iff its ends are `frames` apart.
        if (last[0] !== gfn + frames - 1 || last[1] !== mfn + frames - 1) return false;
        for (let k = i; k < i + frames; k++) {
          const e = entries[k]!;
          if (e[1] !== mfn + (k - i) || e[2] !== type) return false;
        }
        return true;
      };
      const size: IommuPageSize = run(FRAMES_1G) ? IOMMU_PAGE_1G : run(FRAMES_2M) ? IOMMU_PAGE_2M : IOMMU_PAGE_4K;
      const frames = size / IOMMU_PAGE_4K;
      this.ctx.map(gfn * IOMMU_PAGE_4K, mfn, size, rightsOf(type)!);
      if (frames === 1) this.small.add(gfn);
      else this.supers.set(gfn, frames);
      i += frames;
    }
  }

  /** The P2M entry of gfn changed: make the IOMMU say the same. */
  sync(gfn: number): void {
    for (const first of [gfn - (gfn % FRAMES_2M), gfn - (gfn % FRAMES_1G)]) {
      const frames = this.supers.get(first);
      if (frames === undefined || gfn >= first + frames) continue;
      // Split: the superpage's frames become 4 KiB pages with the same rights, then gfn is redone.
      this.ctx.unmap(first * IOMMU_PAGE_4K, (frames * IOMMU_PAGE_4K) as IommuPageSize);
      this.supers.delete(first);
      for (let g = first; g < first + frames; g++) if (g !== gfn) this.mapSmall(g);
      break;
    }
    if (this.small.delete(gfn)) this.ctx.unmap(gfn * IOMMU_PAGE_4K, IOMMU_PAGE_4K);
    this.mapSmall(gfn);
  }

  private mapSmall(gfn: number): void {
    const e = this.p2m.get(gfn);
    const rights = e === null ? null : rightsOf(e.type);
    if (e === null || rights === null) return;
    this.ctx.map(gfn * IOMMU_PAGE_4K, e.mfn, IOMMU_PAGE_4K, rights);
    this.small.add(gfn);
  }

  destroy(): void {
    this.ctx.destroy();
    this.supers.clear();
    this.small.clear();
  }
}
