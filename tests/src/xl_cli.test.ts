import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { guestImagePath } from "@xenon/guests";
import { type ProcessResult, runProcess, XENON_BIN } from "./helpers/run.js";

/**
 * `xenon host` as its own process, driven by real `xl` processes through the management
 * endpoint: create from xl.cfg files with built guest images, list, console, pause/unpause,
 * vcpu-list/-pin, scheduler parameters, cpupools, destroy; bad configs refused with a clear
 * message while the host keeps running; a clean shutdown on SIGTERM.
 */
const XL_BIN = fileURLToPath(new URL("../../packages/toolstack/bin/xl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "xl-cli-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let host: ChildProcess;
let url = "";
let xsPath = "";
/** The host's stdout: its addresses, then (--console) every domain's console lines. */
let hostOut = "";

function xl(
  args: readonly string[],
  env: Record<string, string | undefined> = { XENON_HOST: url },
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [XL_BIN, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, XENON_HOST: undefined, ...env },
      timeout: 30_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.on("close", (status, signal) =>
      resolve({ status, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err), ms: performance.now() - t0 }),
    );
  });
}

async function ok(args: readonly string[]): Promise<string> {
  const r = await xl(args);
  assert.equal(r.status, 0, `xl ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

function cfg(name: string, text: string): string {
  const file = join(dir, `${name}.cfg`);
  writeFileSync(file, text);
  return file;
}

/** The xl list row of a domain: its state letters, or undefined when it is not listed. */
async function state(name: string): Promise<string | undefined> {
  const row = (await ok(["list"])).split("\n").find((l) => l.startsWith(`${name} `));
  return row?.trim().split(/\s+/)[4];
}

describe("xl against a running xenon host", () => {
  before(async () => {
    host = spawn(process.execPath, [XENON_BIN, "host", "--pcpus", "2", "--memory", "256", "--console"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    host.stdout!.on("data", (b: Buffer) => {
      hostOut += b.toString();
    });
    for (let i = 0; i < 400 && !/XENSTORED_PATH=.*\n/.test(hostOut); i++) await sleep(25);
    url = /XENON_HOST=(\S+)/.exec(hostOut)?.[1] ?? "";
    xsPath = /XENSTORED_PATH=(\S+)/.exec(hostOut)?.[1] ?? "";
    assert.match(url, /^ws:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]{32}$/);
  });

  after(async () => {
    if (host.exitCode !== null) return;
    const exited = new Promise<number | null>((r) => host.once("exit", (code) => r(code)));
    host.kill("SIGTERM");
    assert.equal(await exited, 0, "a clean shutdown");
    assert.equal(existsSync(xsPath), false, "its XenStore socket is gone");
  });

  it("xl list: xl's header, Domain-0 and the XenStore domain", async () => {
    const out = await ok(["list"]);
    const lines = out.split("\n");
    assert.equal(lines[0], "Name                                        ID   Mem VCPUs\tState\tTime(s)");
    assert.match(lines[1]!, /^Domain-0 +0 +0 +1 +[r-][b-]-{4} +\d+\.\d$/);
    assert.match(out, /^Xenstore +1 /m);
  });

  it("create hello.elf from an xl.cfg; xl console shows its output and ends when it is destroyed", async () => {
    const file = cfg("hello", `name = "hi"\nkernel = "hello.elf"\nmemory = 4\non_poweroff = "preserve"\n`);
    const c = await xl(["create", file]);
    assert.equal(c.status, 0, c.stderr.toString());
    assert.match(c.stderr.toString(), /^Parsing config from .*hello\.cfg$/m);
    const con = xl(["console", "hi"]);
    for (let i = 0; i < 100 && (await state("hi")) !== "---s--"; i++) await sleep(20);
    assert.equal(await state("hi"), "---s--", "powered off, preserved");
    await ok(["destroy", "hi"]);
    const r = await con;
    assert.equal(r.status, 0, r.stderr.toString());
    assert.match(r.stdout.toString(), /^Hello from Xenon guest, vCPU 0$/m);
    assert.match(hostOut, /^\(hi\) Hello from Xenon guest, vCPU 0$/m, "xenon host --console prints it too");
    assert.equal(await state("hi"), undefined);
  });

  it("a spinning guest: pause and unpause, vcpu-list and vcpu-pin, credit2 weight, destroy", async () => {
    const file = cfg(
      "spin",
      `name = "sp"\nkernel = "${guestImagePath("spin")}"\nmemory = 4\ncpu_weight = 512\ncmdline = "name=sp report=100000000 total=0"\n`,
    );
    await ok(["create", "-q", file]);
    assert.match((await state("sp")) ?? "", /^[rb-]{2}-{4}$/);
    await ok(["pause", "sp"]);
    assert.equal((await state("sp"))?.[2], "p");
    await ok(["unpause", "sp"]);
    assert.equal((await state("sp"))?.[2], "-");
    await ok(["vcpu-pin", "sp", "0", "1"]);
    const vl = await ok(["vcpu-list", "sp"]);
    assert.match(vl.split("\n")[0]!, /^Name +ID +VCPU +CPU +State +Time\(s\) Affinity \(Hard \/ Soft\)$/);
    assert.match(vl, /^sp +\d+ +0 +[-1] +[r-][b-]- +\d+\.\d +1 \/ all$/m);
    const s = await ok(["sched-credit2", "-d", "sp"]);
    assert.match(s, /^sp +\d+ +512 +0$/m);
    await ok(["sched-credit2", "-d", "sp", "-w", "128"]);
    assert.match(await ok(["sched-credit2"]), /^sp +\d+ +128 +0$/m);
    const top = await ok(["top", "--once"]);
    assert.match(top, /NAME +STATE +CPU\(sec\) CPU\(%\)/);
    assert.match(top, / sp r/);
    await ok(["shutdown", "-w", "sp"]);
    assert.equal(await state("sp"), undefined, "on_poweroff=destroy: gone once shut down");
  });

  it("cpupools: take a pCPU from Pool-0, make an RTDS pool of it, move a domain there and back", async () => {
    const file = cfg("mv", `name = "mv"\nkernel = "spin"\nmemory = 4\ncmdline = "name=mv report=100000000 total=0"\n`);
    await ok(["create", "-q", file]);
    await ok(["cpupool-cpu-remove", "Pool-0", "1"]);
    await ok(["cpupool-create", 'name="rt"', 'sched="rtds"', 'cpus="1"']);
    const pl = await ok(["cpupool-list"]);
    assert.match(pl, /^Pool-0 +1 +credit2 +y +\d+$/m);
    assert.match(pl, /^rt +1 +rtds +y +0$/m);
    await ok(["cpupool-migrate", "mv", "rt"]);
    await ok(["sched-rtds", "-d", "mv", "-p", "20000", "-b", "5000"]);
    assert.match(await ok(["sched-rtds"]), /^mv +\d+ +20000 +5000 +no$/m);
    assert.match(await ok(["cpupool-list"]), /^rt +1 +rtds +y +1$/m);
    const busy = await xl(["cpupool-destroy", "rt"]);
    assert.equal(busy.status, 1);
    assert.match(busy.stderr.toString(), /^libxl: error: cpupool rt still has 1 domain\(s\)$/m);
    await ok(["cpupool-migrate", "mv", "Pool-0"]);
    await ok(["cpupool-destroy", "rt"]);
    await ok(["cpupool-cpu-add", "Pool-0", "1"]);
    assert.match(await ok(["cpupool-list", "-c"]), /^Pool-0 +0-1$/m);
    await ok(["destroy", "mv"]);
  });

  it("bad configs and bad requests are refused with xl's messages; the host keeps running", async () => {
    const syntax = cfg("syntax", `name = "x"\nkernel = [ "a" "b" ]\n`);
    let r = await xl(["create", syntax]);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr.toString(),
      /syntax\.cfg:2: config parsing error near `"b"': missing comma between list elements\nFailed to parse config: Invalid argument/,
    );
    r = await xl(["create", cfg("nokernel", `name = "x"\nkernel = "nope.elf"\n`)]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /^libxl: error: kernel 'nope\.elf': not found/m);
    r = await xl(["create", cfg("nopool", `name = "x"\nkernel = "hello"\npool = "none"\n`)]);
    assert.match(r.stderr.toString(), /^libxl: error: cpupool 'none' does not exist$/m);
    r = await xl(["create", cfg("badmem", `name = "x"\nkernel = "hello"\nmemory = "lots"\n`)]);
    assert.match(r.stderr.toString(), /badmem\.cfg:3: parameter `memory' is not a valid number/);
    r = await xl(["create", "-n", cfg("dry", `name = "dry"\nkernel = "hello"\nvcpus = 2\n`)]);
    assert.equal(r.status, 0);
    assert.equal(JSON.parse(r.stdout.toString()).maxvcpus, 2, "a dry run prints the config");
    r = await xl(["create", join(dir, "missing.cfg")]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /Failed to read config file: .*missing\.cfg: ENOENT/);
    r = await xl(["pause", "nosuch"]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.toString(), "nosuch is an invalid domain identifier (rc=-6)\n");
    r = await xl(["frobnicate"]);
    assert.equal(r.status, 2);
    r = await xl(["list"], { XENON_HOST: undefined });
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /no host given: set XENON_HOST/);
    r = await xl(["-H", "ws://127.0.0.1:1", "list"], { XENON_HOST: undefined });
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /cannot reach the host at ws:\/\/127\.0\.0\.1:1/);
    // The endpoint without its token: refused, whoever asks.
    r = await xl(["-H", url.replace(/\/\?token=.*$/, ""), "destroy", "Domain-0"], { XENON_HOST: undefined });
    assert.equal(r.status, 1);
    assert.match(r.stderr.toString(), /the host refused the connection: no or wrong token/);
    // Still serving, with nothing left behind by the failures.
    const list = await ok(["list"]);
    assert.equal(list.trim().split("\n").length, 3, list);
    assert.match(await ok(["dmesg"]), /\(XEN\) toolstack: host up/);
    assert.match(await ok(["info"]), /^nr_cpus +: 2$/m);
  });
});

/** `xenon host` refuses bad flags before it starts anything. */
it("xenon host refuses bad cpupool flags", async () => {
  const r = await runProcess(process.execPath, [XENON_BIN, "host", "--pcpus", "2", "--cpupool", "a:bvt:0-1"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr.toString(), /unknown scheduler 'bvt'/);
  const r2 = await runProcess(process.execPath, [XENON_BIN, "host", "--pcpus", "2", "--cpupool", "a:credit2:0"]);
  assert.match(r2.stderr.toString(), /cpu 1 is in no --cpupool/);
});

const SERVE_DTS = `/dts-v1/;
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x8000000>; };
    cpus {
        #address-cells = <1>;
        #size-cells = <0>;
        cpu@0 { device_type = "cpu"; compatible = "riscv"; reg = <0>; };
    };
    chosen {
        looper {
            compatible = "xen,domain";
            memory = <0x0 0x800>;
            cpus = <1>;
            kernel {
                compatible = "multiboot,kernel", "multiboot,module";
                xenon,path = "spin.elf";
                bootargs = "name=looper report=20000000 total=0";
            };
        };
    };
};
`;

/** `xenon boot --serve`: the tree's domains run, print their consoles, and xl sees them by name. */
it("xenon boot SYSTEM.dtb --serve keeps the booted system up for xl", async () => {
  const src = join(dir, "serve.dts");
  const dtb = join(dir, "serve.dtb");
  writeFileSync(src, SERVE_DTS);
  const r = await runProcess("dtc", ["-q", "-I", "dts", "-O", "dtb", "-o", dtb, src]);
  assert.equal(r.status, 0, r.stderr.toString());
  const boot = spawn(process.execPath, [XENON_BIN, "boot", "--serve", dtb], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  boot.stdout.on("data", (b: Buffer) => {
    out += b.toString();
  });
  try {
    for (let i = 0; i < 400 && !/XENON_HOST=\S+\n/.test(out); i++) await sleep(25);
    const bootUrl = /XENON_HOST=(\S+)/.exec(out)?.[1];
    assert.ok(bootUrl !== undefined, out);
    const list = await xl(["list"], { XENON_HOST: bootUrl });
    assert.equal(list.status, 0, list.stderr.toString());
    assert.match(list.stdout.toString(), /^looper +1 +2 +1 /m);
    for (let i = 0; i < 200 && !/\(looper\) spin looper start/.test(out); i++) await sleep(25);
    assert.match(out, /^\(looper\) spin looper start/m, "its console still goes to the boot's output");
    const d = await xl(["destroy", "looper"], { XENON_HOST: bootUrl });
    assert.equal(d.status, 0, d.stderr.toString());
  } finally {
    const exited = new Promise<number | null>((res) => boot.once("exit", (code) => res(code)));
    boot.kill("SIGTERM");
    assert.equal(await exited, 0);
  }
});
