/**
 * `xl`: Xen's command-line toolstack, talking to a running host (`xenon host`) through its
 * management endpoint. The host is found with `-H URL` or the XENON_HOST environment variable.
 * Output formats and error wording follow Xen's xl; every failure exits non-zero.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type {
  CpupoolEntry,
  DomainConfig,
  DomainListEntry,
  DomainSchedEntry,
  HostInfo,
  VcpuListEntry,
} from "../libxl/types.js";
import { MgmtClient, MgmtError } from "../mgmt/client.js";
import type { PoolHostDomains } from "../pool/mgmt_ops.js";
import { domainConfigFromText } from "../xlcfg/domain_config.js";
import { parseXlCfg, XlCfgError } from "../xlcfg/parser.js";
import {
  formatCpupoolList,
  formatCredit2,
  formatInfo,
  formatList,
  formatPoolList,
  formatRtds,
  formatTop,
  formatVcpuList,
} from "./xl_format.js";

const USAGE = `Usage: xl [-H URL] <subcommand> [args]

The host is XENON_HOST (printed by \`xenon host\`) or -H URL.

 create [-p] [-c] [-n] CONFIG [KEY=VALUE...]   create a domain from an xl.cfg file
 list [-l] [DOMAIN]                          list domains (in a pool: every member's, per host)
 save [-c] DOMAIN FILE                       save a domain to FILE on its host (-c: it keeps running)
 restore [-p] FILE                           restore a domain from FILE on the host (-p: paused)
 migrate DOMAIN HOST                         live-migrate a domain to pool member HOST (name or HOST:PORT)
 pool-list                                   the pool's members
 destroy DOMAIN                              terminate a domain immediately
 shutdown DOMAIN / reboot DOMAIN             shut a domain down / reboot it
 pause DOMAIN / unpause DOMAIN               pause / unpause a domain
 console DOMAIN                              attach to a domain's console (Ctrl-] detaches)
 vcpu-list [DOMAIN...]                       list vCPUs
 vcpu-pin DOMAIN VCPU|all HARD [SOFT]        set vCPU affinity (CPULIST, '-' keeps)
 cpupool-create [CONFIG] [KEY=VALUE...]      create a cpupool (name=, sched=, cpus=)
 cpupool-list [-c] [POOL]                    list cpupools
 cpupool-destroy POOL                        destroy a cpupool
 cpupool-cpu-add POOL CPULIST                add pCPUs to a cpupool
 cpupool-cpu-remove POOL CPULIST             remove pCPUs from a cpupool
 cpupool-migrate DOMAIN POOL                 move a domain to a cpupool
 sched-credit2 [-d DOMAIN [-w WEIGHT] [-c CAP]] [-s -p POOL [-r RATELIMIT_US]]
 sched-rtds [-d DOMAIN [-v VCPU|all] [-p PERIOD_US] [-b BUDGET_US] [-e 0|1]]
 info                                        host information
 dmesg [-c]                                  the hypervisor's log (-c clears it)
 top [-d SECONDS] [-b] [-i ITERATIONS] [--once]   live domain view (-b/--once: batch)
 domid NAME / domname ID                     name <-> id`;

class XlExit extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function die(message: string, status = 1): never {
  throw new XlExit(status, message);
}

function usageError(cmd: string, why: string): never {
  die(`${why}\nUsage: xl ${cmd} — see 'xl help'`, 2);
}

/** What xl prints for a failure the host reported. */
function hostFailure(e: MgmtError): string {
  if (/invalid domain identifier/.test(e.message)) return e.message;
  if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET" || e.code === "EPROTO") return `xl: ${e.message}`;
  return `libxl: error: ${e.message}`;
}

function argsOf(
  args: string[],
  options: NonNullable<Parameters<typeof parseArgs>[0]>["options"],
  cmd: string,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options: options ?? {}, allowPositionals: true, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | undefined>, positionals: r.positionals };
  } catch (e) {
    usageError(cmd, (e as Error).message);
  }
}

function intArg(s: string | boolean | string[] | undefined, what: string): number | undefined {
  if (s === undefined) return undefined;
  if (typeof s !== "string" || !/^-?\d+$/.test(s)) die(`xl: ${what} must be an integer, not '${String(s)}'`, 2);
  return Number(s);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Verb = (c: MgmtClient, args: string[]) => Promise<void>;

const out = (s: string) => process.stdout.write(s);

const VERBS: Record<string, Verb> = {
  async create(c, args) {
    const { values, positionals } = argsOf(
      args,
      {
        p: { type: "boolean" },
        c: { type: "boolean" },
        n: { type: "boolean" },
        e: { type: "boolean" },
        F: { type: "boolean" },
        q: { type: "boolean" },
        f: { type: "string" },
      },
      "create",
    );
    const file = (values.f as string | undefined) ?? positionals.shift();
    if (file === undefined) usageError("create", "xl create: no config file given");
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      die(`Failed to read config file: ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    if (!values.q) process.stderr.write(`Parsing config from ${file}\n`);
    let config: DomainConfig;
    try {
      config = domainConfigFromText(text, file, positionals);
    } catch (e) {
      if (e instanceof XlCfgError) die(`${e.message}\nFailed to parse config: Invalid argument`);
      throw e;
    }
    if (values.n) {
      out(`${JSON.stringify(config, null, 2)}\n`);
      return;
    }
    const r = await c.request<{ domid: number }>("domain.create", { config, paused: values.p === true });
    if (values.c) await attachConsole(c, r.domid);
  },
  async list(c, args) {
    const { values, positionals } = argsOf(args, { l: { type: "boolean" }, long: { type: "boolean" } }, "list");
    if (positionals.length > 1) usageError("list", "xl list: too many arguments");
    const long = values.l === true || values.long === true;
    if (positionals[0] === undefined && !long) {
      const hosts = await c.request<PoolHostDomains[]>("pool.list");
      out(
        hosts.length === 1 && hosts[0]!.domains !== undefined ? formatList(hosts[0]!.domains) : formatPoolList(hosts),
      );
      return;
    }
    const rows = await c.request<DomainListEntry[]>(
      "domain.list",
      positionals[0] === undefined ? {} : { dom: positionals[0] },
    );
    out(long ? `${JSON.stringify(rows, null, 4)}\n` : formatList(rows));
  },
  async save(c, args) {
    const { values, positionals } = argsOf(args, { c: { type: "boolean" } }, "save");
    if (positionals.length !== 2) usageError("save", "xl save: DOMAIN FILE");
    const file = resolve(positionals[1]!);
    const r = await c.request<{ bytes: number; pages: number; pausedMs: number }>("domain.save", {
      dom: positionals[0],
      file,
      keepRunning: values.c === true,
    });
    process.stderr.write(`Saving to ${file}: ${r.pages} pages, ${r.bytes} bytes, paused ${r.pausedMs.toFixed(1)} ms\n`);
  },
  async restore(c, args) {
    const { values, positionals } = argsOf(args, { p: { type: "boolean" } }, "restore");
    if (positionals.length !== 1) usageError("restore", "xl restore: FILE");
    const file = resolve(positionals[0]!);
    const r = await c.request<{ domid: number; name: string }>("domain.restore", { file, paused: values.p === true });
    process.stderr.write(`Restored ${r.name} from ${file} as domain ${r.domid}\n`);
  },
  async migrate(c, args) {
    const { positionals } = argsOf(
      args,
      { C: { type: "string" }, s: { type: "string" }, e: { type: "boolean" } },
      "migrate",
    );
    if (positionals.length !== 2) usageError("migrate", "xl migrate: DOMAIN HOST");
    const [dom, host] = positionals as [string, string];
    const r = await c.requestWithEvents<{
      host: string;
      domid: number;
      pagesSent: number;
      bytes: number;
      rounds: number;
      downtimeMs: number;
      totalMs: number;
    }>("domain.migrate", { dom, host }, (e) => {
      const n = (k: string) => (typeof e[k] === "number" ? (e[k] as number) : 0);
      process.stderr.write(
        `migration: round ${n("round")}: ${n("pages")} pages sent, ${n("dirty")} dirty, ${n("mbytes").toFixed(1)} MB at ${n("mbps").toFixed(1)} MB/s\n`,
      );
    });
    process.stderr.write(
      `migration: ${dom} is running on ${r.host} as domain ${r.domid}: ${r.pagesSent} pages, ` +
        `${(r.bytes / 1e6).toFixed(1)} MB in ${r.totalMs.toFixed(0)} ms, ${r.rounds} live rounds, downtime ${r.downtimeMs.toFixed(1)} ms\n`,
    );
  },
  async "pool-list"(c, args) {
    argsOf(args, {}, "pool-list");
    const rows = await c.request<Array<{ host: string; url: string; self: boolean; silentMs: number }>>("pool.members");
    let s = "Host                 URL                            Heard(ms)\n";
    for (const m of rows)
      s += `${`${m.host}${m.self ? " *" : ""}`.padEnd(20)} ${m.url.padEnd(30)} ${m.self ? "-" : String(m.silentMs)}\n`;
    out(s);
  },
  destroy: oneDomain("destroy", "domain.destroy"),
  pause: oneDomain("pause", "domain.pause"),
  unpause: oneDomain("unpause", "domain.unpause"),
  async shutdown(c, args) {
    const { values, positionals } = argsOf(args, { w: { type: "boolean" }, F: { type: "boolean" } }, "shutdown");
    if (positionals.length !== 1) usageError("shutdown", "xl shutdown: give one domain");
    const domid = await c.request<number>("domain.domid", { dom: positionals[0] });
    await c.request("domain.shutdown", { dom: domid });
    // -w: wait until it is gone (or shut down and preserved), as xl does.
    while (values.w) {
      const rows = await c.request<DomainListEntry[]>("domain.list").then((l) => l.filter((d) => d.domid === domid));
      if (rows.length === 0 || rows[0]!.shutdown) break;
      await sleep(50);
    }
  },
  reboot: oneDomain("reboot", "domain.reboot"),
  async console(c, args) {
    const { positionals } = argsOf(args, { t: { type: "string" }, n: { type: "string" } }, "console");
    if (positionals.length !== 1) usageError("console", "xl console: give one domain");
    await attachConsole(c, positionals[0]!);
  },
  async "vcpu-list"(c, args) {
    const { positionals } = argsOf(args, {}, "vcpu-list");
    const rows = await c.request<VcpuListEntry[]>("vcpu.list", positionals.length === 0 ? {} : { doms: positionals });
    const info = await c.request<HostInfo>("host.info");
    out(formatVcpuList(rows, info.nrCpus));
  },
  async "vcpu-pin"(c, args) {
    const { positionals } = argsOf(args, { f: { type: "boolean" } }, "vcpu-pin");
    if (positionals.length < 3 || positionals.length > 4)
      usageError("vcpu-pin", "xl vcpu-pin: DOMAIN VCPU HARD [SOFT]");
    const [dom, v, hard, soft] = positionals as [string, string, string, string | undefined];
    const vcpu = v === "all" ? "all" : /^\d+$/.test(v) ? Number(v) : die(`xl: invalid vcpu '${v}'`, 2);
    await c.request("vcpu.pin", { dom, vcpu, hard, ...(soft !== undefined ? { soft } : {}) });
  },
  async "cpupool-create"(c, args) {
    const { values, positionals } = argsOf(args, { n: { type: "boolean" }, f: { type: "string" } }, "cpupool-create");
    const file = (values.f as string | undefined) ?? (positionals[0]?.includes("=") ? undefined : positionals.shift());
    let cfgText = "";
    if (file !== undefined) {
      try {
        cfgText = readFileSync(file, "utf8");
      } catch (e) {
        die(`Failed to read config file: ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
    }
    let name: string | undefined;
    let sched: string;
    let cpus: string[];
    try {
      const cfg = parseXlCfg(cfgText, file ?? "<command line>");
      for (const o of positionals) parseXlCfg(o, "<command line>", cfg);
      name = cfg.getString("name");
      sched = cfg.getString("sched") ?? "credit2";
      cpus = cfg.getStringList("cpus", true) ?? [];
    } catch (e) {
      if (e instanceof XlCfgError) die(`${e.message}\nFailed to parse config: Invalid argument`);
      throw e;
    }
    if (name === undefined) die("Missing cpupool name");
    if (values.n) {
      out(`${JSON.stringify({ name, sched, cpus })}\n`);
      return;
    }
    await c.request("cpupool.create", { name, sched, cpus });
  },
  async "cpupool-list"(c, args) {
    const { values, positionals } = argsOf(args, { c: { type: "boolean" }, cpus: { type: "boolean" } }, "cpupool-list");
    let rows = await c.request<CpupoolEntry[]>("cpupool.list");
    if (positionals[0] !== undefined) {
      rows = rows.filter((p) => p.name === positionals[0]);
      if (rows.length === 0) die(`cpupool ${positionals[0]} does not exist`);
    }
    out(formatCpupoolList(rows, values.c === true || values.cpus === true));
  },
  async "cpupool-destroy"(c, args) {
    const { positionals } = argsOf(args, {}, "cpupool-destroy");
    if (positionals.length !== 1) usageError("cpupool-destroy", "xl cpupool-destroy: give one cpupool");
    await c.request("cpupool.destroy", { pool: positionals[0] });
  },
  async "cpupool-cpu-add"(c, args) {
    const { positionals } = argsOf(args, {}, "cpupool-cpu-add");
    if (positionals.length !== 2) usageError("cpupool-cpu-add", "xl cpupool-cpu-add: POOL CPULIST");
    await c.request("cpupool.cpu_add", { pool: positionals[0], cpus: positionals[1] });
  },
  async "cpupool-cpu-remove"(c, args) {
    const { positionals } = argsOf(args, {}, "cpupool-cpu-remove");
    if (positionals.length !== 2) usageError("cpupool-cpu-remove", "xl cpupool-cpu-remove: POOL CPULIST");
    await c.request("cpupool.cpu_remove", { pool: positionals[0], cpus: positionals[1] });
  },
  async "cpupool-migrate"(c, args) {
    const { positionals } = argsOf(args, {}, "cpupool-migrate");
    if (positionals.length !== 2) usageError("cpupool-migrate", "xl cpupool-migrate: DOMAIN POOL");
    await c.request("cpupool.migrate", { dom: positionals[0], pool: positionals[1] });
  },
  async "sched-credit2"(c, args) {
    const { values } = argsOf(
      args,
      {
        d: { type: "string" },
        w: { type: "string" },
        c: { type: "string" },
        s: { type: "boolean" },
        p: { type: "string" },
        r: { type: "string" },
      },
      "sched-credit2",
    );
    const weight = intArg(values.w, "weight");
    const cap = intArg(values.c, "cap");
    if (values.d !== undefined && (weight !== undefined || cap !== undefined)) {
      await c.request("sched.credit2.set", {
        dom: values.d,
        ...(weight !== undefined ? { weight } : {}),
        ...(cap !== undefined ? { cap } : {}),
      });
      return;
    }
    if (weight !== undefined || cap !== undefined)
      usageError("sched-credit2", "xl sched-credit2: -w/-c need -d DOMAIN");
    const rows = await c.request<DomainSchedEntry[]>(
      "sched.credit2.get",
      values.d === undefined ? {} : { dom: values.d as string },
    );
    const shown = values.p === undefined ? rows : rows.filter((r) => r.pool === values.p);
    out(formatCredit2(shown, new Map()));
  },
  async "sched-rtds"(c, args) {
    const { values } = argsOf(
      args,
      {
        d: { type: "string" },
        v: { type: "string" },
        p: { type: "string" },
        b: { type: "string" },
        e: { type: "string" },
        c: { type: "string" },
      },
      "sched-rtds",
    );
    const period = intArg(values.p, "period");
    const budget = intArg(values.b, "budget");
    const extra = intArg(values.e, "extratime");
    const vcpu = values.v === undefined ? undefined : values.v === "all" ? "all" : (intArg(values.v, "vcpu") as number);
    if (period !== undefined || budget !== undefined || extra !== undefined) {
      if (values.d === undefined) usageError("sched-rtds", "xl sched-rtds: -p/-b/-e need -d DOMAIN");
      await c.request("sched.rtds.set", {
        dom: values.d,
        ...(vcpu !== undefined ? { vcpu } : {}),
        ...(period !== undefined ? { period } : {}),
        ...(budget !== undefined ? { budget } : {}),
        ...(extra !== undefined ? { extratime: extra !== 0 } : {}),
      });
      return;
    }
    const rows = await c.request<DomainSchedEntry[]>("sched.rtds.get", values.d === undefined ? {} : { dom: values.d });
    const shown = values.c === undefined ? rows : rows.filter((r) => r.pool === values.c);
    out(formatRtds(shown, vcpu !== undefined));
  },
  async info(c) {
    out(formatInfo(await c.request<HostInfo>("host.info")));
  },
  async dmesg(c, args) {
    const { values } = argsOf(args, { c: { type: "boolean" } }, "dmesg");
    out(await c.request<string>("host.dmesg", { clear: values.c === true }));
  },
  async domid(c, args) {
    const { positionals } = argsOf(args, {}, "domid");
    if (positionals.length !== 1) usageError("domid", "xl domid: give one domain name");
    out(`${await c.request<number>("domain.domid", { dom: positionals[0] })}\n`);
  },
  async domname(c, args) {
    const { positionals } = argsOf(args, {}, "domname");
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0]!)) usageError("domname", "xl domname: give one domid");
    const rows = await c.request<DomainListEntry[]>("domain.list", { dom: Number(positionals[0]) });
    out(`${rows[0]?.name ?? ""}\n`);
  },
  async top(c, args) {
    const { values } = argsOf(
      args,
      {
        d: { type: "string" },
        delay: { type: "string" },
        b: { type: "boolean" },
        batch: { type: "boolean" },
        i: { type: "string" },
        iterations: { type: "string" },
        once: { type: "boolean" },
      },
      "top",
    );
    const delayS = Number(values.d ?? values.delay ?? "1");
    if (!(delayS > 0)) usageError("top", "xl top: bad delay");
    const batch = values.b === true || values.batch === true || values.once === true;
    const iterations = values.once
      ? 1
      : (intArg(values.i ?? values.iterations, "iterations") ?? (batch ? 1 : Infinity));
    let prev: Map<number, number> | null = null;
    let prevAt = 0;
    // One short sample first, so the first frame already has a CPU(%).
    const first = await c.request<DomainListEntry[]>("domain.list");
    prev = new Map(first.map((d) => [d.domid, d.cpuTimeNs]));
    prevAt = performance.now();
    await sleep(Math.min(delayS * 1000, 500));
    for (let n = 0; n < iterations; n++) {
      const rows = await c.request<DomainListEntry[]>("domain.list");
      const info = await c.request<HostInfo>("host.info");
      const now = performance.now();
      const frame = formatTop(rows, prev, (now - prevAt) / 1000, info);
      out(batch ? `${frame}\n` : `\x1b[H\x1b[2J${frame}`);
      prev = new Map(rows.map((d) => [d.domid, d.cpuTimeNs]));
      prevAt = now;
      if (n + 1 < iterations) await sleep(delayS * 1000);
    }
  },
};

function oneDomain(cmd: string, op: string): Verb {
  return async (c, args) => {
    const { positionals } = argsOf(
      args,
      { F: { type: "boolean" }, w: { type: "boolean" }, f: { type: "boolean" } },
      cmd,
    );
    if (positionals.length !== 1) usageError(cmd, `xl ${cmd}: give one domain`);
    await c.request(op, { dom: positionals[0] });
  };
}

/** Streams a domain's console to stdout until it is gone (or Ctrl-] on a terminal). */
async function attachConsole(c: MgmtClient, dom: string | number): Promise<void> {
  const stdin = process.stdin;
  let restore = () => {};
  if (stdin.isTTY) {
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on("data", (b: Buffer) => {
      if (b.includes(0x1d)) {
        restore();
        c.close();
      }
    });
    restore = () => {
      stdin.setRawMode(false);
      stdin.pause();
    };
  }
  try {
    await c.stream("domain.console", { dom }, { data: (bytes) => process.stdout.write(bytes) });
  } finally {
    restore();
  }
}

export async function main(argv: string[]): Promise<void> {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
  }
  let args = argv;
  let url = process.env.XENON_HOST;
  while (args[0] === "-H" || args[0]?.startsWith("--host=") || args[0] === "--host") {
    if (args[0].startsWith("--host=")) {
      url = args[0].slice(7);
      args = args.slice(1);
    } else {
      url = args[1];
      args = args.slice(2);
    }
  }
  const [cmd, ...rest] = args;
  if (cmd === undefined || cmd === "help" || cmd === "-h" || cmd === "--help") {
    process.stdout.write(`${USAGE}\n`);
    if (cmd === undefined) process.exitCode = 2;
    return;
  }
  const verb = Object.hasOwn(VERBS, cmd) ? VERBS[cmd] : undefined;
  if (verb === undefined) {
    process.stderr.write(`command not implemented: ${cmd}\n`);
    process.exitCode = 2;
    return;
  }
  let client: MgmtClient | null = null;
  try {
    if (url === undefined || url === "")
      die("xl: no host given: set XENON_HOST (printed by `xenon host`) or use -H URL");
    client = await MgmtClient.connect(url);
    await verb(client, rest);
    process.exitCode = 0;
  } catch (e) {
    if (e instanceof XlExit) {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = e.status;
    } else if (e instanceof MgmtError) {
      process.stderr.write(`${hostFailure(e)}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`xl: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  } finally {
    client?.close();
  }
}
