/**
 * `xenon host`: start a host with cpupools from flags, print where `xl` and the xenstore tools
 * reach it (shell assignments: XENON_HOST=…, XENSTORED_PATH=…), serve until SIGINT/SIGTERM, then
 * shut down cleanly. `serveUntilSignal` is shared with `xenon boot --serve`.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { VirtualSwitch } from "@xenon/backends";
import type { SchedName, TimeMode } from "@xenon/hypervisor";
import type { BootPlan } from "../boot/dom0less.js";
import { XenonHost } from "../host/host.js";
import { parseCpuList } from "../libxl/cpulist.js";
import { type BuiltSystem, buildSystem, launchBackends, type PoolSpec } from "../run/system.js";

export const HOST_USAGE = `  xenon host [--pcpus N] [--sched credit2|rtds|null] [--cpupool NAME:SCHED:CPULIST]... [--memory MiB]
             [--listen HOST[:PORT]] [--port PORT] [--xenstore-socket PATH] [--deterministic] [--console]
             [--pool-secret-file F [--join HOST:PORT] [--name NAME] [--heartbeat-ms MS]]
                                              a host that stays up for xl; prints XENON_HOST=URL and
                                              XENSTORED_PATH=PATH; SIGINT/SIGTERM shut it down;
                                              --console prints every domain's console as "(name) line";
                                              --pool-secret-file makes it a pool member (links to other
                                              hosts authenticated by the secret), --join joins the pool
                                              of the host at HOST:PORT`;

const SCHEDS = new Set(["credit2", "rtds", "null"]);

export class HostArgError extends Error {}

/** `--cpupool` specs (or one Pool-0 of `pcpus` pCPUs) -> pool specs; pCPU ids 0..pcpus-1. */
export function poolsFromFlags(pcpus: number, sched: string, specs: readonly string[]): PoolSpec[] {
  if (!Number.isInteger(pcpus) || pcpus < 1 || pcpus > 64)
    throw new HostArgError(`--pcpus ${pcpus}: out of range 1..64`);
  if (!SCHEDS.has(sched)) throw new HostArgError(`unknown scheduler '${sched}'`);
  const pcpu = (id: number) => ({ id, cls: "big", speed: 1024 });
  if (specs.length === 0)
    return [{ name: "Pool-0", scheduler: sched as SchedName, pcpus: Array.from({ length: pcpus }, (_, i) => pcpu(i)) }];
  const used = new Set<number>();
  const pools: PoolSpec[] = [];
  for (const s of specs) {
    const m = /^([A-Za-z0-9_.-]+):([a-z0-9]+):(.+)$/.exec(s);
    if (m === null) throw new HostArgError(`--cpupool '${s}' is not NAME:SCHED:CPULIST`);
    const [, name, sch, list] = m as unknown as [string, string, string, string];
    if (!SCHEDS.has(sch)) throw new HostArgError(`--cpupool ${name}: unknown scheduler '${sch}'`);
    if (pools.some((p) => p.name === name)) throw new HostArgError(`--cpupool ${name}: named twice`);
    let ids: number[];
    try {
      ids = parseCpuList(list, pcpus);
    } catch (e) {
      throw new HostArgError(`--cpupool ${name}: ${(e as Error).message}`);
    }
    if (ids.length === 0) throw new HostArgError(`--cpupool ${name}: no cpus`);
    for (const id of ids) {
      if (used.has(id)) throw new HostArgError(`--cpupool ${name}: cpu ${id} is already in another pool`);
      used.add(id);
    }
    pools.push({ name, scheduler: sch as SchedName, pcpus: ids.map(pcpu) });
  }
  // The Machine knows only pCPUs that are in a pool: every one must be placed somewhere.
  for (let id = 0; id < pcpus; id++)
    if (!used.has(id)) throw new HostArgError(`cpu ${id} is in no --cpupool (give each of the ${pcpus} pCPUs a pool)`);
  return pools;
}

/** `--listen` as HOST or HOST:PORT ([v6]:PORT); an explicit --port wins over the one in ADDR. */
export function parseListen(addr: string): { host: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr) ?? /^([^:]+)(?::(\d+))?$/.exec(addr);
  if (m === null) return { host: addr };
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && port > 65535) throw new HostArgError(`--listen ${addr}: not a port number`);
  return { host: m[1]!, ...(port !== undefined ? { port } : {}) };
}

/** The pool secret: the file's bytes without a trailing newline; short secrets are refused. */
export function readPoolSecret(file: string): Uint8Array {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch (e) {
    throw new HostArgError(`--pool-secret-file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let n = b.length;
  while (n > 0 && (b[n - 1] === 0x0a || b[n - 1] === 0x0d)) n--;
  if (n < 16) throw new HostArgError(`--pool-secret-file ${file}: the secret must be at least 16 bytes`);
  return new Uint8Array(b.subarray(0, n));
}

/**
 * Prints the host's addresses and serves until a signal (or until `done` settles); resolves once
 * it is shut down.
 */
export async function serveUntilSignal(host: XenonHost, done?: Promise<unknown>): Promise<void> {
  process.stdout.write(`XENON_HOST=${host.url}\nXENSTORED_PATH=${host.xenstorePath}\n`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string | null) => {
      if (sig !== null) process.stderr.write(`xenon: ${sig}: shutting the host down\n`);
      process.off("SIGINT", onInt);
      process.off("SIGTERM", onTerm);
      resolve();
    };
    const onInt = () => stop("SIGINT");
    const onTerm = () => stop("SIGTERM");
    process.on("SIGINT", onInt);
    process.on("SIGTERM", onTerm);
    void done?.then(() => stop(null));
  });
  await host.close();
}

export async function cmdHost(args: string[]): Promise<number> {
  let values: ReturnType<typeof parse>["values"];
  try {
    values = parse(args).values;
  } catch (e) {
    process.stderr.write(`xenon: host: ${(e as Error).message}\n${HOST_USAGE}\n`);
    return 2;
  }
  try {
    const pools = poolsFromFlags(Number(values.pcpus), values.sched, values.cpupool);
    const mem = Number(values.memory);
    if (!Number.isInteger(mem) || mem < 16 || mem > 64 * 1024)
      throw new HostArgError(`--memory ${values.memory}: out of range 16..65536 MiB`);
    const listen = values.listen === undefined ? undefined : parseListen(values.listen);
    const port = values.port === undefined ? listen?.port : Number(values.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
      throw new HostArgError(`--port ${values.port}: not a port number`);
    const secretFile = values["pool-secret-file"];
    if (secretFile === undefined && (values.join !== undefined || values.name !== undefined))
      throw new HostArgError("--join and --name need --pool-secret-file");
    const hb = values["heartbeat-ms"] === undefined ? undefined : Number(values["heartbeat-ms"]);
    if (hb !== undefined && (!Number.isInteger(hb) || hb < 10 || hb > 60_000))
      throw new HostArgError(`--heartbeat-ms ${values["heartbeat-ms"]}: out of range 10..60000`);
    const pool =
      secretFile === undefined
        ? undefined
        : {
            secret: readPoolSecret(secretFile),
            ...(values.name !== undefined ? { name: values.name } : {}),
            ...(values.join !== undefined ? { join: values.join } : {}),
            ...(hb !== undefined ? { heartbeatMs: hb } : {}),
          };
    const host = await XenonHost.start({
      pools,
      hostMemoryMiB: mem,
      timeMode: values.deterministic ? "instructions" : "host",
      ...(listen !== undefined ? { listenHost: listen.host } : {}),
      ...(pool !== undefined ? { pool } : {}),
      ...(port !== undefined ? { port } : {}),
      ...(values["xenstore-socket"] !== undefined ? { xenstoreSocket: values["xenstore-socket"] } : {}),
      ...(values.console ? { console: linePrinter() } : {}),
    });
    await serveUntilSignal(host);
    return 0;
  } catch (e) {
    process.stderr.write(`xenon: host: ${(e as Error).message}\n`);
    return 1;
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    options: {
      pcpus: { type: "string", default: "2" },
      sched: { type: "string", default: "credit2" },
      cpupool: { type: "string", multiple: true, default: [] },
      memory: { type: "string", default: "1024" },
      listen: { type: "string" },
      port: { type: "string" },
      "xenstore-socket": { type: "string" },
      deterministic: { type: "boolean", default: false },
      console: { type: "boolean", default: false },
      "pool-secret-file": { type: "string" },
      join: { type: "string" },
      name: { type: "string" },
      "heartbeat-ms": { type: "string" },
    },
    allowPositionals: false,
    strict: true,
  });
}

/**
 * `xenon boot SYSTEM.dtb --serve`: builds the tree's system as `xenon boot` does, then serves it
 * like `xenon host` (its domains listed by name, consoles still printed as "(name) line") until
 * a signal — or, with `untilDone`, until every domain of the tree has shut down (status 0 when all
 * powered off, 1 otherwise, as `xenon boot`). Returns the exit status.
 */
export async function serveBootPlan(
  plan: BootPlan,
  opts: { timeMode: TimeMode; xenstoreSocket?: string; untilDone?: boolean },
): Promise<number> {
  const built = buildSystem({
    domains: plan.domains,
    pools: plan.pools,
    evtchns: plan.evtchns,
    driverDomains: plan.driverDomains,
    ...(plan.dom0 !== undefined ? { dom0: plan.dom0 } : {}),
    virtio: plan.virtio,
    hostDevices: plan.hostDevices,
    hostRam: plan.hostRam,
    ...(plan.staticHeap !== undefined ? { staticHeap: plan.staticHeap } : {}),
    specCtrl: plan.xenCmdline.specCtrl,
    commandLine: { line: plan.xenBootargs, parsed: plan.xenCmdline },
    timeMode: opts.timeMode,
    console: () => {},
  });
  const print = linePrinter();
  // The host's one switch: the tree's vifs and, later, xl-created ones.
  const vswitch = new VirtualSwitch({});
  const xsDomid = Math.max(0, ...built.domids, ...built.virtio.map((o) => o.domid ?? 0)) + 1;
  let backends: Awaited<ReturnType<typeof launchBackends>> = [];
  let host: XenonHost;
  try {
    host = await XenonHost.serve(
      {
        hv: built.hv,
        machine: built.machine,
        pools: plan.pools.map((p, id) => ({ id, name: p.name })),
        domains: built.domids.map((domid, i) => ({ domid, name: plan.domains[i]!.name })),
        console: print,
        vswitch,
        // The host serves XenStore to every domain: the tree's driver domains get their devices'
        // nodes and connections, so they start once XenStore is up (its domid above theirs).
        ...(xsDomid < 0x7ff0 ? { xenstoreDomid: xsDomid } : {}), // below DOMID_FIRST_RESERVED
        start: async (xs) => {
          backends = await launchBackends(
            built.hv,
            built.virtio.map((o) => ({ ...o, xenstore: xs.driverDomains })),
            (name, line) => print(name, Buffer.from(`${line}\n`, "latin1")),
            vswitch,
          );
        },
        close: async () => {
          for (const b of backends) await b.close();
        },
      },
      opts.xenstoreSocket !== undefined ? { xenstoreSocket: opts.xenstoreSocket } : {},
    );
  } catch (e) {
    await built.machine.close();
    for (const b of backends) await b.close();
    throw e;
  }
  const done = opts.untilDone === true ? bootDomainsEnded(built.machine, built.domids) : undefined;
  await serveUntilSignal(host, done);
  if (done === undefined) return 0;
  const ends = built.machine.endings().filter((e) => built.domids.includes(e.domid));
  let status = ends.length === built.domids.length ? 0 : 1;
  for (const end of ends) {
    if (end.reason === 0) continue;
    status = 1;
    const why = end.reason < 0 ? `crashed: ${end.detail ?? "destroyed"}` : `shut down (reason ${end.reason})`;
    process.stderr.write(`xenon: domain ${end.domid} (${end.name}) ${why}\n`);
  }
  return status;
}

/** Resolves once every one of `domids` has shut down (the machine's record of endings). */
function bootDomainsEnded(machine: BuiltSystem["machine"], domids: readonly number[]): Promise<void> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      const ended = new Set(machine.endings().map((e) => e.domid));
      if (domids.every((d) => ended.has(d))) {
        clearInterval(timer);
        resolve();
      }
    }, 50);
  });
}

/** Console bytes -> "(name) line" on stdout, a partial line kept per domain until its newline. */
function linePrinter(): (name: string, bytes: Uint8Array) => void {
  const partial = new Map<string, string>();
  return (name, bytes) => {
    const lines = ((partial.get(name) ?? "") + Buffer.from(bytes).toString("latin1")).split("\n");
    partial.set(name, lines.pop() ?? "");
    for (const line of lines) process.stdout.write(`(${name}) ${line}\n`);
  };
}
