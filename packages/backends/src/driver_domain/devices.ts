/**
 * The device-construction hook: a device spec becomes a VirtioDevice. A new device kind is one
 * case here plus its spec in protocol.ts.
 */
import { BlkDevice } from "../virtio/blk/device.js";
import type { VirtioDevice } from "../virtio/device.js";
import { RngDevice } from "../virtio/rng/device.js";
import type { VirtioDeviceSpec } from "./protocol.js";

export async function makeDevice(spec: VirtioDeviceSpec): Promise<VirtioDevice> {
  switch (spec.kind) {
    case "rng":
      return new RngDevice();
    case "blk":
      return new BlkDevice({ path: spec.path, readOnly: spec.readOnly ?? false });
    default:
      throw new Error(`no such device model: ${(spec as { kind: string }).kind}`);
  }
}
