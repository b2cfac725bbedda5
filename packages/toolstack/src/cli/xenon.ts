import { readFileSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { BootTreeError, planFromFile } from "../boot/dom0less.js";
import { runLinuxUser } from "../run/linux_abi.js";
import {
  ConfigError,
  parseDomainSpec,
  parseStaticEvtchn,
  parseVirtio,
  runSystem,
  type SystemConfig,
  type SystemResult,
} from "../run/system.js";
import { cmdHost, HOST_USAGE, serveBootPlan } from "./host_cmd.js";
import { cmdXenstored } from "./xenstored_cmd.js";

/**
 * `xenon` — the host-side command: `run` for now (host and boot arrive with the boot issue).
 * Guest output is written with process.stdout/stderr.write so nothing is lost when the process
 * ends; the exit status is set, not forced.
 */
const USAGE = `usage:
  xenon run --linux-abi FILE.elf [ARG...]    a static RV32 Linux user program (write/exit syscalls)
  xenon run [OPTIONS] IMAGE[,key=value...]... guest images as domains 1, 2, ... under the core
      image keys: name, memory (MiB, default 4), weight, cap (credit2), period, budget (RTDS, µs);
                  any other key=value goes to the guest's /chosen/bootargs
      --evtchn A:P-B:Q       static event channel: port P of domain A <-> port Q of domain B
      --virtio-rng N         a virtio-rng device for domain N (backend in its own driver domain)
      --virtio-blk N:IMG[:ro] a virtio-blk device on raw image IMG for domain N (read-only with :ro)
      --virtio-net N[:MAC]   a virtio-net device for domain N on the host's switch (xenbr0); MAC default 00:16:3e:<domid>:<n>
      --virtio-shared        one driver domain for all virtio devices (default: one per device)
      --driver-domain-mode thread|process  driver domains in worker threads (default) or child processes
      --virtio-grant-usage 0|1  xl.cfg's grant_usage for every virtio device of the run: 1 (default) the
                             guest grants each page to an unprivileged driver domain (VirtIO-Grant);
                             0 no grants: guest-physical addresses, served by privileged (dom0-like)
                             driver domains that foreign-map the guest's memory
      --virtio-console N[:COLSxROWS] a virtio-console for domain N: its output joins the domain's console
                             lines, xenon's stdin is its input (the first one's)
      --pcpus N              pCPU worker threads (default 2)
      --sched credit2|rtds|null
      --deterministic        vCPU time from retired instructions
      --timeout SECONDS      give up after this long (exit status 124)
      --stats                timing on stderr
      --xenstore-socket PATH serve XenStore there (XENSTORED_PATH=PATH xenstore-ls); domains are introduced
      --xenstore             run XenStore (every domain gets its ring) without a socket
  xenon boot [--deterministic] [--timeout SECONDS] [--xenstore] [--xenstore-socket PATH]
             [--xen-bootargs 'OPTIONS'] [--serve [--until-done]] SYSTEM.dtb
                                              dom0less: cpupools, domains, static memory, event channels
                                              and shared memory from a dtc-compiled tree; exits when all
                                              domains shut down
      --xen-bootargs OPTS    added to the tree's xen,xen-bootargs (spec-ctrl=, dom0-cpuid=)
      --stats                timing and spec-ctrl counters on stderr
      --serve                then keep the host up for xl (prints XENON_HOST=, XENSTORED_PATH=)
      --until-done           with --serve: shut the host down once every domain of the tree has
                             shut down (exit status as without --serve)
  xenon xenstored --socket PATH              XenStore daemon on a Unix socket (XENSTORED_PATH for xenstore-*)
${HOST_USAGE}`;

const SHUTDOWN_NAMES = ["poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset"];

function fail(message: string, code = 2): never {
  process.stderr.write(`xenon: ${message}\n`);
  process.exit(code);
}

/**
 * parseArgs for subcommand `cmd`: `-h`/`--help` print the usage (status 0); an unknown option, a
 * missing value or a stray value is a usage error (status 2) naming it, never a stack trace.
 */
function parseCmdArgs<T extends ParseArgsConfig>(cmd: string, config: T): ReturnType<typeof parseArgs<T>> {
  const first = config.args?.[0];
  if (first === "-h" || first === "--help") {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  try {
    return parseArgs(config);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
      fail(`${cmd}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, "")}\n${USAGE}`);
    throw e;
  }
}

function cmdRunLinux(positionals: string[], stats: boolean): void {
  const file = positionals[0];
  if (file === undefined) fail(`run: no program given\n${USAGE}`);
  let elf: Uint8Array;
  try {
    elf = readFileSync(file);
  } catch (e) {
    fail(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, 1);
  }
  const t0 = performance.now();
  try {
    const r = runLinuxUser(elf, {
      argv: [file, ...positionals.slice(1)],
      write: (fd, bytes) => (fd === 1 ? process.stdout : process.stderr).write(bytes),
    });
    if (r.fault) process.stderr.write(`xenon: guest killed: ${r.fault}\n`);
    if (stats) {
      const ms = performance.now() - t0;
      process.stderr.write(
        `xenon: ${r.instructions} instructions in ${ms.toFixed(1)} ms (${(r.instructions / ms / 1000).toFixed(1)} MIPS)\n`,
      );
    }
    process.exitCode = r.status;
  } catch (e) {
    fail(`${file}: ${(e as Error).message}`, 1);
  }
}

async function cmdRun(args: string[]): Promise<void> {
  const { values, positionals } = parseCmdArgs("run", {
    args,
    options: {
      "linux-abi": { type: "boolean", default: false },
      evtchn: { type: "string", multiple: true, default: [] },
      "virtio-rng": { type: "string", multiple: true, default: [] },
      "virtio-blk": { type: "string", multiple: true, default: [] },
      "virtio-net": { type: "string", multiple: true, default: [] },
      "virtio-shared": { type: "boolean", default: false },
      "driver-domain-mode": { type: "string", default: "thread" },
      "virtio-grant-usage": { type: "string", default: "1" },
      "virtio-console": { type: "string", multiple: true, default: [] },
      pcpus: { type: "string", default: "2" },
      sched: { type: "string", default: "credit2" },
      deterministic: { type: "boolean", default: false },
      timeout: { type: "string" },
      stats: { type: "boolean", default: false },
      "xenstore-socket": { type: "string" },
      xenstore: { type: "boolean", default: false },
    },
    allowPositionals: true,
    strict: true,
  });
  if (values["linux-abi"]) return cmdRunLinux(positionals, values.stats);
  if (positionals.length === 0) fail(`run: no image given\n${USAGE}`);
  const sched = values.sched;
  if (sched !== "credit2" && sched !== "rtds" && sched !== "null") fail(`run: unknown scheduler '${sched}'`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) fail(`run: bad --timeout '${values.timeout}'`);
  const ddMode = values["driver-domain-mode"];
  if (ddMode !== "thread" && ddMode !== "process") fail(`run: unknown driver domain mode '${ddMode}'`);
  const grantUsage = values["virtio-grant-usage"];
  if (grantUsage !== "0" && grantUsage !== "1") fail(`run: --virtio-grant-usage '${grantUsage}' is neither 0 nor 1`);
  const grants = grantUsage === "1" ? {} : { grants: false };
  try {
    const result = await runSystem({
      virtioShared: values["virtio-shared"],
      driverDomainMode: ddMode,
      domains: positionals.map((p, i) => parseDomainSpec(p, i)),
      evtchns: values.evtchn.map(parseStaticEvtchn),
      virtio: [
        ...values["virtio-rng"].map((v) => parseVirtio("rng", v)),
        ...values["virtio-blk"].map((v) => parseVirtio("blk", v)),
        ...values["virtio-console"].map((v) => parseVirtio("console", v)),
        ...values["virtio-net"].map((v) => parseVirtio("net", v)),
      ].map((a) => ({ ...a, ...grants })),
      ...(values["virtio-console"].length > 0 ? { consoleInput: process.stdin } : {}),
      pcpus: Number(values.pcpus),
      scheduler: sched,
      timeMode: values.deterministic ? "instructions" : "host",
      console: (name, line) => process.stdout.write(`(${name}) ${line}\n`),
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      ...xenstoreOption(values["xenstore-socket"], values.xenstore),
    });
    report(result, timeout, values.stats);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 1);
    fail(String((e as Error).stack ?? e), 70);
  }
}

/**
 * --xenstore-socket PATH: serve XenStore there for the run and say where (stderr); --xenstore:
 * XenStore with guest rings only. xenstored's log goes to stderr.
 */
function xenstoreOption(
  path: string | undefined,
  rings: boolean,
): Pick<SystemConfig, "xenstoreSocket" | "xenstore" | "onXenstore" | "xenstoreLog"> {
  if (path === undefined && !rings) return {};
  const log = (line: string) => process.stderr.write(`${line}\n`);
  if (path === undefined) return { xenstore: true, xenstoreLog: log };
  return {
    xenstoreSocket: path,
    xenstoreLog: log,
    onXenstore: (p) => process.stderr.write(`xenon: xenstored listening on ${p}\n`),
  };
}

/** Exit status: 0 when every domain powered off, 1 otherwise, 124 on timeout. */
function report(result: SystemResult, timeout: number | undefined, stats: boolean): void {
  if (result.timedOut) {
    process.stderr.write(`xenon: timed out after ${timeout} s\n`);
    process.exitCode = 124;
    return;
  }
  let status = 0;
  for (const end of result.ends) {
    if (end.reason === 0) continue;
    status = 1;
    const why =
      end.reason < 0 ? `crashed by the core: ${end.detail}` : `shut down (${SHUTDOWN_NAMES[end.reason] ?? end.reason})`;
    process.stderr.write(`xenon: domain ${end.domid} (${end.name}) ${why}\n`);
  }
  if (stats) process.stderr.write(`xenon: ${result.ends.length} domain(s) in ${result.ms.toFixed(1)} ms\n`);
  if (stats && result.specCtrl !== undefined) {
    const c = result.specCtrl;
    process.stderr.write(
      `xenon: spec-ctrl: ${c.domainSwitches} domain switches, ${c.specCtrlWrites} SPEC_CTRL writes, ${c.predictorFlushes} predictor flushes\n`,
    );
  }
  process.exitCode = status;
}

async function cmdBoot(args: string[]): Promise<void> {
  const { values, positionals } = parseCmdArgs("boot", {
    args,
    options: {
      deterministic: { type: "boolean", default: false },
      timeout: { type: "string" },
      stats: { type: "boolean", default: false },
      "xenstore-socket": { type: "string" },
      xenstore: { type: "boolean", default: false },
      serve: { type: "boolean", default: false },
      "until-done": { type: "boolean", default: false },
      "xen-bootargs": { type: "string", default: "" },
    },
    allowPositionals: true,
    strict: true,
  });
  const dtb = positionals[0];
  if (dtb === undefined || positionals.length > 1) fail(`boot: give exactly one device tree\n${USAGE}`);
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(timeout > 0)) fail(`boot: bad --timeout '${values.timeout}'`);
  try {
    const plan = planFromFile(dtb, values["xen-bootargs"]);
    if (values["until-done"] && !values.serve) fail("boot: --until-done needs --serve");
    if (values.serve) {
      process.exitCode = await serveBootPlan(plan, {
        timeMode: values.deterministic ? "instructions" : "host",
        untilDone: values["until-done"],
        ...(values["xenstore-socket"] !== undefined ? { xenstoreSocket: values["xenstore-socket"] } : {}),
      });
      return;
    }
    const result = await runSystem({
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
      timeMode: values.deterministic ? "instructions" : "host",
      console: (name, line) => process.stdout.write(`(${name}) ${line}\n`),
      ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
      ...xenstoreOption(values["xenstore-socket"], values.xenstore),
    });
    report(result, timeout, values.stats);
  } catch (e) {
    if (e instanceof BootTreeError || e instanceof ConfigError) fail(`boot: ${e.message}`, 1);
    if ((e as Error).name === "FdtError") fail(`boot: ${dtb}: ${(e as Error).message}`, 1);
    fail(String((e as Error).stack ?? e), 70);
  }
}

export async function main(argv: string[]): Promise<void> {
  // A closed pipe (`xenon run ... | head`) ends the command quietly, as for any Unix tool.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(0);
      throw e;
    });
  }
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case "run":
      await cmdRun(rest);
      return;
    case "boot":
      await cmdBoot(rest);
      return;
    case "xenstored":
      process.exitCode = await cmdXenstored(rest);
      return;
    case "host":
      process.exitCode = await cmdHost(rest);
      return;
    case undefined:
    case "help":
    case "-h":
    case "--help":
      process.stdout.write(`${USAGE}\n`);
      return;
    default:
      fail(`unknown command '${cmd}'\n${USAGE}`);
  }
}
