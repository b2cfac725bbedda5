/** @xenon/backends — public face. */

export { IoreqClient, type IoreqHandler, type IoreqRange } from "./driver_domain/ioreq_client.js";
// Driver domains: virtio device models in a domain of their own (worker thread or child process), serving guests through IOREQ servers.
export type { DriverDomainMode } from "./driver_domain/kernel.js";
export {
  DriverDomain,
  type DriverDomainDevice,
  type DriverDomainOptions,
  type DriverDomainXenstore,
  type DriverDomainXenstoreAttach,
  type DriverDomainXenstoreDevice,
  type VifSwitch,
  VirtioBackendHandle,
  type VirtioBackendOptions,
} from "./driver_domain/launch.js";
export { FAULT_KINDS, type FaultKind, type VirtioDeviceSpec } from "./driver_domain/protocol.js";
export {
  checkVirtioBackend,
  setVirtioBackendState,
  type VirtioXenstoreDevice,
  virtioBackendNodes,
  virtioBackendPath,
  virtioDeviceType,
  virtioFrontendNodes,
  virtioFrontendPath,
  XenbusState,
  type XenbusStateValue,
} from "./driver_domain/xenbus.js";
export { BlkDevice, BlkFeature, type BlkOptions } from "./virtio/blk/device.js";
// VirtIO: the virtio-mmio transport, split virtqueues, guest memory through grants, devices.
export type { DeviceBus } from "./virtio/bus.js";
export { FlatMemory, InProcessBus } from "./virtio/bus_inprocess.js";
export {
  CONSOLE_RECEIVEQ,
  CONSOLE_TRANSMITQ,
  ConsoleDevice,
  ConsoleFeature,
  type ConsoleOptions,
} from "./virtio/console/device.js";
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
export { type ForeignCopier, ForeignCopyMemory } from "./virtio/foreign_copy_memory.js";
export { ForeignMapMemory, type ForeignMapper } from "./virtio/foreign_map_memory.js";
export { type GrantCopier, GrantCopyMemory } from "./virtio/grant_copy_memory.js";
export { GrantMapMemory, type GrantMapper } from "./virtio/grant_map_memory.js";
export type { GuestMemory, MemoryRegion } from "./virtio/guest_memory.js";
export { VIRTIO_MMIO_STATE_VERSION, type VirtioMmioState, VirtioMmioTransport } from "./virtio/mmio_transport.js";
export { NetConfigOffset, NetFeature, NetStatus } from "./virtio/net/config.js";
export { NET_RX_QUEUE, NET_TX_QUEUE, NetDevice, type NetOptions } from "./virtio/net/device.js";
export { NET_HDR_SIZE, VirtioNetHdr } from "./virtio/net/header.js";
export type { NetLink } from "./virtio/net/link.js";
export { QueueError, type QueueRule } from "./virtio/queue_error.js";
export { RngDevice } from "./virtio/rng/device.js";
export type { SplitQueueState } from "./virtio/split_queue.js";
export { SplitQueue } from "./virtio/split_queue.js";
// The host's virtual switch (xenbr0): vifs and other frame transports plug in as ports.
export {
  BROADCAST_MAC,
  defaultVifMac,
  ETH_HLEN,
  formatMac,
  isGroupMac,
  macBytes,
  parseMac,
} from "./vswitch/ethernet.js";
export { DEFAULT_AGEING_MS, ForwardingDatabase } from "./vswitch/fdb.js";
export { inProcessVif } from "./vswitch/in_process.js";
export { MessagePortNetLink, MessagePortSwitchPort } from "./vswitch/message_port.js";
export type { PortCounters, SwitchPort } from "./vswitch/port.js";
export { frameOf, messageOf } from "./vswitch/protocol.js";
export { VirtualSwitch, type VirtualSwitchOptions } from "./vswitch/switch.js";
// XenStore daemon (the XenStore service domain): protocol engine, transports and socket server.
export {
  XsClient,
  type XsClientLink,
  XsConnectionError,
  type XsWatchHandler,
} from "./xenstore/client.js";
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
export { MessagePortTransport, messagePortLink } from "./xenstore/port_link.js";
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
