/** @xenon/toolstack — front ends: the `xenon` (and later `xl`) commands and the runners behind them. */

export type { BootPlan } from "./boot/dom0less.js";
export { BootTreeError, planFromFile, planFromTree } from "./boot/dom0less.js";
// The libxl-like API, xl.cfg parsing, the management endpoint and the host.
export type { AdoptedSystem, HostOptions } from "./host/host.js";
export { XenonHost } from "./host/host.js";
export type { ConsoleListener } from "./libxl/console.js";
export { formatCpuList, parseCpuList } from "./libxl/cpulist.js";
export type { DomainEvent, HostPool } from "./libxl/ctx.js";
export { LibxlError } from "./libxl/errors.js";
export type { DomainIdent, LibxlOptions } from "./libxl/libxl.js";
export { Libxl } from "./libxl/libxl.js";
export type {
  CpupoolEntry,
  DomainConfig,
  DomainListEntry,
  DomainSchedEntry,
  HostInfo,
  SchedConfig,
  VcpuListEntry,
} from "./libxl/types.js";
export { MgmtClient, MgmtError } from "./mgmt/client.js";
export type { ErrorBody, Reply, Request } from "./mgmt/protocol.js";
export { decodeReply, decodeRequest, encodeFrame, PROTOCOL_VERSION, ProtocolError } from "./mgmt/protocol.js";
export { MGMT_OPS, MgmtServer } from "./mgmt/server.js";
export type { DeviceModelSource, DeviceModelTarget, EmulatorState } from "./migrate/device_models.js";
export { awaitDeviceModels } from "./migrate/device_models.js";
// xl save / restore (and the outer layers of a migration stream): see packages/hypervisor/MIGRATION.md.
export type {
  RestoreImageOptions,
  RestoreResult,
  SavedConfig,
  SaveImageOptions,
  SaveResult,
} from "./migrate/domain_save.js";
export {
  destroyDomainNow,
  ImageRestore,
  localMigrationTarget,
  restoreDomainFromFile,
  restoreDomainFromFileAsync,
  saveDomainImage,
  saveDomainToFile,
} from "./migrate/domain_save.js";
export type { MigratePolicy, MigrateStats, MigrationTarget } from "./migrate/live_migrate.js";
export { migrateDomain } from "./migrate/live_migrate.js";
export type { OuterItem } from "./migrate/save_file.js";
export {
  EmulatorId,
  encodeEmulatorContext,
  encodeLibxlHeader,
  encodeXlHeader,
  OuterReader,
  XL_MAGIC,
} from "./migrate/save_file.js";
export type { DriverDomainTargetOptions } from "./migrate/virtio_models.js";
export { driverDomainSource, driverDomainTarget } from "./migrate/virtio_models.js";
export { FlatGuest } from "./run/flat_guest.js";
export type { LinuxRunOptions, LinuxRunResult } from "./run/linux_abi.js";
export { runLinuxUser, SYS_EXIT, SYS_EXIT_GROUP, SYS_WRITE } from "./run/linux_abi.js";
export type { BuiltSystem, DomainSpec, PoolSpec, StaticEvtchn, SystemConfig, SystemResult } from "./run/system.js";
export {
  buildSystem,
  ConfigError,
  launchBackends,
  parseDomainSpec,
  parseStaticEvtchn,
  parseVirtio,
  runSystem,
  VIRTIO_IRQ_PORT_BASE,
  type VirtioAttach,
} from "./run/system.js";
export type { XenstoreLinkOptions } from "./run/xenstore_link.js";
export { XenstoreLink } from "./run/xenstore_link.js";
export { domainConfigFromCfg, domainConfigFromText } from "./xlcfg/domain_config.js";
export type { XlCfgValue } from "./xlcfg/parser.js";
export { parseXlCfg, XlCfg, XlCfgError } from "./xlcfg/parser.js";
