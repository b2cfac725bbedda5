/**
 * `xenon run IMAGE... ` under the real core: each image becomes a domain (domid 1, 2, ... in
 * order) with its own device tree, all in one cpupool of pCPU worker threads, run until every
 * domain has shut down. This is the small toolstack the integration tests and demos use before
 * `xenon boot` and `xl` exist.
 *
 * Image spec: `PATH[,key=value...]`. Keys the toolstack consumes: name, memory (MiB), weight and
 * cap (credit2), period and budget (RTDS, µs). Every other key=value goes to the guest's
 * /chosen/bootargs, space-separated.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import {
  DriverDomain,
  type DriverDomainMode,
  type DriverDomainOptions,
  defaultVifMac,
  formatMac,
  isGroupMac,
  parseMac,
  type VifSwitch,
  type VirtioDeviceSpec,
  VirtualSwitch,
} from "@xenon/backends";
import { createVcpuState, FrameAllocator, MachineMemory, parseElf32 } from "@xenon/hw";
import {
  assignStaticMemory,
  buildDomainMemory,
  buildGuestFdt,
  createScheduler,
  DEFAULT_SPEC_CTRL,
  type DomainEnd,
  domainSpecCtrl,
  effectiveSpecCtrl,
  evtchnBindStatic,
  GUEST_RAM_BASE,
  GUEST_VIRTIO_MMIO_BASE,
  GUEST_VIRTIO_MMIO_SIZE,
  type HostRange,
  Hypervisor,
  initBootVcpuState,
  Machine,
  mapStaticShared,
  p2mPoolPagesFor,
  type RamBank,
  type SchedName,
  type SpecCtrlOptions,
  type SpecCtrlStats,
  type TimeMode,
  type TraceEvent,
  type XenCmdline,
} from "@xenon/hypervisor";
import { XenstoreLink } from "./xenstore_link.js";

export interface DomainSpec {
  readonly path: string;
  /** Index into SystemConfig.pools (default 0). */
  readonly pool?: number;
  /** vCPUs (default 1). */
  readonly vcpus?: number;
  readonly name: string;
  readonly memoryMiB: number;
  readonly bootargs: string;
  readonly weight?: number;
  readonly cap?: number;
  readonly periodUs?: number;
  readonly budgetUs?: number;
  /** Dom0less static memory: the domain's RAM comes only from these host ranges. */
  readonly staticMem?: readonly HostRange[];
  /** gfn == mfn (needs staticMem). */
  readonly directMap?: boolean;
  /** Static shared memory regions this domain maps. */
  readonly sharedMem?: readonly SharedMemSpec[];
  /** Host devices passed through to it (dom0less /passthrough). */
  readonly passthrough?: readonly PassthroughSpec[];
  /** Speculation controls it runs with: ibrs, stibp, ssbd, virt-ssbd (spec_ctrl.ts). */
  readonly specCtrl?: readonly string[];
  /** Guest-physical start of its RAM when not GUEST_RAM_BASE (a kernel linked lower). */
  readonly ramBase?: number;
  /** A ramdisk image, loaded at the top of RAM below the device tree (linux,initrd-start/-end). */
  readonly ramdisk?: string;
  /** Give it XenStore (dom0less `xen,enhanced`) even when the run does not for every domain. */
  readonly xenstore?: boolean;
  /** The domain id to give it (default: its 1-based position, skipping ids asked for). */
  readonly domid?: number;
  /**
   * Hyperlaunch roles: control (privileged: may name other domains in domctls and hypercalls),
   * hardware (the hardware domain), xenstore (XEN_DOMCTL_CDF_xs_domain), console (the console domain).
   */
  readonly roles?: ReadonlyArray<"control" | "hardware" | "xenstore" | "console">;
}

/**
 * Dom0less static shared memory (`xen,domain-shared-memory-v1`) as one domain sees it: host range
 * [hpa, +bytes) at guest address gpa. Regions with the same id are the same host frames.
 */
/** A DMA-capable device of the host (a host-tree node whose compatible is a passthrough model). */
export interface HostDeviceSpec {
  readonly path: string;
  readonly compatible: string;
  /** Host-physical register window. */
  readonly base: number;
  readonly size: number;
}

/** A host device passed through to a domain: its registers at guestBase, its interrupt on a port. */
export interface PassthroughSpec {
  readonly hostPath: string;
  /** Node name in the guest's tree (before the @). */
  readonly name: string;
  readonly compatible: string;
  readonly guestBase: number;
  readonly size: number;
  readonly guestIrqPort: number;
}

export interface SharedMemSpec {
  readonly id: string;
  readonly hpa: number;
  readonly gpa: number;
  readonly bytes: number;
  /** The owner holds the frames as its own; borrowers map them (a region without an owner: DOMID_IO's). */
  readonly role: "owner" | "borrower";
}

/**
 * Domain-0 of a dom0less boot whose tree gives dom0 ends (static event channels, position 0;
 * static shared memory): a privileged domain with no kernel and no vCPU, domid 0.
 */
export interface Dom0Spec {
  readonly sharedMem: readonly SharedMemSpec[];
}

/**
 * A static interdomain event channel between two domains given by their 1-based position
 * (0: Domain-0, when SystemConfig.dom0 is given).
 */
export interface StaticEvtchn {
  readonly a: number;
  readonly aPort: number;
  readonly b: number;
  readonly bPort: number;
}

/** A cpupool: its scheduler and its pCPUs (ids unique across pools; speed 1024 = reference). */
export interface PoolSpec {
  readonly name: string;
  readonly scheduler: SchedName;
  readonly pcpus: ReadonlyArray<{ readonly id: number; readonly cls: string; readonly speed: number }>;
}

export interface SystemConfig {
  readonly domains: readonly DomainSpec[];
  /** The host's DMA-capable devices (behind the host IOMMU), for domains' `passthrough`. */
  readonly hostDevices?: readonly HostDeviceSpec[];
  /** cpupools; when absent, one pool "Pool-0" of `pcpus` reference pCPUs under `scheduler`. */
  readonly pools?: readonly PoolSpec[];
  readonly evtchns?: readonly StaticEvtchn[];
  /**
   * virtio-mmio devices: each gets a window in its domain (from GUEST_VIRTIO_MMIO_BASE, 0x200 apart),
   * an event-channel interrupt (guest ports from VIRTIO_IRQ_PORT_BASE) and a driver domain of its
   * own (domids after the guests'), reached through grants (or, for a device with `grants: false`,
   * by foreign mapping from a privileged driver domain).
   */
  readonly virtio?: readonly VirtioAttach[];
  /**
   * The host's switch the net devices' vifs plug into (default: a fresh xenbr0 for the run when
   * there is a net device). Pass one to reach the guests' network from elsewhere (another port).
   */
  readonly vswitch?: VifSwitch;
  /**
   * Named driver domains (the boot tree's `xenon,driver-domain` nodes): a VirtioAttach with
   * `backend` set is served by that one instead of a driver domain of its own. Their domids follow
   * the guests'.
   */
  readonly driverDomains?: readonly DriverDomainSpec[];
  /** Make a Domain-0 (domid 0) holding these ends before the other domains. */
  readonly dom0?: Dom0Spec;
  /** One driver domain for every virtio device without a named one (default: one per device). */
  readonly virtioShared?: boolean;
  /** Where driver domains run: worker threads (default) or child processes. */
  readonly driverDomainMode?: DriverDomainMode;
  /**
   * Host input for the first virtio-console (xenon run: its stdin); read only while the run
   * lasts. Its output needs nothing: it joins its guest's console lines.
   */
  readonly consoleInput?: NodeJS.ReadableStream;
  readonly pcpus?: number;
  readonly scheduler?: SchedName;
  readonly timeMode?: TimeMode;
  /** Host RAM in MiB (default 1024), from address 0. */
  readonly hostMemoryMiB?: number;
  /** Host RAM banks (host-physical; mfn = address >> 12), instead of hostMemoryMiB. */
  readonly hostRam?: readonly HostRange[];
  /**
   * The hypervisor's command line, as given and parsed: recorded by the core (XENVER_commandline),
   * its speculation summary printed to the console ring, dom0-cpuid applied to a hardware domain.
   */
  readonly commandLine?: { readonly line: string; readonly parsed: XenCmdline };
  /** The hypervisor's spec-ctrl policy (from its command line); Xen's defaults when absent. */
  readonly specCtrl?: SpecCtrlOptions;
  /** The static heap (`xen,static-heap`): when given, the only RAM the frame allocator hands out. */
  readonly staticHeap?: readonly HostRange[];
  /** Receives each complete console line of a domain, without its newline. */
  readonly console: (name: string, line: string) => void;
  readonly trace?: (e: TraceEvent) => void;
  /** Gives up after this many ms (the run is reported as timed out). */
  readonly timeoutMs?: number;
  /**
   * Serve XenStore on this Unix socket for the run: every domain gets a XenStore ring, is
   * introduced with its name (/local/domain/<domid>) and released when it is gone.
   */
  readonly xenstoreSocket?: string;
  /**
   * Run XenStore (the XenStore domain, in its own worker) even without a socket: every domain
   * gets its ring page and event channel (HVM_PARAM_STORE_PFN / STORE_EVTCHN).
   */
  readonly xenstore?: boolean;
  /** xenstored's log lines (rings dropped for bad indices or protocol errors, ...). */
  readonly xenstoreLog?: (line: string) => void;
  /** Called once the XenStore socket listens (the CLI prints it). */
  readonly onXenstore?: (socketPath: string) => void;
}

export interface SystemResult {
  readonly ends: readonly DomainEnd[];
  /** Domain switches on the pCPUs and the spec-ctrl work done on them. */
  readonly specCtrl?: SpecCtrlStats;
  readonly timedOut: boolean;
  readonly ms: number;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

const TOOLSTACK_KEYS = new Set(["name", "memory", "weight", "cap", "period", "budget"]);

function positiveInt(key: string, value: string, where: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${where}: ${key}=${value} is not a positive integer`);
  return n;
}

/** Parses `PATH[,key=value...]`. */
export function parseDomainSpec(spec: string, index: number): DomainSpec {
  const [path, ...opts] = spec.split(",");
  if (path === undefined || path === "") throw new ConfigError(`domain ${index + 1}: no image path in '${spec}'`);
  let name = basename(path).replace(/\.elf$/, "");
  let memoryMiB = 4;
  const extra: { weight?: number; cap?: number; periodUs?: number; budgetUs?: number } = {};
  const bootargs: string[] = [];
  for (const opt of opts) {
    const eq = opt.indexOf("=");
    if (eq <= 0) throw new ConfigError(`domain ${index + 1}: option '${opt}' is not key=value`);
    const key = opt.slice(0, eq);
    const value = opt.slice(eq + 1);
    if (!TOOLSTACK_KEYS.has(key)) {
      bootargs.push(opt);
      continue;
    }
    const where = `domain ${index + 1}`;
    if (key === "name") {
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) throw new ConfigError(`${where}: bad name '${value}'`);
      name = value;
    } else if (key === "memory") memoryMiB = positiveInt(key, value, where);
    else if (key === "weight") extra.weight = positiveInt(key, value, where);
    else if (key === "cap") extra.cap = Number(value) === 0 ? 0 : positiveInt(key, value, where);
    else if (key === "period") extra.periodUs = positiveInt(key, value, where);
    else if (key === "budget") extra.budgetUs = positiveInt(key, value, where);
  }
  return { path, name, memoryMiB, bootargs: bootargs.join(" "), ...extra };
}

/** Parses `A:PORT-B:PORT` (domains by 1-based position). */
export function parseStaticEvtchn(spec: string): StaticEvtchn {
  const m = /^(\d+):(\d+)-(\d+):(\d+)$/.exec(spec);
  if (m === null) throw new ConfigError(`--evtchn '${spec}' is not DOM:PORT-DOM:PORT`);
  return { a: Number(m[1]), aPort: Number(m[2]), b: Number(m[3]), bPort: Number(m[4]) };
}

/**
 * The host's RAM as machine frames: banks at their addresses, the holes between them reserved so
 * no one is given them, then every domain's static memory reserved for it before anything else
 * allocates.
 */
function hostMemory(cfg: Omit<SystemConfig, "timeoutMs">): { memory: MachineMemory; allocator: FrameAllocator } {
  const ram = [...(cfg.hostRam ?? [{ hpa: 0, bytes: (cfg.hostMemoryMiB ?? 1024) * 2 ** 20 }])].sort(
    (a, b) => a.hpa - b.hpa,
  );
  if (ram.length === 0) throw new ConfigError("host has no RAM");
  const top = Math.max(...ram.map((b) => b.hpa + b.bytes));
  const memory = new MachineMemory({ bytes: top });
  const allocator = new FrameAllocator(memory);
  const reserve = (what: string, r: HostRange) => {
    try {
      allocator.reserve(r.hpa / 4096, r.bytes / 4096);
    } catch (e) {
      throw new ConfigError(`${what}: ${(e as Error).message}`);
    }
  };
  // With a static heap, everything else is out of circulation: static memory and shared regions
  // lie outside the heap (the planner checks), so they are covered too.
  const usable = cfg.staticHeap === undefined ? ram : [...cfg.staticHeap].sort((a, b) => a.hpa - b.hpa);
  let at = 0;
  for (const b of usable) {
    if (b.hpa > at)
      reserve(cfg.staticHeap === undefined ? "host memory hole" : "outside the static heap", {
        hpa: at,
        bytes: b.hpa - at,
      });
    at = b.hpa + b.bytes;
  }
  if (at < top) reserve("outside the static heap", { hpa: at, bytes: top - at });
  if (cfg.staticHeap !== undefined) return { memory, allocator };
  for (const d of cfg.domains) for (const r of d.staticMem ?? []) reserve(`${d.name}: static memory`, r);
  // A shared region is reserved once, however many domains map it.
  const shared = new Map<string, SharedMemSpec>();
  const holders = [
    ...(cfg.dom0 !== undefined ? [{ name: "Domain-0", sharedMem: cfg.dom0.sharedMem }] : []),
    ...cfg.domains,
  ];
  for (const d of holders) {
    for (const shm of d.sharedMem ?? []) {
      const seen = shared.get(shm.id);
      if (seen === undefined) reserve(`${d.name}: static shared memory '${shm.id}'`, shm);
      else if (seen.hpa !== shm.hpa || seen.bytes !== shm.bytes)
        throw new ConfigError(`${d.name}: static shared memory '${shm.id}' names another host range`);
      shared.set(shm.id, shm);
    }
  }
  return { memory, allocator };
}

/** A built system: domains created and loaded, under a Machine that has not started yet. */
export interface BuiltSystem {
  readonly hv: Hypervisor;
  readonly machine: Machine;
  /** Domain ids in the order of cfg.domains. */
  readonly domids: readonly number[];
  /** Driver domains to start before the run (their guests' trees already name them). */
  readonly virtio: readonly DriverDomainOptions[];
}

/** A virtio device for domain `domain` (1-based position, as --evtchn counts). */
export interface VirtioAttach {
  readonly domain: number;
  readonly device: VirtioDeviceSpec;
  /** Index into SystemConfig.driverDomains; absent: a driver domain of its own. */
  readonly backend?: number;
  /**
   * false: no grants (xl.cfg's grant_usage=0): the guest's tree has no `iommus` for the device,
   * its driver uses guest-physical addresses, and the driver domain serving it is made privileged
   * (dom0-like: it foreign-maps the guest's memory). Default true.
   */
  readonly grants?: boolean;
}

/** A driver domain declared up front (a TypeScript domain running VirtIO backends). */
export interface DriverDomainSpec {
  readonly name: string;
}

/** First guest port of virtio interrupt channels (above what static --evtchn specs usually use). */
export const VIRTIO_IRQ_PORT_BASE = 60;

/**
 * Parses --virtio-rng N, --virtio-blk N:IMAGE[:ro], --virtio-console N[:COLSxROWS] and --virtio-net N[:MAC] (no MAC: Xen's
 * 00:16:3e:<domid>:<n>, given when the domids are known).
 */
export function parseVirtio(kind: "rng" | "blk" | "console" | "net", spec: string): VirtioAttach {
  if (kind === "net") {
    const m = /^(\d+)(?::(.+))?$/.exec(spec);
    if (m === null) throw new ConfigError(`--virtio-net '${spec}' is not DOM[:MAC]`);
    const mac = m[2] === undefined ? null : parseMac(m[2]);
    if (m[2] !== undefined && (mac === null || mac === 0 || isGroupMac(mac)))
      throw new ConfigError(`--virtio-net '${spec}': '${m[2]}' is not a unicast MAC xx:xx:xx:xx:xx:xx`);
    return { domain: Number(m[1]), device: { kind: "net", mac: mac === null ? "" : formatMac(mac) } };
  }
  if (kind === "rng") {
    const n = Number(spec);
    if (!Number.isInteger(n) || n < 1) throw new ConfigError(`--virtio-rng '${spec}' is not a domain position`);
    return { domain: n, device: { kind: "rng" } };
  }
  if (kind === "console") {
    const c = /^(\d+)(?::(\d+)x(\d+))?$/.exec(spec);
    if (c === null || Number(c[1]) < 1) throw new ConfigError(`--virtio-console '${spec}' is not DOM[:COLSxROWS]`);
    if (c[2] === undefined) return { domain: Number(c[1]), device: { kind: "console" } };
    const [cols, rows] = [Number(c[2]), Number(c[3])];
    if (cols > 0xffff || rows > 0xffff) throw new ConfigError(`--virtio-console '${spec}': size out of range`);
    return { domain: Number(c[1]), device: { kind: "console", cols, rows } };
  }
  const m = /^(\d+):(.+?)(:ro)?$/.exec(spec);
  if (m === null) throw new ConfigError(`--virtio-blk '${spec}' is not DOM:IMAGE[:ro]`);
  return { domain: Number(m[1]), device: { kind: "blk", path: m[2]!, readOnly: m[3] !== undefined } };
}

/**
 * Creates the host, its cpupool and every domain of `cfg` (memory, kernel, device tree, static
 * event channels, scheduler parameters), ready to start. Throws ConfigError on bad input, after
 * closing what it had opened.
 */
export function buildSystem(cfg: Omit<SystemConfig, "timeoutMs">): BuiltSystem {
  if (cfg.domains.length === 0) throw new ConfigError("no domains to run");
  const { memory, allocator } = hostMemory(cfg);
  const hv = new Hypervisor({ memory, allocator });
  if (cfg.commandLine !== undefined) hv.applyCommandLine(cfg.commandLine.line, cfg.commandLine.parsed);
  for (const dev of cfg.hostDevices ?? []) {
    try {
      hv.passthrough.addDevice(dev.path, dev.compatible, dev.base, dev.size);
    } catch (e) {
      throw new ConfigError((e as Error).message);
    }
  }
  const npcpus = cfg.pcpus ?? 2;
  if (!Number.isInteger(npcpus) || npcpus < 1 || npcpus > 64) {
    throw new ConfigError(`pcpus ${npcpus} out of range 1..64`);
  }
  const poolSpecs: readonly PoolSpec[] = cfg.pools ?? [
    {
      name: "Pool-0",
      scheduler: cfg.scheduler ?? "credit2",
      pcpus: Array.from({ length: npcpus }, (_, id) => ({ id, cls: "big", speed: 1024 })),
    },
  ];
  const pools = poolSpecs.map((p, id) => ({
    id,
    name: p.name,
    scheduler: createScheduler(p.scheduler),
    pcpus: p.pcpus,
  }));
  const machine = new Machine({
    hv,
    timeMode: cfg.timeMode ?? "host",
    pools,
    flushOnSwitch: (cfg.specCtrl ?? DEFAULT_SPEC_CTRL).flushOnSwitch,
    ...(cfg.trace ? { trace: cfg.trace } : {}),
  });
  try {
    const built: Array<{ domid: number; state: Int32Array }> = [];
    const domids = pickDomids(cfg.domains);
    if (cfg.dom0 !== undefined) buildDom0(hv, cfg.dom0);
    const virtio = virtioBackends(cfg, domids);
    for (const [i, spec] of cfg.domains.entries()) {
      let kernel: Uint8Array;
      try {
        kernel = readFileSync(spec.path);
      } catch (e) {
        throw new ConfigError(
          `${spec.name}: cannot read ${spec.path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
        );
      }
      const ramBytes = spec.memoryMiB * 2 ** 20;
      const maxPages = ramBytes / 4096 + 64;
      const sharedPages = (spec.sharedMem ?? []).reduce((n, r) => n + r.bytes / 4096, 0);
      const vcpus = spec.vcpus ?? 1;
      const d = hv.domains.create({
        domid: domids[i]!,
        name: spec.name,
        maxVcpus: vcpus,
        maxPages,
        p2mPoolPages: p2mPoolPagesFor(maxPages + sharedPages),
        flags: {
          isConsole: true,
          directMap: spec.directMap === true,
          privileged: spec.roles?.includes("control") === true,
          hardware: spec.roles?.includes("hardware") === true,
          xenstore: spec.roles?.includes("xenstore") === true,
        },
      });
      if (typeof d === "number") throw new ConfigError(`${spec.name}: domain creation failed (${d})`);
      const policy = cfg.specCtrl ?? DEFAULT_SPEC_CTRL;
      try {
        const cpuid = spec.roles?.includes("hardware") === true ? cfg.commandLine?.parsed.dom0Cpuid : undefined;
        d.specCtrl = effectiveSpecCtrl(domainSpecCtrl(spec.specCtrl ?? [], policy, cpuid), policy);
      } catch (e) {
        throw new ConfigError(`${spec.name}: spec-ctrl: ${(e as Error).message}`);
      }
      let partial = "";
      d.console.setSink((bytes) => {
        const text = partial + Buffer.from(bytes).toString("latin1");
        const lines = text.split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) cfg.console(spec.name, line);
      });
      if (spec.directMap === true && spec.staticMem === undefined)
        throw new ConfigError(`${spec.name}: direct-map needs static memory`);
      const banks = ramBanks(spec, kernel, ramBytes);
      const treeOf = (initrd?: { start: number; end: number }) =>
        buildGuestFdt({
          domid: d.domid,
          name: spec.name,
          vcpus,
          ramBytes,
          bootargs: spec.bootargs,
          ...(spec.directMap === true || spec.ramBase !== undefined ? { ramBanks: banks } : {}),
          ...(initrd !== undefined ? { initrd } : {}),
          ...(spec.sharedMem !== undefined ? { sharedMemory: spec.sharedMem } : {}),
          virtio: virtio.flatMap((o) =>
            o.devices
              .filter((v) => v.guest === domids[i])
              .map((v) => ({
                base: v.base,
                size: v.size,
                evtchn: v.guestIrqPort,
                backendDomid: o.domid!,
                grants: v.grants !== false,
              })),
          ),
          ...(spec.passthrough !== undefined
            ? {
                passthrough: spec.passthrough.map((p) => ({
                  name: p.name,
                  compatible: p.compatible,
                  base: p.guestBase,
                  size: p.size,
                  evtchn: p.guestIrqPort,
                })),
              }
            : {}),
        });
      let ramdisk: Uint8Array | undefined;
      let initrd: { start: number; end: number } | undefined;
      if (spec.ramdisk !== undefined) {
        try {
          ramdisk = readFileSync(spec.ramdisk);
        } catch (e) {
          throw new ConfigError(
            `${spec.name}: cannot read ${spec.ramdisk}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
          );
        }
        initrd = placeRamdisk(spec.name, banks[0]!, treeOf({ start: 0, end: 0 }).length, ramdisk.length);
      }
      const fdt = treeOf(initrd);
      let placement: ReturnType<typeof buildDomainMemory>;
      try {
        if (spec.staticMem !== undefined) assignStaticMemory(d, spec.staticMem);
        placement = buildDomainMemory(d, kernel, ramBytes, fdt, banks);
        if (initrd !== undefined && ramdisk !== undefined) {
          if (initrd.start < placement.kernelEnd) throw new Error("no room for the ramdisk above the kernel");
          if (d.guest.copyToGuest(initrd.start, ramdisk) < 0) throw new Error("copying the ramdisk failed");
        }
        for (const shm of spec.sharedMem ?? []) mapStaticShared(d, { hpa: shm.hpa, bytes: shm.bytes }, shm.gpa);
        // After its RAM exists: the IOMMU maps what the P2M holds now (and follows it from here).
        for (const pt of spec.passthrough ?? []) {
          const rc = hv.passthrough.assign(d.domid, pt.hostPath, pt.guestBase, pt.guestIrqPort);
          if (rc < 0) throw new Error(`${pt.hostPath}: cannot be passed through (${rc})`);
        }
      } catch (e) {
        throw new ConfigError(`${spec.name}: ${(e as Error).message}`);
      }
      const state = createVcpuState();
      initBootVcpuState(state, placement, 0);
      built.push({ domid: d.domid, state });
    }
    for (const ch of cfg.evtchns ?? []) {
      // a and b are positions in cfg.domains (0: Domain-0), not domids.
      const domidAt = (pos: number) => (pos === 0 && cfg.dom0 !== undefined ? 0 : (domids[pos - 1] ?? -1));
      const da = hv.domains.get(domidAt(ch.a));
      const db = hv.domains.get(domidAt(ch.b));
      if (da === undefined || db === undefined)
        throw new ConfigError(`--evtchn ${ch.a}:${ch.aPort}-${ch.b}:${ch.bPort}: no such domain`);
      const rc = evtchnBindStatic(da, ch.aPort, db, ch.bPort);
      if (rc < 0) throw new ConfigError(`--evtchn ${ch.a}:${ch.aPort}-${ch.b}:${ch.bPort}: refused (${rc})`);
    }
    for (const [i, b] of built.entries()) {
      const spec = cfg.domains[i]!;
      const poolId = spec.pool ?? 0;
      const pool = pools[poolId];
      if (pool === undefined) throw new ConfigError(`${spec.name}: no cpupool ${poolId}`);
      const scheduler = pool.scheduler;
      machine.addDomain(hv.domains.get(b.domid)!, poolId, b.state);
      const now = machine.now();
      if (spec.weight !== undefined || spec.cap !== undefined) {
        const rc = scheduler.setDomainParams(
          b.domid,
          {
            kind: "credit2",
            ...(spec.weight !== undefined ? { weight: spec.weight } : {}),
            ...(spec.cap !== undefined ? { cap: spec.cap } : {}),
          },
          now,
        );
        if (rc < 0) throw new ConfigError(`${spec.name}: credit2 parameters refused (${rc})`);
      }
      if (spec.periodUs !== undefined || spec.budgetUs !== undefined) {
        const rc = scheduler.setDomainParams(
          b.domid,
          {
            kind: "rtds",
            ...(spec.periodUs !== undefined ? { periodUs: spec.periodUs } : {}),
            ...(spec.budgetUs !== undefined ? { budgetUs: spec.budgetUs } : {}),
          },
          now,
        );
        if (rc < 0) throw new ConfigError(`${spec.name}: RTDS parameters refused (${rc})`);
      }
    }
    return { hv, machine, domids: built.map((b) => b.domid), virtio };
  } catch (e) {
    void machine.close();
    throw e;
  }
}

/**
 * The driver domains to launch and the devices they serve: one per named driver domain (domids
 * after every guest's), one of its own for each device without one. Each device gets the next
 * virtio-mmio window and interrupt port of its guest.
 */
function virtioBackends(cfg: Omit<SystemConfig, "timeoutMs">, domids: readonly number[]): DriverDomainOptions[] {
  const named = cfg.driverDomains ?? [];
  const taken = new Set(domids);
  let next = 1;
  const freeDomid = () => {
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  };
  const namedDomids = named.map(() => freeDomid());
  const mode = cfg.driverDomainMode ?? "thread";
  /** Named driver domains by index; the shared one (--virtio-shared) under -1. */
  const groups = new Map<number, DriverDomainOptions>();
  const out: DriverDomainOptions[] = [];
  const slots = new Map<number, number>();
  /** Net devices without a MAC so far, per guest (their vif number). */
  const vifs = new Map<number, number>();
  for (const v of cfg.virtio ?? []) {
    if (v.domain < 1 || v.domain > cfg.domains.length)
      throw new ConfigError(`virtio ${v.device.kind}: no domain ${v.domain}`);
    const guest = domids[v.domain - 1]!;
    const slot = slots.get(guest) ?? 0;
    slots.set(guest, slot + 1);
    let spec = v.device;
    if (spec.kind === "net" && spec.mac === "") {
      const n = (vifs.get(guest) ?? 0) + 1;
      vifs.set(guest, n);
      spec = { ...spec, mac: formatMac(defaultVifMac(guest, n - 1)) };
    }
    const device = {
      guest,
      base: GUEST_VIRTIO_MMIO_BASE + slot * GUEST_VIRTIO_MMIO_SIZE,
      size: GUEST_VIRTIO_MMIO_SIZE,
      guestIrqPort: VIRTIO_IRQ_PORT_BASE + slot,
      device: spec,
      ...(v.grants === false ? { grants: false } : {}),
    };
    // Only a privileged backend may reach a grant-less device's guest-physical addresses.
    const privileged = v.grants === false ? { privileged: true } : {};
    const key = v.backend ?? (cfg.virtioShared === true ? -1 : undefined);
    const group = key === undefined ? undefined : groups.get(key);
    if (key !== undefined && group !== undefined) {
      const merged = { ...group, ...privileged, devices: [...group.devices, device] };
      out[out.indexOf(group)] = merged;
      groups.set(key, merged);
      continue;
    }
    let domid: number;
    let name: string;
    if (v.backend === undefined) {
      domid = freeDomid();
      name = key === -1 ? "dd-virtio" : `virtio-${v.device.kind}-d${guest}`;
    } else {
      const dd = named[v.backend];
      if (dd === undefined) throw new ConfigError(`virtio ${v.device.kind}: no driver domain ${v.backend}`);
      domid = namedDomids[v.backend]!;
      name = dd.name;
    }
    const o: DriverDomainOptions = { domid, name, devices: [device], mode, restart: true, ...privileged };
    out.push(o);
    if (key !== undefined) groups.set(key, o);
  }
  return out;
}

/**
 * The ramdisk's place: page aligned, ending a page below the device tree, which buildDomainMemory
 * puts in the last pages of the kernel's bank (the same arithmetic). A guest that does not read
 * linux,initrd-* may reuse those pages.
 */
function placeRamdisk(name: string, bank: RamBank, fdtBytes: number, bytes: number): { start: number; end: number } {
  const fdtGpa = Math.floor((bank.gpa + bank.bytes - fdtBytes - 4096) / 4096) * 4096;
  const start = Math.floor((fdtGpa - 4096 - bytes) / 4096) * 4096;
  if (start < bank.gpa) throw new ConfigError(`${name}: a ramdisk of ${bytes} bytes does not fit in its RAM`);
  return { start, end: start + bytes };
}

/** Domain-0 of a dom0less boot: privileged, no RAM or vCPU of its own, its shared regions mapped. */
function buildDom0(hv: Hypervisor, spec: Dom0Spec): void {
  const pages = spec.sharedMem.reduce((n, r) => n + r.bytes / 4096, 0);
  const d = hv.domains.create({
    domid: 0,
    name: "Domain-0",
    maxVcpus: 1,
    maxPages: 0,
    p2mPoolPages: p2mPoolPagesFor(pages + 1),
    flags: { privileged: true },
  });
  if (typeof d === "number") throw new ConfigError(`Domain-0: domain creation failed (${d})`);
  try {
    for (const shm of spec.sharedMem) mapStaticShared(d, { hpa: shm.hpa, bytes: shm.bytes }, shm.gpa);
  } catch (e) {
    throw new ConfigError(`Domain-0: ${(e as Error).message}`);
  }
}

/** Domain ids: those asked for, the rest 1, 2, ... in order, skipping ids taken. */
function pickDomids(domains: readonly DomainSpec[]): number[] {
  const taken = new Set(domains.flatMap((d) => (d.domid === undefined ? [] : [d.domid])));
  if (taken.size !== domains.filter((d) => d.domid !== undefined).length)
    throw new ConfigError("a domid is asked for twice");
  let next = 1;
  return domains.map((d) => {
    if (d.domid !== undefined) return d.domid;
    while (taken.has(next)) next++;
    taken.add(next);
    return next;
  });
}

/**
 * Guest RAM banks: one at GUEST_RAM_BASE, or for a direct-mapped domain its static banks at their
 * host addresses, the one holding the kernel's entry first (guests take their heap from it).
 */
function ramBanks(spec: DomainSpec, kernel: Uint8Array, ramBytes: number): RamBank[] {
  if (spec.directMap !== true || spec.staticMem === undefined)
    return [{ gpa: spec.ramBase ?? GUEST_RAM_BASE, bytes: ramBytes }];
  let entry = -1;
  try {
    entry = parseElf32(kernel).entry;
  } catch {
    // buildDomainMemory reports the bad image.
  }
  const banks = spec.staticMem.map((r) => ({ gpa: r.hpa, bytes: r.bytes }));
  const home = banks.findIndex((b) => entry >= b.gpa && entry < b.gpa + b.bytes);
  if (home > 0) banks.unshift(...banks.splice(home, 1));
  return banks;
}

/**
 * Launches the driver domains of a built system (before its Machine starts); their log lines go to
 * `console` under the driver domain's name. On failure, closes those already up and throws
 * ConfigError.
 */
export async function launchBackends(
  hv: Hypervisor,
  virtio: readonly DriverDomainOptions[],
  console: (name: string, line: string) => void,
  /** The host's switch for net devices (default: a fresh xenbr0 when there is a net device). */
  vswitch?: VifSwitch,
): Promise<DriverDomain[]> {
  const backends: DriverDomain[] = [];
  const hasNet = virtio.some((o) => o.devices.some((d) => d.device.kind === "net"));
  const sw = vswitch ?? (hasNet ? new VirtualSwitch({ log: (l) => console("xenbr0", l) }) : undefined);
  try {
    for (const o of virtio) {
      const name = o.name ?? `virtio-d${o.domid}`;
      backends.push(
        await DriverDomain.launch(hv, {
          ...o,
          log: (l) => console(name, l),
          ...(sw !== undefined ? { vswitch: sw } : {}),
        }),
      );
      // Its backends serve from its own worker from now on: its creation pause is only a count.
      hv.domains.get(backends[backends.length - 1]!.domid)?.unpause();
    }
  } catch (e) {
    for (const b of backends) await b.close();
    throw new ConfigError(`virtio: ${(e as Error).message}`);
  }
  return backends;
}

/** xen.h: domids from here up are special (DOMID_SELF, DOMID_IO, ...). */
const DOMID_FIRST_RESERVED = 0x7ff0;

/** Above the guests and the driver domains to come (their trees name those domids), when there is room. */
function xenstoreDomid(domids: readonly number[], virtio: readonly DriverDomainOptions[]): { domid?: number } {
  const next = Math.max(0, ...domids, ...virtio.map((o) => o.domid ?? 0)) + 1;
  return next < DOMID_FIRST_RESERVED ? { domid: next } : {};
}

export async function runSystem(cfg: SystemConfig): Promise<SystemResult> {
  const t0 = performance.now();
  const { machine, hv, domids, virtio } = buildSystem(cfg);
  let xs: XenstoreLink | null = null;
  // XenStore for every domain (--xenstore, a socket), or only for those that ask (xen,enhanced).
  // It starts before the driver domains: their devices' nodes are written before they serve.
  const everyone = cfg.xenstore === true || cfg.xenstoreSocket !== undefined;
  const hasXenstore = (domid: number) => everyone || cfg.domains[domids.indexOf(domid)]?.xenstore === true;
  if (everyone || cfg.domains.some((d) => d.xenstore === true)) {
    try {
      xs = await XenstoreLink.start(hv, {
        ...(cfg.xenstoreSocket !== undefined ? { socketPath: cfg.xenstoreSocket } : {}),
        ...(cfg.xenstoreLog !== undefined ? { log: cfg.xenstoreLog } : {}),
        // Above the guests and the driver domains to come (the trees name those domids).
        ...xenstoreDomid(domids, virtio),
      });
    } catch (e) {
      await machine.close();
      throw new ConfigError(`xenstore: ${(e as Error).message}`);
    }
  }
  // Driver domains next: their domids are the ones the guests' trees name. One whose guests all
  // have XenStore uses it (libxl's device nodes, its own connection).
  const link = xs;
  let backends: DriverDomain[];
  try {
    backends = await launchBackends(
      hv,
      link === null
        ? virtio
        : virtio.map((o) =>
            o.devices.every((d) => hasXenstore(d.guest)) ? { ...o, xenstore: link.driverDomains } : o,
          ),
      cfg.console,
      cfg.vswitch,
    );
  } catch (e) {
    await machine.close();
    await xs?.close();
    throw e;
  }
  // Host input goes to the first virtio-console, for as long as the run lasts.
  const consoleAt = virtio.findIndex((o) => o.devices.some((d) => d.device.kind === "console"));
  const onInput = (b: Buffer | string) => backends[consoleAt]?.sendInput(typeof b === "string" ? Buffer.from(b) : b);
  if (cfg.consoleInput !== undefined && consoleAt >= 0) cfg.consoleInput.on("data", onInput);
  const stopInput = () => {
    if (cfg.consoleInput === undefined || consoleAt < 0) return;
    cfg.consoleInput.removeListener("data", onInput);
    cfg.consoleInput.pause();
  };
  if (xs !== null) {
    try {
      for (const [i, domid] of domids.entries())
        if (hasXenstore(domid)) await xs.introduce(hv.domains.get(domid)!, cfg.domains[i]!.name);
    } catch (e) {
      stopInput();
      await machine.close();
      for (const b of backends) await b.close();
      await xs.close();
      throw e instanceof ConfigError ? e : new ConfigError(`xenstore: ${(e as Error).message}`);
    }
    if (cfg.xenstoreSocket !== undefined) cfg.onXenstore?.(cfg.xenstoreSocket);
  }
  try {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const ends = await Promise.race([
      machine.run(),
      new Promise<DomainEnd[]>((resolve) => {
        if (cfg.timeoutMs === undefined) return;
        timer = setTimeout(() => {
          timedOut = true;
          resolve([...machine.endings()]);
        }, cfg.timeoutMs);
      }),
    ]);
    if (timer) clearTimeout(timer);
    return { ends, timedOut, ms: performance.now() - t0, specCtrl: machine.specCtrlStats() };
  } finally {
    stopInput();
    await machine.close();
    // Backends first: they write Closed and the toolstack removes their nodes, through XenStore.
    for (const b of backends) await b.close();
    await xs?.close();
  }
}
