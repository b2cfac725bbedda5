/**
 * Xen's public/hvm/ioreq.h and dm_op.h, as Xenon uses them (see ABI.md §IOREQ): the per-vCPU
 * ioreq_t slot of the shared ioreq page, the buffered ioreq page, their states and the dm_op
 * numbers a device model calls. Layouts are declared here once; ioreq.test.ts checks them byte
 * by byte against hand-written literals of the C structs.
 */
import { struct } from "./layout.js";

/** struct ioreq (32 bytes). `flags` is the C bitfield byte: state:4, data_is_ptr:1, dir:1, df:1, pad:1. */
export const Ioreq = struct("ioreq", 32, {
  addr: [0, "u64"],
  data: [8, "u64"],
  count: [16, "u32"],
  size: [20, "u32"],
  vp_eport: [24, "u32"],
  pad0: [28, "u16"],
  flags: [30, "u8"],
  type: [31, "u8"],
});
export const IOREQ_SIZE = 32;
/** struct shared_iopage holds one ioreq_t per vCPU: this many fit in its frame. */
export const IOREQS_PER_PAGE = 4096 / IOREQ_SIZE;

/** ioreq_t.flags bit positions (GCC's LSB-first little-endian bitfields). */
export const IOREQ_STATE_MASK = 0x0f;
export const IOREQ_DATA_IS_PTR = 1 << 4;
export const IOREQ_DIR_SHIFT = 5;
export const IOREQ_DF = 1 << 6;

export const IoreqState = {
  NONE: 0,
  READY: 1,
  INPROCESS: 2,
  IORESP_READY: 3,
} as const;

export const IOREQ_READ = 1;
export const IOREQ_WRITE = 0;

export const IoreqType = {
  PIO: 0,
  COPY: 1,
  PCI_CONFIG: 2,
  TIMEOFFSET: 7,
  INVALIDATE: 8,
} as const;

/**
 * struct buffered_iopage: read_pointer (the device model's), write_pointer (Xen's), then
 * IOREQ_BUFFER_SLOT_NUM buf_ioreq_t slots; slot i holds request number n with n % 511 === i.
 */
export const BufferedIopage = struct("buffered_iopage", 8, {
  read_pointer: [0, "u32"],
  write_pointer: [4, "u32"],
});
export const IOREQ_BUFFER_SLOT_NUM = 511;
export const BUF_IOREQ_BASE = 8;
/**
 * struct buf_ioreq (8 bytes): type u8; then in the same 32-bit unit pad:1, dir:1, size:2 (bits
 * 8-11; size is log2 of the byte count) and addr:20 (bits 12-31); then data u32.
 */
export const BufIoreq = struct("buf_ioreq", 8, {
  word: [0, "u32"],
  data: [4, "u32"],
});

/** Packs a buf_ioreq's first word. */
export function bufIoreqWord(type: number, dir: number, sizeLog2: number, addr20: number): number {
  return ((type & 0xff) | ((dir & 1) << 9) | ((sizeLog2 & 3) << 10) | ((addr20 & 0xfffff) << 12)) >>> 0;
}
/** Unpacks a buf_ioreq's first word. */
export function parseBufIoreqWord(word: number): { type: number; dir: number; size: number; addr20: number } {
  return { type: word & 0xff, dir: (word >>> 9) & 1, size: 1 << ((word >>> 10) & 3), addr20: word >>> 12 };
}

/** XEN_DMOP_* operation numbers (dm_op.h). */
export const DmOp = {
  create_ioreq_server: 1,
  get_ioreq_server_info: 2,
  map_io_range_to_ioreq_server: 3,
  unmap_io_range_from_ioreq_server: 4,
  set_ioreq_server_state: 5,
  destroy_ioreq_server: 6,
  set_irq_level: 19,
  nr_vcpus: 20,
} as const;

/** handle_bufioreq of create_ioreq_server. */
export const HVM_IOREQSRV_BUFIOREQ_OFF = 0;
export const HVM_IOREQSRV_BUFIOREQ_LEGACY = 1;
export const HVM_IOREQSRV_BUFIOREQ_ATOMIC = 2;

/** xen_dm_op_ioreq_server_range.type. */
export const XEN_DMOP_IO_RANGE_PORT = 0;
export const XEN_DMOP_IO_RANGE_MEMORY = 1;
export const XEN_DMOP_IO_RANGE_PCI = 2;
/**
 * Xenon extension: a MEMORY range whose writes are posted through the buffered ring (the vCPU
 * does not wait), for doorbells such as virtio-mmio QueueNotify. Reads there stay synchronous.
 * The range must lie inside one 1 MiB-aligned region: a buf_ioreq carries only addr:20.
 */
export const XENON_DMOP_IO_RANGE_MEMORY_POSTED = 0x81;

/** XENMEM_acquire_resource type for ioreq server pages; frame 0 is the buffered page, 1 the ioreq page. */
export const XENMEM_resource_ioreq_server = 0;
export const XENMEM_resource_ioreq_server_frame_bufioreq = 0;
export const XENMEM_resource_ioreq_server_frame_ioreq = (n: number): number => 1 + n;

/** Most ioreq servers one target domain may have (Xen's MAX_NR_IOREQ_SERVERS). */
export const MAX_NR_IOREQ_SERVERS = 8;
