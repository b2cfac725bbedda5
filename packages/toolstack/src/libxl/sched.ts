/**
 * Scheduler parameters (libxl_domain_sched_params_*, libxl_sched_credit2_params_*):
 * `xl sched-credit2` and `xl sched-rtds`, through XEN_DOMCTL_scheduler_op and
 * XEN_SYSCTL_scheduler_op.
 */
import { XEN_SCHEDULER } from "@xenon/hypervisor";
import type { LibxlCtx } from "./ctx.js";
import { check, LibxlError } from "./errors.js";
import type { DomainSchedEntry } from "./types.js";

/** Domains whose cpupool runs `sched` (all of them, or the ones in `domids`). */
export function getSchedParams(
  ctx: LibxlCtx,
  sched: "credit2" | "rtds",
  domids?: readonly number[],
): DomainSchedEntry[] {
  const schedId = XEN_SCHEDULER[sched];
  const out: DomainSchedEntry[] = [];
  const ids = domids ?? ctx.hv.domains.list().map((d) => d.domid);
  for (const domid of ids) {
    const info = check(ctx.hc.domctlGetDomainInfo(ctx.self, domid), `Domain ${domid}: getting domain info`);
    if (info.domid !== domid) continue;
    const pool = ctx.poolNames.get(info.cpupool) ?? `Pool-${info.cpupool}`;
    const rc = ctx.hc.domctlSchedCheck(ctx.self, domid, schedId, false);
    if (rc < 0) {
      if (domids === undefined) continue; // listing: other pools' domains are not this scheduler's
      check(rc, `Domain ${domid}: getting ${sched} parameters`);
    }
    if (sched === "credit2") {
      const p = check(ctx.hc.domctlSchedGetInfo(ctx.self, domid, schedId), `Domain ${domid}: credit2 parameters`);
      if (p.kind !== "credit2") continue;
      out.push({ domid, name: ctx.nameOf(domid), pool, params: { kind: "credit2", weight: p.weight, cap: p.cap } });
    } else {
      const vcpus = [];
      for (let v = 0; v <= info.maxVcpuId; v++) {
        const p = check(ctx.hc.domctlSchedGetVcpuInfo(ctx.self, domid, schedId, v), `Domain ${domid}: vcpu ${v}`);
        if (p.kind === "rtds") vcpus.push({ periodUs: p.periodUs, budgetUs: p.budgetUs, extratime: p.extratime });
      }
      out.push({ domid, name: ctx.nameOf(domid), pool, params: { kind: "rtds", vcpus } });
    }
  }
  return out;
}

export function setCredit2(ctx: LibxlCtx, domid: number, weight?: number, cap?: number): void {
  if (weight === undefined && cap === undefined) throw new LibxlError("EINVAL", "give -w WEIGHT and/or -c CAP");
  if (weight !== undefined && (!Number.isInteger(weight) || weight < 1 || weight > 65535))
    throw new LibxlError("EINVAL", `weight ${weight} out of range 1..65535`);
  const p = {
    kind: "credit2" as const,
    ...(weight !== undefined ? { weight } : {}),
    ...(cap !== undefined ? { cap } : {}),
  };
  check(
    ctx.hc.domctlSchedPutInfo(ctx.self, domid, XEN_SCHEDULER.credit2, p),
    `Domain ${domid}: setting credit2 parameters`,
  );
}

/** xl sched-rtds -d DOM [-v VCPU|all] -p PERIOD -b BUDGET [-e 0|1]. */
export function setRtds(
  ctx: LibxlCtx,
  domid: number,
  vcpu: number | "all" | undefined,
  p: { periodUs?: number; budgetUs?: number; extratime?: boolean },
): void {
  const upd = { kind: "rtds" as const, ...p };
  if (vcpu === undefined) {
    check(
      ctx.hc.domctlSchedPutInfo(ctx.self, domid, XEN_SCHEDULER.rtds, upd),
      `Domain ${domid}: setting rtds parameters`,
    );
    return;
  }
  const info = check(ctx.hc.domctlGetDomainInfo(ctx.self, domid), `Domain ${domid}: getting domain info`);
  const vcpus = vcpu === "all" ? Array.from({ length: info.maxVcpuId + 1 }, (_, i) => i) : [vcpu];
  for (const v of vcpus)
    check(
      ctx.hc.domctlSchedPutVcpuInfo(ctx.self, domid, XEN_SCHEDULER.rtds, v, upd),
      `Domain ${domid}: setting rtds parameters of vcpu ${v}`,
    );
}

/** Pool-wide credit2 ratelimit (xl sched-credit2 -s -p POOL -r US). */
export function getPoolRatelimit(ctx: LibxlCtx, poolId: number): number {
  const p = check(ctx.hc.sysctlSchedGetPoolParams(ctx.self, poolId, XEN_SCHEDULER.credit2), `cpupool ${poolId}`);
  return p.kind === "credit2" ? p.ratelimitUs : 0;
}

export function setPoolRatelimit(ctx: LibxlCtx, poolId: number, ratelimitUs: number): void {
  check(
    ctx.hc.sysctlSchedPutPoolParams(ctx.self, poolId, XEN_SCHEDULER.credit2, { kind: "credit2", ratelimitUs }),
    `cpupool ${poolId}: setting ratelimit`,
  );
}
