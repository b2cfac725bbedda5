/** @xenon/toolstack — front ends: the `xenon` (and later `xl`) commands and the runners behind them. */

export type { BootPlan } from "./boot/dom0less.js";
export { BootTreeError, planFromFile, planFromTree } from "./boot/dom0less.js";
export { FlatGuest } from "./run/flat_guest.js";
export type { LinuxRunOptions, LinuxRunResult } from "./run/linux_abi.js";
export { runLinuxUser, SYS_EXIT, SYS_EXIT_GROUP, SYS_WRITE } from "./run/linux_abi.js";
export type { BuiltSystem, DomainSpec, PoolSpec, StaticEvtchn, SystemConfig, SystemResult } from "./run/system.js";
export { buildSystem, ConfigError, parseDomainSpec, parseStaticEvtchn, runSystem } from "./run/system.js";
export type { XenstoreLinkOptions } from "./run/xenstore_link.js";
export { XenstoreLink } from "./run/xenstore_link.js";
