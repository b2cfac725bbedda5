/**
 * xl.cfg settings -> DomainConfig (xl_parse.c's parse_config_data for the options Xenon has).
 * Unknown keys are ignored, as xl ignores them; a known key with a bad value is refused with the
 * file and line. Defaults are xl's: vcpus 1, maxmem = memory, on_poweroff destroy, on_reboot
 * restart, on_crash destroy; memory defaults to 32 MiB (libxl's default target).
 */
import { existsSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { SHUTDOWN_ACTIONS, type ShutdownAction } from "@xenon/hypervisor";
import { CpuListError, parseCpuList } from "../libxl/cpulist.js";
import { absoluteDiskSpec, DeviceSpecError, parseVifSpec, parseVirtioSpec } from "../libxl/device.js";
import type { DomainConfig, SchedConfig } from "../libxl/types.js";
import { parseXlCfg, type XlCfg, XlCfgError } from "./parser.js";

const DEFAULT_MEMORY_MIB = 32;
/** A domain name: what libxl accepts and XenStore can hold as a node value. */
const NAME_RE = /^[A-Za-z0-9_.-][A-Za-z0-9_.:@+-]{0,63}$/;

function lineOf(cfg: XlCfg, key: string): number {
  return cfg.get(key)?.line ?? 0;
}

function bad(cfg: XlCfg, key: string, why: string): never {
  throw new XlCfgError(cfg.file, lineOf(cfg, key), why);
}

function positive(cfg: XlCfg, key: string, lo = 1, hi = Number.MAX_SAFE_INTEGER): number | undefined {
  const n = cfg.getNumber(key);
  if (n === undefined) return undefined;
  if (n < lo || n > hi) bad(cfg, key, `${key}=${n} is out of range ${lo}..${hi}`);
  return n;
}

function action(cfg: XlCfg, key: string, dflt: ShutdownAction): ShutdownAction {
  const s = cfg.getString(key);
  if (s === undefined) return dflt;
  if (s === "soft-reset") bad(cfg, key, `${key}: soft-reset is not supported for this guest type`);
  if (!SHUTDOWN_ACTIONS.includes(s as ShutdownAction)) bad(cfg, key, `Unknown ${key} action "${s}" specified`);
  return s as ShutdownAction;
}

function cpuSpec(cfg: XlCfg, key: string, vcpus: number): string[] | undefined {
  const list = cfg.getStringList(key, true);
  if (list === undefined) return undefined;
  if (list.length === 0) bad(cfg, key, `${key}: empty list`);
  if (cfg.get(key)?.kind === "list" && list.length > vcpus)
    bad(cfg, key, `${key}: ${list.length} entries for ${vcpus} vCPU(s)`);
  for (const s of list) {
    try {
      parseCpuList(s, 4096); // syntax only; the host checks ids against its pCPUs
    } catch (e) {
      if (e instanceof CpuListError) bad(cfg, key, `${key}: ${e.message}`);
      throw e;
    }
  }
  return list;
}

/**
 * `disk`, `vif`, `virtio`: each entry checked here, so a bad one is refused with the file and line;
 * disk targets made absolute against the cfg file's directory (the host resolves nothing).
 */
function devices(cfg: XlCfg, baseDir: string): Pick<DomainConfig, "disks" | "vifs" | "virtio"> {
  const each = <T>(key: "disk" | "vif" | "virtio", f: (s: string) => T): T[] =>
    (cfg.getStringList(key) ?? []).map((s) => {
      try {
        return f(s);
      } catch (e) {
        if (e instanceof DeviceSpecError) bad(cfg, key, e.message);
        throw e;
      }
    });
  const disks = each("disk", (s) => absoluteDiskSpec(s, baseDir));
  const vifs = each("vif", (s) => {
    parseVifSpec(s);
    return s;
  });
  const virtio = each("virtio", (s) => {
    parseVirtioSpec(s);
    return s;
  });
  return { disks, vifs, virtio };
}

/**
 * Turns parsed settings into a DomainConfig. `baseDir` resolves a relative `kernel` (the cfg
 * file's directory first, then the working directory); a kernel found in neither is passed on as
 * written so the host can look it up among the built guest images.
 */
export function domainConfigFromCfg(cfg: XlCfg, baseDir = process.cwd()): DomainConfig {
  const name = cfg.getString("name");
  if (name === undefined || name === "") throw new XlCfgError(cfg.file, 0, "Domain name must be specified.");
  if (!NAME_RE.test(name)) bad(cfg, "name", `invalid domain name "${name}"`);
  const type = cfg.getString("type") ?? cfg.getString("builder");
  if (type !== undefined && type !== "pvh" && type !== "generic")
    bad(cfg, cfg.has("type") ? "type" : "builder", `guest type "${type}" is not supported here (only pvh)`);
  const memoryMiB = positive(cfg, "memory", 1, 3 * 1024) ?? DEFAULT_MEMORY_MIB;
  const maxmemMiB = positive(cfg, "maxmem", 1, 3 * 1024) ?? memoryMiB;
  if (maxmemMiB < memoryMiB) bad(cfg, "maxmem", `maxmem (${maxmemMiB} MiB) is smaller than memory (${memoryMiB} MiB)`);
  const vcpus = positive(cfg, "vcpus", 1, 128) ?? 1;
  const maxvcpus = positive(cfg, "maxvcpus", 1, 128) ?? vcpus;
  if (maxvcpus < vcpus) bad(cfg, "maxvcpus", `maxvcpus (${maxvcpus}) is smaller than vcpus (${vcpus})`);
  const kernelRaw = cfg.getString("kernel");
  if (kernelRaw === undefined || kernelRaw === "") throw new XlCfgError(cfg.file, 0, "kernel must be specified.");
  let kernel = kernelRaw;
  if (isAbsolute(kernelRaw)) kernel = kernelRaw;
  else {
    const candidates = [resolve(baseDir, kernelRaw), resolve(kernelRaw)];
    kernel = candidates.find((c) => existsSync(c)) ?? kernelRaw;
  }
  let cmdline = cfg.getString("cmdline");
  if (cmdline === undefined) {
    const root = cfg.getString("root");
    const extra = cfg.getString("extra");
    cmdline = [root === undefined ? undefined : `root=${root}`, extra].filter((s) => s !== undefined).join(" ");
  }
  for (const k of ["ramdisk", "device_tree"]) if (cfg.has(k)) bad(cfg, k, `${k} is not supported yet`);
  const sched: {
    weight?: number;
    cap?: number;
    periodUs?: number;
    budgetUs?: number;
    extratime?: boolean;
  } = {};
  const weight = positive(cfg, "cpu_weight", 1, 65535);
  if (weight !== undefined) sched.weight = weight;
  const cap = positive(cfg, "cap", 0, 100 * maxvcpus);
  if (cap !== undefined) sched.cap = cap;
  const period = positive(cfg, "period", 1);
  if (period !== undefined) sched.periodUs = period;
  const budget = positive(cfg, "budget", 1);
  if (budget !== undefined) sched.budgetUs = budget;
  const extratime = cfg.getBool("extratime");
  if (extratime !== undefined) sched.extratime = extratime;
  const cpus = cpuSpec(cfg, "cpus", maxvcpus);
  const cpusSoft = cpuSpec(cfg, "cpus_soft", maxvcpus);
  const pool = cfg.getString("pool") ?? cfg.getString("cpupool");
  return {
    name,
    memoryMiB,
    maxmemMiB,
    vcpus,
    maxvcpus,
    ...(cpus !== undefined ? { cpus } : {}),
    ...(cpusSoft !== undefined ? { cpusSoft } : {}),
    ...(pool !== undefined ? { pool } : {}),
    kernel,
    cmdline,
    onPoweroff: action(cfg, "on_poweroff", "destroy"),
    onReboot: action(cfg, "on_reboot", "restart"),
    onCrash: action(cfg, "on_crash", "destroy"),
    onWatchdog: action(cfg, "on_watchdog", "destroy"),
    sched: sched satisfies SchedConfig,
    ...devices(cfg, baseDir),
  };
}

/**
 * `xl create FILE [KEY=VALUE...]`: the file, then each extra argument as one more line (xl's
 * command-line overrides), turned into a DomainConfig.
 */
export function domainConfigFromText(text: string, file: string, overrides: readonly string[] = []): DomainConfig {
  const cfg = parseXlCfg(text, file);
  for (const o of overrides) parseXlCfg(o, "<command line>", cfg);
  return domainConfigFromCfg(cfg, dirname(resolve(file)));
}
