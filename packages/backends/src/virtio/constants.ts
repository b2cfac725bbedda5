/**
 * VirtIO 1.2 numbers used by the transport, the split ring and the devices (virtio-mmio §4.2,
 * split virtqueue §2.7, feature bits §6). Values from the spec; see shared/reference/virtio.md.
 */

/** virtio-mmio register offsets (version 2). */
export const Mmio = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_DRIVER_LOW: 0x090,
  QUEUE_DRIVER_HIGH: 0x094,
  QUEUE_DEVICE_LOW: 0x0a0,
  QUEUE_DEVICE_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" read as a little-endian u32. */
export const MMIO_MAGIC = 0x74726976;
export const MMIO_VERSION = 2;
/** Bytes per virtio-mmio window (Xen's VIRTIO_MMIO_DEV_SIZE). */
export const MMIO_WINDOW_SIZE = 0x200;

export const InterruptBit = { VRING: 1, CONFIG: 2 } as const;

/** Device status bits (§2.1). */
export const Status = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 0x40,
  FAILED: 0x80,
} as const;

/** Feature bit numbers (§6). Transport bits ≥ 32 live in the high word. */
export const Feature = {
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  ACCESS_PLATFORM: 33,
} as const;

/** Device IDs (§5). */
export const DeviceId = { NET: 1, BLOCK: 2, CONSOLE: 3, ENTROPY: 4 } as const;

/** Split-ring descriptor flags (§2.7.5). */
export const DescFlag = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
export const DESC_SIZE = 16;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;
/** Largest split queue size (§2.7: a power of two that fits 16-bit indices). */
export const MAX_QUEUE_SIZE = 32768;
