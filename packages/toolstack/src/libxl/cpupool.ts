/**
 * cpupools (libxl_cpupool_*): create, list, destroy, add/remove pCPUs, move domains, all through
 * XEN_SYSCTL_cpupool_op. Names are the toolstack's (Xen keeps them in XenStore); the core knows
 * pools by id. Moving a domain or removing a pCPU answers -EAGAIN while a vCPU concerned is still
 * on a pCPU: the toolstack retries for a while, as libxl does for EBUSY.
 */
import { XEN_SCHEDULER, XEN_SYSCTL_CPUPOOL_PAR_ANY } from "@xenon/hypervisor";
import { parseCpuList } from "./cpulist.js";
import type { LibxlCtx } from "./ctx.js";
import { nrCpus, poolIdByName } from "./domain_create.js";
import { check, LibxlError } from "./errors.js";
import type { CpupoolEntry } from "./types.js";

const SCHED_NAMES: Record<number, string> = {
  [XEN_SCHEDULER.credit2]: "credit2",
  [XEN_SCHEDULER.rtds]: "rtds",
  [XEN_SCHEDULER.null]: "null",
  [XEN_SCHEDULER.credit]: "credit",
  [XEN_SCHEDULER.arinc653]: "arinc653",
};

export function schedName(id: number): string {
  return SCHED_NAMES[id] ?? `sched-${id}`;
}

export function schedIdOf(name: string): number {
  const id = (XEN_SCHEDULER as Record<string, number>)[name];
  if (id === undefined) throw new LibxlError("EINVAL", `unknown scheduler '${name}'`);
  return id;
}

export function listCpupools(ctx: LibxlCtx): CpupoolEntry[] {
  const out: CpupoolEntry[] = [];
  for (let id = 0; ; ) {
    const r = ctx.hc.sysctlCpupoolInfo(ctx.self, id);
    if (r === -2 /* ENOENT: no pool at or above id */) break;
    const info = check(r, "listing cpupools");
    out.push({
      poolId: info.poolId,
      name: ctx.poolNames.get(info.poolId) ?? `Pool-${info.poolId}`,
      sched: schedName(info.schedId),
      cpus: info.pcpus,
      nDom: info.nDom,
    });
    id = info.poolId + 1;
  }
  return out;
}

/** xl cpupool-create name=… sched=… cpus=…: the new pool's id. */
export async function createCpupool(
  ctx: LibxlCtx,
  name: string,
  sched: string,
  cpus: readonly string[],
): Promise<number> {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new LibxlError("EINVAL", `invalid cpupool name '${name}'`);
  for (const n of ctx.poolNames.values())
    if (n === name) throw new LibxlError("EEXIST", `cpupool '${name}' already exists`);
  const schedId = schedIdOf(sched);
  const n = nrCpus(ctx);
  const ids = new Set<number>();
  for (const c of cpus) for (const id of cpuListOrThrow(c, n)) ids.add(id);
  const free = new Set(check(ctx.hc.sysctlCpupoolFreeInfo(ctx.self), "getting free cpus"));
  for (const id of ids)
    if (!free.has(id)) throw new LibxlError("EBUSY", `cpu ${id} is not free (remove it from its cpupool first)`);
  const poolId = check(ctx.hc.sysctlCpupoolCreate(ctx.self, XEN_SYSCTL_CPUPOOL_PAR_ANY, schedId), "creating cpupool");
  ctx.poolNames.set(poolId, name);
  try {
    for (const id of [...ids].sort((a, b) => a - b))
      check(ctx.hc.sysctlCpupoolAddCpu(ctx.self, poolId, id), `adding cpu ${id} to cpupool ${name}`);
  } catch (e) {
    for (const id of ids) ctx.hc.sysctlCpupoolRemoveCpu(ctx.self, poolId, id);
    ctx.hc.sysctlCpupoolDestroy(ctx.self, poolId);
    ctx.poolNames.delete(poolId);
    throw e;
  }
  return poolId;
}

/** xl cpupool-destroy: its pCPUs go back to the free set first; it must have no domains. */
export async function destroyCpupool(ctx: LibxlCtx, pool: string): Promise<void> {
  const poolId = poolIdByName(ctx, pool);
  if (poolId === 0) throw new LibxlError("EBUSY", "Pool-0 cannot be destroyed");
  const info = check(ctx.hc.sysctlCpupoolInfo(ctx.self, poolId), `cpupool ${pool}`);
  if (info.nDom > 0) throw new LibxlError("EBUSY", `cpupool ${pool} still has ${info.nDom} domain(s)`);
  for (const c of info.pcpus)
    await retry(ctx, () => ctx.hc.sysctlCpupoolRemoveCpu(ctx.self, poolId, c), `removing cpu ${c}`);
  check(ctx.hc.sysctlCpupoolDestroy(ctx.self, poolId), `destroying cpupool ${pool}`);
  ctx.poolNames.delete(poolId);
}

export async function cpupoolCpuAdd(ctx: LibxlCtx, pool: string, cpus: string): Promise<void> {
  const poolId = poolIdByName(ctx, pool);
  for (const c of cpuListOrThrow(cpus, nrCpus(ctx)))
    check(ctx.hc.sysctlCpupoolAddCpu(ctx.self, poolId, c), `adding cpu ${c} to cpupool ${pool}`);
}

export async function cpupoolCpuRemove(ctx: LibxlCtx, pool: string, cpus: string): Promise<void> {
  const poolId = poolIdByName(ctx, pool);
  for (const c of cpuListOrThrow(cpus, nrCpus(ctx)))
    await retry(
      ctx,
      () => ctx.hc.sysctlCpupoolRemoveCpu(ctx.self, poolId, c),
      `removing cpu ${c} from cpupool ${pool}`,
    );
}

/**
 * xl cpupool-migrate: the domain is paused for the move (its vCPUs must be off their pCPUs,
 * as Xen's cpupool_move_domain pauses it), then runs again in the new pool.
 */
export async function cpupoolMigrate(ctx: LibxlCtx, domid: number, pool: string): Promise<void> {
  const poolId = poolIdByName(ctx, pool);
  check(ctx.hc.domctlPauseDomain(ctx.self, domid), `Domain ${domid}: pausing for the move`);
  try {
    await retry(
      ctx,
      () => ctx.hc.sysctlCpupoolMoveDomain(ctx.self, poolId, domid),
      `moving domain ${domid} to cpupool ${pool}`,
    );
  } finally {
    ctx.hc.domctlUnpauseDomain(ctx.self, domid);
  }
}

function cpuListOrThrow(text: string, n: number): number[] {
  try {
    return parseCpuList(text, n);
  } catch (e) {
    throw new LibxlError("EINVAL", (e as Error).message);
  }
}

/** Retries an op that answers -EAGAIN until the pCPUs have rescheduled (Machine.retry, 5 s). */
async function retry(ctx: LibxlCtx, op: () => number, what: string): Promise<number> {
  return check(await ctx.machine.retry(op), what);
}
