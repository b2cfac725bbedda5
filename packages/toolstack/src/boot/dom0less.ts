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
 *   /chosen/xen,xen-bootargs        the hypervisor command line (kept for the caller)
 *   /chosen/<pool> "xen,cpupool"    cpupool-cpus (phandles to cpu nodes), cpupool-sched
 *   /chosen/<dom> "xen,domain"      memory (KiB, 2 cells), cpus, domain-cpupool, bootargs via the
 *                                   kernel module; child "multiboot,kernel" module whose image is
 *                                   named by `xenon,path` (beside the tree, then the built images)
 *   <dom>/<ch> "xen,evtchn-v1"      xen,evtchn = <local-port &peer-node>, mutual
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { guestImagePath } from "@xenon/guests";
import { type Fdt, type FdtNode, readFdt } from "@xenon/hypervisor";
import type { DomainSpec, PoolSpec, StaticEvtchn } from "../run/system.js";

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
  readonly xenBootargs: string;
  readonly pools: readonly PoolSpec[];
  readonly domains: readonly DomainSpec[];
  readonly evtchns: readonly StaticEvtchn[];
}

const SCHEDULERS = new Set(["credit2", "rtds", "null"]);
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

export function planFromTree(fdt: Fdt, treeFile: string): BootPlan {
  const treeDir = dirname(treeFile);
  const root = fdt.root;
  const phandleMap = fdt.phandles();
  const pathOf = (n: FdtNode) => fdt.pathOf(n) ?? n.name;

  // Host memory.
  let hostMemoryMiB = DEFAULT_HOST_MIB;
  const memNode = root.children.find((c) => c.getString("device_type") === "memory");
  if (memNode !== undefined) {
    const reg = memNode.get("reg");
    const ac = root.addressCells();
    const sc = root.sizeCells();
    if (reg === undefined || reg.length % (4 * (ac + sc)) !== 0)
      throw new BootTreeError(pathOf(memNode), "reg", "malformed");
    let bytes = 0;
    for (let at = 0; at < reg.length; at += 4 * (ac + sc)) bytes += cellsValue(reg, at + 4 * ac, sc);
    hostMemoryMiB = Math.floor(bytes / 2 ** 20);
  }

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

  const chosen = root.child("chosen");
  if (chosen === undefined) throw new BootTreeError("/chosen", null, "missing: nothing to boot");
  const xenBootargs = chosen.getString("xen,xen-bootargs") ?? "";

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

  // Domains, in DT order: domids 1, 2, ...
  const domainNodes = chosen.children.filter((c) => compatible(c).includes("xen,domain"));
  if (domainNodes.length === 0) throw new BootTreeError(pathOf(chosen), null, "no xen,domain nodes");
  const domains: DomainSpec[] = [];
  const domOfNode = new Map<FdtNode, number>();
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
    domains.push({
      path,
      name: dn.name,
      memoryMiB: kib / 1024,
      vcpus,
      pool,
      bootargs: kernel.getString("bootargs") ?? "",
    });
    domOfNode.set(dn, i + 1);
  }
  if (totalKiB / 1024 > hostMemoryMiB) {
    throw new BootTreeError(
      pathOf(chosen),
      null,
      `domains ask for ${totalKiB / 1024} MiB, the host has ${hostMemoryMiB} MiB`,
    );
  }

  // Static event channels: mutual phandles, each pair once.
  const evtchns: StaticEvtchn[] = [];
  const seen = new Set<FdtNode>();
  for (const dn of domainNodes) {
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
  return { hostMemoryMiB, xenBootargs, pools: pools.map((p) => p.spec), domains, evtchns };
}

/** Reads a .dtb file and plans the system it describes. */
export function planFromFile(dtbPath: string): BootPlan {
  let blob: Uint8Array;
  try {
    blob = readFileSync(dtbPath);
  } catch (e) {
    throw new BootTreeError(dtbPath, null, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return planFromTree(readFdt(blob), dtbPath);
}
