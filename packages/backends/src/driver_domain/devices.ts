/**
 * The device-construction hook: a device spec becomes a VirtioDevice. A new device kind is one
 * case here plus its spec in protocol.ts.
 */
import { BlkDevice } from "../virtio/blk/device.js";
import { ConsoleDevice } from "../virtio/console/device.js";
import type { VirtioDevice } from "../virtio/device.js";
import { NetDevice } from "../virtio/net/device.js";
import type { NetLink } from "../virtio/net/link.js";
import { RngDevice } from "../virtio/rng/device.js";
import { parseMac } from "../vswitch/ethernet.js";
import type { VirtioDeviceSpec } from "./protocol.js";

/** What a device may need from its domain's kernel. */
export interface DeviceContext {
  /** A console's transmitted bytes, to the launcher. */
  readonly consoleOutput: (bytes: Uint8Array) => void;
  /** A net device's switch port. */
  readonly netLink?: NetLink;
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
    case "net": {
      const mac = parseMac(spec.mac);
      if (mac === null) throw new Error(`net: MAC '${spec.mac}' is not xx:xx:xx:xx:xx:xx`);
      if (ctx.netLink === undefined) throw new Error("net: no switch port for this device");
      return new NetDevice({ mac, ...(spec.mtu !== undefined ? { mtu: spec.mtu } : {}), link: ctx.netLink });
    }
    default:
      throw new Error(`no such device model: ${(spec as { kind: string }).kind}`);
  }
}
