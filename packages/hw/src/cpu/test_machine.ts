/**
 * A small machine for CPU tests and benchmarks: machine memory, a FlatP2m with guest RAM at
 * RAM_BASE (RWX), a Cpu, and helpers to load code and peek at guest memory. Not a product API.
 */
import { MachineMemory, PAGE_SIZE } from "../memory/machine_memory.js";
import { Cpu } from "./cpu.js";
import { FlatP2m } from "./flat_p2m.js";
import { P2M_NONE, P2M_R, P2M_W, P2M_X, p2mEntryMfn } from "./p2m.js";
import type { Asm } from "./test_asm.js";
import type { TimeSource } from "./time.js";
import { VcpuSlot } from "./vcpu_state.js";

/** Guest-physical base of RAM (above 2^31 on purpose: addresses are negative as int32). */
export const RAM_BASE = 0x8000_0000;
/** Where tests put data (inside RAM, away from code). */
export const DATA_BASE = 0x8001_0000;
/** An address the P2M does not map: accesses become MMIO exits. */
export const MMIO_BASE = 0x1000_0000;
export const RAM_PAGES = 64;
/** Machine frame backing the first RAM page (not 0, so gfn != mfn). */
export const MFN_BASE = 0x300;
export const RWX = P2M_R | P2M_W | P2M_X;

export interface TestMachineOptions {
  ramPages?: number;
  time?: TimeSource;
  memory?: MachineMemory;
  p2m?: FlatP2m;
  state?: Int32Array;
}

/** A TimeSource the test drives by hand. */
export class ManualTime implements TimeSource {
  value = 0;
  now(): number {
    return this.value;
  }
}

export class TestMachine {
  readonly memory: MachineMemory;
  readonly p2m: FlatP2m;
  readonly cpu: Cpu;
  readonly time: TimeSource;

  constructor(opts: TestMachineOptions = {}) {
    this.memory = opts.memory ?? new MachineMemory({ bytes: 16 << 20 });
    this.time = opts.time ?? new ManualTime();
    if (opts.p2m === undefined) {
      this.p2m = new FlatP2m();
      this.p2m.mapRange(RAM_BASE >>> 12, MFN_BASE, opts.ramPages ?? RAM_PAGES, RWX);
    } else this.p2m = opts.p2m;
    this.cpu = new Cpu({
      memory: this.memory,
      p2m: this.p2m,
      time: this.time,
      ...(opts.state === undefined ? {} : { state: opts.state }),
    });
    if (opts.state === undefined) this.pc = RAM_BASE;
  }

  get state(): Int32Array {
    return this.cpu.state;
  }
  get pc(): number {
    return this.cpu.state[VcpuSlot.PC]! >>> 0;
  }
  set pc(v: number) {
    this.cpu.state[VcpuSlot.PC] = v | 0;
  }
  x(r: number): number {
    return this.cpu.state[r]!;
  }
  setX(r: number, v: number): void {
    this.cpu.state[r] = v | 0;
  }

  /** Copies bytes into guest RAM at guest-physical `addr` (must be mapped RAM). */
  write(addr: number, bytes: Uint8Array): void {
    for (let k = 0; k < bytes.length; k++) this.byteView(addr + k)[0] = bytes[k]!;
  }
  load(asm: Asm): this {
    this.write(asm.origin, asm.bytes());
    return this;
  }
  writeWord(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v | 0, true);
    this.write(addr, b);
  }
  readWord(addr: number): number {
    let v = 0;
    for (let k = 3; k >= 0; k--) v = (v << 8) | this.byteView(addr + k)[0]!;
    return v | 0;
  }

  /** A one-byte view of guest-physical `addr` (through the P2M, not the TLB). */
  private byteView(addr: number): Uint8Array {
    const a = addr >>> 0;
    const e = this.p2m.lookup(a >>> 12);
    if (e === P2M_NONE) throw new Error(`guest address 0x${a.toString(16)} is not RAM`);
    const mfn = p2mEntryMfn(e);
    const c = this.memory.chunk(mfn);
    return c.u8.subarray(this.memory.frameOffset(mfn) + (a & (PAGE_SIZE - 1)));
  }
}
