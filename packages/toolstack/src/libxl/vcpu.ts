/** vCPUs (libxl_list_vcpu, libxl_set_vcpuaffinity): `xl vcpu-list` and `xl vcpu-pin`. */
import { CPUPOOLID_NONE, Errno } from "@xenon/hypervisor";
import { parseCpuList } from "./cpulist.js";
import type { LibxlCtx } from "./ctx.js";
import { nrCpus } from "./domain_create.js";
import { check, LibxlError } from "./errors.js";
import type { VcpuListEntry } from "./types.js";

/** Every vCPU of `domids` (all domains when absent), through getvcpuinfo + getvcpuaffinity. */
export function listVcpus(ctx: LibxlCtx, domids?: readonly number[]): VcpuListEntry[] {
  const ids = domids ?? ctx.hv.domains.list().map((d) => d.domid);
  const out: VcpuListEntry[] = [];
  for (const domid of ids) {
    const info = check(ctx.hc.domctlGetDomainInfo(ctx.self, domid), `Domain ${domid}: getting domain info`);
    if (info.domid !== domid) throw LibxlError.fromErrno(-Errno.ESRCH, `Domain ${domid}: getting domain info`);
    const name = ctx.nameOf(domid);
    // TypeScript domains (Domain-0, Xenstore) are in no cpupool: they have no vCPUs to list.
    if (info.cpupool === CPUPOOLID_NONE) continue;
    for (let v = 0; v <= info.maxVcpuId; v++) {
      const vi = ctx.hc.domctlGetVcpuInfo(ctx.self, domid, v);
      const i = check(vi, `Domain ${domid}: getting vcpu ${v} info`);
      const aff = check(ctx.hc.domctlGetVcpuAffinity(ctx.self, domid, v), `Domain ${domid}: vcpu ${v} affinity`);
      out.push({
        domid,
        name,
        vcpu: v,
        online: i.online,
        running: i.running,
        blocked: i.blocked,
        cpu: i.cpu,
        cpuTimeNs: i.cpuTimeNs,
        hard: aff.hard,
        soft: aff.soft,
      });
    }
  }
  return out;
}

/**
 * xl vcpu-pin DOM VCPU|all HARD [SOFT]: HARD/SOFT are CPULISTs, "-" keeps that mask, "all"
 * is every pCPU. Returns the effective masks of the vCPUs changed.
 */
export function pinVcpu(
  ctx: LibxlCtx,
  domid: number,
  vcpu: number | "all",
  hard: string | null,
  soft: string | null,
): void {
  const info = check(ctx.hc.domctlGetDomainInfo(ctx.self, domid), `Domain ${domid}: getting domain info`);
  const n = nrCpus(ctx);
  const h = hard === null || hard === "-" ? null : parseCpuListOrThrow(hard, n);
  const s = soft === null || soft === "-" ? null : parseCpuListOrThrow(soft, n);
  if (h === null && s === null) throw new LibxlError("EINVAL", "vcpu-pin: nothing to change (both masks are '-')");
  const vcpus = vcpu === "all" ? Array.from({ length: info.maxVcpuId + 1 }, (_, i) => i) : [vcpu];
  for (const v of vcpus) {
    if (!Number.isInteger(v) || v < 0 || v > info.maxVcpuId)
      throw new LibxlError("EINVAL", `Domain ${domid}: vcpu ${v} does not exist`);
    check(ctx.hc.domctlSetVcpuAffinity(ctx.self, domid, v, h, s), `Domain ${domid}: setting vcpu ${v} affinity`);
  }
}

function parseCpuListOrThrow(text: string, n: number): number[] {
  try {
    return parseCpuList(text, n);
  } catch (e) {
    throw new LibxlError("EINVAL", (e as Error).message);
  }
}
