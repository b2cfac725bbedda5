import type { MachineMemory } from "../memory/machine_memory.js";

/**
 * An IOMMU for DMA-capable emulated devices: per-device I/O page tables in machine frames,
 * walked on every DMA access, with 4 KiB pages and 2 MiB / 1 GiB superpages, and a fault log.
 *
 * Table format (after RISC-V Sv39, which the RISC-V IOMMU's second stage also uses): three levels
 * of 512 eight-byte PTEs over a 39-bit IOVA space; IOVA bits 38..30 index level 2, 29..21 level 1,
 * 20..12 level 0. A PTE is V (bit 0), R (1), W (2), then the frame number from bit 10. V with
 * neither R nor W points to the next table; V with R or W is a leaf: at level 2 a 1 GiB page, at
 * level 1 a 2 MiB page, at level 0 a 4 KiB page. A superpage's frame number must be aligned to
 * its size (else the walk faults, as Sv39 does). W without R is reserved.
 *
 * Invariant: tables are only written through map/unmap, which keep every table reachable from
 * the root exactly once; a device sees nothing its table does not map.
 */
export const IOMMU_PAGE_4K = 4096;
export const IOMMU_PAGE_2M = 2 * 1024 * 1024;
export const IOMMU_PAGE_1G = 1024 * 1024 * 1024;
export type IommuPageSize = typeof IOMMU_PAGE_4K | typeof IOMMU_PAGE_2M | typeof IOMMU_PAGE_1G;
/** IOVAs are 39 bits. */
export const IOVA_LIMIT = 2 ** 39;

const PTE_V = 1;
const PTE_R = 2;
const PTE_W = 4;
const PPN_SHIFT = 10;
const LEVELS = 3;
const ENTRIES = 512;
/** Frames (4 KiB) covered by one leaf at each level. */
const FRAMES_AT = [1, 512, 512 * 512];

export type DmaAccess = "read" | "write";

export interface IommuFault {
  readonly device: number;
  readonly iova: number;
  readonly access: DmaAccess;
  /** not-mapped: no valid entry; permission: the leaf forbids it; misaligned: a bad superpage; no-context: device not attached. */
  readonly reason: "not-mapped" | "permission" | "misaligned" | "no-context";
}

export class IommuError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IommuError";
  }
}

export interface Translation {
  readonly mfn: number;
  /** Byte offset in that frame. */
  readonly offset: number;
  readonly pageSize: IommuPageSize;
}

/** One translation context (a device's I/O address space): a root table and its subtables. */
export class IommuContext {
  readonly root: number;
  private readonly tables = new Set<number>();

  constructor(
    private readonly memory: MachineMemory,
    /** Returns a frame for a page table (it is zeroed here), or -1. */
    private readonly allocTable: () => number,
    private readonly freeTable: (mfn: number) => void,
  ) {
    this.root = this.newTable();
  }

  /** Frames used for tables (root included). */
  get tableFrames(): number {
    return this.tables.size;
  }

  /**
   * Maps [iova, iova+size) to the frames from `mfn`. iova and mfn must be aligned to `size`; the
   * range must be unmapped. Throws IommuError otherwise, or when no frame is left for a table.
   */
  map(iova: number, mfn: number, size: IommuPageSize, access: { read: boolean; write: boolean }): void {
    const level = size === IOMMU_PAGE_4K ? 0 : size === IOMMU_PAGE_2M ? 1 : size === IOMMU_PAGE_1G ? 2 : -1;
    if (level < 0) throw new IommuError(`page size ${size} is not 4 KiB, 2 MiB or 1 GiB`);
    if (!Number.isInteger(iova) || iova < 0 || iova + size > IOVA_LIMIT || iova % size !== 0)
      throw new IommuError(`iova 0x${iova.toString(16)} is not ${size}-aligned inside the 39-bit space`);
    if (!Number.isInteger(mfn) || mfn < 0 || mfn % FRAMES_AT[level]! !== 0 || !this.memory.isValidMfn(mfn))
      throw new IommuError(`mfn 0x${mfn.toString(16)} is not a ${size}-aligned machine frame`);
    if (!access.read) throw new IommuError("a mapping must allow reads (write-only is reserved)");
    let table = this.root;
    for (let l = LEVELS - 1; l > level; l--) {
      const i = index(iova, l);
      const pte = this.readPte(table, i);
      if ((pte.flags & PTE_V) === 0) {
        const next = this.newTable();
        this.writePte(table, i, next, PTE_V);
        table = next;
      } else if ((pte.flags & (PTE_R | PTE_W)) !== 0) {
        throw new IommuError(`iova 0x${iova.toString(16)} lies inside an existing superpage`);
      } else table = pte.ppn;
    }
    const i = index(iova, level);
    const old = this.readPte(table, i);
    if ((old.flags & PTE_V) !== 0) throw new IommuError(`iova 0x${iova.toString(16)} is already mapped`);
    this.writePte(table, i, mfn, PTE_V | PTE_R | (access.write ? PTE_W : 0));
  }

  /** Unmaps the page of `size` at iova (exactly as mapped). Returns false if there was none. */
  unmap(iova: number, size: IommuPageSize): boolean {
    const level = size === IOMMU_PAGE_4K ? 0 : size === IOMMU_PAGE_2M ? 1 : 2;
    const path: Array<{ table: number; i: number }> = [];
    let table = this.root;
    for (let l = LEVELS - 1; l > level; l--) {
      const i = index(iova, l);
      const pte = this.readPte(table, i);
      if ((pte.flags & PTE_V) === 0 || (pte.flags & (PTE_R | PTE_W)) !== 0) return false;
      path.push({ table, i });
      table = pte.ppn;
    }
    const i = index(iova, level);
    const pte = this.readPte(table, i);
    if ((pte.flags & (PTE_R | PTE_W)) === 0) return false;
    this.writePte(table, i, 0, 0);
    // Free tables left empty, bottom up (never the root).
    for (let k = path.length - 1; k >= 0 && this.isEmpty(table); k--) {
      const parent = path[k]!;
      this.writePte(parent.table, parent.i, 0, 0);
      this.tables.delete(table);
      this.freeTable(table);
      table = parent.table;
    }
    return true;
  }

  /** Walks the tables for one access. A Translation, or the reason it faults. */
  translate(iova: number, access: DmaAccess): Translation | Exclude<IommuFault["reason"], "no-context"> {
    if (!Number.isInteger(iova) || iova < 0 || iova >= IOVA_LIMIT) return "not-mapped";
    let table = this.root;
    for (let l = LEVELS - 1; l >= 0; l--) {
      const pte = this.readPte(table, index(iova, l));
      if ((pte.flags & PTE_V) === 0) return "not-mapped";
      if ((pte.flags & (PTE_R | PTE_W)) === 0) {
        if (l === 0) return "not-mapped";
        table = pte.ppn;
        continue;
      }
      if ((pte.flags & PTE_R) === 0) return "permission";
      if (access === "write" && (pte.flags & PTE_W) === 0) return "permission";
      if (pte.ppn % FRAMES_AT[l]! !== 0) return "misaligned";
      const within = Math.floor(iova / 4096) % FRAMES_AT[l]!;
      const size = (FRAMES_AT[l]! * 4096) as IommuPageSize;
      return { mfn: pte.ppn + within, offset: iova % 4096, pageSize: size };
    }
    return "not-mapped";
  }

  /** Frees every table (the context is unusable afterwards). */
  destroy(): void {
    for (const t of this.tables) this.freeTable(t);
    this.tables.clear();
  }

  private newTable(): number {
    const mfn = this.allocTable();
    if (mfn < 0) throw new IommuError("no frame left for an I/O page table");
    this.memory.scrub(mfn);
    this.tables.add(mfn);
    return mfn;
  }

  private isEmpty(table: number): boolean {
    for (let i = 0; i < ENTRIES; i++) if ((this.readPte(table, i).flags & PTE_V) !== 0) return false;
    return true;
  }

  private readPte(table: number, i: number): { flags: number; ppn: number } {
    const c = this.memory.chunk(table);
    const w = (this.memory.frameOffset(table) >>> 2) + i * 2;
    const lo = c.i32[w]! >>> 0;
    const hi = c.i32[w + 1]! >>> 0;
    return { flags: lo & 0x3ff, ppn: Math.floor(lo / 1024) + hi * 2 ** 22 };
  }

  private writePte(table: number, i: number, ppn: number, flags: number): void {
    const c = this.memory.chunk(table);
    const w = (this.memory.frameOffset(table) >>> 2) + i * 2;
    const v = ppn * 2 ** PPN_SHIFT + flags;
    c.i32[w] = (v % 2 ** 32) | 0;
    c.i32[w + 1] = Math.floor(v / 2 ** 32) | 0;
  }
}

function index(iova: number, level: number): number {
  return Math.floor(iova / (4096 * FRAMES_AT[level]!)) % ENTRIES;
}

/**
 * The IOMMU: devices attached to contexts, DMA through them, faults logged (bounded) and counted.
 * A faulting DMA moves no byte at all.
 */
export class Iommu {
  private readonly contexts = new Map<number, IommuContext>();
  private readonly log: IommuFault[] = [];
  faultCount = 0;

  constructor(
    private readonly memory: MachineMemory,
    private readonly maxLoggedFaults = 64,
  ) {}

  attach(device: number, ctx: IommuContext): void {
    this.contexts.set(device, ctx);
  }

  detach(device: number): void {
    this.contexts.delete(device);
  }

  /** The logged faults, oldest first (the log keeps the last maxLoggedFaults). */
  get faults(): readonly IommuFault[] {
    return this.log;
  }

  /** Reads `length` bytes at iova for `device`; null (and a fault logged) if any byte is not readable. */
  dmaRead(device: number, iova: number, length: number): Uint8Array | null {
    const pieces = this.pieces(device, iova, length, "read");
    if (pieces === null) return null;
    const out = new Uint8Array(length);
    let at = 0;
    for (const p of pieces) {
      out.set(this.memory.frameBytes(p.mfn).subarray(p.offset, p.offset + p.len), at);
      at += p.len;
    }
    return out;
  }

  /** Writes bytes at iova for `device`; false (and a fault logged, nothing written) if any byte is not writable. */
  dmaWrite(device: number, iova: number, bytes: Uint8Array): boolean {
    const pieces = this.pieces(device, iova, bytes.length, "write");
    if (pieces === null) return false;
    let at = 0;
    for (const p of pieces) {
      this.memory.frameBytes(p.mfn).set(bytes.subarray(at, at + p.len), p.offset);
      at += p.len;
    }
    return true;
  }

  /** Translates every page of the access first, so a fault anywhere means nothing is moved. */
  private pieces(
    device: number,
    iova: number,
    length: number,
    access: DmaAccess,
  ): Array<{ mfn: number; offset: number; len: number }> | null {
    const ctx = this.contexts.get(device);
    if (ctx === undefined) return this.fault({ device, iova, access, reason: "no-context" });
    const out: Array<{ mfn: number; offset: number; len: number }> = [];
    for (let a = iova; a < iova + length; ) {
      const t = ctx.translate(a, access);
      if (typeof t === "string") return this.fault({ device, iova: a, access, reason: t });
      const len = Math.min(4096 - t.offset, iova + length - a);
      out.push({ mfn: t.mfn, offset: t.offset, len });
      a += len;
    }
    return out;
  }

  private fault(f: IommuFault): null {
    this.faultCount++;
    this.log.push(f);
    if (this.log.length > this.maxLoggedFaults) this.log.shift();
    return null;
  }
}
