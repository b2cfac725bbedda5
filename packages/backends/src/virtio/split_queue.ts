/**
 * The device side of one split virtqueue (VirtIO 1.2 §2.7): the transport sets its size and
 * ring addresses; activate() checks and maps the three areas; pop() walks the next chain with
 * every check of virtio.md §8 (index jumps, head and next bounds, loops and chain length, flags,
 * indirect tables, readable-after-writable, 32-bit total length) and throws a QueueError naming
 * the rule; push() completes a chain in the used ring; needsInterrupt() applies EVENT_IDX or
 * NO_INTERRUPT.
 *
 * Guest memory is hostile and may change under us: every descriptor is read once into locals
 * and validated there. 16-bit indices wrap: differences are taken & 0xffff.
 */
import { DESC_SIZE, DescFlag, VIRTQ_AVAIL_F_NO_INTERRUPT } from "./constants.js";
import { DescriptorChain } from "./descriptor_chain.js";
import { fmtAddr } from "./dma.js";
import type { GuestMemory, MemoryRegion } from "./guest_memory.js";
import { QueueError } from "./queue_error.js";

const KNOWN_FLAGS = DescFlag.NEXT | DescFlag.WRITE | DescFlag.INDIRECT;

/**
 * What a queue carries across a device snapshot (migration): the driver's configuration and the
 * device's ring positions. Taken only with no chain in flight (the caller quiesces first).
 */
export interface SplitQueueState {
  readonly size: number;
  readonly desc: readonly [number, number];
  readonly avail: readonly [number, number];
  readonly used: readonly [number, number];
  readonly ready: boolean;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly nextAvail: number;
  readonly nextUsed: number;
  readonly signalledUsed: number;
}

export class SplitQueue {
  // Set by the transport while the queue is not ready.
  size: number;
  descHi = 0;
  descLo = 0;
  availHi = 0;
  availLo = 0;
  usedHi = 0;
  usedLo = 0;
  ready = false;
  // Negotiated at FEATURES_OK.
  eventIdx = false;
  indirect = false;

  private mem: GuestMemory | null = null;
  private desc: MemoryRegion | null = null;
  private avail: MemoryRegion | null = null;
  private used: MemoryRegion | null = null;
  private nextAvail = 0;
  private nextUsed = 0;
  /** used.idx when the driver was last interrupted (EVENT_IDX window start). */
  private signalledUsed = 0;
  /** Indirect tables given back but not yet unmapped; push() waits for them. */
  private readonly releasing: Promise<void>[] = [];
  /** avail.idx last read from the ring (copy mode refreshes the table when it moves). */
  private seenAvail = -1;
  /** Bumped by reset(): an activation that was mapping meanwhile gives its mappings back. */
  private gen = 0;
  /** Copy mode: the driver's used_event / flags were fetched after the last publish (pushMany). */
  private wishFresh = false;
  /** Chains popped and not yet pushed (CVE-2016-5403: never more than the queue size). */
  inFlight = 0;
  readonly chain: DescriptorChain;

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
    this.chain = new DescriptorChain(maxSize);
  }

  get active(): boolean {
    return this.used !== null;
  }

  /**
   * Checks size and alignment and maps the three areas (sized as with EVENT_IDX, as FC and
   * crosvm do). Throws QueueError; on failure nothing stays mapped, nor when the device was
   * reset while the maps were under way (the queue then stays inactive).
   */
  async activate(mem: GuestMemory): Promise<void> {
    const gen = this.gen;
    const n = this.size;
    if (n === 0 || n > this.maxSize || (n & (n - 1)) !== 0)
      throw new QueueError("queue-size", `queue ${this.index}: size ${n} (max ${this.maxSize}, power of two)`);
    if ((this.descLo & 15) !== 0 || (this.availLo & 1) !== 0 || (this.usedLo & 3) !== 0)
      throw new QueueError(
        "ring-alignment",
        `queue ${this.index}: desc ${fmtAddr(this.descHi, this.descLo)} avail ${fmtAddr(this.availHi, this.availLo)} used ${fmtAddr(this.usedHi, this.usedLo)}`,
      );
    const desc = await mem.map(this.descHi, this.descLo, DESC_SIZE * n, false);
    if (typeof desc === "string") throw new QueueError("ring-unreachable", `descriptor table: ${desc}`);
    const avail = await mem.map(this.availHi, this.availLo, 6 + 2 * n, false);
    if (typeof avail === "string") {
      await mem.release(desc);
      throw new QueueError("ring-unreachable", `available ring: ${avail}`);
    }
    const used = await mem.map(this.usedHi, this.usedLo, 6 + 8 * n, true);
    if (typeof used === "string") {
      await mem.release(desc);
      await mem.release(avail);
      throw new QueueError("ring-unreachable", `used ring: ${used}`);
    }
    if (gen !== this.gen) {
      for (const r of [desc, avail, used]) await mem.release(r);
      return;
    }
    this.mem = mem;
    this.desc = desc;
    this.avail = avail;
    this.used = used;
    this.nextAvail = 0;
    this.nextUsed = 0;
    this.signalledUsed = 0;
    this.seenAvail = -1;
    this.inFlight = 0;
  }

  /** The queue's configuration and ring positions; throws while a chain is in flight. */
  getState(): SplitQueueState {
    if (this.inFlight !== 0) throw new Error(`queue ${this.index}: ${this.inFlight} chain(s) in flight`);
    return {
      size: this.size,
      desc: [this.descHi, this.descLo],
      avail: [this.availHi, this.availLo],
      used: [this.usedHi, this.usedLo],
      ready: this.ready,
      eventIdx: this.eventIdx,
      indirect: this.indirect,
      nextAvail: this.nextAvail,
      nextUsed: this.nextUsed,
      signalledUsed: this.signalledUsed,
    };
  }

  /**
   * Loads a snapshot's configuration into a reset queue (the rings are not mapped: the transport
   * activates the queue, then resume() puts the ring positions back).
   */
  setState(s: SplitQueueState): void {
    this.size = s.size;
    [this.descHi, this.descLo] = s.desc;
    [this.availHi, this.availLo] = s.avail;
    [this.usedHi, this.usedLo] = s.used;
    this.ready = s.ready;
    this.eventIdx = s.eventIdx;
    this.indirect = s.indirect;
  }

  /** After activate(): continue at the snapshot's ring positions instead of from zero. */
  resume(s: SplitQueueState): void {
    this.nextAvail = s.nextAvail & 0xffff;
    this.nextUsed = s.nextUsed & 0xffff;
    this.signalledUsed = s.signalledUsed & 0xffff;
  }

  /** Unmaps the rings and forgets all state (device reset). */
  async reset(): Promise<void> {
    this.gen++;
    const mem = this.mem;
    const regions = [this.desc, this.avail, this.used];
    this.mem = this.desc = this.avail = this.used = null;
    this.ready = false;
    this.size = this.maxSize;
    this.descHi = this.descLo = this.availHi = this.availLo = this.usedHi = this.usedLo = 0;
    this.eventIdx = this.indirect = false;
    this.nextAvail = this.nextUsed = this.signalledUsed = this.inFlight = 0;
    await Promise.allSettled(this.releasing.splice(0));
    if (mem !== null) for (const r of regions) if (r !== null) await mem.release(r);
  }

  /**
   * Pops the next available chain into this.chain: true, or false when the ring is empty.
   * Throws QueueError for a broken rule (the queue must then not be used until reset).
   */
  async pop(): Promise<boolean> {
    const mem = this.mem!;
    const avail = this.avail!;
    const n = this.size;
    let idx: number;
    if (mem.refreshMany !== undefined && this.seenAvail >= 0 && this.seenAvail !== this.nextAvail) {
      // Copy mode, chains the last look showed still waiting: their slots and descriptors were
      // fetched with that look (after the index, in the same call), nothing to ask for.
      idx = this.seenAvail;
    } else if (mem.refreshMany !== undefined) {
      // Copy mode: the index, the ring slots and the table in one call, the index first.
      await mem.refreshMany([
        [avail, 2, 2 + 2 * n],
        [this.desc!, 0, DESC_SIZE * n],
      ]);
      idx = avail.u16(2);
      this.seenAvail = idx;
    } else {
      const r = mem.refresh(avail, 2, 2);
      if (r !== undefined) await r;
      idx = avail.u16(2);
    }
    const pending = (idx - this.nextAvail) & 0xffff;
    if (pending > n)
      throw new QueueError(
        "avail-index-jump",
        `queue ${this.index}: avail.idx ${idx}, next ${this.nextAvail}, size ${n}`,
      );
    if (pending === 0) return false;
    if (this.inFlight >= n)
      throw new QueueError("too-many-in-flight", `queue ${this.index}: ${this.inFlight} in flight`);
    if (idx !== this.seenAvail) {
      // Copy mode: the ring slots and the table may have changed since the last look.
      this.seenAvail = idx;
      const a = mem.refresh(avail, 4, 2 * n);
      if (a !== undefined) await a;
      const d = mem.refresh(this.desc!, 0, DESC_SIZE * n);
      if (d !== undefined) await d;
    }
    const head = avail.u16(4 + 2 * (this.nextAvail & (n - 1)));
    if (head >= n) throw new QueueError("head-out-of-range", `queue ${this.index}: head ${head} of ${n}`);
    await this.walk(head);
    this.nextAvail = (this.nextAvail + 1) & 0xffff;
    this.inFlight++;
    return true;
  }

  private async walk(head: number): Promise<void> {
    const c = this.chain;
    const n = this.size;
    const q = this.index;
    c.reset(head);
    let table = this.desc!;
    let tableLen = n;
    let inIndirect = false;
    let indirectRegion: MemoryRegion | null = null;
    let i = head;
    let steps = 0;
    let total = 0;
    let seenWritable = false;
    try {
      for (;;) {
        if (++steps > tableLen || c.count >= n)
          throw new QueueError(
            "chain-too-long",
            `queue ${q}: chain from head ${head} passes ${tableLen} descriptors (loop?)`,
          );
        const o = i * DESC_SIZE;
        const lo = readU32(table, o, inIndirect);
        const hi = readU32(table, o + 4, inIndirect);
        const len = readU32(table, o + 8, inIndirect);
        const flags = readU16(table, o + 12, inIndirect);
        const next = readU16(table, o + 14, inIndirect);
        if ((flags & ~KNOWN_FLAGS) !== 0)
          throw new QueueError("unknown-flags", `queue ${q}: descriptor ${i} flags 0x${flags.toString(16)}`);
        if ((flags & DescFlag.INDIRECT) !== 0) {
          if (!this.indirect) throw new QueueError("indirect-not-negotiated", `queue ${q}: descriptor ${i}`);
          if (inIndirect) throw new QueueError("nested-indirect", `queue ${q}: descriptor ${i} of an indirect table`);
          if ((flags & DescFlag.NEXT) !== 0) throw new QueueError("indirect-with-next", `queue ${q}: descriptor ${i}`);
          if (len === 0 || len % DESC_SIZE !== 0 || len / DESC_SIZE > n)
            throw new QueueError("indirect-table-size", `queue ${q}: descriptor ${i} table of ${len} bytes`);
          const t = await this.mem!.map(hi, lo, len, false);
          if (typeof t === "string")
            throw new QueueError("indirect-unreachable", `queue ${q}: ${fmtAddr(hi, lo)}: ${t}`);
          indirectRegion = t;
          table = t;
          tableLen = len / DESC_SIZE;
          inIndirect = true;
          steps = 0;
          i = 0;
          continue;
        }
        const writable = (flags & DescFlag.WRITE) !== 0;
        if (!writable && seenWritable)
          throw new QueueError("readable-after-writable", `queue ${q}: descriptor ${i} in the chain from head ${head}`);
        seenWritable ||= writable;
        total += len;
        if (total > 0xffff_ffff) throw new QueueError("length-overflow", `queue ${q}: chain from head ${head}`);
        c.push(hi, lo, len, writable);
        if ((flags & DescFlag.NEXT) === 0) return;
        if (next >= tableLen)
          throw new QueueError("next-out-of-range", `queue ${q}: descriptor ${i} next ${next} of ${tableLen}`);
        i = next;
      }
    } finally {
      // Not waited for here: the unmap only has to be done before the chain is seen used (push).
      if (indirectRegion !== null) {
        const p = this.mem!.release(indirectRegion);
        if (p !== undefined) this.releasing.push(p);
      }
    }
  }

  /** Completes chain `head` with `len` bytes written: the element first, then used.idx. */
  push(head: number, len: number): Promise<void> {
    return this.pushMany([head], [len]);
  }

  /**
   * Completes chains heads[i] with lens[i] bytes written, in that order: every element first, then
   * used.idx once (copy mode: all of it in one call, written in that order).
   */
  async pushMany(heads: readonly number[], lens: readonly number[]): Promise<void> {
    if (heads.length === 0) return;
    if (this.releasing.length > 0) await Promise.all(this.releasing.splice(0));
    const used = this.used!;
    const mem = this.mem!;
    const mask = this.size - 1;
    const parts: Array<readonly [MemoryRegion, number, number]> = [];
    for (let i = 0; i < heads.length; i++) {
      const slot = 4 + 8 * ((this.nextUsed + i) & mask);
      used.setU32(slot, heads[i]!);
      used.setU32(slot + 4, lens[i]!);
      parts.push([used, slot, 8]);
    }
    this.nextUsed = (this.nextUsed + heads.length) & 0xffff;
    if (mem.flushMany !== undefined) {
      // A local copy: the guest sees none of it before this call, which writes the index last.
      used.setU16(2, this.nextUsed);
      parts.push([used, 2, 2]);
      // The driver's wish (used_event or flags) is read right behind: the port keeps the order, so
      // it is read after the index is published, as needsInterrupt must, without a round trip more.
      const wish = this.eventIdx ? ([this.avail!, 4 + 2 * this.size, 2] as const) : ([this.avail!, 0, 2] as const);
      await Promise.all([mem.flushMany(parts), mem.refreshMany?.([wish])]);
      this.wishFresh = true;
    } else {
      for (const [, slot, len] of parts) {
        const f = mem.flush(used, slot, len);
        if (f !== undefined) await f;
      }
      used.setU16(2, this.nextUsed);
      const g = mem.flush(used, 2, 2);
      if (g !== undefined) await g;
    }
    this.inFlight = Math.max(0, this.inFlight - heads.length);
  }

  /**
   * pushMany with the chains' buffers given back in the same breath. Where the memory can
   * (views: GuestMemory.releasePublish) the unmaps, the used.idx store and the interrupt are one
   * call to the core, in that order, the core applying needsInterrupt's rule after the store.
   * Elsewhere: release, then pushMany, and the caller's needsInterrupt decides. Resolves to
   * whether the interrupt was sent; `willInterrupt` is called before it may be (the transport
   * sets its ISR bit: the driver may read it as soon as the interrupt lands).
   */
  async releasePushMany(
    regions: readonly MemoryRegion[],
    heads: readonly number[],
    lens: readonly number[],
    port: number,
    willInterrupt: () => void,
  ): Promise<boolean> {
    const mem = this.mem!;
    if (mem.releasePublish === undefined || heads.length === 0) {
      if (regions.length > 0) {
        if (mem.releaseMany !== undefined) await mem.releaseMany(regions);
        else for (const r of regions) await mem.release(r);
      }
      await this.pushMany(heads, lens);
      return false;
    }
    if (this.releasing.length > 0) await Promise.all(this.releasing.splice(0));
    const used = this.used!;
    const mask = this.size - 1;
    for (let i = 0; i < heads.length; i++) {
      const slot = 4 + 8 * ((this.nextUsed + i) & mask);
      used.setU32(slot, heads[i]!);
      used.setU32(slot + 4, lens[i]!);
    }
    const newIdx = (this.nextUsed + heads.length) & 0xffff;
    const old = this.signalledUsed;
    // The core decides, after the store, with needsInterrupt's rule (unmap_publish.ts).
    this.signalledUsed = newIdx;
    this.nextUsed = newIdx;
    this.inFlight = Math.max(0, this.inFlight - heads.length);
    if (port >= 0) willInterrupt();
    const when = { region: this.avail!, off: this.eventIdx ? 4 + 2 * this.size : 0, old: this.eventIdx ? old : -1 };
    const sent = await mem.releasePublish(regions, used, 2, newIdx, port, port >= 0 ? when : null);
    // Nothing decided (no such call, or the send failed): needsInterrupt decides, as without it.
    if (sent === null && this.signalledUsed === newIdx) this.signalledUsed = old;
    return sent === true;
  }

  /**
   * Whether the driver wants an interrupt for what was pushed since the last one (§2.7.7/§2.7.10):
   * with EVENT_IDX, iff used_event lies in (old, new]; otherwise unless NO_INTERRUPT is set.
   */
  async needsInterrupt(): Promise<boolean> {
    const avail = this.avail!;
    const n = this.size;
    const newIdx = this.nextUsed;
    const old = this.signalledUsed;
    if (newIdx === old) return false;
    this.signalledUsed = newIdx;
    const fresh = this.wishFresh;
    this.wishFresh = false;
    if (this.eventIdx) {
      const r = fresh ? undefined : this.mem!.refresh(avail, 4 + 2 * n, 2);
      if (r !== undefined) await r;
      const e = avail.u16(4 + 2 * n);
      return ((newIdx - e - 1) & 0xffff) < ((newIdx - old) & 0xffff);
    }
    const r = fresh ? undefined : this.mem!.refresh(avail, 0, 2);
    if (r !== undefined) await r;
    return (avail.u16(0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Idle with EVENT_IDX: asks for a kick at the next buffer (avail_event = next_avail), then
   * looks again; true if work arrived meanwhile (the caller keeps going).
   */
  async armNotify(): Promise<boolean> {
    const used = this.used!;
    const n = this.size;
    const mem = this.mem!;
    if (this.eventIdx) used.setU16(4 + 8 * n, this.nextAvail);
    if (mem.refreshMany !== undefined) {
      // Copy mode: the write and the look in one round trip (the port keeps them in order).
      await Promise.all([this.eventIdx ? mem.flush(used, 4 + 8 * n, 2) : undefined, mem.refresh(this.avail!, 2, 2)]);
    } else {
      const f = this.eventIdx ? mem.flush(used, 4 + 8 * n, 2) : undefined;
      if (f !== undefined) await f;
      const r = mem.refresh(this.avail!, 2, 2);
      if (r !== undefined) await r;
    }
    return this.avail!.u16(2) !== this.nextAvail;
  }
}

/** Ring reads: the main table is 16-aligned (checked); an indirect table need not be. */
function readU32(r: MemoryRegion, off: number, unaligned: boolean): number {
  if (!unaligned) return r.u32(off);
  return (r.u8(off) | (r.u8(off + 1) << 8) | (r.u8(off + 2) << 16) | (r.u8(off + 3) << 24)) >>> 0;
}
function readU16(r: MemoryRegion, off: number, unaligned: boolean): number {
  if (!unaligned) return r.u16(off);
  return r.u8(off) | (r.u8(off + 1) << 8);
}
