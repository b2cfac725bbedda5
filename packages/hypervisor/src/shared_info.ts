import type { MachineMemory } from "@xenon/hw";
import {
  EVTCHN_WORD_BYTES,
  SHARED_INFO_EVTCHN_MASK_OFFSET,
  SHARED_INFO_EVTCHN_PENDING_OFFSET,
  SHARED_INFO_VCPU_INFO_OFFSET,
  VcpuInfo,
} from "./public/layout.js";

/**
 * Atomic views of the shared_info page and of vcpu_info blocks. The guest's vCPU thread reads and
 * writes the same bytes, so every access that races with the guest uses Atomics:
 *  - a 64-bit xen_ulong_t word is two Int32 halves, little-endian (bit b lives in half b >> 5);
 *  - evtchn_upcall_pending is a byte, exchanged with Atomics on the Uint8Array view.
 */
export interface SharedRegion {
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
  /** Byte offset of the region inside u8/i32's buffer; 8-aligned. */
  readonly off: number;
}

/** The shared_info frame of a domain. */
export function sharedInfoRegion(memory: MachineMemory, mfn: number): SharedRegion {
  const c = memory.chunk(mfn);
  return { u8: c.u8, i32: c.i32, off: memory.frameOffset(mfn) };
}

/** vcpu_info block `offset` bytes into machine frame mfn (offset 8-aligned, block within the frame). */
export function vcpuInfoInFrame(memory: MachineMemory, mfn: number, offset: number): SharedRegion {
  const c = memory.chunk(mfn);
  return { u8: c.u8, i32: c.i32, off: memory.frameOffset(mfn) + offset };
}

/** vcpu0's vcpu_info inside shared_info. */
export function legacyVcpuInfo(shared: SharedRegion): SharedRegion {
  return { u8: shared.u8, i32: shared.i32, off: shared.off + SHARED_INFO_VCPU_INFO_OFFSET };
}

/**
 * A private vcpu_info for a vCPU that has not registered one (Xen's dummy_vcpu_info): events
 * still set shared_info's pending bits, but the selector and upcall flag land here, unseen.
 */
export function dummyVcpuInfo(): SharedRegion {
  const b = new SharedArrayBuffer(VcpuInfo.size);
  return { u8: new Uint8Array(b), i32: new Int32Array(b), off: 0 };
}

/** Int32 index and bit mask of `bit` within the 64-bit word array starting at byte `arrayOff`. */
function bitPos(r: SharedRegion, arrayOff: number, bit: number): [number, number] {
  const word = bit >>> 6;
  const half = (bit >>> 5) & 1;
  return [((r.off + arrayOff + word * EVTCHN_WORD_BYTES) >>> 2) + half, 1 << (bit & 31)];
}

function testAndSet(r: SharedRegion, arrayOff: number, bit: number): boolean {
  const [i, m] = bitPos(r, arrayOff, bit);
  return (Atomics.or(r.i32, i, m) & m) !== 0;
}

function testAndClear(r: SharedRegion, arrayOff: number, bit: number): boolean {
  const [i, m] = bitPos(r, arrayOff, bit);
  return (Atomics.and(r.i32, i, ~m) & m) !== 0;
}

function test(r: SharedRegion, arrayOff: number, bit: number): boolean {
  const [i, m] = bitPos(r, arrayOff, bit);
  return (Atomics.load(r.i32, i) & m) !== 0;
}

/** shared_info.evtchn_pending[] / evtchn_mask[] bit operations (port p = bit p). */
export const evtchnPending = {
  testAndSet: (s: SharedRegion, port: number) => testAndSet(s, SHARED_INFO_EVTCHN_PENDING_OFFSET, port),
  testAndClear: (s: SharedRegion, port: number) => testAndClear(s, SHARED_INFO_EVTCHN_PENDING_OFFSET, port),
  test: (s: SharedRegion, port: number) => test(s, SHARED_INFO_EVTCHN_PENDING_OFFSET, port),
};
export const evtchnMask = {
  testAndSet: (s: SharedRegion, port: number) => testAndSet(s, SHARED_INFO_EVTCHN_MASK_OFFSET, port),
  testAndClear: (s: SharedRegion, port: number) => testAndClear(s, SHARED_INFO_EVTCHN_MASK_OFFSET, port),
  test: (s: SharedRegion, port: number) => test(s, SHARED_INFO_EVTCHN_MASK_OFFSET, port),
};

const SEL_OFF = VcpuInfo.fields.evtchn_pending_sel.offset;
const UPCALL_OFF = VcpuInfo.fields.evtchn_upcall_pending.offset;

/** vcpu_info.evtchn_pending_sel bit w ("word w of evtchn_pending may have something"). */
export function selTestAndSet(v: SharedRegion, word: number): boolean {
  return testAndSet(v, SEL_OFF, word);
}

/** Sets evtchn_upcall_pending; true if it was already set. */
export function upcallTestAndSet(v: SharedRegion): boolean {
  return Atomics.exchange(v.u8, v.off + UPCALL_OFF, 1) !== 0;
}

export function upcallPending(v: SharedRegion): boolean {
  return Atomics.load(v.u8, v.off + UPCALL_OFF) !== 0;
}

/**
 * The guest side of the 2-level ABI, for TypeScript domains (what a guest's upcall handler does):
 * clear evtchn_upcall_pending, exchange the selector with 0, and for each selected word take the
 * pending-and-unmasked ports, clearing each pending bit before reporting it. Ports whose bit
 * reappears while this runs are picked up by the next call (the core re-raises the upcall).
 */
export function takePendingPorts(shared: SharedRegion, vcpu: SharedRegion, out: number[]): number[] {
  Atomics.store(vcpu.u8, vcpu.off + UPCALL_OFF, 0);
  const selIdx = (vcpu.off + SEL_OFF) >>> 2;
  for (let half = 0; half < 2; half++) {
    let sel = Atomics.exchange(vcpu.i32, selIdx + half, 0);
    while (sel !== 0) {
      const b = 31 - Math.clz32(sel);
      sel &= ~(1 << b);
      const word = half * 32 + b;
      for (let h = 0; h < 2; h++) {
        const pi = ((shared.off + SHARED_INFO_EVTCHN_PENDING_OFFSET + word * EVTCHN_WORD_BYTES) >>> 2) + h;
        const mi = ((shared.off + SHARED_INFO_EVTCHN_MASK_OFFSET + word * EVTCHN_WORD_BYTES) >>> 2) + h;
        let ready = Atomics.load(shared.i32, pi) & ~Atomics.load(shared.i32, mi);
        while (ready !== 0) {
          const bit = 31 - Math.clz32(ready);
          ready &= ~(1 << bit);
          const m = 1 << bit;
          if ((Atomics.and(shared.i32, pi, ~m) & m) !== 0) out.push(word * 64 + h * 32 + bit);
        }
      }
    }
  }
  return out;
}

/** Int32 index of the word holding evtchn_upcall_pending (what a TS domain waits on). */
export function upcallWordIndex(v: SharedRegion): number {
  return (v.off + UPCALL_OFF) >>> 2;
}
