/** @xenon/hw — emulated hardware, no policy: machine memory, the RV32IMAC hart, ELF images. */

export { compressedTable, expandCompressed } from "./cpu/compressed.js";
export type { CpuOptions } from "./cpu/cpu.js";
export { Cpu, completeMmioLoad, SLICE } from "./cpu/cpu.js";
export { Csr } from "./cpu/csr.js";
export type { CompressedSpec, InstExt, InstFormat, InstSpec } from "./cpu/decode_table.js";
export { COMPRESSED, classify, INSTRUCTIONS } from "./cpu/decode_table.js";
export {
  Cause,
  EXIT_REASON_NAMES,
  ExitReason,
  Interrupt,
  SIP_SEIP,
  SIP_SSIP,
  SIP_STIP,
  SSTATUS_SIE,
  SSTATUS_SPIE,
  SSTATUS_SPP,
} from "./cpu/exit.js";
export { FlatP2m } from "./cpu/flat_p2m.js";
export type { P2mLookup } from "./cpu/p2m.js";
export {
  P2M_ENTRY_MFN_SCALE,
  P2M_FLAGS_MASK,
  P2M_LOGDIRTY,
  P2M_NONE,
  P2M_R,
  P2M_W,
  P2M_X,
  p2mEntry,
  p2mEntryFlags,
  p2mEntryMfn,
} from "./cpu/p2m.js";
export type { TimeSource } from "./cpu/time.js";
export { hostTime, hostTimeSince, TIMEBASE_HZ } from "./cpu/time.js";
export { createVcpuState, VCPU_STATE_BYTES, VCPU_STATE_WORDS, VcpuSlot } from "./cpu/vcpu_state.js";
export {
  DMA_ENGINE_ID,
  DMA_ENGINE_WINDOW,
  DMA_MAX_LEN,
  DmaCtrl,
  DmaEngine,
  type DmaEngineState,
  DmaReg,
  DmaStatus,
} from "./dma_engine/dma_engine.js";
export type { ElfImage, ElfSegment } from "./elf/elf32.js";
export { EF_RISCV_RVC, ElfError, EM_RISCV, PF_R, PF_W, PF_X, PT_LOAD, parseElf32 } from "./elf/elf32.js";
export type { DmaAccess, IommuFault, IommuPageSize, Translation } from "./iommu/iommu.js";
export {
  IOMMU_PAGE_1G,
  IOMMU_PAGE_2M,
  IOMMU_PAGE_4K,
  IOVA_LIMIT,
  Iommu,
  IommuContext,
  IommuError,
} from "./iommu/iommu.js";
export { FrameAllocator } from "./memory/frame_allocator.js";
export type { MachineMemoryOptions, MemoryChunk } from "./memory/machine_memory.js";
export { MAX_FRAMES, MachineMemory, MemoryError, PAGE_MASK, PAGE_SHIFT, PAGE_SIZE } from "./memory/machine_memory.js";
