import type { Iommu } from "../iommu/iommu.js";

/**
 * A DMA-capable emulated device for passthrough ("xenon,dma-engine"): a memory-to-memory copy
 * engine, as simple as a DMA controller gets. The driver programs source, destination and length
 * (I/O virtual addresses: with the device assigned to a guest, its guest-physical addresses) and
 * starts it; every byte moves through the IOMMU, and a transfer that touches anything the IOMMU
 * does not map moves nothing and ends in FAULT with the faulting IOVA latched.
 *
 * Registers (32-bit, little-endian; other offsets read 0 and ignore writes):
 *   0x00 ID          RO  0x414d4458 ("XDMA")
 *   0x04 SRC_LO/0x08 SRC_HI    source IOVA
 *   0x0c DST_LO/0x10 DST_HI    destination IOVA
 *   0x14 LEN         bytes, at most MAX_LEN
 *   0x18 CTRL        bit 0 START (write 1: run the transfer now), bit 1 IRQ_EN (kept)
 *   0x1c STATUS      0 idle, 1 done, 2 fault, 3 bad length; a write clears it to idle
 *   0x20 FAULT_LO/0x24 FAULT_HI  IOVA of the first byte the IOMMU refused
 *   0x28 DONE        transfers completed (wraps)
 * A transfer runs to completion inside the START write (the vCPU sees it done on its next read);
 * with IRQ_EN the device raises its interrupt when it ends, done or not.
 */
export const DMA_ENGINE_ID = 0x414d4458;
export const DMA_ENGINE_WINDOW = 0x1000;
export const DMA_MAX_LEN = 1 << 20;
export const DmaReg = {
  ID: 0x00,
  SRC_LO: 0x04,
  SRC_HI: 0x08,
  DST_LO: 0x0c,
  DST_HI: 0x10,
  LEN: 0x14,
  CTRL: 0x18,
  STATUS: 0x1c,
  FAULT_LO: 0x20,
  FAULT_HI: 0x24,
  DONE: 0x28,
} as const;
export const DmaCtrl = { START: 1, IRQ_EN: 2 } as const;
export const DmaStatus = { IDLE: 0, DONE: 1, FAULT: 2, BAD_LENGTH: 3 } as const;

/** Versioned register state (getState/setState). */
export interface DmaEngineState {
  readonly version: 1;
  readonly src: number;
  readonly dst: number;
  readonly len: number;
  readonly ctrl: number;
  readonly status: number;
  readonly fault: number;
  readonly done: number;
}

export class DmaEngine {
  private src = 0;
  private dst = 0;
  private len = 0;
  private ctrl = 0;
  private status: number = DmaStatus.IDLE;
  private faultIova = 0;
  private done = 0;

  /**
   * @param iommu the host IOMMU every access goes through
   * @param deviceId this device's IOMMU requester id
   * @param raise asserts the device's interrupt line
   */
  constructor(
    private readonly iommu: Iommu,
    readonly deviceId: number,
    private readonly raise: () => void,
  ) {}

  read(offset: number, size: number): number {
    if (size !== 4 || (offset & 3) !== 0) return 0;
    switch (offset) {
      case DmaReg.ID:
        return DMA_ENGINE_ID;
      case DmaReg.SRC_LO:
        return this.src % 2 ** 32;
      case DmaReg.SRC_HI:
        return Math.floor(this.src / 2 ** 32);
      case DmaReg.DST_LO:
        return this.dst % 2 ** 32;
      case DmaReg.DST_HI:
        return Math.floor(this.dst / 2 ** 32);
      case DmaReg.LEN:
        return this.len;
      case DmaReg.CTRL:
        return this.ctrl & DmaCtrl.IRQ_EN;
      case DmaReg.STATUS:
        return this.status;
      case DmaReg.FAULT_LO:
        return this.faultIova % 2 ** 32;
      case DmaReg.FAULT_HI:
        return Math.floor(this.faultIova / 2 ** 32);
      case DmaReg.DONE:
        return this.done;
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): void {
    if (size !== 4 || (offset & 3) !== 0) return;
    value >>>= 0;
    // IOVAs are 39 bits: the high words keep 7.
    const hi = (v: number) => (v & 0x7f) * 2 ** 32;
    switch (offset) {
      case DmaReg.SRC_LO:
        this.src = hi(Math.floor(this.src / 2 ** 32)) + value;
        return;
      case DmaReg.SRC_HI:
        this.src = hi(value) + (this.src % 2 ** 32);
        return;
      case DmaReg.DST_LO:
        this.dst = hi(Math.floor(this.dst / 2 ** 32)) + value;
        return;
      case DmaReg.DST_HI:
        this.dst = hi(value) + (this.dst % 2 ** 32);
        return;
      case DmaReg.LEN:
        this.len = value;
        return;
      case DmaReg.CTRL:
        this.ctrl = value & DmaCtrl.IRQ_EN;
        if ((value & DmaCtrl.START) !== 0) this.run();
        return;
      case DmaReg.STATUS:
        this.status = DmaStatus.IDLE;
        return;
    }
  }

  private run(): void {
    if (this.len === 0 || this.len > DMA_MAX_LEN) this.status = DmaStatus.BAD_LENGTH;
    else {
      const before = this.iommu.faultCount;
      const data = this.iommu.dmaRead(this.deviceId, this.src, this.len);
      if (data !== null && this.iommu.dmaWrite(this.deviceId, this.dst, data)) {
        this.status = DmaStatus.DONE;
        this.done = (this.done + 1) >>> 0;
      } else {
        this.status = DmaStatus.FAULT;
        const f = this.iommu.faultCount > before ? this.iommu.faults.at(-1) : undefined;
        this.faultIova = f?.iova ?? (data === null ? this.src : this.dst);
      }
    }
    if ((this.ctrl & DmaCtrl.IRQ_EN) !== 0) this.raise();
  }

  getState(): DmaEngineState {
    return {
      version: 1,
      src: this.src,
      dst: this.dst,
      len: this.len,
      ctrl: this.ctrl,
      status: this.status,
      fault: this.faultIova,
      done: this.done,
    };
  }

  setState(s: DmaEngineState): void {
    if (s.version !== 1) throw new Error(`dma-engine state version ${String(s.version)} is not 1`);
    this.src = s.src;
    this.dst = s.dst;
    this.len = s.len >>> 0;
    this.ctrl = s.ctrl & DmaCtrl.IRQ_EN;
    this.status = s.status;
    this.faultIova = s.fault;
    this.done = s.done >>> 0;
  }

  reset(): void {
    this.src = this.dst = this.len = this.ctrl = this.faultIova = this.done = 0;
    this.status = DmaStatus.IDLE;
  }
}
