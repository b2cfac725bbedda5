/** xl's output formats (xl_info.c, xl_vcpu.c, xl_cpupool.c, xl_sched.c), from API results. */
import { formatCpuList } from "../libxl/cpulist.js";
import type { CpupoolEntry, DomainListEntry, DomainSchedEntry, HostInfo, VcpuListEntry } from "../libxl/types.js";

const SHUTDOWN_CRASH = 3;

const padL = (s: string | number, n: number) => String(s).padStart(n);
const padR = (s: string | number, n: number) => String(s).padEnd(n);

/** xl list's six state letters: r b p s c d, '-' where unset. */
export function stateLetters(d: DomainListEntry): string {
  const crashed = d.shutdown && d.shutdownReason === SHUTDOWN_CRASH;
  return [
    d.running ? "r" : "-",
    d.blocked ? "b" : "-",
    d.paused ? "p" : "-",
    d.shutdown && !crashed ? "s" : "-",
    crashed ? "c" : "-",
    d.dying ? "d" : "-",
  ].join("");
}

export function formatList(rows: readonly DomainListEntry[]): string {
  let out = "Name                                        ID   Mem VCPUs\tState\tTime(s)\n";
  for (const d of rows)
    out += `${padR(d.name, 40)} ${padL(d.domid, 5)} ${padL(Math.floor(d.memKiB / 1024), 5)} ${padL(d.vcpus, 5)}     ${stateLetters(d)}  ${padL((d.cpuTimeNs / 1e9).toFixed(1), 8)}\n`;
  return out;
}

/** xl list across a pool: one header line and table per host (this host marked with '*'). */
export function formatPoolList(
  hosts: ReadonlyArray<{
    host: string;
    url: string;
    self: boolean;
    domains?: readonly DomainListEntry[];
    error?: string;
  }>,
): string {
  return hosts
    .map((h) => {
      const head = `Host ${h.host} (${h.url})${h.self ? " *" : ""}`;
      return h.domains === undefined
        ? `${head}: unreachable: ${h.error ?? "?"}\n`
        : `${head}\n${formatList(h.domains)}`;
    })
    .join("\n");
}

export function formatVcpuList(rows: readonly VcpuListEntry[], nrCpus: number): string {
  let out = `${padR("Name", 32)} ${padL("ID", 5)} ${padL("VCPU", 5)} ${padL("CPU", 5)} ${padL("State", 5)} ${padL("Time(s)", 9)} Affinity (Hard / Soft)\n`;
  for (const v of rows) {
    const cpu = v.online && v.cpu >= 0 ? String(v.cpu) : "-";
    const st = v.online ? `${v.running ? "r" : "-"}${v.blocked ? "b" : "-"}-` : "--p";
    out += `${padR(v.name, 32)} ${padL(v.domid, 5)} ${padL(v.vcpu, 5)} ${padL(cpu, 5)}   ${st}  ${padL((v.cpuTimeNs / 1e9).toFixed(1), 9)}  ${formatCpuList(v.hard, nrCpus)} / ${formatCpuList(v.soft, nrCpus)}\n`;
  }
  return out;
}

export function formatCpupoolList(rows: readonly CpupoolEntry[], cpuList: boolean): string {
  if (cpuList) {
    let out = `${padR("Name", 19)}CPU list\n`;
    for (const p of rows) out += `${padR(p.name, 19)}${p.cpus.length === 0 ? "" : formatCpuList(p.cpus)}\n`;
    return out;
  }
  let out = `${padR("Name", 19)}CPUs   Sched     Active   Domain count\n`;
  for (const p of rows)
    out += `${padR(p.name, 19)}${padL(p.cpus.length, 3)} ${padL(p.sched, 9)}       y       ${padL(p.nDom, 4)}\n`;
  return out;
}

export function formatInfo(i: HostInfo): string {
  const rows: Array<[string, string | number]> = [
    ["host", i.host],
    ["release", "xenon"],
    ["machine", "riscv32"],
    ["nr_cpus", i.nrCpus],
    ["max_cpu_id", i.maxCpuId],
    ["nr_nodes", 1],
    ["cores_per_socket", 1],
    ["threads_per_core", 1],
    ["cpu_mhz", (i.cpuKhz / 1000).toFixed(3)],
    ["virt_caps", "hvm hap"],
    ["total_memory", i.totalMemMiB],
    ["free_memory", i.freeMemMiB],
    ["xen_major", i.xenMajor],
    ["xen_minor", i.xenMinor],
    ["xen_extra", i.xenExtra],
    ["xen_version", `${i.xenMajor}.${i.xenMinor}${i.xenExtra}`],
    ["xen_caps", i.xenCaps],
    ["xen_scheduler", i.scheduler],
    ["xen_pagesize", 4096],
    ["xen_commandline", i.xenCommandline],
    ["uptime", i.uptimeS],
    ["xl_version", "xenon"],
  ];
  return rows.map(([k, v]) => `${padR(k, 23)}: ${v}\n`).join("");
}

export function formatCredit2(rows: readonly DomainSchedEntry[], ratelimits: ReadonlyMap<string, number>): string {
  let out = "";
  const pools = [...new Set(rows.map((r) => r.pool))];
  for (const pool of pools) {
    const rl = ratelimits.get(pool);
    out += `Cpupool ${pool}: ratelimit=${rl ?? 0}us\n`;
    out += `${padR("Name", 33)} ${padL("ID", 4)} ${padL("Weight", 6)} ${padL("Cap", 4)}\n`;
    for (const r of rows)
      if (r.pool === pool && r.params.kind === "credit2")
        out += `${padR(r.name, 33)} ${padL(r.domid, 4)} ${padL(r.params.weight, 6)} ${padL(r.params.cap, 4)}\n`;
  }
  return out;
}

export function formatRtds(rows: readonly DomainSchedEntry[], perVcpu: boolean): string {
  let out = "";
  const pools = [...new Set(rows.map((r) => r.pool))];
  for (const pool of pools) {
    out += `Cpupool ${pool}: sched=RTDS\n`;
    out += perVcpu
      ? `${padR("Name", 33)} ${padL("ID", 4)} ${padL("VCPU", 4)} ${padL("Period", 9)} ${padL("Budget", 9)} ${padL("Extratime", 10)}\n`
      : `${padR("Name", 33)} ${padL("ID", 4)} ${padL("Period", 9)} ${padL("Budget", 9)} ${padL("Extratime", 10)}\n`;
    for (const r of rows) {
      if (r.pool !== pool || r.params.kind !== "rtds") continue;
      const vs = perVcpu ? r.params.vcpus : r.params.vcpus.slice(0, 1);
      vs.forEach((v, i) => {
        out += perVcpu
          ? `${padR(r.name, 33)} ${padL(r.domid, 4)} ${padL(i, 4)} ${padL(v.periodUs, 9)} ${padL(v.budgetUs, 9)} ${padL(v.extratime ? "yes" : "no", 10)}\n`
          : `${padR(r.name, 33)} ${padL(r.domid, 4)} ${padL(v.periodUs, 9)} ${padL(v.budgetUs, 9)} ${padL(v.extratime ? "yes" : "no", 10)}\n`;
      });
    }
  }
  return out;
}

/** One xentop-style frame; `prev` gives CPU(%) over the interval since it was taken. */
export function formatTop(
  now: readonly DomainListEntry[],
  prev: ReadonlyMap<number, number> | null,
  intervalS: number,
  info: HostInfo,
): string {
  const count = (f: (d: DomainListEntry) => boolean) => now.filter(f).length;
  let out = `xenon top - ${new Date().toISOString().slice(11, 19)}   Xen ${info.xenMajor}.${info.xenMinor}${info.xenExtra}\n`;
  out += `${now.length} domains: ${count((d) => d.running)} running, ${count((d) => d.blocked)} blocked, ${count((d) => d.paused)} paused, ${count((d) => d.shutdown)} shutdown, ${count((d) => d.dying)} dying\n`;
  out += `Mem: ${info.totalMemMiB * 1024}k total, ${(info.totalMemMiB - info.freeMemMiB) * 1024}k used, ${info.freeMemMiB * 1024}k free    CPUs: ${info.nrCpus} @ ${(info.cpuKhz / 1000).toFixed(0)}MHz\n`;
  out += `${padL("NAME", 10)}  STATE   CPU(sec) CPU(%)     MEM(k) MEM(%)  MAXMEM(k) VCPUS\n`;
  for (const d of now) {
    const before = prev?.get(d.domid);
    const pct = before === undefined || intervalS <= 0 ? 0 : ((d.cpuTimeNs - before) / 1e9 / intervalS) * 100;
    const memPct = info.totalMemMiB > 0 ? (d.memKiB / (info.totalMemMiB * 1024)) * 100 : 0;
    out += `${padL(d.name.slice(0, 10), 10)} ${stateLetters(d)} ${padL((d.cpuTimeNs / 1e9).toFixed(0), 10)} ${padL(pct.toFixed(1), 6)} ${padL(d.memKiB, 10)} ${padL(memPct.toFixed(1), 6)} ${padL(d.maxMemKiB, 10)} ${padL(d.vcpus, 5)}\n`;
  }
  return out;
}
