import { DomainConsole } from "./console.js";
import {
  Domain,
  type DomainCreateConfig,
  type DomainInfo,
  type DomainParts,
  SHUTDOWN_ACTIONS,
  type ShutdownAction,
} from "./domain.js";
import { DomainPages } from "./domain_pages.js";
import { evtchnDestroy, sendGlobalVirq } from "./event_channel/event_channel.js";
import { EvtchnPortTable } from "./event_channel/port_table.js";
import { gnttabReleaseMappings } from "./grant_table/grant_ops.js";
import { GrantTable } from "./grant_table/grant_table.js";
import { Maptrack } from "./grant_table/maptrack.js";
import type { Hypervisor } from "./hypervisor.js";
import { releaseForeignMaps } from "./memory.js";
import { GuestMemory } from "./p2m/guest_access.js";
import { P2M_ROOT_PAGES, P2m } from "./p2m/p2m.js";
import { P2mPool } from "./p2m/pool.js";
import { GFN_BITS } from "./p2m/types.js";
import { err } from "./public/errno.js";
import { DEFAULT_MAX_EVTCHN_PORT, EVTCHN_2L_NR_CHANNELS } from "./public/event_channel.js";
import { DEFAULT_MAX_GRANT_FRAMES, DEFAULT_MAX_MAPTRACK_FRAMES } from "./public/grant_table.js";
import { DOMID_MAX, DOMID_SELF, SHUTDOWN_MAX, Virq } from "./public/xen.js";
import { dummyVcpuInfo, legacyVcpuInfo, sharedInfoRegion } from "./shared_info.js";
import { Vcpu } from "./vcpu.js";

/** Arm's GUEST_MAX_VCPUS. */
export const MAX_VCPUS = 128;
/** The guest-physical window for grant frames is 16 MiB on Arm: 4096 frames at most. */
export const MAX_GRANT_FRAMES_LIMIT = 4096;
export const MAX_MAPTRACK_FRAMES_LIMIT = 1 << 16;

/** A sensible P2M pool for a domain of `maxPages` RAM pages plus `extraGfns` other mappings. */
export function p2mPoolPagesFor(maxPages: number, extraGfns = 4096): number {
  // One leaf per 512 gfns, for RAM and for grant/shared_info mappings, plus the root and slack
  // for sparse layouts.
  return P2M_ROOT_PAGES + Math.ceil(maxPages / 512) + Math.ceil(extraGfns / 512) + 8;
}

function isIntIn(v: unknown, lo: number, hi: number): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= lo && v <= hi;
}

/**
 * The domain table: domid allocation (Xen's rover over 1..0x7FEF; domid 0 and other fixed ids
 * only on request), creation with all-or-nothing resource allocation, lookup, the
 * getdomaininfo list, pause/unpause, shutdown and destruction.
 */
export class DomainTable {
  private readonly byId = new Map<number, Domain>();
  private rover = 0;

  constructor(private readonly hv: Hypervisor) {}

  /** Any domain with this id, dying ones included. */
  get(domid: number): Domain | undefined {
    return this.byId.get(domid);
  }

  /** A domain that is not dying, or undefined. */
  getLive(domid: number): Domain | undefined {
    const d = this.byId.get(domid);
    return d === undefined || d.dying ? undefined : d;
  }

  /** Resolves DOMID_SELF against the caller; undefined for unknown or dying domains. */
  resolve(caller: Domain, domid: number): Domain | undefined {
    if (domid === DOMID_SELF || domid === caller.domid) return caller.dying ? undefined : caller;
    return this.getLive(domid);
  }

  /** All domains, lowest domid first. */
  list(): Domain[] {
    return [...this.byId.values()].sort((a, b) => a.domid - b.domid);
  }

  /** XEN_SYSCTL_getdomaininfolist: info for every domain with domid >= first. */
  infoList(first = 0, max = Number.POSITIVE_INFINITY): DomainInfo[] {
    return this.list()
      .filter((d) => d.domid >= first)
      .slice(0, max)
      .map((d) => d.info());
  }

  get count(): number {
    return this.byId.size;
  }

  /**
   * Creates a domain, paused once. Either everything is allocated (P2M pool, P2M root,
   * shared_info, the first grant frame) or nothing is, and a negative errno comes back:
   * -EINVAL bad config, -EEXIST requested domid taken, -ENOMEM host memory or domids exhausted.
   */
  create(config: DomainCreateConfig): Domain | number {
    const maxPages =
      config.maxPages !== undefined
        ? config.maxPages
        : config.maxMemKb !== undefined
          ? Math.floor(config.maxMemKb / 4)
          : 0;
    const maxEvtchnPort = config.maxEvtchnPort ?? DEFAULT_MAX_EVTCHN_PORT;
    const maxGrantFrames = config.maxGrantFrames ?? DEFAULT_MAX_GRANT_FRAMES;
    const maxMaptrackFrames = config.maxMaptrackFrames ?? DEFAULT_MAX_MAPTRACK_FRAMES;
    if (
      !isIntIn(config.maxVcpus, 1, MAX_VCPUS) ||
      !isIntIn(maxPages, 0, 1 << GFN_BITS) ||
      !isIntIn(config.p2mPoolPages, P2M_ROOT_PAGES, 1 << GFN_BITS) ||
      !isIntIn(maxEvtchnPort, 1, EVTCHN_2L_NR_CHANNELS - 1) ||
      !isIntIn(maxGrantFrames, 1, MAX_GRANT_FRAMES_LIMIT) ||
      !isIntIn(maxMaptrackFrames, 0, MAX_MAPTRACK_FRAMES_LIMIT)
    ) {
      return err("EINVAL");
    }
    for (const a of Object.values(config.actions ?? {})) {
      if (!SHUTDOWN_ACTIONS.includes(a as ShutdownAction)) return err("EINVAL");
    }

    const domid = this.pickDomid(config.domid);
    if (domid < 0) return domid;

    const { memory, allocator } = this.hv;
    const pool = P2mPool.create(allocator, memory, config.p2mPoolPages);
    if (pool === null) return err("ENOMEM");
    const p2m = P2m.create(memory, pool);
    if (typeof p2m === "number") {
      pool.destroy(allocator);
      return p2m;
    }
    const sharedInfoMfn = allocator.alloc();
    if (sharedInfoMfn < 0) {
      pool.destroy(allocator);
      return err("ENOMEM");
    }
    memory.scrub(sharedInfoMfn);
    const grantTable = new GrantTable(memory, allocator, maxGrantFrames);
    if (grantTable.grow(1) < 0) {
      grantTable.destroy();
      allocator.free(sharedInfoMfn);
      pool.destroy(allocator);
      return err("ENOMEM");
    }

    const sharedInfo = sharedInfoRegion(memory, sharedInfoMfn);
    const vcpus: Vcpu[] = [];
    for (let v = 0; v < config.maxVcpus; v++) {
      vcpus.push(new Vcpu(v, v === 0 ? legacyVcpuInfo(sharedInfo) : dummyVcpuInfo()));
    }
    const pages = new DomainPages(allocator, maxPages);
    const isHardware = config.flags?.hardware ?? false;
    const parts: DomainParts = {
      pages,
      p2mPool: pool,
      p2m,
      guest: new GuestMemory(memory, p2m),
      sharedInfoMfn,
      sharedInfo,
      vcpus,
      evtchn: new EvtchnPortTable(maxEvtchnPort),
      grantTable,
      maptrack: new Maptrack(maxMaptrackFrames),
      console: new DomainConsole(domid, isHardware, this.hv.consoleRing),
    };
    const d = new Domain(domid, this.hv, config, parts);
    pages.onDrained = () => {
      if (d.dying) this.finalise(d);
    };
    this.byId.set(domid, d);
    return d;
  }

  /** XEN_DOMCTL_max_mem: a new limit (pages). Lowering below tot_pages is allowed, as in Xen. */
  setMaxPages(domid: number, maxPages: number): number {
    const d = this.getLive(domid);
    if (d === undefined) return err("ESRCH");
    if (!isIntIn(maxPages, 0, 1 << GFN_BITS)) return err("EINVAL");
    d.pages.maxPages = maxPages;
    return 0;
  }

  pause(domid: number): number {
    const d = this.getLive(domid);
    return d === undefined ? err("ESRCH") : d.pause();
  }

  unpause(domid: number): number {
    const d = this.getLive(domid);
    return d === undefined ? err("ESRCH") : d.unpause();
  }

  /**
   * Shuts a domain down (SCHEDOP_shutdown / remote_shutdown / the toolstack). Stops its vCPUs
   * (each gets a "shutdown" sched request), tells the VIRQ_DOM_EXC handler and the shutdown hook.
   * 0, -ESRCH, or -EINVAL for a bad reason. A second shutdown is a no-op, as in Xen.
   */
  shutdown(domid: number, reason: number): number {
    const d = this.getLive(domid);
    if (d === undefined) return err("ESRCH");
    if (!isIntIn(reason, 0, SHUTDOWN_MAX)) return err("EINVAL");
    if (!d.markShutdown(reason)) return 0;
    for (const v of d.vcpus) v.schedRequest = { op: "shutdown" };
    d.console.flush();
    sendGlobalVirq(this.hv, Virq.DOM_EXC);
    this.hv.hooks.shutdown?.(d.domid, d.shutdownCode, d.shutdownAction());
    return 0;
  }

  /**
   * Destroys a domain (Xen's domain_kill + relinquish): closes its event channels, drops every
   * grant mapping it holds, frees its grant frames, shared_info, P2M pool and RAM. Frames that
   * other domains still map through grants stay allocated until they unmap; the domain stays in
   * the table as dying until then. 0 or -ESRCH; destroying a dying domain again is a no-op.
   */
  destroy(domid: number): number {
    const d = this.byId.get(domid);
    if (d === undefined) return err("ESRCH");
    if (d.dying) return 0;
    d.markDying();
    d.console.flush();
    for (const v of d.vcpus) v.schedRequest = { op: "shutdown" };
    this.hv.ioreq.domainDestroyed(domid);
    // Its devices stop reaching its memory before the memory goes.
    this.hv.passthrough.domainDestroyed(domid);
    evtchnDestroy(this.hv, d);
    gnttabReleaseMappings(this.hv, d);
    releaseForeignMaps(d);
    for (const v of d.vcpus) {
      if (v.placement !== null) d.pages.put(v.placement.mfn);
      v.placement = null;
    }
    // No vCPU (or core path) may walk this P2M once its pages go back to the allocator.
    d.p2m.kill();
    d.grantTable.destroy();
    this.hv.allocator.free(d.sharedInfoMfn);
    d.p2mPool.destroy(this.hv.allocator);
    if (d.pages.releaseAll() === 0) this.finalise(d);
    // Tell the toolstack/xenstored (Xen does this when a domain dies, for @releaseDomain).
    sendGlobalVirq(this.hv, Virq.DOM_EXC);
    return 0;
  }

  private finalise(d: Domain): void {
    if (this.byId.get(d.domid) !== d) return;
    this.byId.delete(d.domid);
    this.hv.hooks.domainReleased?.(d.domid);
  }

  /** The requested domid if valid and free, else the next free one after the rover. */
  private pickDomid(requested: number | undefined): number {
    if (requested !== undefined) {
      if (!isIntIn(requested, 0, DOMID_MAX)) return err("EINVAL");
      return this.byId.has(requested) ? err("EEXIST") : requested;
    }
    for (let i = 0, dom = this.rover; i < DOMID_MAX; i++) {
      dom = dom >= DOMID_MAX ? 1 : dom + 1;
      if (!this.byId.has(dom)) {
        this.rover = dom;
        return dom;
      }
    }
    return err("ENOMEM");
  }
}
