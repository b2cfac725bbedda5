/**
 * xl.cfg device specs (`disk=`, `vif=`, `virtio=`; xl_parse.c and libxl_device_disk /
 * libxl_device_nic / libxl_device_virtio's analogues) -> the virtio devices a domain's driver
 * domain serves. Xenon's devices are all virtio-mmio, their backends in a driver domain the
 * toolstack launches for the guest (libxl's "backend" would be dom0; ours holds no backends), so:
 *   disk   target (raw image, must exist), format raw, vdev (mandatory), access ro|rw,
 *          specification virtio (default here; "xen" has no blkback), transport mmio
 *   vif    mac (default 00:16:3e:<domid>:<n>), bridge xenbr0, mtu — virtio-net on the host switch
 *   virtio type=virtio,device<N> (N hex: 4 rng, 3 console), transport mmio
 * and on each, grant_usage=0|1: 1 (the default, as in Xen for any backend but dom0) VirtIO-Grant,
 * the driver domain unprivileged; 0 guest-physical addresses, which only a privileged (dom0-like)
 * driver domain may reach, so the guest's driver domain is made privileged.
 * `backend=` other than the guest's own driver domain is refused: a running driver domain's
 * devices are fixed when it is launched. Every refusal names the spec and what is wrong.
 */
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { formatMac, isGroupMac, parseMac, type VirtioDeviceSpec } from "@xenon/backends";
import { LibxlError } from "./errors.js";

/** One device of an xl.cfg: what the driver domain serves and whether the guest grants its pages. */
export interface XlDevice {
  readonly device: VirtioDeviceSpec;
  /** grant_usage: false = guest-physical addresses, a privileged driver domain. */
  readonly grants: boolean;
}

export class DeviceSpecError extends Error {
  constructor(
    readonly key: "disk" | "vif" | "virtio",
    readonly spec: string,
    why: string,
  ) {
    super(`${key} '${spec}': ${why}`);
    this.name = "DeviceSpecError";
  }
}

const DISK_POSITIONAL = ["target", "format", "vdev", "access"] as const;
const DISK_FLAGS = new Set(["cdrom", "direct-io-safe", "discard", "no-discard", "trusted", "untrusted"]);
const DISK_KEYS = new Set([
  ...DISK_POSITIONAL,
  "devtype",
  "backend",
  "backendtype",
  "script",
  "specification",
  "transport",
  "grant_usage",
]);

/** grant_usage=0|1 (Xen's xl takes a number; anything else would silently be 0 there). */
function grantUsage(value: string | undefined, bad: (why: string) => never): boolean {
  if (value === undefined || value === "1") return true;
  if (value === "0") return false;
  return bad(`grant_usage '${value}' is neither 0 nor 1`);
}

/** One `disk=` entry: positional target,format,vdev,access, key=value, `target=` last and greedy. */
export function parseDiskSpec(spec: string, baseDir = process.cwd()): XlDevice {
  const { device, grants } = diskSpec(spec, baseDir);
  return { device, grants };
}

/**
 * The same entry with its target made absolute against `baseDir` (the xl.cfg's directory): what
 * xl sends the host, whose working directory is not the user's.
 */
export function absoluteDiskSpec(spec: string, baseDir: string): string {
  const { device, vdev, grants } = diskSpec(spec, baseDir);
  if (device.kind !== "blk") throw new Error("unreachable");
  return `format=raw,vdev=${vdev},access=${device.readOnly === true ? "ro" : "rw"},specification=virtio,${grants ? "" : "grant_usage=0,"}target=${device.path}`;
}

function diskSpec(spec: string, baseDir: string): { device: VirtioDeviceSpec; vdev: string; grants: boolean } {
  const bad = (why: string): never => {
    throw new DeviceSpecError("disk", spec, why);
  };
  const kv = new Map<string, string>();
  let pos = 0;
  let rest = spec;
  while (rest.length > 0) {
    const trimmed = rest.replace(/^\s+/, "");
    if (trimmed.startsWith("target=")) {
      kv.set("target", trimmed.slice("target=".length));
      break;
    }
    const comma = trimmed.indexOf(",");
    const item = comma < 0 ? trimmed : trimmed.slice(0, comma);
    rest = comma < 0 ? "" : trimmed.slice(comma + 1);
    const eq = item.indexOf("=");
    if (eq > 0) {
      const k = item.slice(0, eq);
      if (!DISK_KEYS.has(k)) bad(`unknown key '${k}'`);
      kv.set(k, item.slice(eq + 1));
    } else if (DISK_FLAGS.has(item)) {
      if (item === "cdrom") kv.set("devtype", "cdrom");
    } else {
      const slot = DISK_POSITIONAL[pos++];
      if (slot === undefined) bad(`too many positional items ('${item}')`);
      if (item !== "") kv.set(slot!, item);
    }
  }
  const format = kv.get("format") ?? "raw";
  if (format !== "raw") bad(`format '${format}': only raw images are served`);
  if (kv.get("vdev") === undefined) bad("no vdev (e.g. xvda)");
  if (kv.get("devtype") === "cdrom") bad("cdrom devices are not supported");
  const specification = kv.get("specification") ?? "virtio";
  if (specification !== "virtio")
    bad(`specification '${specification}': Xenon serves virtio disks only (there is no blkback)`);
  const transport = kv.get("transport") ?? "mmio";
  if (transport !== "mmio") bad(`transport '${transport}': only mmio`);
  if (kv.get("backend") !== undefined) bad(ownBackendOnly(kv.get("backend")!));
  const grants = grantUsage(kv.get("grant_usage"), bad);
  const access = kv.get("access") ?? "rw";
  if (!["ro", "r", "rw", "w"].includes(access)) bad(`access '${access}' is none of ro, rw`);
  const target = kv.get("target");
  if (target === undefined || target === "") bad("no target (the raw image)");
  const path = isAbsolute(target!) ? target! : resolve(baseDir, target!);
  if (!existsSync(path)) bad(`target '${target}' does not exist`);
  return {
    device: { kind: "blk", path, readOnly: access === "ro" || access === "r" },
    vdev: kv.get("vdev")!,
    grants,
  };
}

function ownBackendOnly(b: string): string {
  return `backend=${b}: a driver domain's devices are fixed at its launch; leave backend unset (the guest's own driver domain serves it)`;
}

function keyValues(key: "vif" | "virtio", spec: string, known: ReadonlySet<string>): Map<string, string> {
  const kv = new Map<string, string>();
  // virtio's type value may hold one comma ("virtio,device4"): rejoin it with the item before.
  const items = spec.split(",").map((s) => s.trim());
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq <= 0) {
      const prev = [...kv.keys()].at(-1);
      if (key === "virtio" && prev === "type" && /^device[0-9a-f]*$/.test(item)) {
        kv.set("type", `${kv.get("type")},${item}`);
        continue;
      }
      throw new DeviceSpecError(key, spec, `'${item}' is not key=value`);
    }
    const k = item.slice(0, eq);
    if (!known.has(k)) throw new DeviceSpecError(key, spec, `unknown key '${k}'`);
    kv.set(k, item.slice(eq + 1));
  }
  return kv;
}

const VIF_KEYS = new Set([
  "mac",
  "bridge",
  "backend",
  "type",
  "model",
  "vifname",
  "script",
  "ip",
  "rate",
  "devid",
  "mtu",
  "gatewaydev",
  "netdev",
  "grant_usage",
]);

/** One `vif=` entry: a virtio-net device on the host switch xenbr0 (MAC default: Xen's, by domid). */
export function parseVifSpec(spec: string): XlDevice {
  const kv = keyValues("vif", spec, VIF_KEYS);
  const bad = (why: string): never => {
    throw new DeviceSpecError("vif", spec, why);
  };
  if (kv.get("backend") !== undefined) bad(ownBackendOnly(kv.get("backend")!));
  const macText = kv.get("mac");
  let mac = "";
  if (macText !== undefined) {
    const m = parseMac(macText);
    if (m === null || m === 0 || isGroupMac(m)) bad(`mac '${macText}' is not a unicast xx:xx:xx:xx:xx:xx`);
    mac = formatMac(m!);
  }
  const bridge = kv.get("bridge") ?? "xenbr0";
  if (bridge !== "xenbr0") bad(`bridge '${bridge}': the host has one switch, xenbr0`);
  const mtuText = kv.get("mtu");
  const mtu = mtuText === undefined ? undefined : Number(mtuText);
  if (mtu !== undefined && (!Number.isInteger(mtu) || mtu < 68 || mtu > 1500))
    bad(`mtu '${mtuText}' is out of range 68..1500`);
  const grants = grantUsage(kv.get("grant_usage"), bad);
  return { device: { kind: "net", mac, ...(mtu !== undefined ? { mtu } : {}) }, grants };
}

const VIRTIO_KEYS = new Set(["type", "backend", "transport", "grant_usage"]);
/** virtio device ids (the virtio spec's) the driver domains can serve from `virtio=` alone. */
const VIRTIO_BY_ID: Readonly<Record<number, VirtioDeviceSpec>> = {
  3: { kind: "console" },
  4: { kind: "rng" },
};

/** One `virtio=` entry (Xen 4.18's generic virtio device). */
export function parseVirtioSpec(spec: string): XlDevice {
  const kv = keyValues("virtio", spec, VIRTIO_KEYS);
  const bad = (why: string): never => {
    throw new DeviceSpecError("virtio", spec, why);
  };
  if (kv.get("backend") !== undefined) bad(ownBackendOnly(kv.get("backend")!));
  const transport = kv.get("transport") ?? "mmio";
  if (transport !== "mmio") bad(`transport '${transport}': only mmio`);
  const grants = grantUsage(kv.get("grant_usage"), bad);
  const type = kv.get("type");
  if (type === undefined) bad("no type (virtio,device<N>)");
  const m = /^virtio,device([0-9a-f]+)$/.exec(type!);
  if (m === null) bad(`type '${type}' is not virtio,device<N>`);
  const id = Number.parseInt(m![1]!, 16);
  const dev = VIRTIO_BY_ID[id];
  if (dev === undefined)
    bad(`virtio device ${id} cannot be served from virtio= alone (console 3, rng 4; disks: disk=, nics: vif=)`);
  return { device: dev!, grants };
}

/** Every device of a config, in disk, vif, virtio order; LibxlError naming the bad spec. */
export function devicesOf(
  c: { readonly disks: readonly string[]; readonly vifs: readonly string[]; readonly virtio: readonly string[] },
  baseDir?: string,
): XlDevice[] {
  try {
    return [
      ...c.disks.map((s) => parseDiskSpec(s, baseDir)),
      ...c.vifs.map(parseVifSpec),
      ...c.virtio.map(parseVirtioSpec),
    ];
  } catch (e) {
    if (e instanceof DeviceSpecError) throw new LibxlError("EINVAL", e.message);
    throw e;
  }
}
