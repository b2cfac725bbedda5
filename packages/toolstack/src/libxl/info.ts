/** Host facts (libxl_get_physinfo, libxl_get_version_info) and the hypervisor's log (`xl dmesg`). */
import { XEN_MAJOR, XEN_MINOR } from "@xenon/hypervisor";
import { schedName } from "./cpupool.js";
import type { LibxlCtx } from "./ctx.js";
import { nrCpus } from "./domain_create.js";
import { check } from "./errors.js";
import type { HostInfo } from "./types.js";

export function hostInfo(ctx: LibxlCtx): HostInfo {
  const pi = check(ctx.hc.sysctlPhysinfo(ctx.self), "getting physinfo");
  const schedId = ctx.hc.sysctlSchedId(ctx.self);
  const n = pi.nrCpus > 0 ? pi.nrCpus : nrCpus(ctx);
  return {
    host: ctx.hostName,
    nrCpus: n,
    maxCpuId: pi.nrCpus > 0 ? pi.maxCpuId : n - 1,
    cpuKhz: pi.cpuKhz,
    totalMemMiB: Math.floor((pi.totalPages * 4) / 1024),
    freeMemMiB: Math.floor((pi.freePages * 4) / 1024),
    xenMajor: XEN_MAJOR,
    xenMinor: XEN_MINOR,
    xenExtra: ctx.hc.xenExtraversion(),
    xenCaps: "xen-3.0-riscv32",
    scheduler: schedId < 0 ? "unknown" : schedName(schedId),
    uptimeS: Math.floor((Date.now() - ctx.startedAt) / 1000),
    xenCommandline: check(ctx.hc.xenCommandline(ctx.self), "getting the command line"),
  };
}

/**
 * The hypervisor console ring. Reading without clearing looks at the ring as it is (Xen's
 * readconsole without the clear flag); `clear` consumes it through CONSOLEIO_read.
 */
export function dmesg(ctx: LibxlCtx, clear: boolean): string {
  if (!clear) return new TextDecoder().decode(ctx.hv.consoleRing.peek());
  const bytes = check(ctx.hc.consoleRead(ctx.self, ctx.hv.consoleRing.length), "reading the console ring");
  return new TextDecoder().decode(bytes);
}
