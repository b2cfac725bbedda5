/**
 * The libxl-like API: one object per host, methods named after xl's verbs. Domains are named by
 * domid or name (like xl's find_domain); failures are LibxlError with an errno-style code and the
 * message xl prints. Every operation goes through the core's domctl/sysctl semantics as the
 * control domain, except the domain builder's memory setup (libxenguest's part).
 */
import type { DriverDomain, VifSwitch } from "@xenon/backends";
import type { Hypervisor, Machine } from "@xenon/hypervisor";
import type { DeviceModelSource, DeviceModelTarget } from "../migrate/device_models.js";
import {
  type RestoreResult,
  restoreDomainFromFileAsync,
  type SaveResult,
  saveDomainToFile,
} from "../migrate/domain_save.js";
import { driverDomainSource, driverDomainTarget } from "../migrate/virtio_models.js";
import type { ConsoleListener } from "./console.js";
import * as cpupool from "./cpupool.js";
import { type DomainEvent, type HostPool, LibxlCtx, type LibxlCtxOptions } from "./ctx.js";
import * as domain from "./domain.js";
import { type CreateOptions, createDomain } from "./domain_create.js";
import { LibxlError } from "./errors.js";
import * as info from "./info.js";
import * as sched from "./sched.js";
import type {
  CpupoolEntry,
  DomainConfig,
  DomainListEntry,
  DomainSchedEntry,
  HostInfo,
  VcpuListEntry,
} from "./types.js";
import * as vcpu from "./vcpu.js";

export type DomainIdent = string | number;

export interface LibxlOptions {
  readonly hv: Hypervisor;
  readonly machine: Machine;
  readonly pools: readonly HostPool[];
  /** The privileged domain the toolstack acts as (it must exist). */
  readonly controlDomid: number;
  readonly hostName?: string;
  /** XenStore: gives a new domain its ring and introduces it (before it runs). */
  readonly xenstore?: LibxlCtxOptions["xenstore"];
  /** Also receives every created domain's console output (`xenon host --console`). */
  readonly consoleTee?: (name: string, bytes: Uint8Array) => void;
  /** The host's switch (xenbr0) that `vif=` devices plug into. */
  readonly vswitch?: VifSwitch;
}

export class Libxl {
  readonly ctx: LibxlCtx;

  constructor(opts: LibxlOptions) {
    this.ctx = new LibxlCtx(opts);
    domain.installDeathHandling(this.ctx);
  }

  /** Registers a domain made elsewhere (a boot-time domain) so it has a name and a console log. */
  adopt(domid: number, name: string, tee?: (bytes: Uint8Array) => void): void {
    this.ctx.track(domid, name, undefined, tee);
  }

  /**
   * Tracks a domain that arrived by restore or migration (it is already under the machine): its
   * name, config if known, and console, teed like a created domain's.
   */
  adoptRestored(domid: number, name: string, config?: DomainConfig, driverDomains: DriverDomain[] = []): void {
    const tee = this.ctx.consoleTee;
    const rec = this.ctx.track(domid, name, config, tee === undefined ? undefined : (bytes) => tee(name, bytes));
    if (driverDomains.length > 0) {
      rec.driverDomains = driverDomains;
      rec.onRelease = () => {
        for (const dd of driverDomains) void dd.close();
      };
    }
    this.ctx.emit({ type: "created", domid, name });
  }

  /** This host's driver domains as device models that leave with their domain (save, migration). */
  deviceModelSource(): DeviceModelSource {
    return driverDomainSource(() => this.ctx.driverDomains());
  }

  /**
   * Device models for a domain arriving here; the driver domains started go to `started` (the
   * caller hands them to adoptRestored).
   */
  deviceModelTarget(started: DriverDomain[]): DeviceModelTarget {
    return driverDomainTarget(this.ctx.hv, {
      // A guest created here with grant_usage=0 got a privileged driver domain; its image (an
      // xl save file on this host, or a pool member's migration) gets one again, as Xen's
      // restore recreates the backends its config names.
      allowPrivileged: true,
      ...(this.ctx.vswitch !== undefined ? { vswitch: this.ctx.vswitch } : {}),
      log: (l) => this.ctx.hv.log(l),
      started: (dd) => started.push(dd),
      ...(this.ctx.xenstore?.driverDomains !== undefined ? { xenstore: this.ctx.xenstore.driverDomains } : {}),
    });
  }

  /** xl save [-c]: the domain's image to `file` (on this host); destroyed unless keepRunning. */
  async save(ident: DomainIdent, file: string, keepRunning = false): Promise<SaveResult> {
    const domid = this.domid(ident);
    if (domid === this.ctx.self) throw new LibxlError("EINVAL", "cannot save the control domain");
    try {
      return await saveDomainToFile(this.ctx.machine, domid, file, {
        keepRunning,
        deviceModels: this.deviceModelSource(),
      });
    } catch (e) {
      if (e instanceof LibxlError) throw e;
      throw new LibxlError("EIO", `Domain ${domid}: saving to ${file} failed: ${(e as Error).message}`);
    }
  }

  /** xl restore [-p]: a domain from a save file (on this host); its id and name. */
  async restore(
    file: string,
    opts: { paused?: boolean; name?: string } = {},
  ): Promise<{ domid: number; name: string }> {
    let r: RestoreResult;
    const started: DriverDomain[] = [];
    try {
      r = await restoreDomainFromFileAsync(this.ctx.machine, file, {
        paused: true,
        ...(opts.name ? { name: opts.name } : {}),
        deviceModels: this.deviceModelTarget(started),
      });
    } catch (e) {
      throw new LibxlError("EIO", `restoring from ${file} failed: ${(e as Error).message}`);
    }
    const name = opts.name ?? r.config?.name ?? r.domain.name;
    if (this.list().some((d) => d.name === name && d.domid !== r.domid)) {
      void domain.destroyDomainNow(this.ctx, r.domid);
      for (const dd of started) void dd.close();
      throw new LibxlError("EEXIST", `domain '${name}' already exists`);
    }
    this.adoptRestored(r.domid, name, undefined, started);
    if (!opts.paused) this.unpause(r.domid);
    return { domid: r.domid, name };
  }

  onEvent(l: (e: DomainEvent) => void): () => void {
    return this.ctx.onEvent(l);
  }

  domid(ident: DomainIdent): number {
    return domain.domidOf(this.ctx, ident);
  }

  create(config: DomainConfig, opts: CreateOptions = {}): Promise<number> {
    return createDomain(this.ctx, config, opts);
  }

  list(ident?: DomainIdent): DomainListEntry[] {
    const all = domain.listDomains(this.ctx);
    if (ident === undefined) return all;
    const id = this.domid(ident);
    return all.filter((d) => d.domid === id);
  }

  destroy(ident: DomainIdent): Promise<void> {
    return domain.destroyDomain(this.ctx, this.domid(ident));
  }

  pause(ident: DomainIdent): void {
    domain.pauseDomain(this.ctx, this.domid(ident));
  }

  unpause(ident: DomainIdent): void {
    domain.unpauseDomain(this.ctx, this.domid(ident));
  }

  shutdown(ident: DomainIdent): void {
    domain.shutdownDomain(this.ctx, this.domid(ident), false);
  }

  reboot(ident: DomainIdent): void {
    domain.shutdownDomain(this.ctx, this.domid(ident), true);
  }

  /** Streams a domain's console: what it printed so far, then live output until it is gone. */
  console(ident: DomainIdent, l: ConsoleListener): () => void {
    const id = this.domid(ident);
    const rec = this.ctx.domains.get(id);
    if (rec === undefined) throw new LibxlError("ENOENT", `Domain ${id} has no console`);
    return rec.console.attach(l);
  }

  dmesg(clear = false): string {
    return info.dmesg(this.ctx, clear);
  }

  vcpuList(idents?: readonly DomainIdent[]): VcpuListEntry[] {
    return vcpu.listVcpus(
      this.ctx,
      idents?.map((i) => this.domid(i)),
    );
  }

  vcpuPin(ident: DomainIdent, v: number | "all", hard: string | null, soft: string | null = null): void {
    vcpu.pinVcpu(this.ctx, this.domid(ident), v, hard, soft);
  }

  cpupoolList(): CpupoolEntry[] {
    return cpupool.listCpupools(this.ctx);
  }

  cpupoolCreate(name: string, schedName = "credit2", cpus: readonly string[] = []): Promise<number> {
    return cpupool.createCpupool(this.ctx, name, schedName, cpus);
  }

  cpupoolDestroy(name: string): Promise<void> {
    return cpupool.destroyCpupool(this.ctx, name);
  }

  cpupoolCpuAdd(pool: string, cpus: string): Promise<void> {
    return cpupool.cpupoolCpuAdd(this.ctx, pool, cpus);
  }

  cpupoolCpuRemove(pool: string, cpus: string): Promise<void> {
    return cpupool.cpupoolCpuRemove(this.ctx, pool, cpus);
  }

  cpupoolMigrate(ident: DomainIdent, pool: string): Promise<void> {
    return cpupool.cpupoolMigrate(this.ctx, this.domid(ident), pool);
  }

  schedCredit2(ident?: DomainIdent): DomainSchedEntry[] {
    return sched.getSchedParams(this.ctx, "credit2", ident === undefined ? undefined : [this.domid(ident)]);
  }

  schedCredit2Set(ident: DomainIdent, weight?: number, cap?: number): void {
    sched.setCredit2(this.ctx, this.domid(ident), weight, cap);
  }

  schedRtds(ident?: DomainIdent): DomainSchedEntry[] {
    return sched.getSchedParams(this.ctx, "rtds", ident === undefined ? undefined : [this.domid(ident)]);
  }

  schedRtdsSet(
    ident: DomainIdent,
    v: number | "all" | undefined,
    p: { periodUs?: number; budgetUs?: number; extratime?: boolean },
  ): void {
    sched.setRtds(this.ctx, this.domid(ident), v, p);
  }

  info(): HostInfo {
    return info.hostInfo(this.ctx);
  }
}
