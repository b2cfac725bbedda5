/**
 * Domain life cycle after creation (libxl_domain.c): list, look up by name or id, pause,
 * unpause, shutdown, reboot, destroy, and what happens when a domain dies — its on_* action
 * (restart rebuilds it from its config), its console log ended, listeners told.
 */
import {
  DomInf,
  Shutdown,
  VIRT_SPEC_CTRL_SSBD,
  XEN_DOMINF_SHUTDOWNMASK,
  XEN_DOMINF_SHUTDOWNSHIFT,
} from "@xenon/hypervisor";
import type { LibxlCtx } from "./ctx.js";
import { createDomain } from "./domain_create.js";
import { check, LibxlError } from "./errors.js";
import type { DomainListEntry } from "./types.js";

const CPUPOOLID_NONE = 0xffffffff;

/** Every domain (getdomaininfolist), lowest domid first. */
export function listDomains(ctx: LibxlCtx): DomainListEntry[] {
  const infos = check(ctx.hc.sysctlGetDomainInfoList(ctx.self, 0, 0x7ff0), "listing domains");
  return infos.map((i) => {
    const shutdown = (i.flags & DomInf.shutdown) !== 0;
    // Xen keeps this in the domain's MSR policy (xen-cpuid -p); the model keeps it on the domain.
    const d = ctx.hv.domains.get(i.domid);
    const sc = d?.specCtrl ?? 0;
    return {
      domid: i.domid,
      name: ctx.nameOf(i.domid),
      memKiB: i.totPages * 4,
      maxMemKiB: i.maxPages * 4,
      vcpus: i.nrOnlineVcpus,
      running: (i.flags & DomInf.running) !== 0,
      blocked: (i.flags & DomInf.blocked) !== 0,
      paused: (i.flags & DomInf.paused) !== 0,
      shutdown,
      shutdownReason: shutdown ? (i.flags >>> XEN_DOMINF_SHUTDOWNSHIFT) & XEN_DOMINF_SHUTDOWNMASK : -1,
      dying: (i.flags & DomInf.dying) !== 0,
      cpuTimeNs: i.cpuTimeNs,
      cpupool: i.cpupool === CPUPOOLID_NONE ? -1 : i.cpupool,
      specCtrl: { msrSpecCtrl: sc & 0xff, virtSsbd: (sc & VIRT_SPEC_CTRL_SSBD) !== 0 },
      // Not in Xen's dominfo either; the core's flag, as for specCtrl above.
      privileged: d?.flags.privileged === true,
    };
  });
}

/** libxl_name_to_domid / xl's find_domain: a domid or a name of a domain that exists. */
export function domidOf(ctx: LibxlCtx, ident: string | number): number {
  if (typeof ident === "number" || /^\d+$/.test(ident)) {
    const id = Number(ident);
    if (ctx.hv.domains.get(id) !== undefined) return id;
  } else {
    for (const d of ctx.hv.domains.list()) if (ctx.nameOf(d.domid) === ident && !d.dying) return d.domid;
  }
  // xl: "<x> is an invalid domain identifier (rc=-6)" (ERROR_INVAL).
  throw new LibxlError("ESRCH", `${String(ident)} is an invalid domain identifier (rc=-6)`);
}

export function pauseDomain(ctx: LibxlCtx, domid: number): void {
  check(ctx.hc.domctlPauseDomain(ctx.self, domid), `Domain ${domid}: pausing domain`);
}

export function unpauseDomain(ctx: LibxlCtx, domid: number): void {
  check(ctx.hc.domctlUnpauseDomain(ctx.self, domid), `Domain ${domid}: unpausing domain`);
}

/**
 * xl shutdown / reboot. Xen asks the guest through XenStore's control/shutdown node and the guest
 * shuts itself down; Xenon's guests have no such driver, so the toolstack shuts the domain down
 * with SCHEDOP_remote_shutdown (what a PV guest's acknowledgement would end in).
 */
export function shutdownDomain(ctx: LibxlCtx, domid: number, reboot: boolean): void {
  if (domid === ctx.self) throw new LibxlError("EINVAL", "cannot shut down the control domain");
  const reason = reboot ? Shutdown.reboot : Shutdown.poweroff;
  check(ctx.hc.schedRemoteShutdown(ctx.self, domid, reason), `Domain ${domid}: ${reboot ? "reboot" : "shutdown"}`);
}

/** xl destroy: kill the domain now; no on_* action applies. */
export async function destroyDomain(ctx: LibxlCtx, domid: number): Promise<void> {
  if (domid === ctx.self) throw new LibxlError("EINVAL", "cannot destroy the control domain");
  await destroyDomainNow(ctx, domid);
}

/**
 * XEN_DOMCTL_destroydomain, retried while it answers -EAGAIN (a vCPU of the domain is still
 * mid-slice on a pCPU), as libxc's xc_domain_destroy does.
 */
export async function destroyDomainNow(ctx: LibxlCtx, domid: number): Promise<void> {
  const rec = ctx.domains.get(domid);
  if (rec !== undefined) rec.destroyRequested = true;
  const rc = await ctx.machine.retry(() => ctx.hc.domctlDestroyDomain(ctx.self, domid));
  check(rc, `Domain ${domid}: destroying domain`);
  // Its pages go back once its backends unmap them: stop its driver domain.
  rec?.onRelease?.();
}

/**
 * Wires the toolstack into the core's hooks: shutdowns carry out restart actions, released
 * domains are forgotten. Call once, after the Machine exists (it wraps the hooks too).
 */
export function installDeathHandling(ctx: LibxlCtx): void {
  const prev = ctx.hv.hooks;
  ctx.hv.hooks = {
    ...prev,
    shutdown: (domid, reason, action) => {
      prev.shutdown?.(domid, reason, action);
      const rec = ctx.domains.get(domid);
      const name = ctx.nameOf(domid);
      ctx.emit({ type: "shutdown", domid, name, reason, action });
      // Its backends stop now: their grant mappings of its pages would keep it a zombie.
      if (rec?.onRelease !== undefined) setTimeout(() => rec.onRelease?.(), 0);
      if (rec === undefined || rec.destroyRequested || rec.config === undefined) return;
      if (action === "restart" || action === "rename-restart" || action === "coredump-restart") {
        rec.destroyRequested = true;
        const config = rec.config;
        // The old domain must be gone (its name free) first; hooks may not re-enter the core.
        const again = async (tries: number) => {
          const old = ctx.hv.domains.get(domid);
          if (old !== undefined && !old.dying && tries > 0) {
            setTimeout(() => void again(tries - 1), 5);
            return;
          }
          try {
            const newId = await createDomain(ctx, config);
            ctx.hv.log(`toolstack: domain ${domid} (${config.name}) rebooted as domain ${newId}`);
          } catch (e) {
            ctx.hv.log(`toolstack: restarting ${config.name} failed: ${(e as Error).message}`);
          }
        };
        setTimeout(() => void again(2000), 0);
      }
    },
    domainReleased: (domid) => {
      prev.domainReleased?.(domid);
      const rec = ctx.domains.get(domid);
      if (rec === undefined) return;
      ctx.domains.delete(domid);
      rec.onRelease?.();
      rec.console.end("domain destroyed");
      ctx.emit({ type: "destroyed", domid, name: rec.name });
    },
  };
}
