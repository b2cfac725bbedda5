import { type MachineMemory, P2M_LOGDIRTY, P2M_NONE, P2M_W, type P2mLookup, PAGE_SIZE, p2mEntry } from "@xenon/hw";
import { err } from "../public/errno.js";
import type { P2mPool } from "./pool.js";
import { GFN_BITS, isValidGfn, isValidP2mType, P2mType, p2mTypeRights } from "./types.js";

/**
 * The per-domain P2M: a two-level radix table whose pages are machine frames from the domain's
 * P2M pool, so any thread holding the host memory chunks can walk it (see P2mReader).
 *
 * Shape (like Arm's stage-2 with a concatenated root):
 *   root: P2M_ROOT_PAGES concatenated frames = 2048 entries, indexed by gfn bits 19..9
 *   leaf: one frame = 512 entries, indexed by gfn bits 8..0
 * Entry: 8 bytes = two Int32 words: [0] mfn (u32), [1] type (a P2mType; in the root, 1 = table).
 *
 * Update protocol (core thread only): a valid entry is never rewritten in place. Removing stores
 * type 0 first, then clears the mfn, then bumps the generation; installing stores the mfn first,
 * then the type. Readers load type, mfn, type again and retry on a mismatch, so they never pair an
 * mfn with a type from a different mapping of the same kind; a read racing a removal may return
 * the old entry, and the generation bump that follows makes the vCPU drop it.
 *
 * Leaf pages stay allocated until the domain dies: freeing one while another thread may be
 * walking it would need an epoch scheme, and the pool is sized for the domain's whole footprint.
 */
export const P2M_ROOT_PAGES = 4;
const LEAF_SHIFT = 9;
const LEAF_ENTRIES = 1 << LEAF_SHIFT;
const ROOT_ENTRIES = 1 << (GFN_BITS - LEAF_SHIFT);
const ROOT_ENTRIES_PER_PAGE = PAGE_SIZE / 8;
const ROOT_TABLE = 1;

/** Control block words (one small SharedArrayBuffer per P2M). */
const CTL_GENERATION = 0;
const CTL_LOGDIRTY = 1;
const CTL_ROUND = 2;
/** Non-zero once the domain is destroyed: the table pages are back in the allocator. */
const CTL_DEAD = 3;
const CTL_WORDS = 4;

/** Log-dirty uses two bitmaps (one per round parity) of 2^20 bits each. */
const DIRTY_WORDS_PER_MAP = (1 << GFN_BITS) / 32;

/** What a worker thread needs to rebuild a read-only view of a domain's P2M. */
export interface P2mDescriptor {
  readonly rootMfns: readonly number[];
  readonly control: SharedArrayBuffer;
  /** Allocated on the first enableLogDirty(); re-read the descriptor after enabling. */
  readonly dirty: SharedArrayBuffer | null;
}

export interface P2mEntryInfo {
  readonly mfn: number;
  readonly type: P2mType;
}

/**
 * The read side: a P2mLookup over the radix tables. Safe to use from any thread; it never writes
 * a table page (log-dirty bits live in their own shared bitmap).
 */
export class P2mReader implements P2mLookup {
  readonly generation: Int32Array;
  protected readonly control: Int32Array;
  protected dirtyMap: Int32Array | null;
  protected readonly rootMfns: readonly number[];

  constructor(
    protected readonly memory: MachineMemory,
    desc: P2mDescriptor,
  ) {
    this.rootMfns = [...desc.rootMfns];
    this.control = new Int32Array(desc.control);
    this.generation = new Int32Array(desc.control, 0, 1);
    this.dirtyMap = desc.dirty === null ? null : new Int32Array(desc.dirty);
  }

  /**
   * The raw entry for gfn as `mfn * 16 + type`, or -1 when there is none. Internal form used by
   * the core; the vCPU uses lookup().
   */
  rawEntry(gfn: number): number {
    // A dead P2M's frames may already belong to someone else: never walk them.
    if (!isValidGfn(gfn) || Atomics.load(this.control, CTL_DEAD) !== 0) return -1;
    const ri = gfn >>> LEAF_SHIFT;
    const root = this.rootMfns[(ri / ROOT_ENTRIES_PER_PAGE) | 0]!;
    const rc = this.memory.chunk(root);
    const rw = (this.memory.frameOffset(root) >>> 2) + (ri % ROOT_ENTRIES_PER_PAGE) * 2;
    if (Atomics.load(rc.i32, rw + 1) !== ROOT_TABLE) return -1;
    const leaf = Atomics.load(rc.i32, rw) >>> 0;
    const lc = this.memory.chunk(leaf);
    const lw = (this.memory.frameOffset(leaf) >>> 2) + (gfn & (LEAF_ENTRIES - 1)) * 2;
    for (let tries = 0; tries < 8; tries++) {
      const t1 = Atomics.load(lc.i32, lw + 1);
      if (t1 === P2mType.invalid) return -1;
      const mfn = Atomics.load(lc.i32, lw) >>> 0;
      const t2 = Atomics.load(lc.i32, lw + 1);
      if (t1 === t2) return mfn * 16 + t1;
    }
    // Only a writer changing this entry over and over gets here; treat it as unmapped for now.
    return -1;
  }

  lookup(gfn: number): number {
    const raw = this.rawEntry(gfn);
    if (raw < 0) return P2M_NONE;
    const type = raw % 16;
    const mfn = (raw - type) / 16;
    let rights = p2mTypeRights(type);
    if (
      rights & P2M_W &&
      (type === P2mType.ram_rw || type === P2mType.static_shared_rw) &&
      this.logDirtyEnabled &&
      !this.isDirtyInRound(gfn, Atomics.load(this.control, CTL_ROUND))
    ) {
      rights |= P2M_LOGDIRTY;
    }
    return p2mEntry(mfn, rights);
  }

  markDirty(gfn: number): number {
    this.setDirtyBit(gfn);
    return this.lookup(gfn);
  }

  get logDirtyEnabled(): boolean {
    return Atomics.load(this.control, CTL_LOGDIRTY) !== 0 && this.dirtyMap !== null;
  }

  protected isDirtyInRound(gfn: number, round: number): boolean {
    const map = this.dirtyMap;
    if (map === null) return false;
    const w = (round & 1) * DIRTY_WORDS_PER_MAP + (gfn >>> 5);
    return (Atomics.load(map, w) & (1 << (gfn & 31))) !== 0;
  }

  /** Records gfn as written in the current log-dirty round (no-op when log-dirty is off). */
  protected setDirtyBit(gfn: number): void {
    const map = this.dirtyMap;
    if (map === null || !isValidGfn(gfn) || Atomics.load(this.control, CTL_LOGDIRTY) === 0) return;
    const round = Atomics.load(this.control, CTL_ROUND);
    Atomics.or(map, (round & 1) * DIRTY_WORDS_PER_MAP + (gfn >>> 5), 1 << (gfn & 31));
  }
}

/**
 * The core's P2M: the reader plus every update. Single writer: only the core thread calls these.
 */
export class P2m extends P2mReader {
  private readonly leafUse = new Map<number, number>();
  private controlBuffer: SharedArrayBuffer;
  private dirtyBuffer: SharedArrayBuffer | null = null;
  private mapped = 0;
  /** Told of every entry change after it is made (the domain's IOMMU tables follow the P2M). */
  onChange: ((gfn: number) => void) | null = null;
  private changes = 0;

  private constructor(
    memory: MachineMemory,
    private readonly pool: P2mPool,
    rootMfns: number[],
    control: SharedArrayBuffer,
  ) {
    super(memory, { rootMfns, control, dirty: null });
    this.controlBuffer = control;
  }

  /** Builds an empty P2M whose root comes from `pool`; -ENOMEM if the pool cannot hold the root. */
  static create(memory: MachineMemory, pool: P2mPool): P2m | number {
    if (pool.freePages < P2M_ROOT_PAGES) return err("ENOMEM");
    const roots: number[] = [];
    for (let i = 0; i < P2M_ROOT_PAGES; i++) roots.push(pool.alloc());
    return new P2m(memory, pool, roots, new SharedArrayBuffer(CTL_WORDS * 4));
  }

  descriptor(): P2mDescriptor {
    return { rootMfns: this.rootMfns, control: this.controlBuffer, dirty: this.dirtyBuffer };
  }

  /** Number of valid leaf entries. */
  get mappedCount(): number {
    return this.mapped;
  }

  get(gfn: number): P2mEntryInfo | null {
    const raw = this.rawEntry(gfn);
    if (raw < 0) return null;
    const type = (raw % 16) as P2mType;
    return { mfn: (raw - type) / 16, type };
  }

  /**
   * Maps gfn to mfn with `type`, replacing any existing entry (a replaced entry is invalidated and
   * the generation bumped first). Returns 0, -EINVAL (bad gfn/mfn/type) or -ENOMEM (pool empty; the
   * P2M is unchanged).
   */
  set(gfn: number, mfn: number, type: P2mType): number {
    if (!isValidGfn(gfn) || !this.memory.isValidMfn(mfn) || !isValidP2mType(type)) return err("EINVAL");
    if (this.dead) return err("EINVAL");
    const slot = this.leafSlot(gfn, true);
    if (slot < 0) return slot;
    this.changes++;
    const leaf = this.leafOf(gfn);
    const c = this.memory.chunk(leaf);
    if (Atomics.load(c.i32, slot + 1) !== P2mType.invalid) {
      this.invalidateSlot(c.i32, slot);
      this.bumpGeneration();
    } else {
      this.mapped++;
      this.leafUse.set(leaf, (this.leafUse.get(leaf) ?? 0) + 1);
    }
    Atomics.store(c.i32, slot, mfn | 0);
    Atomics.store(c.i32, slot + 1, type);
    this.onChange?.(gfn);
    return 0;
  }

  /** True when set(gfn, …) cannot fail for lack of a table page. */
  canSet(gfn: number): boolean {
    if (!isValidGfn(gfn) || this.dead) return false;
    const r = this.rootWord(gfn);
    return Atomics.load(r.i32, r.w + 1) === ROOT_TABLE || this.pool.freePages > 0;
  }

  /** Removes gfn's entry and bumps the generation. Returns the old entry, or null if there was none. */
  clear(gfn: number): P2mEntryInfo | null {
    const old = this.get(gfn);
    if (old === null) return null;
    this.changes++;
    const slot = this.leafSlot(gfn, false);
    const leaf = this.leafOf(gfn);
    this.invalidateSlot(this.memory.chunk(leaf).i32, slot);
    this.mapped--;
    this.leafUse.set(leaf, (this.leafUse.get(leaf) ?? 1) - 1);
    this.bumpGeneration();
    this.onChange?.(gfn);
    return old;
  }

  /**
   * Changes the type of an existing entry (e.g. ram_rw -> ram_ro). Bumps the generation whenever
   * the new type grants fewer rights. Returns 0 or -ENOENT when gfn is unmapped.
   */
  setType(gfn: number, type: P2mType): number {
    const old = this.get(gfn);
    if (old === null) return err("ENOENT");
    if (!isValidP2mType(type)) return err("EINVAL");
    this.changes++;
    const slot = this.leafSlot(gfn, false);
    const c = this.memory.chunk(this.leafOf(gfn));
    const lost = p2mTypeRights(old.type) & ~p2mTypeRights(type);
    if (lost !== 0) {
      // Invalidate, flush, then re-install: no reader ever sees the old rights after the bump.
      Atomics.store(c.i32, slot + 1, P2mType.invalid);
      this.bumpGeneration();
    }
    Atomics.store(c.i32, slot + 1, type);
    this.onChange?.(gfn);
    return 0;
  }

  /** Calls fn for every valid entry, in gfn order. fn must not modify the P2M. */
  forEach(fn: (gfn: number, mfn: number, type: P2mType) => void): void {
    if (this.dead) return;
    for (let ri = 0; ri < ROOT_ENTRIES; ri++) {
      const root = this.rootMfns[(ri / ROOT_ENTRIES_PER_PAGE) | 0]!;
      const rc = this.memory.chunk(root);
      const rw = (this.memory.frameOffset(root) >>> 2) + (ri % ROOT_ENTRIES_PER_PAGE) * 2;
      if (rc.i32[rw + 1] !== ROOT_TABLE) continue;
      const leaf = rc.i32[rw]! >>> 0;
      const lc = this.memory.chunk(leaf);
      const base = this.memory.frameOffset(leaf) >>> 2;
      for (let i = 0; i < LEAF_ENTRIES; i++) {
        const t = lc.i32[base + i * 2 + 1]!;
        if (t !== P2mType.invalid) fn((ri << LEAF_SHIFT) | i, lc.i32[base + i * 2]! >>> 0, t as P2mType);
      }
    }
  }

  /**
   * How many times an entry was set, cleared or retyped (all on the core thread: workers only
   * read). Equal counts mean an unchanged physmap: live migration skips rescanning it.
   */
  get changeCount(): number {
    return this.changes;
  }

  /** Table pages currently in use (root included). */
  get tablePages(): number {
    return P2M_ROOT_PAGES + this.leafUse.size;
  }

  get dead(): boolean {
    return Atomics.load(this.control, CTL_DEAD) !== 0;
  }

  /**
   * Domain destruction: from now on every lookup (on any thread) misses and every update fails,
   * before the table pages go back to the allocator. Bumps the generation so vCPUs flush.
   */
  kill(): void {
    Atomics.store(this.control, CTL_DEAD, 1);
    this.bumpGeneration();
  }

  bumpGeneration(): void {
    Atomics.add(this.generation, CTL_GENERATION, 1);
  }

  // --- log-dirty -------------------------------------------------------------------------------

  /**
   * Starts log-dirty mode with an empty round. Writable RAM entries now come back with
   * P2M_LOGDIRTY until their first write is reported; the generation bump makes vCPUs refill.
   */
  enableLogDirty(): void {
    if (this.dirtyBuffer === null) {
      this.dirtyBuffer = new SharedArrayBuffer(DIRTY_WORDS_PER_MAP * 2 * 4);
      this.dirtyMap = new Int32Array(this.dirtyBuffer);
    } else {
      this.dirtyMap!.fill(0);
    }
    Atomics.store(this.control, CTL_LOGDIRTY, 1);
    this.bumpGeneration();
  }

  disableLogDirty(): void {
    Atomics.store(this.control, CTL_LOGDIRTY, 0);
    // Entries only gain rights; stale TLB entries just report a few extra writes.
  }

  /** Core-side writes (copyToGuest, grant copy, unmap of a writable grant) are logged here. */
  markGfnDirty(gfn: number): void {
    this.setDirtyBit(gfn);
  }

  /**
   * Phase 1 of a clean: opens a new round and bumps the generation. Returns the generation every
   * running vCPU must have flushed to (VcpuSlot.TLB_GEN_SEEN) before logDirtyCollect() is exact:
   * until then a vCPU may still write through an entry filled in the old round, but such a page is
   * already marked in the old round, so it is collected.
   */
  logDirtyNewRound(): number {
    Atomics.add(this.control, CTL_ROUND, 1);
    return Atomics.add(this.generation, CTL_GENERATION, 1) + 1;
  }

  /**
   * Phase 2: returns the gfns dirtied in the previous round (sorted) and clears that round's map.
   * Call it once per logDirtyNewRound(), after the vCPUs have flushed.
   */
  logDirtyCollect(): number[] {
    const map = this.dirtyMap;
    if (map === null) return [];
    const prev = (Atomics.load(this.control, CTL_ROUND) - 1) & 1;
    const out: number[] = [];
    const base = prev * DIRTY_WORDS_PER_MAP;
    for (let w = 0; w < DIRTY_WORDS_PER_MAP; w++) {
      if (map[base + w] === 0) continue;
      let bits = Atomics.exchange(map, base + w, 0);
      while (bits !== 0) {
        const b = 31 - Math.clz32(bits & -bits);
        out.push(w * 32 + b);
        bits &= bits - 1;
      }
    }
    return out;
  }

  /** Gfns dirtied so far in the current round, without clearing anything. */
  logDirtyPeek(): number[] {
    const map = this.dirtyMap;
    if (map === null) return [];
    const base = (Atomics.load(this.control, CTL_ROUND) & 1) * DIRTY_WORDS_PER_MAP;
    const out: number[] = [];
    for (let w = 0; w < DIRTY_WORDS_PER_MAP; w++) {
      const bits = Atomics.load(map, base + w);
      for (let b = 0; b < 32; b++) if (bits & (1 << b)) out.push(w * 32 + b);
    }
    return out;
  }

  /**
   * Both phases at once (Xen's shadow_op CLEAN): exact only when no vCPU of the domain is running
   * (paused domain, final stop-and-copy round, tests).
   */
  peekAndClean(): number[] {
    this.logDirtyNewRound();
    return this.logDirtyCollect();
  }

  // --- internals -------------------------------------------------------------------------------

  private rootWord(gfn: number): { i32: Int32Array; w: number } {
    const ri = gfn >>> LEAF_SHIFT;
    const root = this.rootMfns[(ri / ROOT_ENTRIES_PER_PAGE) | 0]!;
    return {
      i32: this.memory.chunk(root).i32,
      w: (this.memory.frameOffset(root) >>> 2) + (ri % ROOT_ENTRIES_PER_PAGE) * 2,
    };
  }

  private leafOf(gfn: number): number {
    const r = this.rootWord(gfn);
    return r.i32[r.w]! >>> 0;
  }

  /** Int32 index of gfn's leaf entry; allocates the leaf from the pool when asked (-ENOMEM if dry). */
  private leafSlot(gfn: number, allocate: boolean): number {
    const r = this.rootWord(gfn);
    let leaf: number;
    if (Atomics.load(r.i32, r.w + 1) !== ROOT_TABLE) {
      if (!allocate) return -1;
      leaf = this.pool.alloc();
      if (leaf < 0) return err("ENOMEM");
      // Publish the (zeroed) leaf: mfn first, then the valid marker.
      Atomics.store(r.i32, r.w, leaf | 0);
      Atomics.store(r.i32, r.w + 1, ROOT_TABLE);
      this.leafUse.set(leaf, 0);
    } else {
      leaf = r.i32[r.w]! >>> 0;
    }
    return (this.memory.frameOffset(leaf) >>> 2) + (gfn & (LEAF_ENTRIES - 1)) * 2;
  }

  private invalidateSlot(i32: Int32Array, slot: number): void {
    Atomics.store(i32, slot + 1, P2mType.invalid);
    Atomics.store(i32, slot, 0);
  }
}
