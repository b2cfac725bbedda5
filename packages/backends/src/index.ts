/** @xenon/backends — public face. */

export { IoreqClient, type IoreqHandler, type IoreqRange } from "./driver_domain/ioreq_client.js";
// Driver domains: virtio device models in a domain of their own (worker thread or child process), serving guests through IOREQ servers.
export type { DriverDomainMode } from "./driver_domain/kernel.js";
export {
  DriverDomain,
  type DriverDomainDevice,
  type DriverDomainOptions,
  VirtioBackendHandle,
  type VirtioBackendOptions,
} from "./driver_domain/launch.js";
export { FAULT_KINDS, type FaultKind, type VirtioDeviceSpec } from "./driver_domain/protocol.js";
export { BlkDevice, BlkFeature, type BlkOptions } from "./virtio/blk/device.js";
// VirtIO: the virtio-mmio transport, split virtqueues, guest memory through grants, devices.
export type { DeviceBus } from "./virtio/bus.js";
export { FlatMemory, InProcessBus } from "./virtio/bus_inprocess.js";
export {
  DescFlag,
  DeviceId,
  Feature,
  InterruptBit,
  MMIO_MAGIC,
  MMIO_WINDOW_SIZE,
  Mmio,
  Status as VirtioStatus,
} from "./virtio/constants.js";
export type { QueueIo, VirtioDevice } from "./virtio/device.js";
export { grantDmaAddr, grantRefOf, isGrantAddr } from "./virtio/dma.js";
export { type GrantCopier, GrantCopyMemory } from "./virtio/grant_copy_memory.js";
export { GrantMapMemory, type GrantMapper } from "./virtio/grant_map_memory.js";
export type { GuestMemory, MemoryRegion } from "./virtio/guest_memory.js";
export { VirtioMmioTransport } from "./virtio/mmio_transport.js";
export { QueueError, type QueueRule } from "./virtio/queue_error.js";
export { RngDevice } from "./virtio/rng/device.js";
export { SplitQueue } from "./virtio/split_queue.js";
// XenStore daemon (the XenStore service domain): protocol engine, transports and socket server.
export {
  type ConnectionIdentity,
  InProcessConnection,
  SocketTransport,
  type XsConnector,
  type XsPort,
  type XsReply,
  type XsTransport,
} from "./xenstore/domain_conn.js";
export {
  type LaunchOptions as XenstoreLaunchOptions,
  XenstoreDomainHandle,
  type XenstoreDomainWorkerData,
} from "./xenstore/launch.js";
export { XS_STREAM_ERRORS, XsParser, XsStreamError, type XsStreamErrorCode } from "./xenstore/parser.js";
export { type Acl, formatPerm, type Perm, parsePerm } from "./xenstore/permissions.js";
export { DEFAULT_QUOTAS, type Quotas } from "./xenstore/quota.js";
export { type RingFailure, XenstoreRing, type XenstoreRingOptions } from "./xenstore/ring.js";
export { startXenstoredServer, type XenstoredServer } from "./xenstore/server.js";
export {
  encodeMessage,
  nulStrings,
  splitPayload,
  XENSTORE_ABS_PATH_MAX,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_REL_PATH_MAX,
  XS_ERRORS,
  XS_TYPES,
  XsError,
  type XsErrorName,
  type XsMessage,
  type XsTypeName,
} from "./xenstore/wire.js";
export { XenstoreDomain } from "./xenstore/xenstore_domain.js";
export { type DomainChannelFactory, Xenstored, type XenstoredOptions } from "./xenstore/xenstored.js";
