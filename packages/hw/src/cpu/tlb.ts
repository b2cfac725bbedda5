import type { MachineMemory } from "../memory/machine_memory.js";
import { P2M_ENTRY_MFN_SCALE, P2M_LOGDIRTY, P2M_NONE, P2M_R, P2M_W, P2M_X, type P2mLookup } from "./p2m.js";

/**
 * The vCPU's soft TLB: guest frame -> (chunk views, byte offset of the frame inside the chunk).
 * Three direct-mapped tables — read, write, fetch — each indexed by gfn & TLB_MASK and tagged with
 * the gfn, so a hit is one compare plus one add (TinyEMU's design, with the host pointer replaced by
 * a chunk view and an offset). Only RAM is cached; a gfn the P2M does not map never hits, so every
 * access to it takes the miss path and leaves as an MMIO exit.
 *
 * The three tables share one set of arrays, at index offsets READ / WRITE / FETCH (entry
 * `(gfn & TLB_MASK) | WRITE` is gfn's write entry): the interpreter then keeps 5 array references
 * live instead of 13, which keeps V8's register allocation of its loop stable.
 *
 * It also owns the decoded-instruction cache: one Int32Array of decoded words (predecode.ts) per
 * executed machine frame, one slot per 16-bit parcel, 0 = not decoded yet. Coherence rules:
 *  - this vCPU's own stores: a write entry for a frame that has decoded code is installed with
 *    CODE_TAG set in its tag, so the store fast path misses and the slow path (cpu.ts) stores and
 *    zeroes the slots the bytes overlap. Write entries present when a frame first gets decoded are
 *    converted in place. So self-modifying code works without fence.i, as in QEMU.
 *  - other writers (other vCPU threads, the host) are seen after fence.i, a P2M generation change
 *    or Cpu.flushTlb(): all of them drop every decoded frame. (RISC-V requires fence.i for
 *    cross-hart code modification anyway.)
 *
 * Plain per-thread arrays: no allocation on a hit. Entries are valid only against the P2M
 * generation they were filled in; the Cpu flushes on a generation change.
 */

export const TLB_BITS = 9;
export const TLB_SIZE = 1 << TLB_BITS;
export const TLB_MASK = TLB_SIZE - 1;
/** Index offsets of the three tables (OR them into gfn & TLB_MASK). */
export const READ = 0;
export const WRITE = TLB_SIZE;
export const FETCH = 2 * TLB_SIZE;
const ENTRIES = 3 * TLB_SIZE;
/** A tag no gfn equals (gfns of a 32-bit guest-physical space are 0..2^20-1). */
const NO_TAG = -1;
/** Write-entry tag flag: the frame holds decoded code; stores must go through the slow path. */
export const CODE_TAG = 1 << 30;
/** Parcels (decode slots) per frame. */
export const SLOTS_PER_FRAME = 2048;
/**
 * Decoded frames kept (8 KiB each: 16 MiB); beyond it the whole cache is dropped at the next poll
 * (not at once: the interpreter holds the current frame's slots until its slice ends).
 */
const MAX_CODE_FRAMES = 2048;

/** fill*() results besides an entry index. */
export const TLB_NOT_RAM = -1;
export const TLB_NO_RIGHT = -2;

/**
 * Placeholders so every slot of the view arrays always holds the same kind of object: the arrays
 * stay monomorphic (and packed) for the optimiser. Never read: their tag never matches.
 */
const DUMMY_BUFFER = new SharedArrayBuffer(4);
const DUMMY_U8 = new Uint8Array(DUMMY_BUFFER);
const DUMMY_U16 = new Uint16Array(DUMMY_BUFFER);
const DUMMY_I32 = new Int32Array(DUMMY_BUFFER);
const DUMMY_DEC = new Int32Array(0);

export class Tlb {
  /** Per entry: the gfn (| CODE_TAG for a write entry of a code frame), or -1. */
  readonly tag = new Int32Array(ENTRIES).fill(NO_TAG);
  /** Per entry: byte offset of the frame inside the chunk the views below cover. */
  readonly off = new Int32Array(ENTRIES);
  readonly u8: Uint8Array[] = new Array<Uint8Array>(ENTRIES).fill(DUMMY_U8);
  readonly u16: Uint16Array[] = new Array<Uint16Array>(ENTRIES).fill(DUMMY_U16);
  readonly i32: Int32Array[] = new Array<Int32Array>(ENTRIES).fill(DUMMY_I32);
  /** Fetch entries: the frame's decode slots. Write entries: the same, for CODE_TAG entries. */
  readonly dec: Int32Array[] = new Array<Int32Array>(ENTRIES).fill(DUMMY_DEC);
  /** mfn -> decode slots of that frame. */
  private readonly code = new Map<number, Int32Array>();
  /** Set when the decode cache outgrew MAX_CODE_FRAMES; the Cpu calls flushCode() at its next poll. */
  overfull = false;

  constructor(
    private readonly memory: MachineMemory,
    private readonly p2m: P2mLookup,
  ) {}

  /** Drops every entry and every decoded frame. */
  flush(): void {
    this.tag.fill(NO_TAG);
    this.code.clear();
    this.overfull = false;
  }

  /** Drops every decoded frame (fence.i): the fetch entries and the CODE_TAG write entries. */
  flushCode(): void {
    this.code.clear();
    this.overfull = false;
    const tag = this.tag;
    tag.fill(NO_TAG, FETCH, FETCH + TLB_SIZE);
    for (let i = WRITE; i < WRITE + TLB_SIZE; i++) if (tag[i]! >= CODE_TAG) tag[i] = NO_TAG;
  }

  // Entries are exact integers < 2^36; `e & P2M_*` is exact because ToInt32 keeps the low bits.

  /** Fills gfn's read entry: its index, TLB_NOT_RAM (MMIO) or TLB_NO_RIGHT (no R). */
  fillRead(gfn: number): number {
    const e = this.p2m.lookup(gfn);
    if (e === P2M_NONE) return TLB_NOT_RAM;
    if ((e & P2M_R) === 0) return TLB_NO_RIGHT;
    return this.install((gfn & TLB_MASK) | READ, gfn, e);
  }

  /**
   * Fills gfn's write entry. A log-dirty page is reported with markDirty() here, once per fill,
   * and the entry markDirty returns is the one used. A frame with decoded code gets a CODE_TAG
   * entry (callers check `tag[i] === gfn` to know whether the fast path applies).
   */
  fillWrite(gfn: number): number {
    let e = this.p2m.lookup(gfn);
    if (e === P2M_NONE) return TLB_NOT_RAM;
    if ((e & P2M_W) === 0) return TLB_NO_RIGHT;
    if ((e & P2M_LOGDIRTY) !== 0) {
      e = this.p2m.markDirty(gfn);
      if (e === P2M_NONE) return TLB_NOT_RAM;
      if ((e & P2M_W) === 0) return TLB_NO_RIGHT;
    }
    const i = this.install((gfn & TLB_MASK) | WRITE, gfn, e);
    const dec = this.code.get(Math.floor(e / P2M_ENTRY_MFN_SCALE));
    if (dec !== undefined) {
      this.tag[i] = gfn | CODE_TAG;
      this.dec[i] = dec;
    }
    return i;
  }

  /** Fills gfn's fetch entry (and its decode slots); TLB_NO_RIGHT / TLB_NOT_RAM if not executable RAM. */
  fillFetch(gfn: number): number {
    const e = this.p2m.lookup(gfn);
    if (e === P2M_NONE) return TLB_NOT_RAM;
    if ((e & P2M_X) === 0) return TLB_NO_RIGHT;
    const mfn = Math.floor(e / P2M_ENTRY_MFN_SCALE);
    let dec = this.code.get(mfn);
    if (dec === undefined) {
      if (this.code.size >= MAX_CODE_FRAMES) this.overfull = true;
      dec = new Int32Array(SLOTS_PER_FRAME);
      this.code.set(mfn, dec);
      this.protect(mfn, dec);
    }
    const i = this.install((gfn & TLB_MASK) | FETCH, gfn, e);
    this.dec[i] = dec;
    return i;
  }

  /** Turns write entries for frame mfn (under any gfn) into CODE_TAG entries. */
  private protect(mfn: number, dec: Int32Array): void {
    const view = this.memory.chunk(mfn).i32;
    const off = this.memory.frameOffset(mfn);
    for (let i = WRITE; i < WRITE + TLB_SIZE; i++) {
      const tag = this.tag[i]!;
      if (tag >= 0 && tag < CODE_TAG && this.off[i] === off && this.i32[i] === view) {
        this.tag[i] = tag | CODE_TAG;
        this.dec[i] = dec;
      }
    }
  }

  private install(i: number, gfn: number, entry: number): number {
    const mfn = Math.floor(entry / P2M_ENTRY_MFN_SCALE);
    const chunk = this.memory.chunk(mfn);
    this.tag[i] = gfn;
    this.off[i] = this.memory.frameOffset(mfn);
    this.u8[i] = chunk.u8;
    this.u16[i] = chunk.u16;
    this.i32[i] = chunk.i32;
    return i;
  }
}
