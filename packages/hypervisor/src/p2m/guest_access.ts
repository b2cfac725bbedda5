import { type MachineMemory, PAGE_MASK, PAGE_SIZE } from "@xenon/hw";
import { err } from "../public/errno.js";
import type { P2m } from "./p2m.js";
import { p2mIsRam, p2mIsWritableRam } from "./types.js";

/** Guest-physical addresses are 32-bit. */
const GPA_LIMIT = 2 ** 32;
/** Largest single copy the core will make for a guest (hypercall arguments are small). */
export const MAX_GUEST_COPY = 1 << 24;

/**
 * The core's accessors for one domain's memory (Xen's copy_{from,to}_guest on a translated
 * guest). Every byte goes through this domain's P2M, so the core can only touch frames the
 * domain was given, and only through RAM-typed entries: grant-mapped, foreign and MMIO gfns are
 * -EFAULT here, as in Xen on Arm. Guest-controlled numbers are validated, never trusted: every
 * method returns -EFAULT (or the value) and never throws.
 *
 * A copy checks the whole range before moving a byte, so a failed copy has no partial effect.
 * Writes are reported to log-dirty.
 */
export class GuestMemory {
  constructor(
    private readonly memory: MachineMemory,
    private readonly p2m: P2m,
  ) {}

  /** True when [gpa, gpa+len) is entirely RAM the core may read (or write). */
  check(gpa: number, len: number, write: boolean): boolean {
    if (!Number.isInteger(gpa) || !Number.isInteger(len) || gpa < 0 || len < 0 || len > MAX_GUEST_COPY) return false;
    if (gpa + len > GPA_LIMIT) return false;
    if (len === 0) return true;
    const first = Math.floor(gpa / PAGE_SIZE);
    const last = Math.floor((gpa + len - 1) / PAGE_SIZE);
    for (let gfn = first; gfn <= last; gfn++) {
      const e = this.p2m.get(gfn);
      if (e === null || !(write ? p2mIsWritableRam(e.type) : p2mIsRam(e.type))) return false;
    }
    return true;
  }

  /** Copies guest bytes into `dst`. Returns 0 or -EFAULT. */
  readInto(gpa: number, dst: Uint8Array): number {
    if (!this.check(gpa, dst.length, false)) return err("EFAULT");
    let done = 0;
    while (done < dst.length) {
      const a = gpa + done;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, dst.length - done);
      const mfn = this.p2m.get(Math.floor(a / PAGE_SIZE))!.mfn;
      const c = this.memory.chunk(mfn);
      const base = this.memory.frameOffset(mfn) + off;
      dst.set(c.u8.subarray(base, base + n), done);
      done += n;
    }
    return 0;
  }

  /** A fresh copy of `len` guest bytes, or -EFAULT. */
  copyFromGuest(gpa: number, len: number): Uint8Array | number {
    if (!this.check(gpa, len, false)) return err("EFAULT");
    const out = new Uint8Array(len);
    this.readInto(gpa, out);
    return out;
  }

  /** Copies `src` into guest memory. Returns 0 or -EFAULT. */
  copyToGuest(gpa: number, src: Uint8Array): number {
    if (!this.check(gpa, src.length, true)) return err("EFAULT");
    let done = 0;
    while (done < src.length) {
      const a = gpa + done;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, src.length - done);
      const gfn = Math.floor(a / PAGE_SIZE);
      const mfn = this.p2m.get(gfn)!.mfn;
      const c = this.memory.chunk(mfn);
      c.u8.set(src.subarray(done, done + n), this.memory.frameOffset(mfn) + off);
      this.p2m.markGfnDirty(gfn);
      done += n;
    }
    return 0;
  }

  /** Little-endian reads: the value (>= 0) or -EFAULT. */
  readU8(gpa: number): number {
    return this.readLe(gpa, 1);
  }
  readU16(gpa: number): number {
    return this.readLe(gpa, 2);
  }
  readU32(gpa: number): number {
    return this.readLe(gpa, 4);
  }
  /** u64 as a number (exact below 2^53; callers reject anything >= 2^32 anyway). */
  readU64(gpa: number): number {
    return this.readLe(gpa, 8);
  }

  /** Little-endian writes (value truncated to the width): 0 or -EFAULT. */
  writeU8(gpa: number, v: number): number {
    return this.writeLe(gpa, 1, v);
  }
  writeU16(gpa: number, v: number): number {
    return this.writeLe(gpa, 2, v);
  }
  writeU32(gpa: number, v: number): number {
    return this.writeLe(gpa, 4, v);
  }
  writeU64(gpa: number, v: number): number {
    return this.writeLe(gpa, 8, v);
  }

  private readLe(gpa: number, n: number): number {
    const b = new Uint8Array(n);
    const rc = this.readInto(gpa, b);
    if (rc < 0) return rc;
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i]!;
    return v;
  }

  private writeLe(gpa: number, n: number, value: number): number {
    const b = new Uint8Array(n);
    let v = Number.isFinite(value) ? Math.trunc(value) : 0;
    if (v < 0) v = 2 ** (8 * n) + (v % 2 ** (8 * n));
    for (let i = 0; i < n; i++) {
      b[i] = v % 256;
      v = Math.floor(v / 256);
    }
    return this.copyToGuest(gpa, b);
  }
}
