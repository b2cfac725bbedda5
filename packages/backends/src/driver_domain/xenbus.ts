/**
 * A virtio device's XenStore nodes, as libxl lays them out for a virtio-mmio device served by a
 * backend domain (libxl_virtio.c plus the generic device code), and the XenBus states the backend
 * writes. One declaration used twice: the toolstack writes these nodes before the driver domain
 * starts, and the driver domain's kernel reads them back and refuses to serve a device whose
 * nodes say something else than its boot record.
 *
 *   /local/domain/<B>/backend/virtio/<F>/<devid>   owner B, readable by F
 *       frontend, frontend-id, online, state, irq, base, type, transport, grant_usage
 *   /local/domain/<F>/device/virtio/<devid>        owner F, readable by B
 *       backend, backend-id, state, irq, base, type, transport
 */
import { DeviceId } from "../virtio/constants.js";
import type { XsClient } from "../xenstore/client.js";
import type { VirtioDeviceSpec } from "./protocol.js";

/** `XenbusState*` (xen/include/public/io/xenbus.h), written as decimal strings to `state`. */
export const XenbusState = {
  Unknown: 0,
  Initialising: 1,
  InitWait: 2,
  Initialised: 3,
  Connected: 4,
  Closing: 5,
  Closed: 6,
} as const;
export type XenbusStateValue = (typeof XenbusState)[keyof typeof XenbusState];

/** What XenStore says of one device: where it sits and what it is. */
export interface VirtioXenstoreDevice {
  /** The frontend guest. */
  readonly guest: number;
  /** Its number among the guest's virtio devices (libxl's devid). */
  readonly devid: number;
  /** The virtio-mmio window's base and the guest's end of its interrupt channel. */
  readonly base: number;
  readonly guestIrqPort: number;
  readonly device: VirtioDeviceSpec;
  /** false: no grants (grant_usage 0). Default true. */
  readonly grants?: boolean;
}

const DEVICE_IDS: Record<VirtioDeviceSpec["kind"], number> = {
  net: DeviceId.NET,
  blk: DeviceId.BLOCK,
  console: DeviceId.CONSOLE,
  rng: DeviceId.ENTROPY,
};

/** libxl's `type`: "virtio,device" followed by the virtio device id ("virtio,device2" for blk). */
export function virtioDeviceType(kind: VirtioDeviceSpec["kind"]): string {
  return `virtio,device${DEVICE_IDS[kind]}`;
}

export function virtioBackendPath(backend: number, d: Pick<VirtioXenstoreDevice, "guest" | "devid">): string {
  return `/local/domain/${backend}/backend/virtio/${d.guest}/${d.devid}`;
}

export function virtioFrontendPath(d: Pick<VirtioXenstoreDevice, "guest" | "devid">): string {
  return `/local/domain/${d.guest}/device/virtio/${d.devid}`;
}

/** The backend directory's nodes as the toolstack writes them (state Initialising). */
export function virtioBackendNodes(d: VirtioXenstoreDevice): Record<string, string> {
  return {
    frontend: virtioFrontendPath(d),
    "frontend-id": String(d.guest),
    online: "1",
    state: String(XenbusState.Initialising),
    irq: String(d.guestIrqPort),
    base: String(d.base),
    type: virtioDeviceType(d.device.kind),
    transport: "mmio",
    grant_usage: d.grants === false ? "0" : "1",
  };
}

/** The frontend directory's nodes (state Initialising; a virtio frontend does not use XenStore). */
export function virtioFrontendNodes(backend: number, d: VirtioXenstoreDevice): Record<string, string> {
  return {
    backend: virtioBackendPath(backend, d),
    "backend-id": String(backend),
    state: String(XenbusState.Initialising),
    irq: String(d.guestIrqPort),
    base: String(d.base),
    type: virtioDeviceType(d.device.kind),
    transport: "mmio",
  };
}

/** Keys the backend checks against what it serves (state and online are the protocol's, not the device's). */
const CHECKED = ["frontend", "frontend-id", "irq", "base", "type", "transport", "grant_usage"] as const;

/**
 * The driver domain's side: reads the device's backend nodes through its own connection and
 * throws, naming the node and both values, when one is missing or differs from what it serves.
 */
export async function checkVirtioBackend(xs: XsClient, backend: number, d: VirtioXenstoreDevice): Promise<void> {
  const dir = virtioBackendPath(backend, d);
  const want = virtioBackendNodes(d);
  for (const key of CHECKED) {
    const got = await xs.tryRead(`${dir}/${key}`);
    if (got !== want[key])
      throw new Error(
        `xenstore ${dir}/${key} is ${got === null ? "absent" : `"${got}"`}, this domain serves d${d.guest} virtio device ${d.devid} with "${want[key]}"`,
      );
  }
}

/** Writes the backend's XenBus state. */
export function setVirtioBackendState(
  xs: XsClient,
  backend: number,
  d: Pick<VirtioXenstoreDevice, "guest" | "devid">,
  state: XenbusStateValue,
): Promise<void> {
  return xs.write(`${virtioBackendPath(backend, d)}/state`, String(state));
}
