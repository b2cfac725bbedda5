import {
  Cpu,
  type ElfImage,
  FlatP2m,
  FrameAllocator,
  hostTime,
  MachineMemory,
  P2M_NONE,
  P2M_R,
  P2M_W,
  P2M_X,
  PAGE_MASK,
  PAGE_SHIFT,
  PAGE_SIZE,
  p2mEntryMfn,
  type TimeSource,
} from "@xenon/hw";

/**
 * One vCPU over a flat guest-physical space: frames from a private MachineMemory, mapped through a
 * FlatP2m. This is the differential harness's machine (`xenon run --linux-abi`) and the
 * single-image runner; it has no hypervisor policy. Guest accesses still go through the P2M, so an
 * address outside what was mapped leaves the vCPU as an MMIO exit.
 */
export class FlatGuest {
  readonly memory: MachineMemory;
  readonly alloc: FrameAllocator;
  readonly p2m = new FlatP2m();
  readonly cpu: Cpu;

  constructor(opts: { hostBytes?: number; time?: TimeSource } = {}) {
    this.memory = new MachineMemory({ bytes: opts.hostBytes ?? 2 ** 32 });
    this.alloc = new FrameAllocator(this.memory);
    this.cpu = new Cpu({ memory: this.memory, p2m: this.p2m, time: opts.time ?? hostTime });
  }

  /** Backs [gpa, gpa+size) with fresh zeroed frames (pages already mapped keep theirs). */
  mapRange(gpa: number, size: number, flags: number = P2M_R | P2M_W | P2M_X): void {
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + size - 1) / PAGE_SIZE);
    for (let gfn = first; gfn <= last; gfn++) {
      if (this.p2m.lookup(gfn) !== P2M_NONE) continue;
      const mfn = this.alloc.alloc();
      if (mfn < 0) throw new Error("flat guest: out of host memory");
      this.p2m.map(gfn, mfn, flags);
    }
  }

  /** Loads every PT_LOAD segment at its virtual address (user programs) or physical address. */
  loadElf(image: ElfImage, at: "vaddr" | "paddr"): void {
    for (const seg of image.segments) {
      const base = at === "vaddr" ? seg.vaddr : seg.paddr;
      this.mapRange(base, seg.memsz);
      if (!this.write(base, seg.data)) throw new Error(`flat guest: cannot load segment at 0x${base.toString(16)}`);
    }
  }

  /** Copies bytes out of guest memory; null if any byte is not RAM. */
  read(gpa: number, length: number): Uint8Array | null {
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const addr = gpa + done;
      const entry = this.p2m.lookup(Math.floor(addr / PAGE_SIZE));
      if (entry === P2M_NONE || addr >= 2 ** 32) return null;
      const mfn = p2mEntryMfn(entry);
      const off = this.memory.frameOffset(mfn) + (addr & PAGE_MASK);
      const n = Math.min(length - done, PAGE_SIZE - (addr & PAGE_MASK));
      out.set(this.memory.chunk(mfn).u8.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Copies bytes into guest memory; false (and nothing written past the hole) if not RAM. */
  write(gpa: number, bytes: Uint8Array): boolean {
    let done = 0;
    while (done < bytes.length) {
      const addr = gpa + done;
      const entry = this.p2m.lookup(Math.floor(addr / PAGE_SIZE));
      if (entry === P2M_NONE || addr >= 2 ** 32) return false;
      const mfn = p2mEntryMfn(entry);
      const off = this.memory.frameOffset(mfn) + (addr & PAGE_MASK);
      const n = Math.min(bytes.length - done, PAGE_SIZE - (addr & PAGE_MASK));
      this.memory.chunk(mfn).u8.set(bytes.subarray(done, done + n), off);
      done += n;
    }
    return true;
  }

  readU32(gpa: number): number | null {
    const b = this.read(gpa, 4);
    return b === null ? null : (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }
}

export { PAGE_SHIFT };
