/**
 * Creating a domain from a DomainConfig (libxl_domain_create_new + the domain builder):
 * validate, read the kernel, make the domain with its limits and on_* actions, build its memory
 * (RAM, kernel, device tree), put its vCPUs in the cpupool, apply scheduler parameters and
 * affinity through domctl, and unpause it unless asked to leave it paused. Anything that fails
 * undoes what was done and reports a LibxlError; the host is unaffected.
 *
 * The on_* restart actions are carried out here too (libxl's domain death handling): a domain
 * that shuts down with `restart` is rebuilt from its config under the same name once the old one
 * is gone.
 */
import { existsSync, readFileSync } from "node:fs";
import { isAbsolute } from "node:path";
import { DriverDomain, defaultVifMac, formatMac } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { createVcpuState } from "@xenon/hw";
import {
  buildDomainMemory,
  buildGuestFdt,
  effectiveSpecCtrl,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
  initBootVcpuState,
  p2mPoolPagesFor,
  SHUTDOWN_ACTIONS,
  XEN_SCHEDULER,
} from "@xenon/hypervisor";
import { VIRTIO_IRQ_PORT_BASE } from "../run/system.js";
import { parseCpuList } from "./cpulist.js";
import type { LibxlCtx } from "./ctx.js";
import { devicesOf } from "./device.js";
import { destroyDomainNow } from "./domain.js";
import { check, LibxlError } from "./errors.js";
import type { DomainConfig } from "./types.js";

/** Extra pages over RAM for the device tree's and guest's own growth (as `xenon run` gives). */
const SLACK_PAGES = 64;

/** Finds the kernel: an existing path, else a built guest image of that name ("hello", "spin.elf"). */
export function resolveKernel(kernel: string): string {
  if (existsSync(kernel)) return kernel;
  if (!isAbsolute(kernel) || !existsSync(kernel)) {
    const base = kernel.replace(/^.*\//, "").replace(/\.elf$/, "");
    if (/^[A-Za-z0-9_-]+$/.test(base)) {
      try {
        return guestImagePath(base);
      } catch {
        // fall through to the error below
      }
    }
  }
  throw new LibxlError("ENOENT", `kernel '${kernel}': not found (neither a file nor a built guest image)`);
}

function validate(ctx: LibxlCtx, c: DomainConfig): void {
  if (typeof c !== "object" || c === null) throw new LibxlError("EINVAL", "domain config is not an object");
  if (typeof c.name !== "string" || c.name === "") throw new LibxlError("EINVAL", "Domain name must be specified.");
  for (const r of ctx.domains.values()) {
    const d = ctx.hv.domains.getLive(r.domid);
    if (r.name === c.name && d !== undefined)
      throw new LibxlError("EEXIST", `Domain name "${c.name}" is already in use (domain ${r.domid})`);
  }
  const ints: Array<[string, unknown, number, number]> = [
    ["memory", c.memoryMiB, 1, 3072],
    ["maxmem", c.maxmemMiB, 1, 3072],
    ["vcpus", c.vcpus, 1, 128],
    ["maxvcpus", c.maxvcpus, 1, 128],
  ];
  for (const [k, v, lo, hi] of ints)
    if (typeof v !== "number" || !Number.isInteger(v) || v < lo || v > hi)
      throw new LibxlError("EINVAL", `${k}=${String(v)} is out of range ${lo}..${hi}`);
  if (c.maxmemMiB < c.memoryMiB) throw new LibxlError("EINVAL", "maxmem is smaller than memory");
  if (c.maxvcpus < c.vcpus) throw new LibxlError("EINVAL", "maxvcpus is smaller than vcpus");
  if (typeof c.kernel !== "string" || typeof c.cmdline !== "string")
    throw new LibxlError("EINVAL", "kernel and cmdline must be strings");
  for (const [k, v] of [
    ["cpus", c.cpus],
    ["cpus_soft", c.cpusSoft],
  ] as const)
    if (v !== undefined && (!Array.isArray(v) || !v.every((x) => typeof x === "string")))
      throw new LibxlError("EINVAL", `${k} must be a list of CPULIST strings`);
  if (c.pool !== undefined && typeof c.pool !== "string") throw new LibxlError("EINVAL", "pool must be a string");
  for (const [k, a] of [
    ["on_poweroff", c.onPoweroff],
    ["on_reboot", c.onReboot],
    ["on_crash", c.onCrash],
    ["on_watchdog", c.onWatchdog],
  ] as const)
    if (!SHUTDOWN_ACTIONS.includes(a)) throw new LibxlError("EINVAL", `Unknown ${k} action "${String(a)}" specified`);
  const s = c.sched;
  if (typeof s !== "object" || s === null) throw new LibxlError("EINVAL", "sched must be a map");
  for (const k of ["weight", "cap", "periodUs", "budgetUs"] as const) {
    const v = s[k];
    if (v !== undefined && (typeof v !== "number" || !Number.isInteger(v) || v < 0))
      throw new LibxlError("EINVAL", `sched.${k} must be a non-negative integer`);
  }
  if (s.extratime !== undefined && typeof s.extratime !== "boolean")
    throw new LibxlError("EINVAL", "sched.extratime must be a boolean");
  for (const [k, list] of [
    ["disk", c.disks],
    ["vif", c.vifs],
    ["virtio", c.virtio],
  ] as const) {
    if (!Array.isArray(list) || !list.every((x) => typeof x === "string"))
      throw new LibxlError("EINVAL", `${k} must be a list of strings`);
  }
}

/** The cpupool id for a pool name (Pool-0 when none is given). */
export function poolIdByName(ctx: LibxlCtx, name: string | undefined): number {
  if (name === undefined) return 0;
  for (const [id, n] of ctx.poolNames) if (n === name) return id;
  throw new LibxlError("ENOENT", `cpupool '${name}' does not exist`);
}

/** Host pCPU count for CPULIST parsing (Xen's nr_cpu_ids: highest pCPU id + 1). */
export function nrCpus(ctx: LibxlCtx): number {
  const pi = check(ctx.hc.sysctlPhysinfo(ctx.self), "getting physinfo");
  return pi.maxCpuId + 1;
}

export interface CreateOptions {
  /** Leave the domain paused (xl create -p). */
  readonly paused?: boolean;
}

export async function createDomain(ctx: LibxlCtx, c: DomainConfig, opts: CreateOptions = {}): Promise<number> {
  validate(ctx, c);
  const devices = devicesOf(c);
  const path = resolveKernel(c.kernel);
  let kernel: Uint8Array;
  try {
    kernel = readFileSync(path);
  } catch (e) {
    throw new LibxlError("EIO", `kernel '${path}': ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  const poolId = poolIdByName(ctx, c.pool);
  const ncpu = nrCpus(ctx);
  const hard = (c.cpus ?? []).map((s) => parseCpuList(s, ncpu));
  const soft = (c.cpusSoft ?? []).map((s) => parseCpuList(s, ncpu));
  const poolInfo = ctx.hc.sysctlCpupoolInfo(ctx.self, poolId);
  if (typeof poolInfo === "number" || poolInfo.poolId !== poolId)
    throw new LibxlError("ENOENT", `cpupool '${c.pool ?? "Pool-0"}' does not exist`);
  const schedId = poolInfo.schedId;
  const hv = ctx.hv;
  const ramBytes = c.memoryMiB * 2 ** 20;
  const maxPages = c.maxmemMiB * 256 + SLACK_PAGES;
  const d = hv.domains.create({
    name: c.name,
    maxVcpus: c.maxvcpus,
    maxPages,
    p2mPoolPages: p2mPoolPagesFor(maxPages),
    flags: { isConsole: true },
    actions: { onPoweroff: c.onPoweroff, onReboot: c.onReboot, onCrash: c.onCrash, onWatchdog: c.onWatchdog },
  });
  check(d, `creating domain "${c.name}"`);
  if (typeof d === "number") throw new Error("unreachable");
  // The hypervisor's spec-ctrl=ssbd forces SSBD on every domain, those created later too.
  d.specCtrl = effectiveSpecCtrl(0, hv.specCtrl);
  const domid = d.domid;
  const tee = ctx.consoleTee;
  const rec = ctx.track(domid, c.name, c, tee === undefined ? undefined : (bytes) => tee(c.name, bytes));
  let dd: DriverDomain | undefined;
  try {
    // Its devices' backends: a driver domain of its own, launched before the guest's tree is
    // written (the tree names its domid), stopped when the guest is gone.
    let vif = 0;
    const slots = devices.map(({ device, grants }, i) => ({
      guest: domid,
      base: GUEST_VIRTIO_MMIO_BASE + i * GUEST_VIRTIO_MMIO_SIZE,
      size: GUEST_VIRTIO_MMIO_SIZE,
      guestIrqPort: VIRTIO_IRQ_PORT_BASE + i,
      // A vif without a MAC gets Xen's: 00:16:3e, then the domid and the vif's number.
      device:
        device.kind === "net" && device.mac === ""
          ? { ...device, mac: formatMac(defaultVifMac(domid, vif++)) }
          : device,
      ...(grants ? {} : { grants: false }),
    }));
    // grant_usage=0 on any device: guest-physical addresses, which only a privileged (dom0-like)
    // driver domain may reach by foreign mapping.
    const privileged = slots.some((s) => s.grants === false);
    if (slots.some((s) => s.device.kind === "net") && ctx.vswitch === undefined)
      throw new LibxlError("EINVAL", "vif: this host has no switch");
    if (slots.length > 0) {
      const ddName = `${c.name}-dd`;
      try {
        dd = await DriverDomain.launch(hv, {
          domid: pickBackendDomid(hv),
          devices: slots,
          name: ddName,
          restart: true,
          ...(privileged ? { privileged: true } : {}),
          log: (l) => hv.log(`${ddName}: ${l}`),
          ...(ctx.vswitch !== undefined ? { vswitch: ctx.vswitch } : {}),
          // With XenStore, libxl's device nodes are written before the backend starts.
          ...(ctx.xenstore?.driverDomains !== undefined ? { xenstore: ctx.xenstore.driverDomains } : {}),
        });
      } catch (e) {
        throw new LibxlError("EIO", `domain ${domid} (${c.name}): driver domain: ${(e as Error).message}`);
      }
      // Its backends serve from its own worker: its creation pause is only a count.
      hv.domains.get(dd.domid)?.unpause();
      const running = dd;
      rec.onRelease = () => void running.close();
      rec.driverDomains = [running];
    }
    const backendDomid = dd?.domid ?? 0;
    const fdt = buildGuestFdt({
      domid,
      name: c.name,
      vcpus: c.maxvcpus,
      ramBytes,
      bootargs: c.cmdline,
      virtio: slots.map((s) => ({
        base: s.base,
        size: s.size,
        evtchn: s.guestIrqPort,
        backendDomid,
        grants: s.grants !== false,
      })),
    });
    let placement: ReturnType<typeof buildDomainMemory>;
    try {
      placement = buildDomainMemory(d, kernel, ramBytes, fdt);
    } catch (e) {
      throw new LibxlError("EINVAL", `domain ${domid} (${c.name}): ${path}: ${(e as Error).message}`);
    }
    const state = createVcpuState();
    initBootVcpuState(state, placement, 0);
    // One extra pause while the toolstack finishes: the Machine's addDomain drops the creation
    // pause, so the domain stays paused (behind the pause gate) until its last step below.
    d.pause();
    try {
      ctx.machine.addDomain(d, poolId, state);
    } catch (e) {
      throw new LibxlError("EINVAL", `domain ${domid}: ${(e as Error).message}`);
    }
    applySched(ctx, domid, c, schedId);
    for (let v = 0; v < c.maxvcpus; v++) {
      const h = hard.length === 0 ? null : (hard[hard.length === 1 ? 0 : v] ?? null);
      const s = soft.length === 0 ? null : (soft[soft.length === 1 ? 0 : v] ?? null);
      if (h === null && s === null) continue;
      check(ctx.hc.domctlSetVcpuAffinity(ctx.self, domid, v, h, s), `domain ${domid}: setting vcpu ${v} affinity`);
    }
    if (ctx.xenstore !== undefined) {
      try {
        await ctx.xenstore.introduce(d, c.name);
      } catch (e) {
        throw new LibxlError("EIO", `domain ${domid}: xenstore: ${(e as Error).message}`);
      }
    }
    if (!opts.paused) check(ctx.hc.domctlUnpauseDomain(ctx.self, domid), `domain ${domid}: unpausing`);
  } catch (e) {
    rec.destroyRequested = true;
    rec.onRelease = undefined;
    await dd?.close();
    discard(ctx, domid);
    throw e;
  }
  ctx.emit({ type: "created", domid, name: c.name });
  return domid;
}

/** Scheduler parameters from the config, through domctl putinfo when the layer serves it. */
function applySched(ctx: LibxlCtx, domid: number, c: DomainConfig, poolSchedId: number): void {
  const sched =
    poolSchedId === XEN_SCHEDULER.credit2 ? "credit2" : poolSchedId === XEN_SCHEDULER.rtds ? "rtds" : "null";
  const s = c.sched ?? {};
  const credit = s.weight !== undefined || s.cap !== undefined;
  const rt = s.periodUs !== undefined || s.budgetUs !== undefined || s.extratime !== undefined;
  if (!credit && !rt) return;
  if (credit && sched !== "credit2")
    throw new LibxlError("EINVAL", `cpu_weight/cap need a credit2 cpupool (this one runs ${sched})`);
  if (rt && sched !== "rtds")
    throw new LibxlError("EINVAL", `period/budget need an rtds cpupool (this one runs ${sched})`);
  const p = credit
    ? {
        kind: "credit2" as const,
        ...(s.weight !== undefined ? { weight: s.weight } : {}),
        ...(s.cap !== undefined ? { cap: s.cap } : {}),
      }
    : {
        kind: "rtds" as const,
        ...(s.periodUs !== undefined ? { periodUs: s.periodUs } : {}),
        ...(s.budgetUs !== undefined ? { budgetUs: s.budgetUs } : {}),
        ...(s.extratime !== undefined ? { extratime: s.extratime } : {}),
      };
  check(ctx.hc.domctlSchedPutInfo(ctx.self, domid, poolSchedId, p), `domain ${domid}: scheduler parameters`);
}

/** Takes a half-built domain away again (it never ran: nothing to wait for). */
function discard(ctx: LibxlCtx, domid: number): void {
  void destroyDomainNow(ctx, domid).catch(() => {});
}

/**
 * A domid for a guest's own driver domain, drawn at random from the upper range (0x1000 ..
 * 0x7fef): the guest's tree and grants name it for good, and a migrated guest needs it free on
 * the destination host too, which sequential ids (the same small numbers on every host) would
 * rarely leave it.
 */
function pickBackendDomid(hv: { domains: { get(domid: number): unknown } }): number {
  for (;;) {
    const id = 0x1000 + Math.floor(Math.random() * (0x7ff0 - 0x1000));
    if (hv.domains.get(id) === undefined) return id;
  }
}
