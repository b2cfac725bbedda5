/**
 * One IOREQ server (Xen's struct ioreq_server, xen/common/ioreq.c): a device model in
 * `emulator` that serves guest-physical ranges of `target`. It owns two frames — the shared
 * ioreq page (one ioreq_t slot per target vCPU) and the buffered page (posted writes) — and one
 * hypervisor-consumed event channel per target vCPU plus one for the buffered ring, all
 * allocated in the target domain for the emulator to bind to, as Xen does.
 *
 * Invariants: a slot goes NONE -> READY only here (the core), READY/INPROCESS -> IORESP_READY only
 * in the emulator, IORESP_READY -> NONE only here. Each slot's state lives in the 32-bit word at
 * offset 28 (pad0 | flags << 16 | type << 24) and is read and written with Atomics, so the other
 * fields are published before it.
 */
import type { MachineMemory } from "@xenon/hw";
import {
  BUF_IOREQ_BASE,
  bufIoreqWord,
  IOREQ_BUFFER_SLOT_NUM,
  IOREQ_DIR_SHIFT,
  IOREQ_READ,
  IOREQ_SIZE,
  IOREQ_STATE_MASK,
  IOREQ_WRITE,
  IoreqState,
  IoreqType,
} from "../public/ioreq.js";

/** An inclusive guest-physical range, as map_io_range_to_ioreq_server takes it. */
export interface IoRange {
  readonly start: number;
  readonly end: number;
  /** Writes here go through the buffered ring (XENON_DMOP_IO_RANGE_MEMORY_POSTED). */
  readonly posted: boolean;
}

const STATE_WORD = 28 / 4;

export class IoreqServer {
  readonly ranges: IoRange[] = [];
  enabled = false;
  /** Per target vCPU: the hypervisor-consumed port the emulator binds to (ioreq_t.vp_eport). */
  readonly vcpuPorts: number[];
  private readonly ioreqI32: Int32Array;
  private readonly ioreqView: DataView;
  private readonly bufI32: Int32Array | null;

  constructor(
    memory: MachineMemory,
    readonly id: number,
    readonly emulator: number,
    readonly target: number,
    readonly ioreqMfn: number,
    /** -1 when created with HVM_IOREQSRV_BUFIOREQ_OFF. */
    readonly bufMfn: number,
    vcpuPorts: number[],
    /** 0 when there is no buffered ring. */
    readonly bufPort: number,
  ) {
    this.vcpuPorts = vcpuPorts;
    const c = memory.chunk(ioreqMfn);
    const off = memory.frameOffset(ioreqMfn);
    this.ioreqI32 = new Int32Array(c.buffer, off, 1024);
    this.ioreqView = new DataView(c.buffer, off, 4096);
    for (let v = 0; v < vcpuPorts.length; v++) this.ioreqView.setUint32(v * IOREQ_SIZE + 24, vcpuPorts[v]!, true);
    if (bufMfn >= 0) {
      const b = memory.chunk(bufMfn);
      this.bufI32 = new Int32Array(b.buffer, memory.frameOffset(bufMfn), 1024);
    } else this.bufI32 = null;
  }

  /**
   * The range that holds all of [addr, addr+size), if any (Xen: a request goes to a server only if
   * it fits entirely). A posted range wins for a write; reads never use one.
   */
  claim(addr: number, size: number, write: boolean): IoRange | null {
    let found: IoRange | null = null;
    for (const r of this.ranges) {
      if (addr < r.start || addr + size - 1 > r.end) continue;
      if (r.posted && write) return r;
      if (!r.posted) found = r;
    }
    return found;
  }

  slotState(vcpu: number): number {
    return (Atomics.load(this.ioreqI32, (vcpu * IOREQ_SIZE) / 4 + STATE_WORD) >>> 16) & IOREQ_STATE_MASK;
  }

  /** Posts a synchronous MMIO request in vCPU `vcpu`'s slot (which must be NONE) and marks it READY. */
  post(vcpu: number, addr: number, size: number, write: boolean, value: number): void {
    const b = vcpu * IOREQ_SIZE;
    const dv = this.ioreqView;
    dv.setUint32(b, addr >>> 0, true);
    dv.setUint32(b + 4, 0, true);
    dv.setUint32(b + 8, write ? maskToSize(value, size) : 0, true);
    dv.setUint32(b + 12, 0, true);
    dv.setUint32(b + 16, 1, true);
    dv.setUint32(b + 20, size, true);
    const flags = IoreqState.READY | ((write ? IOREQ_WRITE : IOREQ_READ) << IOREQ_DIR_SHIFT);
    Atomics.store(this.ioreqI32, b / 4 + STATE_WORD, (flags << 16) | (IoreqType.COPY << 24));
  }

  /** The answered value (low 32 bits of data) of a slot in IORESP_READY; the slot goes back to NONE. */
  takeResponse(vcpu: number): number {
    const b = vcpu * IOREQ_SIZE;
    const value = this.ioreqView.getUint32(b + 8, true);
    Atomics.store(this.ioreqI32, b / 4 + STATE_WORD, IoreqType.COPY << 24);
    return value;
  }

  /** Resets a slot to NONE whatever its state (server disabled or destroyed under a waiting vCPU). */
  clearSlot(vcpu: number): void {
    Atomics.store(this.ioreqI32, (vcpu * IOREQ_SIZE) / 4 + STATE_WORD, 0);
  }

  /**
   * Appends a posted write to the buffered ring (Xen's send_buffered_ioreq). False when the ring is
   * full or absent: the caller then sends it synchronously.
   */
  postBuffered(addr: number, size: number, value: number): boolean {
    const b = this.bufI32;
    if (b === null) return false;
    const rp = Atomics.load(b, 0) >>> 0;
    const wp = Atomics.load(b, 1) >>> 0;
    if ((wp - rp) >>> 0 >= IOREQ_BUFFER_SLOT_NUM) return false;
    const slot = (BUF_IOREQ_BASE + (wp % IOREQ_BUFFER_SLOT_NUM) * 8) / 4;
    const sizeLog2 = size === 1 ? 0 : size === 2 ? 1 : 2;
    b[slot] = bufIoreqWord(IoreqType.COPY, IOREQ_WRITE, sizeLog2, addr) | 0;
    b[slot + 1] = maskToSize(value, size) | 0;
    // The slot is written before the device model can see the new write_pointer.
    Atomics.store(b, 1, (wp + 1) | 0);
    return true;
  }
}

function maskToSize(value: number, size: number): number {
  if (size === 1) return value & 0xff;
  if (size === 2) return value & 0xffff;
  return value >>> 0;
}
