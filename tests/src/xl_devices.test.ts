import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { type ProcessResult, runProcess, XENON_BIN } from "./helpers/run.js";

/**
 * xl.cfg devices end to end: `xenon host` as its own process, real `xl create` with `disk=`,
 * `vif=` and `virtio=`; each guest's devices are served by a driver domain of its own (`<name>-dd`, listed
 * by xl while the guest lives, gone with it), through grants or (grant_usage=0) by a privileged
 * driver domain without them. Bad specs are refused with the
 * file and line, the host unharmed.
 */
const XL_BIN = fileURLToPath(new URL("../../packages/toolstack/bin/xl.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "xl-devices-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let host: ChildProcess;
let url = "";
let hostOut = "";

const xl = (args: readonly string[]): Promise<ProcessResult> =>
  runProcess(process.execPath, [XL_BIN, "-H", url, ...args], 60_000);

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

async function until(what: string, f: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}\n${hostOut}`);
    await sleep(50);
  }
}

/** `xenstore-ls -f PATH` through the host's socket (Debian's tool), or null when it is not installed. */
function xenstoreLs(path: string): Promise<string | null> {
  const socket = /XENSTORED_PATH=(\S+)/.exec(hostOut)?.[1] ?? "";
  return new Promise((resolve) => {
    const child = spawn("xenstore-ls", ["-f", path], {
      env: { ...process.env, XENSTORED_PATH: socket },
      stdio: ["ignore", "pipe", "ignore"],
      timeout: 10_000,
    });
    let out = "";
    child.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
    });
    child.on("error", () => resolve(null));
    child.on("close", () => resolve(out));
  });
}

const listed = async (name: string) => (await ok(["list"])).split("\n").some((l) => l.startsWith(`${name} `));

describe("xl create with disk=, vif= and virtio= devices", () => {
  before(async () => {
    host = spawn(process.execPath, [XENON_BIN, "host", "--pcpus", "2", "--memory", "256", "--console"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    host.stdout!.on("data", (b: Buffer) => {
      hostOut += b.toString();
    });
    await until("the host", () => /XENSTORED_PATH=.*\n/.test(hostOut));
    url = /XENON_HOST=(\S+)/.exec(hostOut)?.[1] ?? "";
  });

  after(async () => {
    if (host.exitCode !== null) return;
    const exited = new Promise<number | null>((r) => host.once("exit", (code) => r(code)));
    host.kill("SIGTERM");
    assert.equal(await exited, 0, "a clean shutdown");
  });

  it("disk=: blkstress writes and verifies blocks on the image through its driver domain", async () => {
    writeFileSync(join(dir, "disk.img"), new Uint8Array(1 << 20));
    // A relative target: the cfg file's directory, not the host's.
    const file = cfg(
      "blk",
      `name = "blk"\nkernel = "blkstress.elf"\nmemory = 4\ncmdline = "rounds=0 blocks=4"\ndisk = [ "disk.img,raw,xvda,rw" ]\n`,
    );
    await ok(["create", file]);
    await until("two rounds", () => /^\(blk\) blkstress: round 1 wrote 4 verified 4 errors 0$/m.test(hostOut));
    assert.match(hostOut, /^\(blk\) blkstress: disk 2048 sectors, id xenon-1048576, backend d\d+ grants 1$/m);
    assert.ok(await listed("blk-dd"), "its driver domain is listed while it serves");
    // libxl's virtio nodes as Debian's xenstore-ls sees them: the backend wrote Connected.
    const backend = /^(\/local\/domain\/\d+\/backend\/virtio\/\d+\/0)\/type = "virtio,device2"$/m;
    const ls = await xenstoreLs("/local/domain");
    if (ls !== null) {
      const be = backend.exec(ls)?.[1];
      assert.ok(be !== undefined, ls);
      assert.ok(ls.includes(`${be}/state = "4"\n`), ls);
      assert.match(
        ls,
        /^\/local\/domain\/\d+\/device\/virtio\/0\/backend = "\/local\/domain\/\d+\/backend\/virtio\/\d+\/0"$/m,
      );
    }
    assert.notDeepEqual(readFileSync(join(dir, "disk.img")).subarray(0, 4096), Buffer.alloc(4096));
    await ok(["destroy", "blk"]);
    await until(
      "the guest and its driver domain to go",
      async () => !(await listed("blk")) && !(await listed("blk-dd")),
    );
    // Removed with the domain, as libxl does.
    if (ls !== null) assert.doesNotMatch((await xenstoreLs("/local/domain")) ?? "", backend);
  });

  it("xl save / xl restore: the device's state goes with the guest and its I/O goes on, no round lost", async () => {
    writeFileSync(join(dir, "mover.img"), new Uint8Array(1 << 20));
    const file = cfg(
      "mover",
      `name = "mover"\nkernel = "blkstress.elf"\nmemory = 4\ncmdline = "rounds=40 blocks=4 pause=50"\ndisk = [ "mover.img,raw,xvda,rw" ]\n`,
    );
    const rounds = () =>
      [...hostOut.matchAll(/^\(mover\) blkstress: round (\d+) wrote 4 verified 4 errors 0$/gm)].map((m) =>
        Number(m[1]),
      );
    await ok(["create", file]);
    await until("two rounds", () => rounds().length >= 2);
    const image = join(dir, "mover.save");
    await ok(["save", "mover", image]);
    await until(
      "the guest and its driver domain to go",
      async () => !(await listed("mover")) && !(await listed("mover-dd")),
    );
    const saved = rounds().length;
    await ok(["restore", image]);
    await until("the restored guest to finish", () => /^\(mover\) blkstress: done 40 rounds, 0 errors$/m.test(hostOut));
    assert.ok(rounds().length > saved, "rounds ran after the restore");
    assert.deepEqual(
      rounds(),
      Array.from({ length: 40 }, (_, i) => i),
      `every round once:\n${hostOut}`,
    );
  });

  it("grant_usage=0: a privileged driver domain (xl list -l says so) serves guest-physical addresses, across save/restore", async () => {
    writeFileSync(join(dir, "nogrant.img"), new Uint8Array(64 * 1024));
    const file = cfg(
      "nogrant",
      `name = "nogrant"\nkernel = "blkstress.elf"\nmemory = 4\ncmdline = "rounds=40 blocks=4 pause=50"\ndisk = [ "nogrant.img,raw,xvda,rw,grant_usage=0" ]\n`,
    );
    const rounds = () =>
      [...hostOut.matchAll(/^\(nogrant\) blkstress: round (\d+) wrote 4 verified 4 errors 0$/gm)].map((m) =>
        Number(m[1]),
      );
    const privileged = async (name: string) =>
      (JSON.parse(await ok(["list", "-l", name])) as Array<{ privileged: boolean }>)[0]?.privileged;
    // Paused first: the driver domain is up (and listed) before the guest can finish.
    await ok(["create", "-p", file]);
    assert.equal(await privileged("nogrant-dd"), true, "its driver domain is privileged");
    assert.equal(await privileged("nogrant"), false, "the guest is not");
    await ok(["unpause", "nogrant"]);
    await until("two rounds", () => rounds().length >= 2);
    // No iommus in its tree: plain addresses (the guest names no backend then).
    assert.match(hostOut, /^\(nogrant\) blkstress: disk 128 sectors, id xenon-65536, backend d0 grants 0$/m);
    const image = join(dir, "nogrant.save");
    await ok(["save", "nogrant", image]);
    await until("the guest and its driver domain to go", async () => !(await listed("nogrant-dd")));
    // Paused again: its new driver domain has its name again and is privileged again.
    await ok(["restore", "-p", image]);
    assert.equal(await privileged("nogrant-dd"), true, "the restored guest's driver domain");
    await ok(["unpause", "nogrant"]);
    await until("the restored guest to finish", () =>
      /^\(nogrant\) blkstress: done 40 rounds, 0 errors$/m.test(hostOut),
    );
    assert.deepEqual(
      rounds(),
      Array.from({ length: 40 }, (_, i) => i),
      `every round once:\n${hostOut}`,
    );
  });

  it("a read-only disk (access ro): the guest's writes fail", async () => {
    writeFileSync(join(dir, "ro.img"), new Uint8Array(64 * 1024));
    const file = cfg(
      "ro",
      `name = "ro"\nkernel = "blkstress.elf"\nmemory = 4\ncmdline = "rounds=1 blocks=2"\ndisk = [ "format=raw, vdev=xvda, access=ro, target=${join(dir, "ro.img")}" ]\n`,
    );
    await ok(["create", file]);
    await until("blkstress's round", () => /^\(ro\) blkstress: round 0 wrote 0 verified 0 errors \d+$/m.test(hostOut));
    assert.deepEqual(readFileSync(join(dir, "ro.img")), Buffer.alloc(64 * 1024));
  });

  it("virtio=: a virtio-rng (device 4) for rngcat", async () => {
    const file = cfg(
      "rng",
      `name = "rng"\nkernel = "rngcat.elf"\nmemory = 4\ncmdline = "rounds=1"\nvirtio = [ "type=virtio,device4,transport=mmio,grant_usage=1" ]\n`,
    );
    await ok(["create", file]);
    await until("rngcat", () => /^\(rng\) rngcat: got 64 random bytes in 1 requests$/m.test(hostOut));
    // on_poweroff destroy: guest and driver domain both go.
    await until("both gone", async () => !(await listed("rng")) && !(await listed("rng-dd")));
  });

  it("vif=: two guests on the host switch, one pinging the other by MAC", async () => {
    const echo = cfg(
      "echo",
      `name = "echo"\nkernel = "netping.elf"\nmemory = 4\ncmdline = "mode=echo"\nvif = [ "mac=00:16:3e:00:00:21" ]\n`,
    );
    const ping = cfg(
      "pinger",
      `name = "pinger"\nkernel = "netping.elf"\nmemory = 4\ncmdline = "mode=ping peer=00:16:3e:00:00:21 count=4 stop=1"\nvif = [ "" ]\n`,
    );
    await ok(["create", echo]);
    await ok(["create", ping]);
    await until("the pings", () => /^\(pinger\) netping: done 4\/4 replies, 0 lost$/m.test(hostOut));
    await until("the echo's STOP", () => /^\(echo\) netping: echo answered \d+ pings/m.test(hostOut));
    await until("all four gone", async () => {
      const l = await ok(["list"]);
      return !/^(echo|pinger)(-dd)? /m.test(l);
    });
  });

  // The other refusals are unit tests (packages/toolstack/src/libxl/device.test.ts).
  const refusals: Array<[string, string, RegExp]> = [
    [
      "a missing image",
      `disk = [ "nope.img,raw,xvda,rw" ]`,
      /bad\.cfg:4: disk 'nope\.img,raw,xvda,rw': target 'nope\.img' does not exist/,
    ],
    ["an unknown virtio device", `virtio = [ "type=virtio,device22" ]`, /virtio device 34 cannot be served/],
    [
      "a grant_usage other than 0 or 1",
      `vif = [ "grant_usage=no" ]`,
      /bad\.cfg:4: vif 'grant_usage=no': grant_usage 'no' is neither 0 nor 1/,
    ],
  ];
  for (const [name, line, message] of refusals) {
    it(`refuses ${name} with the file and line; the host keeps running`, async () => {
      const file = cfg("bad", `name = "bad"\nkernel = "hello.elf"\nmemory = 4\n${line}\n`);
      const r = await xl(["create", file]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr.toString(), message);
      assert.equal(await listed("bad"), false);
    });
  }
});
