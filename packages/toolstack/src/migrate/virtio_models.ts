/**
 * Virtio driver domains as device models that migrate (device_models.ts): on the source, each
 * driver domain serving the guest snapshots its devices (transport registers, ring positions,
 * device state) into one EMULATOR_CONTEXT record, and lets go of the guest once the destination
 * runs it; on the destination, each record becomes a new driver domain serving the restored
 * guest from that state, with the guest's grants (restored with it) as its only way in.
 *
 * The record's data is msgpack: { backend, devices: [{ base, size, guestIrqPort, device, state }] }.
 * `backend` is the driver domain's domid: the guest's device tree names it and the guest's grants
 * are to it, so the new driver domain takes the same domid (the restore fails, clearly, if that
 * domid is in use on the destination). The record comes from another host, so it is checked as
 * input: a bad one fails the restore, which leaves the source running.
 */
import {
  DriverDomain,
  type DriverDomainDevice,
  type DriverDomainMode,
  type DriverDomainXenstore,
  type VifSwitch,
  type VirtioDeviceSpec,
  type VirtioMmioState,
} from "@xenon/backends";
import type { Hypervisor } from "@xenon/hypervisor";
import { pack, unpack } from "msgpackr";
import type { DeviceModelSource, DeviceModelTarget, EmulatorState } from "./device_models.js";
import { EmulatorId } from "./save_file.js";

interface SavedDevice {
  readonly base: number;
  readonly size: number;
  readonly guestIrqPort: number;
  readonly device: VirtioDeviceSpec;
  /** false: the device works without grants (guest-physical addresses, a privileged backend). */
  readonly grants?: boolean;
  readonly state: VirtioMmioState;
}

/** The source side over the host's driver domains (looked up at save time: they may restart). */
export function driverDomainSource(driverDomains: () => readonly DriverDomain[]): DeviceModelSource {
  return {
    async save(domid: number): Promise<readonly EmulatorState[]> {
      const out: EmulatorState[] = [];
      for (const dd of driverDomains()) {
        const devices = dd.devicesOf(domid);
        if (devices.length === 0) continue;
        const states = await dd.snapshot(domid);
        const saved: SavedDevice[] = devices.map((d, i) => ({
          base: d.base,
          size: d.size,
          guestIrqPort: d.guestIrqPort,
          device: d.device,
          ...(d.grants !== undefined ? { grants: d.grants } : {}),
          state: states[i]!,
        }));
        out.push({
          id: EmulatorId.XENON_VIRTIO,
          index: out.length,
          data: pack({ backend: dd.domid, devices: saved }),
        });
      }
      return out;
    },
    async release(domid: number): Promise<void> {
      for (const dd of driverDomains()) if (dd.devicesOf(domid).length > 0) await dd.detach(domid);
    },
  };
}

export interface DriverDomainTargetOptions {
  readonly mode?: DriverDomainMode;
  readonly log?: (line: string) => void;
  /**
   * Devices without grants need a privileged backend (it foreign-maps the guest's memory); a
   * record asking for one is refused unless this host allows it.
   */
  readonly allowPrivileged?: boolean;
  /** The host switch the restored guest's vifs plug into. */
  readonly vswitch?: VifSwitch;
  /** Each driver domain started for a restored guest (the host keeps it, and closes it). */
  readonly started?: (dd: DriverDomain) => void;
  /** The host's XenStore: the devices' nodes and the kernel's connection, as at creation. */
  readonly xenstore?: DriverDomainXenstore;
}

/** The destination side: a new driver domain per record, serving the restored guest. */
export function driverDomainTarget(hv: Hypervisor, opts: DriverDomainTargetOptions = {}): DeviceModelTarget {
  return {
    async start(domid: number, emulators: readonly EmulatorState[]): Promise<void> {
      const plans = emulators.map((e) => decode(e));
      const launched: DriverDomain[] = [];
      try {
        for (const { backend, devices } of plans) {
          // A backend of the same domid that is on its way out (the guest was saved here) goes first.
          for (let t = 0; t < 500 && hv.domains.get(backend)?.dying === true; t++)
            await new Promise((r) => setTimeout(r, 10));
          if (hv.domains.get(backend) !== undefined)
            throw new Error(
              `the guest's backend domid ${backend} (its device tree and grants name it) is in use on this host`,
            );
          const privileged = devices.some((d) => d.grants === false);
          if (privileged && opts.allowPrivileged !== true)
            throw new Error("the guest has devices without grants and this host starts no privileged backend for it");
          const dd = await DriverDomain.launch(hv, {
            domid: backend,
            ...(privileged ? { privileged: true } : {}),
            devices: devices.map((d) => ({ ...d, guest: domid }) satisfies DriverDomainDevice),
            // As xl create names a guest's own driver domain (the restored guest has its name by now).
            name: `${hv.domains.get(domid)?.name ?? `d${domid}`}-dd`,
            restart: true,
            ...(opts.mode !== undefined ? { mode: opts.mode } : {}),
            ...(opts.log !== undefined ? { log: opts.log } : {}),
            ...(opts.vswitch !== undefined ? { vswitch: opts.vswitch } : {}),
            ...(opts.xenstore !== undefined ? { xenstore: opts.xenstore } : {}),
          });
          hv.domains.get(dd.domid)?.unpause();
          launched.push(dd);
        }
      } catch (e) {
        for (const dd of launched) await dd.close();
        throw e;
      }
      for (const dd of launched) opts.started?.(dd);
    },
  };
}

/** Checks one record's shape (the transport checks the states themselves when it loads them). */
function decode(e: EmulatorState): { backend: number; devices: SavedDevice[] } {
  const bad = (why: string): never => {
    throw new Error(`device model record ${e.index}: ${why}`);
  };
  if (e.id !== EmulatorId.XENON_VIRTIO) bad(`emulator id 0x${e.id.toString(16)} is not one this host runs`);
  let v: unknown;
  try {
    v = unpack(e.data);
  } catch {
    bad("not msgpack");
  }
  const rec = v as { backend?: unknown; devices?: unknown } | null;
  const devices = rec?.devices;
  if (!Array.isArray(devices) || devices.length === 0) bad("no devices");
  const backend = rec?.backend;
  if (typeof backend !== "number" || !Number.isInteger(backend) || backend < 1 || backend >= 0x7ff0)
    return bad(`backend domid ${String(backend)}`);
  const u32 = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffff_ffff;
  const list = (devices as unknown[]).map((d, i) => {
    const o = d as Partial<SavedDevice> | null;
    if (o === null || typeof o !== "object") return bad(`device ${i} is not an object`);
    if (!u32(o.base) || !u32(o.size) || !u32(o.guestIrqPort)) bad(`device ${i}: window or interrupt port`);
    const spec = o.device as { kind?: unknown; path?: unknown } | undefined;
    if (spec === undefined || typeof spec.kind !== "string") return bad(`device ${i}: no device kind`);
    if (spec.kind === "blk" && typeof spec.path !== "string") bad(`device ${i}: blk without an image path`);
    if (o.grants !== undefined && typeof o.grants !== "boolean") bad(`device ${i}: grants is not a boolean`);
    if (typeof o.state !== "object" || o.state === null) bad(`device ${i}: no state`);
    return o as SavedDevice;
  });
  return { backend, devices: list };
}
