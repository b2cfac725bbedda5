/**
 * The device-construction hook: a device spec becomes a VirtioDevice. A new device kind is one
 * case here plus its spec in protocol.ts.
 */
import { BlkDevice } from "../virtio/blk/device.js";
import { ConsoleDevice } from "../virtio/console/device.js";
import type { VirtioDevice } from "../virtio/device.js";
import { RngDevice } from "../virtio/rng/device.js";
import type { VirtioDeviceSpec } from "./protocol.js";

/** What a device may need from its domain's kernel. */
export interface DeviceContext {
  /** A console's transmitted bytes, to the launcher. */
  readonly consoleOutput: (bytes: Uint8Array) => void;
}

export async function makeDevice(spec: VirtioDeviceSpec, ctx: DeviceContext): Promise<VirtioDevice> {
  switch (spec.kind) {
    case "rng":
      return new RngDevice();
    case "blk":
      return new BlkDevice({ path: spec.path, readOnly: spec.readOnly ?? false });
    case "console":
      return new ConsoleDevice({
        ...(spec.cols !== undefined ? { cols: spec.cols } : {}),
        ...(spec.rows !== undefined ? { rows: spec.rows } : {}),
        output: ctx.consoleOutput,
      });
    default:
      throw new Error(`no such device model: ${(spec as { kind: string }).kind}`);
  }
}
