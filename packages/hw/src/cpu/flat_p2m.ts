import {
  P2M_ENTRY_MFN_SCALE,
  P2M_LOGDIRTY,
  P2M_NONE,
  P2M_W,
  type P2mLookup,
  p2mEntry,
  p2mEntryFlags,
  p2mEntryMfn,
} from "./p2m.js";

/**
 * A simple P2mLookup over a Map (gfn -> entry), for tests, tools and single-domain setups. The
 * hypervisor's real P2M keeps its tables in machine frames; this one lives on the JS heap of one
 * thread (a worker builds its own copy; share `generation` by passing the same buffer).
 *
 * Invariant (the contract of P2mLookup.generation): any change that removes rights or moves a
 * gfn to another frame bumps the generation, so vCPUs flush stale TLB entries at their next poll.
 */
export class FlatP2m implements P2mLookup {
  readonly generation: Int32Array;
  private readonly entries = new Map<number, number>();
  private readonly dirty = new Set<number>();
  /** How many times markDirty() has been called (tests check it is called once per frame and round). */
  markDirtyCalls = 0;

  constructor(generation?: Int32Array) {
    this.generation = generation ?? new Int32Array(new SharedArrayBuffer(4));
  }

  lookup(gfn: number): number {
    return this.entries.get(gfn) ?? P2M_NONE;
  }

  markDirty(gfn: number): number {
    this.markDirtyCalls++;
    this.dirty.add(gfn);
    const e = this.entries.get(gfn);
    if (e === undefined) return P2M_NONE;
    const cleared = e - (p2mEntryFlags(e) & P2M_LOGDIRTY);
    this.entries.set(gfn, cleared);
    return cleared;
  }

  /** Maps gfn to mfn with P2M_* flags. Replacing an existing mapping bumps the generation. */
  map(gfn: number, mfn: number, flags: number): void {
    const old = this.entries.get(gfn);
    this.entries.set(gfn, p2mEntry(mfn, flags));
    if (old !== undefined && old !== p2mEntry(mfn, flags)) this.bump();
  }

  /** Maps count consecutive frames. */
  mapRange(gfn: number, mfn: number, count: number, flags: number): void {
    for (let k = 0; k < count; k++) this.map(gfn + k, mfn + k, flags);
  }

  unmap(gfn: number): void {
    if (this.entries.delete(gfn)) this.bump();
  }

  /** Turns log-dirty on for every writable mapping (a new round) or off. Bumps the generation. */
  setLogDirty(on: boolean): void {
    for (const [gfn, e] of this.entries) {
      const flags = p2mEntryFlags(e);
      if ((flags & P2M_W) === 0) continue;
      const nf = on ? flags | P2M_LOGDIRTY : flags & ~P2M_LOGDIRTY;
      this.entries.set(gfn, p2mEntryMfn(e) * P2M_ENTRY_MFN_SCALE + nf);
    }
    this.bump();
  }

  /** The frames written since the last call, and clears the set. */
  takeDirty(): number[] {
    const out = [...this.dirty].sort((a, b) => a - b);
    this.dirty.clear();
    return out;
  }

  /** All mappings, for handing to another thread's FlatP2m. */
  exportEntries(): Array<[number, number]> {
    return [...this.entries];
  }

  importEntries(entries: ReadonlyArray<readonly [number, number]>): void {
    for (const [gfn, e] of entries) this.entries.set(gfn, e);
    this.bump();
  }

  private bump(): void {
    Atomics.add(this.generation, 0, 1);
  }
}
