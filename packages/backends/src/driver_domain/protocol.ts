/**
 * The driver domain's boundary: what the launcher hands its kernel at boot and the control
 * messages between them. Thread mode carries them by structured clone over a MessagePort; process
 * mode as channel-1 frames of the child's stream (PROTOCOL.md).
 *
 *   launcher -> domain  { stop: true } | { ping: n } | { fault: kind }   (fault: test hook only)
 *                       | { input: { slot, bytes } }     (host input for the console in device slot `slot`)
 *                       | { snapshot: { id, guest } }    (the guest is paused: its devices' states)
 *                       | { detach: { id, guest } }      (the guest left: stop serving it)
 *                       | { xsWrite: { id, path, value } }  (test hook: a write through its XenStore connection)
 *   domain -> launcher  { ready: { domid } } | { failed } | { log } | { stopped } | { pong: n }
 *                       | { console: { slot, bytes } }   (bytes the guest sent through that console)
 *                       | { reply: { id, states? | error? } }  (to snapshot / detach)
 *
 * The guest never reaches this channel: it only has the device's registers and rings.
 */

import type { VirtioMmioState } from "../virtio/mmio_transport.js";

/** Which device model a device slot runs (the construction hook is devices.ts). */
export type VirtioDeviceSpec =
  | { readonly kind: "rng" }
  | { readonly kind: "blk"; readonly path: string; readonly readOnly?: boolean }
  | { readonly kind: "console"; readonly cols?: number; readonly rows?: number }
  /** A vif on the host's switch: MAC as "00:16:3e:xx:xx:xx"; frames travel as vswitch/protocol.ts says. */
  | { readonly kind: "net"; readonly mac: string; readonly mtu?: number };

/** One device a driver domain serves: its guest, window, interrupt and model. */
export interface DeviceSlot {
  /** The frontend guest. */
  readonly guest: number;
  /** The virtio-mmio window in the guest (base, bytes). */
  readonly base: number;
  readonly size: number;
  /** The guest's end of the interrupt channel (its device tree's `interrupts` cell). */
  readonly guestIrqPort: number;
  /** The driver domain's end, bound statically by the launcher (first boot only). */
  readonly irqPort: number;
  readonly device: VirtioDeviceSpec;
  /**
   * false: no grants (grant_usage=0): the guest's tree has no `iommus` for the device, addresses
   * are guest-physical and the backend maps them by foreign mapping, which the core allows only
   * to a privileged driver domain. Default true.
   */
  readonly grants?: boolean;
  /** Start from this state (a guest that migrated here) instead of a reset device. */
  readonly state?: VirtioMmioState;
  /** The guest left (migrated away): the slot keeps its number and is not served. */
  readonly detached?: boolean;
  /**
   * Its number among the guest's virtio devices in XenStore (libxl's devid): the backend nodes
   * are `/local/domain/<this domain>/backend/virtio/<guest>/<devid>` (xenbus.ts).
   */
  readonly devid: number;
}

export interface DriverDomainBoot {
  readonly devices: readonly DeviceSlot[];
  /**
   * Set on a restarted domain: every device starts with DEVICE_NEEDS_RESET and a config
   * interrupt, so the guest's driver learns that the device lost its state.
   */
  readonly restarted: boolean;
  /** Accept `{ fault }` control messages (tests only; the toolstack never sets it). */
  readonly faultHooks: boolean;
  /**
   * The kernel has a XenStore connection (thread mode: `xs` in its worker data; process mode:
   * `{ xs: bytes }` frames): it checks its devices' backend nodes and writes their state.
   */
  readonly xenstore?: boolean;
}

/** How a test makes a backend misbehave: throw from its event loop, stop answering, exit, eat memory. */
export type FaultKind = "throw" | "hang" | "exit" | "oom";
export const FAULT_KINDS: readonly FaultKind[] = ["throw", "hang", "exit", "oom"];

export type DriverDomainDown =
  | { stop: true }
  | { ping: number }
  | { fault: FaultKind }
  | { input: { slot: number; bytes: Uint8Array } }
  | { snapshot: { id: number; guest: number } }
  | { detach: { id: number; guest: number } }
  | { xsWrite: { id: number; path: string; value: string } };
export type DriverDomainUp =
  | { ready: { domid: number } }
  | { failed: string }
  | { log: string }
  | { stopped: true }
  | { pong: number }
  | { console: { slot: number; bytes: Uint8Array } }
  | { reply: { id: number; states?: VirtioMmioState[]; error?: string } };
