/**
 * Dom0less boot: a host device tree compiled by `dtc` (Xen's Arm bindings, docs/misc/arm/
 * device-tree/booting.txt and cpupools.txt) becomes a system plan — cpupools, domains, their
 * kernels and static event channels — before anything runs. Static means static: every refusal
 * (more memory than the host has, a cpupool without cpus, a missing image, an unknown scheduler, a
 * one-sided event channel...) happens here, at once, naming the node and property.
 *
 * Read from the tree:
 *   /memory@...                     host RAM (reg, root cells); default 1 GiB when absent
 *   /cpus/cpu@N                     pCPUs: reg, capacity-dmips-mhz -> speed (largest = 1024, "big")
 *   /chosen/xen,xen-bootargs        the hypervisor command line: spec-ctrl=, dom0-cpuid= (spec_ctrl.ts)
 *   <dom> xenon,spec-ctrl           string list: ibrs, stibp, ssbd, virt-ssbd (the domain's modelled
 *                                   MSR_SPEC_CTRL / VIRT_SPEC_CTRL, as xl's cpuid= would offer)
 *   /chosen/<pool> "xen,cpupool"    cpupool-cpus (phandles to cpu nodes), cpupool-sched
 *   /chosen/<dom> "xen,domain"      memory (KiB, 2 cells), cpus, domain-cpupool, bootargs via the
 *                                   kernel module; child "multiboot,kernel" module whose image is
 *                                   named by `xenon,path` (beside the tree, then the built images)
 *   <dom>/<ch> "xen,evtchn-v1"      xen,evtchn = <local-port &peer-node>, mutual
 *   <dom> vpl011                    accepted (flag): every domain has the hypervisor console already
 *   <dom> xen,enhanced              "" | "enabled" -> the domain gets XenStore; "no-xenstore",
 *                                   "disabled" or absent -> it does not
 *   <dom>/<rd> "multiboot,ramdisk"  its image named by xenon,path (beside the tree): loaded at the
 *                                   top of RAM below the device tree, linux,initrd-start/-end
 *   (RAM)                           at 0x80000000, or where a kernel linked lower says (2 MiB down)
 *   <dom> xen,static-mem            (addr,size)+ in the domain node's cells: host RAM reserved for
 *                                   this domain alone, summing to `memory`; `direct-map` puts it at
 *                                   gfn == mfn (the kernel must load inside a bank)
 *   /chosen/xen,static-heap         (addr,size)+ root cells, 64 KiB aligned: the hypervisor's heap
 *   /chosen/<dd> "xen,domain" + xenon,driver-domain
 *                                   a driver domain: a TypeScript domain (its own worker thread) that
 *                                   runs the VirtIO backends of the devices naming it; no kernel
 *                                   module, no memory/cpus (it has no guest RAM and no vCPU on a pCPU)
 *   <dom>/<dev> "xenon,virtio-device"
 *                                   a virtio-mmio device of the guest <dom>: xenon,backend = <&dd> (a
 *                                   driver domain), xenon,device = "blk" | "rng" | "console" | "net"
 *                                   (net: optional local-mac-address, 6 bytes; default
 *                                   00:16:3e:<domid>:<n>; its vif joins the host's switch xenbr0), and for blk
 *                                   xenon,path (the raw image, beside the tree) and optional
 *                                   read-only; the guest finds it in its tree as virtio,mmio with a
 *                                   xen,grant-dma link to the backend. xenon,grant-usage = <0>|<1>
 *                                   (xl.cfg's grant_usage, default 1): 0 leaves the link out (the
 *                                   guest uses guest-physical addresses) and makes the backend
 *                                   privileged (dom0-like: it may foreign-map any domain's memory)
 *   /chosen/<ch> "xen,evtchn-v1", /chosen/<shm> "xen,domain-shared-memory-v1"
 *                                   dom0's ends: a Domain-0 (domid 0, privileged, no kernel, no vCPU;
 *                                   the control domain `--serve` acts as) is made to hold them
 *   <dom>/<m> "multiboot,device-tree"  partial tree (`xenon,path`, a .dtb): /passthrough nodes with
 *                                   reg, interrupts, xen,path, xen,reg (passthroughOf); host nodes
 *                                   whose compatible is a passthrough model are the host's devices
 *   <dom>/<shm> "xen,domain-shared-memory-v1"
 *                                   xen,shm-id (< 16 bytes), xen,shared-mem = <host guest size>
 *                                   (domain node's cells), role = owner|borrower (absent: DOMID_IO
 *                                   owns it); one id = one host range, reserved once
 *
 * Host-physical addresses are machine addresses: mfn = address >> 12. Host RAM is what the
 * /memory nodes list; the gaps between banks are holes no one is given.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { formatMac, isGroupMac } from "@xenon/backends";
import { guestImagePath } from "@xenon/guests";
import { parseElf32 } from "@xenon/hw";
import {
  domainSpecCtrl,
  type Fdt,
  type FdtNode,
  GUEST_GNTTAB_BASE,
  GUEST_GNTTAB_SIZE,
  GUEST_RAM_BASE,
  type HostRange,
  PASSTHROUGH_MODELS,
  p2mPoolPagesFor,
  parseXenCmdline,
  readFdt,
  type XenCmdline,
  XenCmdlineError,
} from "@xenon/hypervisor";
import type {
  Dom0Spec,
  DomainSpec,
  DriverDomainSpec,
  HostDeviceSpec,
  PassthroughSpec,
  PoolSpec,
  SharedMemSpec,
  StaticEvtchn,
  VirtioAttach,
} from "../run/system.js";

export class BootTreeError extends Error {
  constructor(
    readonly node: string,
    readonly property: string | null,
    message: string,
  ) {
    super(`${node}${property === null ? "" : `: ${property}`}: ${message}`);
    this.name = "BootTreeError";
  }
}

export interface BootPlan {
  readonly hostMemoryMiB: number;
  /** Host RAM banks (host-physical). */
  readonly hostRam: readonly HostRange[];
  /** `xen,static-heap`: the only host RAM the hypervisor allocates from. */
  readonly staticHeap?: readonly HostRange[];
  readonly xenBootargs: string;
  /** The command line parsed: spec-ctrl policy, dom0-cpuid, every option. */
  readonly xenCmdline: XenCmdline;
  readonly pools: readonly PoolSpec[];
  readonly domains: readonly DomainSpec[];
  readonly evtchns: readonly StaticEvtchn[];
  /** Driver domains (`xenon,driver-domain`), in tree order; launched after the guests are built. */
  readonly driverDomains: readonly DriverDomainSpec[];
  /** Virtio devices of guests (`xenon,virtio-device`), each naming its driver domain by index. */
  readonly virtio: readonly VirtioAttach[];
  /**
   * Present when /chosen holds dom0's ends (static event channels, position 0 in `evtchns`;
   * static shared memory): a Domain-0 is made to hold them.
   */
  readonly dom0?: Dom0Spec;
  /** The host's DMA-capable devices (nodes whose compatible is a passthrough model), by path. */
  readonly hostDevices: readonly HostDeviceSpec[];
}

const SCHEDULERS = new Set(["credit2", "rtds", "null"]);
const PAGE = 4096;
const HEAP_ALIGN = 64 * 1024;
/** shared_info and the first grant-table frame. */
const PER_DOMAIN_HEAP_PAGES = 2;
const hex = (n: number) => `0x${n.toString(16)}`;
const rangeText = (r: HostRange) => `[${hex(r.hpa)}, +${hex(r.bytes)})`;

/** (address, size) pairs of `prop` in the given cells; null when absent. */
function ranges(path: string, n: FdtNode, prop: string, ac: number, sc: number): HostRange[] | null {
  const v = n.get(prop);
  if (v === undefined) return null;
  const stride = 4 * (ac + sc);
  if (v.length === 0 || v.length % stride !== 0)
    throw new BootTreeError(path, prop, `must be (address, size) pairs of ${ac}+${sc} cells`);
  const out: HostRange[] = [];
  for (let at = 0; at < v.length; at += stride) {
    const r = { hpa: cellsValue(v, at, ac), bytes: cellsValue(v, at + 4 * ac, sc) };
    if (r.bytes === 0 || r.hpa % PAGE !== 0 || r.bytes % PAGE !== 0)
      throw new BootTreeError(path, prop, `bank ${rangeText(r)} is empty or not 4 KiB aligned`);
    out.push(r);
  }
  return out;
}

/**
 * Every host range reserved at boot, with who asked for it: static memory, static shared memory
 * and the static heap must each lie inside host RAM and never overlap one another.
 */
class HostReservations {
  private readonly taken: Array<{ r: HostRange; who: string }> = [];
  constructor(private readonly ram: readonly HostRange[]) {}

  claim(path: string, prop: string, r: HostRange): void {
    if (!this.ram.some((b) => r.hpa >= b.hpa && r.hpa + r.bytes <= b.hpa + b.bytes))
      throw new BootTreeError(path, prop, `bank ${rangeText(r)} is outside host RAM`);
    const clash = this.taken.find((t) => r.hpa < t.r.hpa + t.r.bytes && t.r.hpa < r.hpa + r.bytes);
    if (clash !== undefined)
      throw new BootTreeError(path, prop, `bank ${rangeText(r)} overlaps ${clash.who} ${rangeText(clash.r)}`);
    this.taken.push({ r, who: `${path}: ${prop}` });
  }

  get bytes(): number {
    return this.taken.reduce((n, t) => n + t.r.bytes, 0);
  }
}
const DEFAULT_HOST_MIB = 1024;

function compatible(n: FdtNode): string[] {
  return n.getStringList("compatible") ?? [];
}

function u32(path: string, n: FdtNode, prop: string): number {
  const v = n.get(prop);
  if (v === undefined) throw new BootTreeError(path, prop, "missing");
  if (v.length !== 4) throw new BootTreeError(path, prop, `expected one u32 cell, got ${v.length} bytes`);
  return n.getU32(prop)!;
}

function cellsValue(v: Uint8Array, at: number, count: number): number {
  let x = 0;
  for (let i = 0; i < count; i++) x = x * 2 ** 32 + new DataView(v.buffer, v.byteOffset + at + 4 * i, 4).getUint32(0);
  return x;
}

function phandles(path: string, n: FdtNode, prop: string): number[] {
  const v = n.get(prop);
  if (v === undefined) throw new BootTreeError(path, prop, "missing");
  if (v.length === 0 || v.length % 4 !== 0) throw new BootTreeError(path, prop, "must be a non-empty list of phandles");
  return n.getU32Array(prop)!;
}

/**
 * Passthrough (Xen's docs/misc/arm/passthrough.txt, dom0less form): the domain node's
 * "multiboot,device-tree" module names a partial tree (`xenon,path`, a .dtb beside the host tree)
 * whose /passthrough nodes are copied into the guest's tree. Each device node there has `reg` (its
 * guest window, in the partial tree's root cells), `interrupts` (the guest's event-channel port),
 * `xen,path` (the host node of the device) and `xen,reg` = <host address, size, guest address> in
 * the same cells, which must agree with the host node and with `reg`.
 */
function passthroughOf(
  treeDir: string,
  pathOf: (n: FdtNode) => string,
  dn: FdtNode,
  hostDevices: readonly HostDeviceSpec[],
  assignedTo: Map<string, string>,
  ram: ReadonlyArray<{ gpa: number; bytes: number }>,
): PassthroughSpec[] {
  const mods = dn.children.filter((c) => compatible(c).includes("multiboot,device-tree"));
  if (mods.length === 0) return [];
  if (mods.length > 1) throw new BootTreeError(pathOf(mods[1]!), null, "a domain takes one multiboot,device-tree");
  const mod = mods[0]!;
  const mp = pathOf(mod);
  const name = mod.getString("xenon,path");
  if (name === undefined) throw new BootTreeError(mp, "xenon,path", "missing: names the partial device tree (.dtb)");
  const file = isAbsolute(name) ? name : join(treeDir, name);
  if (!existsSync(file))
    throw new BootTreeError(mp, "xenon,path", `partial device tree '${name}' not found beside the tree`);
  let partial: Fdt;
  try {
    partial = readFdt(new Uint8Array(readFileSync(file)));
  } catch (e) {
    throw new BootTreeError(mp, "xenon,path", `'${name}' is not a device tree blob: ${(e as Error).message}`);
  }
  const pt = partial.root.child("passthrough");
  if (pt === undefined) throw new BootTreeError(mp, "xenon,path", `'${name}' has no /passthrough node`);
  const ac = partial.root.addressCells();
  const sc = partial.root.sizeCells();
  const out: PassthroughSpec[] = [];
  for (const n of pt.children) {
    const np = `${name}:/passthrough/${n.name}`;
    const hostPath = n.getString("xen,path");
    if (hostPath === undefined) throw new BootTreeError(np, "xen,path", "missing: names the host device node");
    const dev = hostDevices.find((h) => h.path === hostPath);
    if (dev === undefined)
      throw new BootTreeError(np, "xen,path", `no passthrough-capable device at ${hostPath} in the host tree`);
    const holder = assignedTo.get(hostPath);
    if (holder !== undefined)
      throw new BootTreeError(np, "xen,path", `${hostPath} is already passed through to ${holder}`);
    const xreg = n.get("xen,reg");
    const stride = 4 * (2 * ac + sc);
    if (xreg === undefined || xreg.length !== stride)
      throw new BootTreeError(np, "xen,reg", `must be one <host address, size, guest address> (${2 * ac + sc} cells)`);
    const hostAddr = cellsValue(xreg, 0, ac);
    const size = cellsValue(xreg, 4 * ac, sc);
    const guestAddr = cellsValue(xreg, 4 * (ac + sc), ac);
    if (hostAddr !== dev.base || size !== dev.size)
      throw new BootTreeError(
        np,
        "xen,reg",
        `host window ${rangeText({ hpa: hostAddr, bytes: size })} is not ${hostPath}'s ${rangeText({ hpa: dev.base, bytes: dev.size })}`,
      );
    const reg = ranges(np, n, "reg", ac, sc);
    if (reg === null || reg.length !== 1 || reg[0]!.hpa !== guestAddr || reg[0]!.bytes !== size)
      throw new BootTreeError(
        np,
        "reg",
        `must be the guest window of xen,reg (${rangeText({ hpa: guestAddr, bytes: size })})`,
      );
    if (guestAddr % PAGE !== 0 || guestAddr + size > 2 ** 32)
      throw new BootTreeError(
        np,
        "reg",
        `guest window ${rangeText({ hpa: guestAddr, bytes: size })} is not page-aligned below 4 GiB`,
      );
    if (ram.some((r) => guestAddr < r.gpa + r.bytes && r.gpa < guestAddr + size))
      throw new BootTreeError(np, "reg", "the guest window overlaps the domain's RAM");
    const irq = n.getU32("interrupts");
    if (irq === undefined || irq === 0)
      throw new BootTreeError(np, "interrupts", "missing: the guest's event-channel port");
    assignedTo.set(hostPath, pathOf(dn));
    out.push({
      hostPath,
      name: n.name.split("@")[0]!,
      compatible: dev.compatible,
      guestBase: guestAddr,
      size,
      guestIrqPort: irq,
    });
  }
  if (out.length === 0) throw new BootTreeError(mp, "xenon,path", `'${name}' passes nothing through`);
  return out;
}

/** Resolves `xenon,path`: beside the tree first, then among the built guest images. */
function resolveImage(treeDir: string, path: string, name: string): string {
  const beside = isAbsolute(name) ? name : join(treeDir, name);
  if (existsSync(beside)) return beside;
  const base = name.replace(/^.*\//, "").replace(/\.elf$/, "");
  try {
    return guestImagePath(base);
  } catch {
    throw new BootTreeError(
      path,
      "xenon,path",
      `image '${name}' not found beside the tree nor among the built guest images`,
    );
  }
}

export function planFromTree(fdt: Fdt, treeFile: string, extraXenBootargs = ""): BootPlan {
  const treeDir = dirname(treeFile);
  const root = fdt.root;
  const phandleMap = fdt.phandles();
  const pathOf = (n: FdtNode) => fdt.pathOf(n) ?? n.name;

  // Host memory: every /memory node's banks (root cells).
  let hostRam: HostRange[] = [{ hpa: 0, bytes: DEFAULT_HOST_MIB * 2 ** 20 }];
  const memNodes = root.children.filter((c) => c.getString("device_type") === "memory");
  if (memNodes.length > 0) {
    hostRam = [];
    for (const m of memNodes) {
      const banks = ranges(pathOf(m), m, "reg", root.addressCells(), root.sizeCells());
      if (banks === null) throw new BootTreeError(pathOf(m), "reg", "missing");
      for (const b of banks) {
        const clash = hostRam.find((o) => b.hpa < o.hpa + o.bytes && o.hpa < b.hpa + b.bytes);
        if (clash !== undefined)
          throw new BootTreeError(pathOf(m), "reg", `bank ${rangeText(b)} overlaps another RAM bank`);
        if (b.hpa + b.bytes > 2 ** 44) throw new BootTreeError(pathOf(m), "reg", `bank ${rangeText(b)} passes 16 TiB`);
        hostRam.push(b);
      }
    }
    hostRam.sort((a, b) => a.hpa - b.hpa);
  }
  const hostMemoryMiB = Math.floor(hostRam.reduce((n, b) => n + b.bytes, 0) / 2 ** 20);
  const reservations = new HostReservations(hostRam);

  // Host pCPUs and their classes.
  const cpusNode = root.child("cpus");
  const cpuNodes = (cpusNode?.children ?? []).filter((c) => c.getString("device_type") === "cpu");
  if (cpuNodes.length === 0) throw new BootTreeError("/cpus", null, "no cpu nodes: the host needs at least one pCPU");
  const dmips = cpuNodes.map((c) => c.getU32("capacity-dmips-mhz") ?? 1024);
  const maxDmips = Math.max(...dmips);
  const cpuByNode = new Map<FdtNode, { id: number; cls: string; speed: number }>();
  for (const [i, c] of cpuNodes.entries()) {
    const id = u32(pathOf(c), c, "reg");
    const speed = Math.max(1, Math.round((1024 * dmips[i]!) / maxDmips));
    cpuByNode.set(c, { id, cls: dmips[i] === maxDmips ? "big" : "LITTLE", speed });
  }

  // The host's devices that can be passed through (anywhere but /chosen), their reg in their parent's cells.
  const hostDevices: HostDeviceSpec[] = [];
  const walk = (n: FdtNode, parent: FdtNode | null) => {
    if (n.name === "chosen" && parent === root) return;
    const model = compatible(n).find((c) => (PASSTHROUGH_MODELS as readonly string[]).includes(c));
    if (model !== undefined && parent !== null) {
      const p = pathOf(n);
      const reg = ranges(p, n, "reg", parent.addressCells(), parent.sizeCells());
      if (reg === null || reg.length !== 1) throw new BootTreeError(p, "reg", "a device needs one register window");
      hostDevices.push({ path: p, compatible: model, base: reg[0]!.hpa, size: reg[0]!.bytes });
    }
    for (const c of n.children) walk(c, n);
  };
  walk(root, null);

  const chosen = root.child("chosen");
  if (chosen === undefined) throw new BootTreeError("/chosen", null, "missing: nothing to boot");
  // The hypervisor command line: the tree's, then any given on ours (later options win).
  const xenBootargs = [chosen.getString("xen,xen-bootargs") ?? "", extraXenBootargs].filter((a) => a !== "").join(" ");
  let xenCmdline: XenCmdline;
  try {
    xenCmdline = parseXenCmdline(xenBootargs);
  } catch (e) {
    if (e instanceof XenCmdlineError) throw new BootTreeError(pathOf(chosen), "xen,xen-bootargs", e.message);
    throw e;
  }

  // cpupools: DT order, the one holding the boot CPU becomes Pool-0; unlisted CPUs form a last pool.
  const poolNodes = chosen.children.filter((c) => compatible(c).includes("xen,cpupool"));
  const taken = new Set<FdtNode>();
  const pools: Array<{ node: FdtNode | null; spec: PoolSpec }> = [];
  for (const pn of poolNodes) {
    const p = pathOf(pn);
    const cpus = phandles(p, pn, "cpupool-cpus").map((ph) => {
      const target = phandleMap.get(ph);
      if (target === undefined || !cpuByNode.has(target))
        throw new BootTreeError(p, "cpupool-cpus", `phandle ${ph} is not a cpu node`);
      if (taken.has(target))
        throw new BootTreeError(p, "cpupool-cpus", `${pathOf(target)} is already in another cpupool`);
      taken.add(target);
      return cpuByNode.get(target)!;
    });
    const sched = pn.getString("cpupool-sched") ?? "credit2";
    if (!SCHEDULERS.has(sched))
      throw new BootTreeError(p, "cpupool-sched", `unknown scheduler '${sched}' (credit2, rtds or null)`);
    pools.push({ node: pn, spec: { name: pn.name, scheduler: sched as PoolSpec["scheduler"], pcpus: cpus } });
  }
  const rest = [...cpuByNode.entries()].filter(([n]) => !taken.has(n)).map(([, c]) => c);
  if (rest.length > 0)
    pools.push({ node: null, spec: { name: `Pool-${pools.length}`, scheduler: "credit2", pcpus: rest } });
  const bootCpu = cpuByNode.get(cpuNodes[0]!)!.id;
  const bootPool = pools.findIndex((p) => p.spec.pcpus.some((c) => c.id === bootCpu));
  if (bootPool > 0) pools.unshift(...pools.splice(bootPool, 1));
  const poolIndex = new Map(pools.map((p, i) => [p.node, i] as const));

  // Driver domains: TypeScript domains, domids after the guests'.
  const allDomainNodes = chosen.children.filter((c) => compatible(c).includes("xen,domain"));
  const driverNodes = allDomainNodes.filter((c) => c.get("xenon,driver-domain") !== undefined);
  const driverDomains = driverNodes.map((dd) => driverDomain(pathOf(dd), dd));
  // Guest domains, in DT order: domids 1, 2, ...
  const domainNodes = allDomainNodes.filter((c) => !driverNodes.includes(c));
  if (domainNodes.length === 0) throw new BootTreeError(pathOf(chosen), null, "no xen,domain nodes");
  const domains: DomainSpec[] = [];
  const domOfNode = new Map<FdtNode, number>();
  const shmById = new Map<string, ShmRegion>();
  const roleHolders = new Map<string, string>();
  /** Host device path -> the domain node it went to (a device goes to one domain). */
  const assignedTo = new Map<string, string>();
  let totalKiB = 0;
  for (const [i, dn] of domainNodes.entries()) {
    const p = pathOf(dn);
    const memory = dn.get("memory");
    if (memory === undefined) throw new BootTreeError(p, "memory", "missing");
    if (memory.length !== 8) throw new BootTreeError(p, "memory", "must be a 64-bit value in KiB (2 cells)");
    const kib = cellsValue(memory, 0, 2);
    if (kib === 0 || kib % 1024 !== 0)
      throw new BootTreeError(p, "memory", `${kib} KiB is not a positive whole number of MiB`);
    totalKiB += kib;
    const vcpus = u32(p, dn, "cpus");
    if (vcpus < 1 || vcpus > 128) throw new BootTreeError(p, "cpus", `${vcpus} out of range 1..128`);
    let pool = 0;
    const poolRef = dn.getU32("domain-cpupool");
    if (poolRef !== undefined) {
      const target = phandleMap.get(poolRef);
      const idx = target === undefined ? undefined : poolIndex.get(target);
      if (idx === undefined)
        throw new BootTreeError(p, "domain-cpupool", `phandle ${poolRef} is not a xen,cpupool node`);
      pool = idx;
    }
    const kernel = dn.children.find((c) => compatible(c).includes("multiboot,kernel"));
    if (kernel === undefined) throw new BootTreeError(p, null, "no multiboot,kernel module");
    const imageName = kernel.getString("xenon,path");
    if (imageName === undefined)
      throw new BootTreeError(pathOf(kernel), "xenon,path", "missing: names the kernel image file");
    const path = resolveImage(treeDir, pathOf(kernel), imageName);
    const ramdisk = ramdiskOf(dn, pathOf, treeDir);
    const xenstore = enhancedXenstore(p, dn);
    const vpl011 = dn.get("vpl011");
    if (vpl011 !== undefined && vpl011.length !== 0)
      throw new BootTreeError(p, "vpl011", "is a flag: it takes no value");
    const roles = domainRoles(p, dn, roleHolders);
    const specCtrl = dn.getStringList("xenon,spec-ctrl") ?? [];
    try {
      domainSpecCtrl(
        specCtrl,
        xenCmdline.specCtrl,
        roles.roles.includes("hardware") ? xenCmdline.dom0Cpuid : undefined,
      );
    } catch (e) {
      if (e instanceof XenCmdlineError) throw new BootTreeError(p, "xenon,spec-ctrl", e.message);
      throw e;
    }

    // Static memory: reserved for this domain alone, summing to `memory`.
    const staticMem = ranges(p, dn, "xen,static-mem", dn.addressCells(), dn.sizeCells());
    const directMap = dn.get("direct-map") !== undefined;
    if (directMap && staticMem === null) throw new BootTreeError(p, "direct-map", "needs xen,static-mem");
    if (staticMem !== null) {
      for (const r of staticMem) reservations.claim(p, "xen,static-mem", r);
      const total = staticMem.reduce((n, r) => n + r.bytes, 0);
      if (total !== kib * 1024)
        throw new BootTreeError(p, "xen,static-mem", `banks hold ${total / 1024} KiB but memory is ${kib} KiB`);
      totalKiB -= kib;
    }
    if (directMap) checkDirectMap(p, path, staticMem!);
    const ramBase = directMap ? GUEST_RAM_BASE : ramBaseFor(p, path, kib * 1024);
    const ramRanges = directMap
      ? staticMem!.map((r) => ({ gpa: r.hpa, bytes: r.bytes }))
      : [{ gpa: ramBase, bytes: kib * 1024 }];
    const sharedMem = dn.children
      .filter((c) => compatible(c).includes("xen,domain-shared-memory-v1"))
      .map((c) => sharedRegion(pathOf(c), c, dn, ramRanges, shmById, reservations));
    const passthrough = passthroughOf(treeDir, pathOf, dn, hostDevices, assignedTo, ramRanges);
    domains.push({
      path,
      name: dn.name,
      memoryMiB: kib / 1024,
      vcpus,
      pool,
      bootargs: kernel.getString("bootargs") ?? "",
      ...(staticMem !== null ? { staticMem } : {}),
      ...(directMap ? { directMap } : {}),
      ...(sharedMem.length > 0 ? { sharedMem } : {}),
      ...(passthrough.length > 0 ? { passthrough } : {}),
      ...(specCtrl.length > 0 ? { specCtrl } : {}),
      ...(ramBase !== GUEST_RAM_BASE ? { ramBase } : {}),
      ...(ramdisk !== undefined ? { ramdisk } : {}),
      ...(xenstore ? { xenstore } : {}),
      ...(roles.domid !== undefined ? { domid: roles.domid } : {}),
      ...(roles.roles.length > 0 ? { roles: roles.roles } : {}),
    });
    domOfNode.set(dn, i + 1);
  }
  // dom0's ends (directly under /chosen): a Domain-0 is made to hold them (no kernel, no vCPU).
  const dom0Shm = chosen.children
    .filter((c) => compatible(c).includes("xen,domain-shared-memory-v1"))
    .map((c) => sharedRegion(pathOf(c), c, chosen, [], shmById, reservations));
  const dom0Evtchn = chosen.children.some((c) => compatible(c).includes("xen,evtchn-v1"));
  const hasDom0 = dom0Shm.length > 0 || dom0Evtchn;
  if (hasDom0) {
    const zero = domains.findIndex((d) => d.domid === 0);
    if (zero >= 0)
      throw new BootTreeError(
        pathOf(domainNodes[zero]!),
        "domid",
        "0 is Domain-0's, which holds the static event channels or shared memory under /chosen",
      );
    domOfNode.set(chosen, 0);
  }
  const virtio = domainNodes.flatMap((dn, i) =>
    dn.children
      .filter((c) => compatible(c).includes("xenon,virtio-device"))
      .map((c) => virtioDevice(pathOf(c), c, i + 1, treeDir, phandleMap, driverNodes)),
  );
  for (const [i, dd] of driverNodes.entries()) {
    const served = virtio.filter((v) => v.backend === i).length;
    if (served === 0)
      throw new BootTreeError(pathOf(dd), "xenon,driver-domain", "no xenon,virtio-device names it as its backend");
  }
  for (const region of shmById.values()) {
    const owners = region.users.filter((u) => u.role === "owner");
    if (owners.length > 1)
      throw new BootTreeError(
        owners[1]!.path,
        "role",
        `region '${region.id}' already has an owner (${owners[0]!.path})`,
      );
  }

  // The static heap, when given, is all the hypervisor allocates from: heap-backed domains' RAM
  // and every domain's P2M pool, shared_info and first grant frame must fit in it.
  const staticHeap = ranges(pathOf(chosen), chosen, "xen,static-heap", root.addressCells(), root.sizeCells());
  if (staticHeap !== null) {
    for (const r of staticHeap) {
      if (r.hpa % HEAP_ALIGN !== 0 || r.bytes % HEAP_ALIGN !== 0)
        throw new BootTreeError(pathOf(chosen), "xen,static-heap", `bank ${rangeText(r)} is not 64 KiB aligned`);
      reservations.claim(pathOf(chosen), "xen,static-heap", r);
    }
    const heapBytes = staticHeap.reduce((n, r) => n + r.bytes, 0);
    const needPages = domains.reduce(
      (n, d) =>
        n +
        (d.staticMem === undefined ? d.memoryMiB * 256 : 0) +
        p2mPoolPagesFor(d.memoryMiB * 256 + 64) +
        PER_DOMAIN_HEAP_PAGES,
      0,
    );
    if (needPages * PAGE > heapBytes)
      throw new BootTreeError(
        pathOf(chosen),
        "xen,static-heap",
        `domains need ${needPages} pages from the heap (RAM, P2M pools, shared_info, grant frames), it holds ${heapBytes / PAGE}`,
      );
  } else {
    // Heap-backed domains share what static reservations leave.
    const heapMiB = Math.floor((hostMemoryMiB * 2 ** 20 - reservations.bytes) / 2 ** 20);
    if (totalKiB / 1024 > heapMiB) {
      // Name the domain whose memory tips the sum over what the host has.
      let sum = 0;
      const over = domains.findIndex((d) => {
        if (d.staticMem === undefined) sum += d.memoryMiB;
        return sum > heapMiB;
      });
      throw new BootTreeError(
        pathOf(domainNodes[over]!),
        "memory",
        `domains ask for ${totalKiB / 1024} MiB, the host has ${heapMiB} MiB` +
          (reservations.bytes > 0 ? " outside static reservations" : ""),
      );
    }
  }

  // Static event channels: mutual phandles, each pair once.
  const evtchns: StaticEvtchn[] = [];
  const seen = new Set<FdtNode>();
  for (const dn of hasDom0 ? [chosen, ...domainNodes] : domainNodes) {
    for (const ch of dn.children.filter((c) => compatible(c).includes("xen,evtchn-v1"))) {
      const p = pathOf(ch);
      const v = ch.getU32Array("xen,evtchn");
      if (v === undefined || v.length !== 2)
        throw new BootTreeError(p, "xen,evtchn", "must be <local-port &peer-node>");
      const [port, ph] = v as [number, number];
      const peer = phandleMap.get(ph);
      if (peer === undefined) throw new BootTreeError(p, "xen,evtchn", `phandle ${ph} names no node`);
      const peerDom = fdt.parentOf(peer);
      const peerDomid = peerDom === undefined ? undefined : domOfNode.get(peerDom);
      if (peerDomid === undefined)
        throw new BootTreeError(p, "xen,evtchn", `${pathOf(peer)} is not an event channel of a xen,domain`);
      const back = peer.getU32Array("xen,evtchn");
      if (back === undefined || back.length !== 2 || phandleMap.get(back[1]!) !== ch) {
        throw new BootTreeError(
          p,
          "xen,evtchn",
          `${pathOf(peer)} does not point back: static event channels must be mutual`,
        );
      }
      if (seen.has(ch)) continue;
      seen.add(ch);
      seen.add(peer);
      evtchns.push({ a: domOfNode.get(dn)!, aPort: port, b: peerDomid, bPort: back[0]! });
    }
  }
  return {
    hostMemoryMiB,
    hostRam,
    ...(staticHeap !== null ? { staticHeap } : {}),
    xenBootargs,
    xenCmdline,
    pools: pools.map((p) => p.spec),
    domains,
    evtchns,
    driverDomains,
    virtio,
    ...(hasDom0 ? { dom0: { sharedMem: dom0Shm } } : {}),
    hostDevices,
  };
}

/**
 * `xen,enhanced`: absent or "disabled" -> no PV interfaces; "" or "enabled" -> XenStore (and the
 * grant table); "no-xenstore" -> grant table and event channels only. Our guests always have the
 * grant table and event channels, so the answer is whether the domain gets XenStore.
 */
function enhancedXenstore(path: string, n: FdtNode): boolean {
  const v = n.get("xen,enhanced");
  if (v === undefined) return false;
  const text = v.length === 0 ? "" : n.getString("xen,enhanced");
  if (text === "" || text === "enabled") return true;
  if (text === "no-xenstore" || text === "disabled") return false;
  throw new BootTreeError(path, "xen,enhanced", `'${text}' is none of enabled, no-xenstore, disabled`);
}

/** A `multiboot,ramdisk` module: its image named by `xenon,path` (beside the tree, or absolute). */
function ramdiskOf(dn: FdtNode, pathOf: (n: FdtNode) => string, treeDir: string): string | undefined {
  const mods = dn.children.filter((c) => compatible(c).includes("multiboot,ramdisk"));
  if (mods.length === 0) return undefined;
  const m = mods[0]!;
  if (mods.length > 1) throw new BootTreeError(pathOf(mods[1]!), "compatible", "a second multiboot,ramdisk module");
  const name = m.getString("xenon,path");
  if (name === undefined) throw new BootTreeError(pathOf(m), "xenon,path", "missing: names the ramdisk image file");
  const file = isAbsolute(name) ? name : join(treeDir, name);
  if (!existsSync(file))
    throw new BootTreeError(pathOf(m), "xenon,path", `ramdisk '${name}' not found beside the tree`);
  return file;
}

/**
 * Where a domain's RAM starts: GUEST_RAM_BASE, or for a kernel linked below it (our images are not
 * relocatable; Xen's Arm kernels are) its lowest load address rounded down to 2 MiB. The RAM must
 * stay clear of the hypervisor window.
 */
function ramBaseFor(path: string, image: string, bytes: number): number {
  let low: number;
  try {
    low = Math.min(...parseElf32(readFileSync(image)).segments.map((s) => s.paddr));
  } catch {
    return GUEST_RAM_BASE; // the builder reports the bad image
  }
  if (!(low < GUEST_RAM_BASE)) return GUEST_RAM_BASE;
  const base = Math.floor(low / 0x200000) * 0x200000;
  if (base < GUEST_GNTTAB_BASE + GUEST_GNTTAB_SIZE && GUEST_GNTTAB_BASE < base + bytes)
    throw new BootTreeError(
      path,
      "memory",
      `the kernel is linked at ${hex(low)}: RAM [${hex(base)}, +${hex(bytes)}) would cover the hypervisor window`,
    );
  return base;
}

const VIRTIO_KINDS = new Set(["blk", "rng", "console", "net"]);

/** A driver domain node: no kernel, no RAM, no vCPUs of its own (its backends run in a worker). */
function driverDomain(path: string, n: FdtNode): DriverDomainSpec {
  const v = n.get("xenon,driver-domain");
  if (v !== undefined && v.length !== 0)
    throw new BootTreeError(path, "xenon,driver-domain", "is a flag: it takes no value");
  if (n.children.some((c) => compatible(c).includes("multiboot,kernel")))
    throw new BootTreeError(path, "xenon,driver-domain", "a driver domain runs the backends, not a kernel module");
  for (const prop of ["memory", "xen,static-mem", "direct-map", "domain-cpupool"])
    if (n.get(prop) !== undefined)
      throw new BootTreeError(path, prop, "a driver domain has no guest RAM or vCPUs (its backends run in a worker)");
  for (const c of n.children)
    if (compatible(c).includes("xen,evtchn-v1") || compatible(c).includes("xen,domain-shared-memory-v1"))
      throw new BootTreeError(pathOfChild(path, c), "compatible", "a driver domain takes no static channels or memory");
  return { name: n.name };
}

const pathOfChild = (parent: string, c: FdtNode) => `${parent}/${c.name}`;

/** One `xenon,virtio-device` of guest `guest` (1-based position): its backend and its model. */
function virtioDevice(
  path: string,
  n: FdtNode,
  guest: number,
  treeDir: string,
  phandleMap: ReadonlyMap<number, FdtNode>,
  driverNodes: readonly FdtNode[],
): VirtioAttach {
  const grants = grantUsage(path, n);
  const ph = n.get("xenon,backend");
  if (ph === undefined) throw new BootTreeError(path, "xenon,backend", "missing: names the driver domain by phandle");
  if (ph.length !== 4) throw new BootTreeError(path, "xenon,backend", "must be one phandle");
  const target = phandleMap.get(n.getU32("xenon,backend")!);
  if (target === undefined) throw new BootTreeError(path, "xenon,backend", "the phandle names no node");
  const backend = driverNodes.indexOf(target);
  if (backend < 0)
    throw new BootTreeError(
      path,
      "xenon,backend",
      `${target.name} is not a driver domain (a xen,domain with xenon,driver-domain)`,
    );
  const kind = n.getString("xenon,device");
  if (kind === undefined)
    throw new BootTreeError(path, "xenon,device", "missing: the device kind (blk, rng, console, net)");
  if (!VIRTIO_KINDS.has(kind))
    throw new BootTreeError(path, "xenon,device", `unknown device kind '${kind}' (${[...VIRTIO_KINDS].join(", ")})`);
  if (kind === "net") {
    for (const prop of ["xenon,path", "read-only"])
      if (n.get(prop) !== undefined) throw new BootTreeError(path, prop, "a net device has no image");
    const mac = n.get("local-mac-address");
    if (mac === undefined) return { domain: guest, backend, device: { kind: "net", mac: "" }, ...grants };
    const value = mac.length === 6 ? mac.reduce((x, b) => x * 256 + b, 0) : -1;
    if (value <= 0 || isGroupMac(value))
      throw new BootTreeError(path, "local-mac-address", "must be 6 bytes, a unicast MAC ([00 16 3e ...])");
    return { domain: guest, backend, device: { kind: "net", mac: formatMac(value) }, ...grants };
  }
  if (kind === "rng" || kind === "console") {
    for (const prop of ["xenon,path", "read-only"])
      if (n.get(prop) !== undefined) throw new BootTreeError(path, prop, `an ${kind} device has no image`);
    return { domain: guest, backend, device: { kind }, ...grants };
  }
  const image = n.getString("xenon,path");
  if (image === undefined) throw new BootTreeError(path, "xenon,path", "missing: names the disk image file");
  const file = isAbsolute(image) ? image : join(treeDir, image);
  if (!existsSync(file)) throw new BootTreeError(path, "xenon,path", `disk image '${image}' not found beside the tree`);
  const ro = n.get("read-only");
  if (ro !== undefined && ro.length !== 0) throw new BootTreeError(path, "read-only", "is a flag: it takes no value");
  return { domain: guest, backend, device: { kind: "blk", path: file, readOnly: ro !== undefined }, ...grants };
}

/** `xenon,grant-usage`: absent or <1> grants (nothing to add), <0> none; anything else refused. */
function grantUsage(path: string, n: FdtNode): { grants?: false } {
  if (n.get("xenon,grant-usage") === undefined) return {};
  const v = u32(path, n, "xenon,grant-usage");
  if (v !== 0 && v !== 1) throw new BootTreeError(path, "xenon,grant-usage", `must be <0> or <1>, not <${v}>`);
  return v === 0 ? { grants: false } : {};
}

/** Hyperlaunch `permissions` bits (docs/designs/launch/hyperlaunch-devicetree.rst). */
const PERMISSION_CONTROL = 1 << 0;
const PERMISSION_HARDWARE = 1 << 1;
/** Hyperlaunch `functions` bits. */
const FUNCTION_BOOT = 1 << 0;
const FUNCTION_CRASH = 1 << 1;
const FUNCTION_CONSOLE = 1 << 2;
const FUNCTION_XENSTORE = 2 ** 30;
const FUNCTION_LEGACY_DOM0 = 2 ** 31;
/** DOMID_FIRST_RESERVED: ids from here on name special domains (DOMID_SELF, DOMID_IO...). */
const DOMID_FIRST_RESERVED = 0x7ff0;

/**
 * Hyperlaunch roles of one domain node: `permissions` (CONTROL, HARDWARE), `functions` (CONSOLE,
 * XENSTORE, LEGACY_DOM0 = all roles; BOOT and CRASH need launch phases we do not run and are
 * refused) and an optional `domid`. One domain at most holds each of hardware, xenstore and
 * console; control may be held by several, as the design allows. `holders` maps a role to the
 * node holding it, across the tree.
 */
function domainRoles(
  path: string,
  n: FdtNode,
  holders: Map<string, string>,
): { domid?: number; roles: Array<"control" | "hardware" | "xenstore" | "console"> } {
  const perms = n.get("permissions") === undefined ? 0 : u32(path, n, "permissions");
  const funcs = n.get("functions") === undefined ? 0 : u32(path, n, "functions");
  if ((perms & ~(PERMISSION_CONTROL | PERMISSION_HARDWARE)) !== 0)
    throw new BootTreeError(path, "permissions", `unknown bits ${hex(perms)} (CONTROL 0x1, HARDWARE 0x2)`);
  const known = FUNCTION_BOOT | FUNCTION_CRASH | FUNCTION_CONSOLE | FUNCTION_XENSTORE | FUNCTION_LEGACY_DOM0;
  if ((funcs & ~known) >>> 0 !== 0) throw new BootTreeError(path, "functions", `unknown bits in ${hex(funcs >>> 0)}`);
  if ((funcs & FUNCTION_BOOT) !== 0)
    throw new BootTreeError(path, "functions", "BOOT: a boot domain (the domain preparation phase) is not supported");
  if ((funcs & FUNCTION_CRASH) !== 0)
    throw new BootTreeError(path, "functions", "CRASH: a recovery domain is not supported");
  const legacy = (funcs & FUNCTION_LEGACY_DOM0) !== 0;
  const roles: Array<"control" | "hardware" | "xenstore" | "console"> = [];
  if (legacy || (perms & PERMISSION_CONTROL) !== 0) roles.push("control");
  if (legacy || (perms & PERMISSION_HARDWARE) !== 0) roles.push("hardware");
  if (legacy || (funcs & FUNCTION_XENSTORE) !== 0) roles.push("xenstore");
  if (legacy || (funcs & FUNCTION_CONSOLE) !== 0) roles.push("console");
  for (const r of roles) {
    if (r === "control") continue;
    const other = holders.get(r);
    const prop = r === "hardware" ? "permissions" : "functions";
    if (other !== undefined) throw new BootTreeError(path, prop, `${r} role already held by ${other}`);
    holders.set(r, path);
  }
  let domid: number | undefined;
  if (n.get("domid") !== undefined) {
    domid = u32(path, n, "domid");
    if (domid >= DOMID_FIRST_RESERVED)
      throw new BootTreeError(path, "domid", `${hex(domid)} is a reserved domain id (from 0x7ff0)`);
    if (domid === 0 && !roles.includes("hardware"))
      throw new BootTreeError(path, "domid", "0 is the hardware domain's id");
    const key = `domid ${domid}`;
    const other = holders.get(key);
    if (other !== undefined) throw new BootTreeError(path, "domid", `${domid} is already ${other}'s`);
    holders.set(key, path);
  }
  return { ...(domid !== undefined ? { domid } : {}), roles };
}

interface ShmRegion {
  readonly id: string;
  readonly range: HostRange;
  readonly users: Array<{ path: string; role: "owner" | "borrower" | null; domain: FdtNode }>;
}

/**
 * One `xen,domain-shared-memory-v1` node of a domain: the same id always names the same host
 * range (reserved the first time it is seen); the guest address must be free in the domain's
 * space (not RAM, not the hypervisor window, below 4 GiB).
 */
function sharedRegion(
  path: string,
  n: FdtNode,
  dom: FdtNode,
  ram: ReadonlyArray<{ gpa: number; bytes: number }>,
  byId: Map<string, ShmRegion>,
  reservations: HostReservations,
): SharedMemSpec {
  const id = n.getString("xen,shm-id");
  if (id === undefined) throw new BootTreeError(path, "xen,shm-id", "missing");
  if (id.length === 0 || id.length >= 16)
    throw new BootTreeError(path, "xen,shm-id", `'${id}' must be 1 to 15 characters`);
  const ac = dom.addressCells();
  const sc = dom.sizeCells();
  const v = n.get("xen,shared-mem");
  if (v === undefined) throw new BootTreeError(path, "xen,shared-mem", "missing");
  if (v.length !== 4 * (2 * ac + sc))
    throw new BootTreeError(
      path,
      "xen,shared-mem",
      `must be <host-address guest-address size> in ${ac}+${ac}+${sc} cells`,
    );
  const hpa = cellsValue(v, 0, ac);
  const gpa = cellsValue(v, 4 * ac, ac);
  const bytes = cellsValue(v, 8 * ac, sc);
  if (bytes === 0 || hpa % PAGE !== 0 || gpa % PAGE !== 0 || bytes % PAGE !== 0)
    throw new BootTreeError(path, "xen,shared-mem", "addresses and size must be non-zero multiples of 4 KiB");
  const roleText = n.getString("role");
  if (roleText !== undefined && roleText !== "owner" && roleText !== "borrower")
    throw new BootTreeError(path, "role", `'${roleText}' is neither owner nor borrower`);
  const role = (roleText ?? null) as "owner" | "borrower" | null;
  if (gpa + bytes > 2 ** 32)
    throw new BootTreeError(path, "xen,shared-mem", `guest address ${hex(gpa)} + ${hex(bytes)} passes 4 GiB`);
  const clashes = (a: number, len: number) => gpa < a + len && a < gpa + bytes;
  if (ram.some((r) => clashes(r.gpa, r.bytes)))
    throw new BootTreeError(
      path,
      "xen,shared-mem",
      `guest range [${hex(gpa)}, +${hex(bytes)}) overlaps the domain's RAM`,
    );
  if (clashes(GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE))
    throw new BootTreeError(
      path,
      "xen,shared-mem",
      `guest range [${hex(gpa)}, +${hex(bytes)}) covers the hypervisor window`,
    );
  const range = { hpa, bytes };
  const known = byId.get(id);
  if (known === undefined) {
    reservations.claim(path, "xen,shared-mem", range);
    byId.set(id, { id, range, users: [{ path, role, domain: dom }] });
  } else {
    if (known.range.hpa !== hpa || known.range.bytes !== bytes)
      throw new BootTreeError(
        path,
        "xen,shared-mem",
        `region '${id}' is ${rangeText(range)} here but ${rangeText(known.range)} in ${known.users[0]!.path}`,
      );
    if (known.users.some((u) => u.domain === dom))
      throw new BootTreeError(path, "xen,shm-id", `region '${id}' is given to this domain twice`);
    if ((role === null) !== (known.users[0]!.role === null))
      throw new BootTreeError(path, "role", `region '${id}' needs a role in every domain or in none`);
    known.users.push({ path, role, domain: dom });
  }
  return { id, hpa, gpa, bytes, role: role ?? "borrower" };
}

/**
 * A direct-mapped domain sees its banks at their host addresses: they must fit the guest's 32-bit
 * physical space, stay clear of its hypervisor window, and hold the kernel where it is linked.
 */
function checkDirectMap(path: string, image: string, banks: readonly HostRange[]): void {
  for (const b of banks) {
    if (b.hpa + b.bytes > 2 ** 32)
      throw new BootTreeError(path, "direct-map", `bank ${rangeText(b)} passes the guest's 4 GiB physical space`);
    if (b.hpa < GUEST_GNTTAB_BASE + GUEST_GNTTAB_SIZE && GUEST_GNTTAB_BASE < b.hpa + b.bytes)
      throw new BootTreeError(path, "direct-map", `bank ${rangeText(b)} covers the guest's hypervisor window`);
  }
  let segments: ReadonlyArray<{ paddr: number; memsz: number }>;
  try {
    segments = parseElf32(readFileSync(image)).segments;
  } catch (e) {
    throw new BootTreeError(path, "direct-map", `cannot read the kernel ${image}: ${(e as Error).message}`);
  }
  for (const seg of segments) {
    if (!banks.some((b) => seg.paddr >= b.hpa && seg.paddr + seg.memsz <= b.hpa + b.bytes))
      throw new BootTreeError(
        path,
        "direct-map",
        `the kernel loads at [${hex(seg.paddr)}, +${hex(seg.memsz)}), which no xen,static-mem bank holds`,
      );
  }
}

/** Reads a .dtb file and plans the system it describes. */
export function planFromFile(dtbPath: string, extraXenBootargs = ""): BootPlan {
  let blob: Uint8Array;
  try {
    blob = readFileSync(dtbPath);
  } catch (e) {
    throw new BootTreeError(dtbPath, null, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return planFromTree(readFdt(blob), dtbPath, extraXenBootargs);
}
