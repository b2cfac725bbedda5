/**
 * A DeviceBus with no hypervisor and no threads, for unit tests and tools: guest RAM is a flat
 * byte array at a base address, and (optionally) a grant table of its own, so rings written as
 * byte literals can be served exactly as a driver domain would serve them.
 *
 * With grants on, only addresses with bit 63 set are reachable, each page through a grant the
 * test made with grant(); read-only grants refuse writable maps. Without grants, plain addresses
 * inside RAM are reachable (a privileged, foreign-mapping backend).
 */
import type { DeviceBus } from "./bus.js";
import { grantDmaAddr, grantRefOf, isGrantAddr, pageOffsetOf } from "./dma.js";
import { type GuestMemory, type MemoryRegion, PageRegion, pagesSpanned } from "./guest_memory.js";

export class FlatMemory implements GuestMemory {
  readonly ram: Uint8Array;
  private readonly grants = new Map<number, { page: number; readonly: boolean }>();
  mapped = 0;

  constructor(
    readonly base: number,
    readonly bytes: number,
    readonly useGrants: boolean,
  ) {
    this.ram = new Uint8Array(new SharedArrayBuffer(bytes));
  }

  /** Grants RAM page `page` (index from base) as `gref`; returns its DMA address [hi, lo]. */
  grant(gref: number, page: number, readonly = false): [number, number] {
    this.grants.set(gref, { page, readonly });
    return grantDmaAddr(gref);
  }
  revoke(gref: number): void {
    this.grants.delete(gref);
  }

  async map(hi: number, lo: number, len: number, writable: boolean): Promise<MemoryRegion | string> {
    if (len <= 0) return `length ${len}`;
    const frames: Uint8Array[] = [];
    let first: number;
    if (this.useGrants) {
      if (!isGrantAddr(hi)) return "not a grant address";
      const gref = grantRefOf(hi, lo);
      first = pageOffsetOf(lo);
      for (let i = 0; i < pagesSpanned(first, len); i++) {
        const g = this.grants.get(gref + i);
        if (g === undefined) return `grant ${gref + i} not granted`;
        if (writable && g.readonly) return `grant ${gref + i} is read-only`;
        frames.push(this.ram.subarray(g.page * 4096, g.page * 4096 + 4096));
      }
    } else {
      if (hi !== 0) return "address above 4 GiB";
      const off = lo - this.base;
      if (off < 0 || off + len > this.bytes) return "outside guest RAM";
      first = off & 0xfff;
      const p0 = off >>> 12;
      for (let i = 0; i < pagesSpanned(first, len); i++)
        frames.push(this.ram.subarray((p0 + i) * 4096, (p0 + i + 1) * 4096));
    }
    this.mapped++;
    return new PageRegion(frames, first, len, writable);
  }
  refresh(): undefined {
    return undefined;
  }
  flush(): undefined {
    return undefined;
  }
  release(): undefined {
    this.mapped--;
    return undefined;
  }
}

export class InProcessBus implements DeviceBus {
  interrupts = 0;
  readonly lines: string[] = [];
  constructor(
    readonly guest: number,
    readonly memory: GuestMemory,
    readonly restricted: boolean,
  ) {}
  raiseInterrupt(): void {
    this.interrupts++;
  }
  log(line: string): void {
    this.lines.push(line);
  }
}
