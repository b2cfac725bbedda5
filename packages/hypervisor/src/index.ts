/** @xenon/hypervisor — public face: the core's domains, memory, events and grants. */

export type {
  DomainCreateConfig,
  DomainFlags,
  DomainInfo,
  ShutdownAction,
  ShutdownActions,
} from "./domain.js";
export { DEFAULT_SHUTDOWN_ACTIONS, Domain, SHUTDOWN_ACTIONS } from "./domain.js";
export { DomainTable, MAX_VCPUS, p2mPoolPagesFor } from "./domain_table.js";
export type { HypervisorHooks, HypervisorOptions } from "./hypervisor.js";
export { Hypervisor } from "./hypervisor.js";
export { populateRange } from "./memory.js";
export type { P2mDescriptor, P2mEntryInfo } from "./p2m/p2m.js";
export { P2M_ROOT_PAGES, P2mReader } from "./p2m/p2m.js";
export { GUEST_RAM_BASE, GUEST_RAM_BASE_GFN, MAX_GFN, P2mType } from "./p2m/types.js";
export { Errno } from "./public/errno.js";
